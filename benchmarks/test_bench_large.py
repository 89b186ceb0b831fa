"""Checkpoints past 4 GiB (issue 13): width-scaled yolov4 variants of about
2 GB and 5 GB (``large_models.py``), each measured in a fresh process.

- Lazy load and a walk of every view (all views kept): RSS grows by less
  than 100 MB; then the checked layers' arrays (the first, the middle and the
  last, past 4 GiB in the 5 GB file) equal the generator's values, which
  shows they were read at the right offsets. Runs in the smoke run too (the
  files are sparse: made in a second).
- The layer iterator, ``layer.fused()`` of every layer with weights, each
  result dropped: its peak RSS grows by less than the largest layer's
  output times three plus 100 MB (issue 26: the pages of the mapping behind
  the walk leave the resident set, and the lookahead is bounded). With
  timings on only.
- The same walk keeping every result, against ``net[i].fused()`` of each
  layer fetched by index (no walk, no lookahead: the iterator before issue
  26), first use, fresh processes, interleaved, 8 rounds, the order reversed
  every round: not slower, with the host's memory warmed before each sample
  (``conftest.WARM_HOST_MEMORY``); the same rounds not warmed are recorded
  beside it. With timings on only (it holds the whole size in memory).
- The streaming safetensors export (a file of the same size, on the cache
  folder's disk): its peak RSS (VmHWM, reset just before) exceeds the RSS
  before it by less than the largest layer plus 100 MB; the exported file's
  checked tensors equal the generator's. With timings on only (it writes
  the whole size).

    python -m pytest benchmarks/test_bench_large.py --benchmark-only -s
"""

from __future__ import annotations

import os
import shutil
import statistics
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    RSS_HELPERS,
    fresh_process_number,
    fresh_process_rounds,
    record,
    record_memory,
    record_target,
    warmed,
)
from large_models import GB, SIZES, cache_folder, checked_layers, large_model

MB = 1 << 20

CHECK = RSS_HELPERS + """
import sys
import numpy as np
import yolo_io
sys.path.insert(0, sys.argv[3])
from large_models import checked_layers, layer_values


def check(net, arrays_of):
    for i in checked_layers(net.config):
        for name, want in layer_values(net.config, i).items():
            got = arrays_of(i)[name]
            assert np.array_equal(got, want), (i, name)
"""
WALK = CHECK + """
before = status("VmRSS:")
net = yolo_io.load(sys.argv[1], sys.argv[2])
views = [dict(layer.params) for layer in net]
grown = status("VmRSS:") - before
check(net, lambda i: views[i])
print(grown)
"""
ITERATE = CHECK + """
net = yolo_io.load(sys.argv[1], sys.argv[2])
reset_peak()
before = status("VmRSS:")
for layer in net:
    if layer.fusion is not None:
        w, b = layer.fused()
print(status("VmHWM:") - before)
"""
# Even, so that each goes first as often (conftest.round_order): which
# process follows which, and after how long, changes its time.
KEEP_ROUNDS = 8
KEEP = """
import sys, time
import yolo_io
net = yolo_io.load(sys.argv[1], sys.argv[2])
{warm}t = time.perf_counter()
kept = {kept}
print(time.perf_counter() - t)
"""
KEEP_WALK = "[layer.fused() for layer in net if layer.fusion is not None]"
KEEP_BY_INDEX = "[net[i].fused() for i in range(len(net)) if net[i].fusion is not None]"
# The host memory warmed before each sample (conftest.WARM_HOST_MEMORY): more
# than the 4.6 GiB the kept results take, after 3 s for the host to take
# back what the sample before freed.
KEEP_WARM = 6 << 30
KEEP_SETTLE = 3.0
# A walk slower than this, warmed, is a regression beyond the noise.
KEEP_REGRESSION = 1.15
EXPORT = CHECK + """
net = yolo_io.load(sys.argv[1], sys.argv[2])
reset_peak()
before = status("VmRSS:")
yolo_io.save_safetensors(sys.argv[4], net)
grown = status("VmHWM:") - before
exported = yolo_io.load(sys.argv[4])
check(exported, lambda i: exported[i].params)
print(grown)
"""


@pytest.fixture(autouse=True)
def _leave_memory_as_found() -> Iterator[None]:
    """After each test: the checkpoints' pages out of the page cache, and the
    disk's dirty pages written. Otherwise gigabytes of cached and dirty
    pages outlive this module, and the benchmarks after it measure writeback
    and the kernel compacting memory for huge pages (darknet2any's
    load_weights, whose np.fromfile asks for huge pages, took 381 ms
    instead of 43 ms in the run after these)."""
    yield
    os.sync()
    for name in SIZES:
        weights = cache_folder() / f"yolov4-{name}.weights"
        if weights.exists():
            fd = os.open(weights, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


@pytest.mark.benchmark(group="large")
@pytest.mark.parametrize("name", sorted(SIZES))
def test_lazy_load_and_views_of_a_large_checkpoint(benchmark: pytest.FixtureDef,
                                                    name: str) -> None:
    import yolo_io

    weights, cfg = large_model(name)
    size = weights.stat().st_size
    offset = yolo_io.load(weights, cfg)[checked_layers(yolo_io.parse_cfg(cfg))[-1]].offset
    unused = cache_folder() / "unused"
    grown = benchmark.pedantic(
        lambda: fresh_process_number(WALK, weights, cfg, Path(__file__).parent, out=unused),
        rounds=1, iterations=1)
    print(f"\n{name} ({size / GB:.2f} GiB): lazy load + every view, RSS +{grown / MB:.1f} MB; "
          f"the last checked layer at byte {offset}")
    benchmark.extra_info["rss_growth_mb"] = grown / MB
    record_memory(benchmark, f"load of a {size / GB:.1f} GiB checkpoint, every view kept", grown,
                  100 * MB)
    assert grown < 100 * MB
    if size > 4 * GB:
        assert offset > 4 * GB


@pytest.mark.benchmark(group="large")
@pytest.mark.parametrize("name", sorted(SIZES))
def test_layer_iterator_over_a_large_checkpoint(benchmark: pytest.FixtureDef, name: str) -> None:
    if benchmark.disabled:
        pytest.skip("reads the whole checkpoint: runs with --benchmark-only")
    weights, cfg = large_model(name)
    unused = cache_folder() / "unused"
    grown = benchmark.pedantic(
        lambda: fresh_process_number(ITERATE, weights, cfg, Path(__file__).parent, out=unused),
        rounds=1, iterations=1)
    import yolo_io

    largest = max(layer.fused()[0].nbytes for layer in yolo_io.load(weights, cfg).fusable_layers())
    bound = 3 * largest + 100 * MB
    print(f"\n{name}: layer.fused() of every layer with weights, results dropped: peak RSS "
          f"+{grown / MB:.0f} MB (file {weights.stat().st_size / MB:.0f} MB; bound "
          f"{bound / MB:.0f} MB: 3 x the largest output, {largest / MB:.1f} MB, + 100 MB)")
    benchmark.extra_info["rss_growth_mb"] = grown / MB
    record_memory(benchmark, f"layer.fused() over a {weights.stat().st_size / GB:.1f} GiB "
                  "checkpoint, results dropped, peak", grown, bound)
    assert grown < bound


@pytest.mark.benchmark(group="large")
def test_a_walk_keeping_every_result_is_not_slower(benchmark: pytest.FixtureDef) -> None:
    if benchmark.disabled:
        pytest.skip("holds the whole checkpoint in memory: runs with --benchmark-only")
    weights, cfg = large_model("5GB")
    unused = cache_folder() / "unused"
    with open(weights, "rb") as f:  # into the page cache (the fixture took it out), untimed
        while f.read(64 << 20):
            pass

    def rounds(warm: str) -> dict[str, list[float]]:
        return fresh_process_rounds(
            {"walk": KEEP.format(warm=warm, kept=KEEP_WALK),
             "by_index": KEEP.format(warm=warm, kept=KEEP_BY_INDEX)},
            KEEP_ROUNDS, weights, cfg, out=unused)

    def both() -> tuple[dict[str, list[float]], dict[str, list[float]]]:
        return rounds(warmed(KEEP_WARM, KEEP_SETTLE)), rounds("")

    times, unwarmed = benchmark.pedantic(both, rounds=1, iterations=1)
    what = "layer.fused() of every layer of the 4.6 GiB checkpoint, results kept"
    ratio = record(benchmark, what, "first use: fresh process, host memory warmed, file in the "
                   "page cache", times, "walk", "by_index")
    raw = record(benchmark, what, "first use: fresh process, host memory as the sample before "
                 "left it, file in the page cache", unwarmed, "walk", "by_index")
    for regime, t, r in (("host memory warmed", times, ratio), ("not warmed", unwarmed, raw)):
        print(f"\n5GB, results kept, {regime}: walk {statistics.median(t['walk']):.2f} s, by "
              f"index {statistics.median(t['by_index']):.2f} s, paired ratio {r:.2f}; samples "
              f"(s): walk {[round(x, 2) for x in t['walk']]}, by index "
              f"{[round(x, 2) for x in t['by_index']]}")
    # The target in the warmed regime, where a sample's time is its code's
    # (both variants write the same 4.6 GB of fresh memory, and that is most
    # of their time). Not warmed, a sample now and then waits seconds for the
    # host: the walk took 0.68-10.42 s and by index 0.59-2.73 s (paired 1.20x,
    # 01:55 UTC 2026-12-07; 0.54-2.12 s and 0.63-1.82 s, 1.01x, in the run
    # of 02:33 UTC); warmed after 3 s, in that run, 0.54-0.98 s and 0.79-0.99 s
    # (0.98x). Recorded against 1.0; asserted only against a clear
    # regression, as the warmed samples still vary by 10-15%.
    record_target(benchmark, "a walk keeping every result of the 4.6 GiB checkpoint, against "
                  "net[i].fused() by index (today's iterator), host memory warmed", ratio, 1.0,
                  why="within the noise of the warmed samples (10-15%)")
    assert ratio <= KEEP_REGRESSION, (f"the walk keeping every result took {ratio:.2f}x the "
                                      "fusion by index")


@pytest.mark.benchmark(group="large")
@pytest.mark.parametrize("name", sorted(SIZES))
def test_streaming_export_of_a_large_checkpoint(benchmark: pytest.FixtureDef,
                                                 name: str) -> None:
    import yolo_io

    if benchmark.disabled:
        pytest.skip("writes the whole checkpoint: runs with --benchmark-only")
    weights, cfg = large_model(name)
    size = weights.stat().st_size
    folder = cache_folder()
    if shutil.disk_usage(folder).free < size + 2 * GB:
        pytest.skip(f"less than {size / GB + 2:.1f} GiB free in {folder} for the export")
    largest = max(layer.nbytes for layer in yolo_io.load(weights, cfg))
    out = folder / f"yolov4-{name}.safetensors"
    try:
        grown = benchmark.pedantic(
            lambda: fresh_process_number(EXPORT, weights, cfg, Path(__file__).parent, out,
                                         out=out), rounds=1, iterations=1)
    finally:
        out.unlink(missing_ok=True)
    print(f"\n{name} ({size / GB:.2f} GiB): streaming safetensors export, peak RSS "
          f"+{grown / MB:.1f} MB (largest layer {largest / MB:.1f} MB)")
    benchmark.extra_info["rss_growth_mb"] = grown / MB
    record_memory(benchmark, f"save_safetensors of a {size / GB:.1f} GiB checkpoint, peak",
                  grown, largest + 100 * MB)
    assert grown < largest + 100 * MB

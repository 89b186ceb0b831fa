"""save_safetensors(): the streaming export, first use in a fresh process.

Targets (issue 10):
- yolov4: the streaming export is no slower than ``safetensors.numpy.save_file``
  of the same tensors already in memory. Regime: each sample is a fresh
  process; ours loads the network (new mapping, file in the page cache) and
  exports it; the baseline reads the same tensors into memory first (untimed)
  and saves them. Source and output on tmpfs (/dev/shm) where it has room,
  rounds interleaved, ``os.sync()`` (untimed) before each sample, paired
  ratios. Recorded in the report's targets table, not asserted: at parity,
  not reliably below (medians of 0.95-1.05x save_file over 9-25 rounds). The
  baseline write()s anonymous memory already faulted in; ours must also read
  the same bytes from the page cache. The core reads them on a second thread
  into a 4 MiB ring while it writes, which hides the read (a C program on this
  machine: read+write pipelined 101 ms, write() alone 100 ms, read then write
  113 ms), so both move the same bytes through DRAM and ours can be faster
  only by noise.
- yolov4-p6: the export's peak RSS exceeds the RSS before it by less than the
  largest layer plus 64 MB (raw and darknet2pytorch-named exports; the peak,
  VmHWM, is reset just before the export; file-backed pages of the mapping
  count too).

    python -m pytest benchmarks/test_bench_safetensors.py --benchmark-only -s
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import (
    RSS_HELPERS,
    first_use_times,
    fresh_process_number,
    medians_ms,
    record,
    record_memory,
    record_target,
)

pytest.importorskip("safetensors")

ROUNDS = 9
MB = 1 << 20

OURS = """
import sys, time, yolo_io
net = yolo_io.load(sys.argv[1], sys.argv[2])
t = time.perf_counter(); yolo_io.save_safetensors(sys.argv[3], net); print(time.perf_counter() - t)
"""
THEIRS = """
import sys, time, yolo_io
from safetensors.numpy import save_file
net = yolo_io.load(sys.argv[1], sys.argv[2])
tensors = {f"{l.index}.{k}": a.copy() for l in net for k, a in l.params.items()}
t = time.perf_counter(); save_file(tensors, sys.argv[3]); print(time.perf_counter() - t)
"""
RSS = RSS_HELPERS + """
import sys, yolo_io
net = yolo_io.load(sys.argv[1], sys.argv[2])
reset_peak()
before = status("VmRSS:")
yolo_io.save_safetensors(sys.argv[3], net, naming=sys.argv[4] or None)
print(status("VmHWM:") - before)
"""



@pytest.mark.benchmark(group="safetensors-yolov4")
def test_export_yolov4_first_use(benchmark: pytest.FixtureDef, yolov4: tuple[Path, Path],
                                 tmp_path: Path) -> None:
    weights, cfg = yolov4
    programs = {"save_safetensors": OURS, "save_file": THEIRS}
    times = first_use_times(benchmark, programs, weights, cfg, tmp_path, suffix=".safetensors",
                            rounds=ROUNDS)
    if times is None:
        return
    ratio = record(benchmark, "streaming save_safetensors of yolov4",
                   "first use: fresh process, tmpfs (baseline: tensors already in memory)",
                   times, "save_safetensors", "save_file")
    report = "; ".join(medians_ms(times))
    benchmark.extra_info["ratio"] = ratio
    print(f"\nfirst use, yolov4: {report}; ours / save_file: {ratio:.2f}x")
    record_target(benchmark, "streaming save_safetensors of yolov4 / save_file", ratio, 1.0,
                  why="at parity: both move the same bytes through DRAM")


@pytest.mark.benchmark(group="safetensors-rss")
@pytest.mark.parametrize("naming", ["", "darknet2pytorch"], ids=["raw", "darknet2pytorch"])
def test_export_yolov4_p6_rss(benchmark: pytest.FixtureDef, yolov4_p6: tuple[Path, Path],
                              tmp_path: Path, naming: str) -> None:
    import yolo_io

    weights, cfg = yolov4_p6
    largest = max(layer.nbytes for layer in yolo_io.load(weights, cfg))
    out = tmp_path / "p6.safetensors"
    grown = benchmark.pedantic(lambda: fresh_process_number(RSS, weights, cfg, out, naming,
                                                             out=out), rounds=1, iterations=1)
    out.unlink()
    print(f"\nyolov4-p6 {naming or 'raw'} export: peak RSS +{grown / MB:.1f} MB (largest layer "
          f"{largest / MB:.1f} MB)")
    benchmark.extra_info["rss_growth_mb"] = grown / MB
    record_memory(benchmark, f"save_safetensors of yolov4-p6 ({naming or 'raw'}), peak",
                  grown, largest + 64 * MB)
    assert grown < largest + 64 * MB

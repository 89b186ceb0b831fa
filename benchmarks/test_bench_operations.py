"""Every operation on yolov4 (258 MB) in two regimes, and issue 13's
first-use targets checked against them (test_first_use_targets).

First use: each sample is a new process that imports what it needs and
warms the host's memory (both untimed; see ``conftest.WARM_HOST_MEMORY``;
not for the lazy load and ``np.memmap``, which take next to no fresh
memory), then times one operation that starts from the file's path (a new
mapping, fresh memory, the file in the page cache on tmpfs where it has room) and
keeps every result until the clock stops. Every operation is run once per
round, rounds interleaved, and compared with a baseline of the same round:
eager operations with ``np.fromfile`` of the file, the lazy load with
``np.memmap``. The figure is the median over rounds of the paired ratio.

Steady state: the same operations repeated in one process (the network
loaded once, its file mapped and paged in by earlier rounds; each result
dropped before the next call, so memory is reused), rounds interleaved, each
against ``np.fromfile`` of the same round (``np.memmap`` for the load). The
writers (save, safetensors and ONNX export) write to tmpfs where it has room.

In both regimes "a plain copy of the file's bytes" (``np.memmap`` of the file,
then ``.copy()``) is the memory floor of an eager read through a mapping.

Targets (issue 26), first use, paired ratios: the ``layer.fused()`` loop at
most 1.3x ``fused_all`` with 2 threads of the same round, and at most 0.5x
the faster peer of the round (OpenCV's ``readNetFromDarknet`` or
safetensors' ``load_file`` of the same tensors, whichever took less);
``fused_all`` with 2 threads at most 0.3x that peer. darknet2any's
``load_weights`` (its model built untimed) is in the table too. The targets'
four operations run again without the warm-up, in rounds of their own after
the others, and the targets are recorded in both regimes. Issue 13's
targets against ``np.fromfile`` are retired: its first-use sample swings 5x
between runs with yolo_io's figures unchanged, so a ratio to it says little.

    python -m pytest benchmarks/test_bench_operations.py --benchmark-only -s
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path

import pytest
from conftest import (
    first_use_times,
    interleaved_times,
    medians_ms,
    record,
    record_target,
    warmed,
)

ROUNDS = 10  # even: each order of conftest.round_order as often
# Host memory warmed before each first-use sample (conftest.WARM_HOST_MEMORY):
# more than any operation here takes fresh (peak RSS growth, imports
# included: safetensors' load_file about 490 MB, OpenCV's importer 265 MB,
# fused_all 250 MB).
WARM = 2 << 30
FIRST_USE_REGIME = ("first use: fresh process, host memory warmed, results kept, file in the "
                    "page cache")
# The lazy operations take next to no fresh memory and are not warmed.
LAZY = ("np.memmap", "yolo_io.load (lazy)")
LAZY_REGIME = "first use: fresh process, file in the page cache"
# The targets' operations again, not warmed, in rounds of their own after the
# others (see first_use_times); their names end in NOT_WARMED.
NOT_WARMED = " (not warmed)"
NOT_WARMED_REGIME = ("first use: fresh process, host memory as the sample before left it, "
                     "results kept, file in the page cache")
# The first-use timings of this session, for test_first_use_targets.
_FIRST_USE: list[dict[str, list[float]]] = []

PRELUDE = """
import sys, time, warnings
import numpy as np
import yolo_io
warnings.simplefilter("ignore")
w, c = sys.argv[1], sys.argv[2]
st = w[:-len(".weights")] + ".safetensors"
sys.path.insert(0, {folder!r})
"""
# Per round, the faster of OpenCV's importer and safetensors' load_file.
PEER_NAME = "the faster peer (OpenCV's readNetFromDarknet or safetensors' load_file)"
# operation -> (untimed setup, its code, what it is compared with); each code
# keeps its results in `kept` until the clock stops. `st`: a raw safetensors
# export of the same network.
OPERATIONS = {
    "np.fromfile": ("", "kept = np.fromfile(w, dtype=np.float32)", None),
    "np.memmap": ("", "kept = np.memmap(w, dtype=np.float32, mode='r')", None),
    "a plain copy of the file's bytes (np.memmap, then copy)":
        ("", "kept = np.memmap(w, dtype=np.float32, mode='r').copy()", "np.fromfile"),
    "yolo_io.load (lazy)": ("", "kept = yolo_io.load(w, c)", "np.memmap"),
    "read every array (np.array of each view)":
        ("", "net = yolo_io.load(w, c)\n"
         + "kept = [np.array(a) for l in net for a in l.params.values()]", PEER_NAME),
    "layer.fused() of every layer with weights, OIHW":
        ("", "net = yolo_io.load(w, c)\nkept = [l.fused() for l in net if l.fusion]",
         PEER_NAME),
    "layer.fused(layout='HWIO') of every layer with weights":
        ("", "net = yolo_io.load(w, c)\nkept = [l.fused('HWIO') for l in net if l.fusion]",
         PEER_NAME),
    "fused_all OIHW, 1 thread":
        ("", "net = yolo_io.load(w, c)\nkept = net.fused_all('OIHW', threads=1)", PEER_NAME),
    "fused_all OIHW, 2 threads":
        ("", "net = yolo_io.load(w, c)\nkept = net.fused_all('OIHW', threads=2)", PEER_NAME),
    "fused_all OIHW, 2 threads, float16":
        ("", "net = yolo_io.load(w, c)\n"
         + "kept = net.fused_all('OIHW', threads=2, dtype='float16')", PEER_NAME),
    "state_dict (unfused)":
        ("", "net = yolo_io.load(w, c)\nkept = net.state_dict()", PEER_NAME),
    "peers' way: np.fromfile, then slice, reshape and fuse per layer":
        ("from test_bench_fuse import numpy_fuse_from_file",
         "net = yolo_io.load(w, c)\nkept = numpy_fuse_from_file(net, w)", "np.fromfile"),
    "OpenCV readNetFromDarknet": ("import cv2", "kept = cv2.dnn.readNetFromDarknet(c, w)",
                                  "np.fromfile"),
    "safetensors.numpy.load_file of the raw export":
        ("from safetensors.numpy import load_file", "kept = load_file(st)", None),
    "darknet2any load_weights (its Darknet(cfg) built untimed)":
        ("import torch\nfrom darknet2any.tool.darknet2pytorch import Darknet\nkept = Darknet(c)",
         "kept.load_weights(w)", "np.fromfile"),
    "yolo_io.load of the raw export, every array read":
        ("", "net = yolo_io.load(st)\n"
         + "kept = [np.array(a) for l in net for a in l.params.values()]",
         "safetensors.numpy.load_file of the raw export"),
}
# Measured in the steady state only here (their first use, with the baselines
# of their own issues, is in test_bench_save/_safetensors/_onnx.py).
WRITERS = ("yolo_io.save (.weights)", "save_safetensors (raw)", "ONNX export")
# Operations that need optional packages, and the packages.
NEEDS = {"OpenCV readNetFromDarknet": ("cv2",),
         "darknet2any load_weights (its Darknet(cfg) built untimed)": ("darknet2any", "torch"),
         "safetensors.numpy.load_file of the raw export": ("safetensors",),
         "yolo_io.load of the raw export, every array read": ("safetensors",)}


def available() -> dict[str, tuple[str, str, str | None]]:
    """OPERATIONS without those whose package is not installed."""
    return {name: op for name, op in OPERATIONS.items()
            if all(importlib.util.find_spec(m) is not None for m in NEEDS.get(name, ()))}


def program(setup: str, code: str, folder: Path, *, warm: bool = True) -> str:
    """The operation's code timed, after the (untimed) imports, setup and,
    with ``warm``, warm-up of the host's memory (``WARM``)."""
    return (PRELUDE.format(folder=str(folder)) + setup + "\n" + (warmed(WARM) if warm else "")
            + "t = time.perf_counter()\n" + code + "\nprint(time.perf_counter() - t)\n")


def first_use_programs(operations: dict[str, tuple[str, str, str | None]], folder: Path, *,
                       warm: bool) -> dict[str, str]:
    """The first-use program of each operation; with ``warm``, each warms
    the host's memory just before its clock starts, but for the LAZY ones."""
    return {name: program(setup, code, folder, warm=warm and name not in LAZY)
            for name, (setup, code, _) in operations.items()}


@pytest.mark.benchmark(group="first-use-yolov4")
def test_every_operation_first_use(benchmark: pytest.FixtureDef, yolov4: tuple[Path, Path],
                                   tmp_path: Path) -> None:
    import yolo_io

    weights, cfg = yolov4
    folder = Path(__file__).parent
    operations = available()
    # Without timings (the smoke run), nothing is warmed: the programs run once.
    programs = first_use_programs(operations, folder, warm=not benchmark.disabled)
    not_warmed = {name + NOT_WARMED: program(*operations[name][:2], folder, warm=False)
                  for name in (LOOP, FUSED_ALL_2, OPENCV, SAFETENSORS) if name in operations}
    exports: list[Path] = []

    def export(source: Path, _: Path) -> None:  # the raw safetensors export beside the source
        exports.append(source.with_suffix(".safetensors"))
        yolo_io.save_safetensors(exports[-1], yolo_io.load(source, cfg))

    try:
        times = first_use_times(benchmark, programs, weights, cfg, tmp_path, suffix=".unused",
                                rounds=ROUNDS, before=export, then=not_warmed)
    finally:
        for path in exports:
            path.unlink(missing_ok=True)
    if times is None:
        return
    if OPENCV in times and SAFETENSORS in times:
        times = with_faster_peer(times)
    if OPENCV + NOT_WARMED in times and SAFETENSORS + NOT_WARMED in times:
        times = with_faster_peer(times, NOT_WARMED)
    _FIRST_USE.append(times)
    lines = []
    for name, (_, _, baseline) in operations.items():
        if baseline is None or baseline not in times:
            continue
        regime = LAZY_REGIME if name in LAZY else FIRST_USE_REGIME
        ratio = record(benchmark, f"{name}, yolov4", regime, times, name, baseline)
        lines.append(f"{name}: {ratio:.2f}x {baseline}")
    print("\nfirst use, yolov4: " + "; ".join(medians_ms(times)) + "\n" + "\n".join(lines))


LOOP = "layer.fused() of every layer with weights, OIHW"
FUSED_ALL_2 = "fused_all OIHW, 2 threads"
OPENCV = "OpenCV readNetFromDarknet"
SAFETENSORS = "safetensors.numpy.load_file of the raw export"
PEER = PEER_NAME
# Issue 26's first-use targets: (operation, baseline, at most).
FIRST_USE_TARGETS = (
    (LOOP, FUSED_ALL_2, 1.3),
    (LOOP, PEER, 0.5),
    (FUSED_ALL_2, PEER, 0.3),
)


def with_faster_peer(times: dict[str, list[float]], suffix: str = "") -> dict[str, list[float]]:
    """``times`` and, per round, the faster of OpenCV's importer and
    safetensors' load_file in that round (of the names ending in
    ``suffix``)."""
    return {**times, PEER + suffix: [min(a, b) for a, b in zip(
        times[OPENCV + suffix], times[SAFETENSORS + suffix], strict=True)]}


def test_first_use_targets(benchmark: pytest.FixtureDef) -> None:
    """Issue 26's first-use targets against the timings of
    test_every_operation_first_use (same session), in both regimes, each
    recorded in the report's targets table, not asserted: they hold when
    fresh memory is fast and not when it is slow, which on these VMs changes
    from hour to hour (np.fromfile of the file 25-45 ms, or 75-570 ms). In
    the run from 02:56 UTC 2026-12-07 (10 rounds), warmed: the loop 1.13x
    fused_all and 0.36x the faster peer; fused_all 0.32x that peer (52 ms against 163 ms),
    not the 0.3x of its target: it writes 258 MB of fresh memory that the
    kernel zeroes first, where the peers' time is mostly their own work. Not
    warmed, same run: 1.06x, 0.46x and 0.43x."""
    benchmark.pedantic(lambda: None, rounds=1)  # counts as used, skipped or not
    if benchmark.disabled or not _FIRST_USE:
        pytest.skip("first-use timings are only taken with --benchmark-only")
    missing = [name for name in (OPENCV, SAFETENSORS) if name not in _FIRST_USE[0]]
    if missing:
        pytest.fail(f"the peers are not installed: {missing} (pip install -e '.[test]')")
    times = _FIRST_USE[0]
    for suffix, regime, label in (("", FIRST_USE_REGIME, "host memory warmed"),
                                  (NOT_WARMED, NOT_WARMED_REGIME, "not warmed")):
        for name, baseline, most in FIRST_USE_TARGETS:
            if name + suffix not in times or baseline + suffix not in times:
                pytest.fail(f"no first-use timings of {name + suffix} or {baseline + suffix}")
            ratio = record(benchmark, f"{name} against {baseline}, yolov4", regime, times,
                           name + suffix, baseline + suffix)
            record_target(benchmark, f"first use, {label}: {name} / {baseline}", ratio, most,
                          why="fresh memory: the kernel zeroes 258 MB first (see the test)")
            print(f"first use, {label}: {name} / {baseline}: {ratio:.2f}x (target <= {most}x)")


@pytest.mark.benchmark(group="steady-state-yolov4")
def test_every_operation_steady_state(benchmark: pytest.FixtureDef,
                                      yolov4: tuple[Path, Path], tmp_path: Path) -> None:
    import numpy as np
    from conftest import scratch_folder
    from test_bench_fuse import numpy_fuse_from_file

    import yolo_io

    weights, cfg = yolov4
    net = yolo_io.load(weights, cfg)
    out = scratch_folder(tmp_path) / f"yolo_io-bench-{os.getpid()}"
    operations = {
        "np.fromfile": lambda: np.fromfile(weights, dtype=np.float32),
        "np.memmap": lambda: np.memmap(weights, dtype=np.float32, mode="r"),
        "a plain copy of the file's bytes (np.memmap, then copy)":
            lambda: np.memmap(weights, dtype=np.float32, mode="r").copy(),
        "yolo_io.load (lazy)": lambda: yolo_io.load(weights, cfg),
        "read every array (np.array of each view)":
            lambda: [np.array(a) for layer in net for a in layer.params.values()],
        "layer.fused() of every layer with weights, OIHW":
            lambda: [layer.fused() for layer in net if layer.fusion],
        "layer.fused(layout='HWIO') of every layer with weights":
            lambda: [layer.fused("HWIO") for layer in net if layer.fusion],
        "fused_all OIHW, 1 thread": lambda: net.fused_all("OIHW", threads=1),
        "fused_all OIHW, 2 threads": lambda: net.fused_all("OIHW", threads=2),
        "fused_all OIHW, 2 threads, float16":
            lambda: net.fused_all("OIHW", threads=2, dtype="float16"),
        "state_dict (unfused)": lambda: net.state_dict(),
        "peers' way: np.fromfile, then slice, reshape and fuse per layer":
            lambda: numpy_fuse_from_file(net, weights),
        "yolo_io.save (.weights)": lambda: yolo_io.save(out.with_suffix(".weights"), net),
        "save_safetensors (raw)": lambda: yolo_io.save_safetensors(
            out.with_suffix(".safetensors"), net),
        "ONNX export": lambda: importlib.import_module("yolo_io.onnx").export(
            out.with_suffix(".onnx"), net),
    }
    if importlib.util.find_spec("onnx") is None:
        del operations["ONNX export"]
    try:
        times = benchmark.pedantic(interleaved_times, args=(operations,),
                                   kwargs={"rounds": 1 if benchmark.disabled else 7}, rounds=1,
                                   iterations=1)
    finally:
        for suffix in (".weights", ".safetensors", ".onnx"):
            out.with_suffix(suffix).unlink(missing_ok=True)
    if benchmark.disabled:
        return
    lines = []
    # The steady state has no peers' rows: each against np.fromfile of its round.
    steady = {**{name: base if base != PEER_NAME else "np.fromfile"
                 for name, (_, _, base) in OPERATIONS.items()},
              **{name: "np.fromfile" for name in WRITERS}}
    for name, baseline in steady.items():
        if baseline is None or name not in operations:
            continue
        ratio = record(benchmark, f"{name}, yolov4", "steady state: one process, file mapped "
                       "and paged in, each result dropped", times, name, baseline)
        lines.append(f"{name}: {ratio:.2f}x {baseline}")
    print("\nsteady state, yolov4: " + "; ".join(medians_ms(times)) + "\n" + "\n".join(lines))

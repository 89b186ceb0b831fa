"""Every operation on yolov4 (258 MB) in two regimes (issue 13, part: the
measurements; the targets are not asserted yet).

First use: each sample is a new process that imports what it needs (untimed),
then times one operation that starts from the file's path (a new mapping,
fresh memory, the file in the page cache on tmpfs where it has room) and
keeps every result until the clock stops. Every operation is run once per
round, rounds interleaved, and compared with a baseline of the same round:
eager operations with ``np.fromfile`` of the file, the lazy load with
``np.memmap``. The figure is the median over rounds of the paired ratio.

Steady state: the same operations repeated in one process (the network
loaded once, its file mapped and paged in by earlier rounds; each result
dropped before the next call, so memory is reused), rounds interleaved, each
against ``np.fromfile`` of the same round (``np.memmap`` for the load).

    python -m pytest benchmarks/test_bench_operations.py --benchmark-only -s
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import first_use_times, interleaved_times, medians_ms, record

ROUNDS = 5

PRELUDE = """
import sys, time, warnings
import numpy as np
import yolo_io
warnings.simplefilter("ignore")
w, c = sys.argv[1], sys.argv[2]
st = w[:-len(".weights")] + ".safetensors"
sys.path.insert(0, {folder!r})
"""
# operation -> (untimed setup, its code, what it is compared with); each code
# keeps its results in `kept` until the clock stops. `st`: a raw safetensors
# export of the same network.
OPERATIONS = {
    "np.fromfile": ("", "kept = np.fromfile(w, dtype=np.float32)", None),
    "np.memmap": ("", "kept = np.memmap(w, dtype=np.float32, mode='r')", None),
    "yolo_io.load (lazy)": ("", "kept = yolo_io.load(w, c)", "np.memmap"),
    "read every array (np.array of each view)":
        ("", "net = yolo_io.load(w, c)\n"
         + "kept = [np.array(a) for l in net for a in l.params.values()]", "np.fromfile"),
    "layer.fused() of every layer, OIHW":
        ("", "net = yolo_io.load(w, c)\nkept = [l.fused() for l in net if l.fusion]",
         "np.fromfile"),
    "layer.fused(layout='HWIO') of every layer":
        ("", "net = yolo_io.load(w, c)\nkept = [l.fused('HWIO') for l in net if l.fusion]",
         "np.fromfile"),
    "fused_all OIHW, 1 thread":
        ("", "net = yolo_io.load(w, c)\nkept = net.fused_all('OIHW', threads=1)", "np.fromfile"),
    "fused_all OIHW, 2 threads":
        ("", "net = yolo_io.load(w, c)\nkept = net.fused_all('OIHW', threads=2)", "np.fromfile"),
    "fused_all OIHW, 2 threads, float16":
        ("", "net = yolo_io.load(w, c)\n"
         + "kept = net.fused_all('OIHW', threads=2, dtype='float16')", "np.fromfile"),
    "state_dict (unfused)":
        ("", "net = yolo_io.load(w, c)\nkept = net.state_dict()", "np.fromfile"),
    "peers' way: np.fromfile, then slice, reshape and fuse per layer":
        ("from test_bench_fuse import numpy_fuse_from_file",
         "net = yolo_io.load(w, c)\nkept = numpy_fuse_from_file(net, w)", "np.fromfile"),
    "OpenCV readNetFromDarknet": ("import cv2", "kept = cv2.dnn.readNetFromDarknet(c, w)",
                                  "np.fromfile"),
    "safetensors.numpy.load_file of the raw export":
        ("from safetensors.numpy import load_file", "kept = load_file(st)", None),
    "yolo_io.load of the raw export, every array read":
        ("", "net = yolo_io.load(st)\n"
         + "kept = [np.array(a) for l in net for a in l.params.values()]",
         "safetensors.numpy.load_file of the raw export"),
}
# Operations that need an optional package, and the package.
NEEDS = {"OpenCV readNetFromDarknet": "cv2",
         "safetensors.numpy.load_file of the raw export": "safetensors",
         "yolo_io.load of the raw export, every array read": "safetensors"}


def available() -> dict[str, tuple[str, str, str | None]]:
    """OPERATIONS without those whose package is not installed."""
    import importlib.util

    return {name: op for name, op in OPERATIONS.items()
            if name not in NEEDS or importlib.util.find_spec(NEEDS[name]) is not None}


def program(setup: str, code: str, folder: Path) -> str:
    """The operation's code timed, after the (untimed) imports and setup."""
    return (PRELUDE.format(folder=str(folder)) + setup + "\nt = time.perf_counter()\n" + code
            + "\nprint(time.perf_counter() - t)\n")


@pytest.mark.benchmark(group="first-use-yolov4")
def test_every_operation_first_use(benchmark: pytest.FixtureDef, yolov4: tuple[Path, Path],
                                   tmp_path: Path) -> None:
    import yolo_io

    weights, cfg = yolov4
    folder = Path(__file__).parent
    operations = available()
    programs = {name: program(setup, code, folder) for name, (setup, code, _) in
                operations.items()}
    exports: list[Path] = []

    def export(source: Path, _: Path) -> None:  # the raw safetensors export beside the source
        exports.append(source.with_suffix(".safetensors"))
        yolo_io.save_safetensors(exports[-1], yolo_io.load(source, cfg))

    try:
        times = first_use_times(benchmark, programs, weights, cfg, tmp_path, suffix=".unused",
                                rounds=ROUNDS, before=export)
    finally:
        for path in exports:
            path.unlink(missing_ok=True)
    if times is None:
        return
    lines = []
    for name, (_, _, baseline) in operations.items():
        if baseline is None:
            continue
        ratio = record(benchmark, f"{name}, yolov4", "first use: fresh process, results kept, "
                       "file in the page cache", times, name, baseline)
        lines.append(f"{name}: {ratio:.2f}x {baseline}")
    print("\nfirst use, yolov4: " + "; ".join(medians_ms(times)) + "\n" + "\n".join(lines))


@pytest.mark.benchmark(group="steady-state-yolov4")
def test_every_operation_steady_state(benchmark: pytest.FixtureDef,
                                      yolov4: tuple[Path, Path]) -> None:
    import numpy as np
    from test_bench_fuse import numpy_fuse_from_file

    import yolo_io

    weights, cfg = yolov4
    net = yolo_io.load(weights, cfg)
    operations = {
        "np.fromfile": lambda: np.fromfile(weights, dtype=np.float32),
        "np.memmap": lambda: np.memmap(weights, dtype=np.float32, mode="r"),
        "yolo_io.load (lazy)": lambda: yolo_io.load(weights, cfg),
        "read every array (np.array of each view)":
            lambda: [np.array(a) for layer in net for a in layer.params.values()],
        "layer.fused() of every layer, OIHW":
            lambda: [layer.fused() for layer in net if layer.fusion],
        "layer.fused(layout='HWIO') of every layer":
            lambda: [layer.fused("HWIO") for layer in net if layer.fusion],
        "fused_all OIHW, 1 thread": lambda: net.fused_all("OIHW", threads=1),
        "fused_all OIHW, 2 threads": lambda: net.fused_all("OIHW", threads=2),
        "fused_all OIHW, 2 threads, float16":
            lambda: net.fused_all("OIHW", threads=2, dtype="float16"),
        "state_dict (unfused)": lambda: net.state_dict(),
        "peers' way: np.fromfile, then slice, reshape and fuse per layer":
            lambda: numpy_fuse_from_file(net, weights),
    }
    times = benchmark.pedantic(interleaved_times, args=(operations,),
                               kwargs={"rounds": 1 if benchmark.disabled else 7}, rounds=1,
                               iterations=1)
    if benchmark.disabled:
        return
    lines = []
    for name, (_, _, baseline) in OPERATIONS.items():
        if baseline is None or name not in operations:
            continue
        ratio = record(benchmark, f"{name}, yolov4", "steady state: one process, file mapped "
                       "and paged in, each result dropped", times, name, baseline)
        lines.append(f"{name}: {ratio:.2f}x {baseline}")
    print("\nsteady state, yolov4: " + "; ".join(medians_ms(times)) + "\n" + "\n".join(lines))

"""yolo_io.torch.load_into() of yolov4 (258 MB) into darknet2any's model,
first use in a fresh process.

Regime: every sample is a new process that imports torch, darknet2any and
yolo_io and builds darknet2any's ``Darknet("yolov4.cfg")`` (none of that is
timed), then times loading the weights file into that model, keeping it:

* ours: ``yolo_io.load()`` (a new mapping) + ``yolo_io.torch.load_into()``
  (pairing by structure, every shape checked, the parameters read straight
  from the file into the model's tensors by the core, two threads);
* baseline: darknet2any's own ``model.load_weights()`` of the same file (an
  eager ``np.fromfile`` and a ``copy_`` per tensor), in a fresh process of
  its own in the same interleaved round.

Both are eager (every value in the model's memory at the end). The weights
file is in the page cache, as right after a download, in two places, each a
run of its own:

* ``disk``: a file of the pytest temporary folder (the local disk; its page
  cache holds large folios on current Linux file systems such as ext4);
* ``tmpfs``: /dev/shm (where it has room), whose page cache is 4 KiB pages:
  the kernel's copy out of it costs about twice as much per byte (a C
  program's two-thread ``pread`` of yolov4: ~21 ms on tmpfs, ~13 ms on ext4,
  on the 2-core machine of the issue), and that copy is most of load_into.

``os.sync()`` (untimed) before each sample. The figure is the median over
rounds of the paired ratio load_into / load_weights.

Target (issue 12): at most 0.4x, recorded in the report's targets table, not
asserted: at the target, not reliably below it. Paired medians of 0.38-0.44x
(disk) and 0.39-0.43x (tmpfs) over 11 rounds in seven runs. Most of load_into
is the kernel's copy of 258 MB out of the page cache into the model's tensors
(two threads of preadv: ~12.5 ms on ext4, ~21 ms on tmpfs, as in a C program
doing only that), which alone is 0.28x (disk) and 0.34x (tmpfs) of
load_weights; pairing, checks and yolo_io.load() add ~4.5 ms. Copying from the
mapping with streaming stores saved ~1 ms, at the price of a SIGBUS instead of
a FormatError if the file shrinks during the copy, and was not taken. Those
figures predate the data-flow check as the default (issue 22): its trace on
the meta device costs ~1 s in a fresh process (PyTorch imports torch._dynamo
for the meta kernels), far over the target.

    python -m pytest benchmarks/test_bench_load_into.py --benchmark-only -s
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import first_use_times, medians_ms, record, record_target

pytest.importorskip("torch")
pytest.importorskip("darknet2any.tool.darknet2pytorch",
                    reason="darknet2any is not installed (pip install --no-deps darknet2any)")

ROUNDS = 11

SETUP = """
import contextlib, io, sys, time, warnings
import torch
import yolo_io, yolo_io.torch
from darknet2any.tool.darknet2pytorch import Darknet
warnings.simplefilter("ignore")
with contextlib.redirect_stdout(io.StringIO()):
    model = Darknet(sys.argv[2])
"""
LOAD_INTO = SETUP + """
t = time.perf_counter()
net = yolo_io.load(sys.argv[1], sys.argv[2])
yolo_io.torch.load_into(model, net)
print(time.perf_counter() - t)
"""
LOAD_WEIGHTS = SETUP + """
t = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    model.load_weights(sys.argv[1])
print(time.perf_counter() - t)
"""
PROGRAMS = {"load_into": LOAD_INTO, "load_weights": LOAD_WEIGHTS}


@pytest.mark.benchmark(group="load_into-yolov4")
@pytest.mark.parametrize("place", ["disk", "tmpfs"])
def test_load_into_darknet2any_yolov4_first_use(benchmark: pytest.FixtureDef,
                                                yolov4: tuple[Path, Path],
                                                tmp_path: Path, place: str) -> None:
    weights, cfg = yolov4
    times = first_use_times(benchmark, PROGRAMS, weights, cfg, tmp_path, suffix=".unused",
                            rounds=ROUNDS, folder=tmp_path if place == "disk" else None,
                            before=lambda source, _: source.read_bytes())
    if times is None:
        return
    ratio = record(benchmark, "load + load_into of yolov4 into darknet2any's model",
                   f"first use: fresh process, model built, file in the page cache ({place})",
                   times, "load_into", "load_weights")
    report = "; ".join(medians_ms(times))
    benchmark.extra_info["ratio"] = ratio
    print(f"\nfirst use, yolov4 into darknet2any's model, file on {place}: {report}; "
          f"load_into / load_weights: {ratio:.2f}x")
    record_target(benchmark, f"load + load_into of yolov4 ({place}) / load_weights", ratio, 0.4,
                  why="the data-flow trace costs ~1 s in a fresh process; without it 0.38-0.44x")

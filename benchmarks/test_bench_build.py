"""yolo_io.torch.build of yolov4 against darknet2any, the PyTorch port users
pick (issue 24).

* **Construction, first use in a fresh process.** Every sample is a new
  process that imports torch, darknet2any and yolo_io (untimed), then times
  making a model with yolov4's weights in it, keeping it:
  ours, ``yolo_io.torch.build(yolo_io.load(weights, cfg))``; baseline,
  darknet2any's ``Darknet(cfg)`` then ``model.load_weights(weights)``.
  Rounds interleaved, the paired ratio's median. Target: at most 0.5x.
* **Eval forward, steady state.** Both models built once in this process,
  ``eval()``, ``torch.no_grad()``, a 1x3x416x416 batch, the same threads
  (``torch.get_num_threads()``, 2 on the CI machines); interleaved rounds
  after a warm-up round, the paired ratio's median. Target: at most 1.0x (no
  slower): at parity, 0.89-1.03x over six runs on 2026-12-06, so recorded and
  not asserted.

    python -m pytest benchmarks/test_bench_build.py --benchmark-only -s
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    first_use_times,
    interleaved_times,
    medians_ms,
    paired_ratio,
    record,
    record_target,
)

import yolo_io

torch = pytest.importorskip("torch")
pytest.importorskip("darknet2any.tool.darknet2pytorch",
                    reason="darknet2any is not installed (pip install --no-deps darknet2any)")
import yolo_io.torch

ROUNDS = 9

SETUP = """
import contextlib, io, sys, time, warnings
import torch
import yolo_io, yolo_io.torch
from darknet2any.tool.darknet2pytorch import Darknet
warnings.simplefilter("ignore")
"""
BUILD = SETUP + """
t = time.perf_counter()
model = yolo_io.torch.build(yolo_io.load(sys.argv[1], sys.argv[2]))
print(time.perf_counter() - t)
"""
DARKNET2ANY = SETUP + """
t = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    model = Darknet(sys.argv[2])
    model.load_weights(sys.argv[1])
print(time.perf_counter() - t)
"""


@pytest.mark.benchmark(group="build-yolov4")
def test_build_yolov4_first_use(benchmark: Any, yolov4: tuple[Path, Path],
                                tmp_path: Path) -> None:
    weights, cfg = yolov4
    times = first_use_times(benchmark, {"build": BUILD, "darknet2any": DARKNET2ANY}, weights,
                            cfg, tmp_path, suffix=".unused", rounds=ROUNDS,
                            before=lambda source, _: source.read_bytes())
    if times is None:
        return
    ratio = record(benchmark, "yolov4 as a PyTorch model with its weights",
                   "first use: fresh process, torch imported, file in the page cache",
                   times, "build", "darknet2any")
    print(f"\nfirst use, yolov4 to a PyTorch model: {'; '.join(medians_ms(times))}; "
          f"build / darknet2any: {ratio:.2f}x")
    assert record_target(benchmark, "torch.build of yolov4 / darknet2any Darknet + "
                         "load_weights (first use)", ratio, 0.5)


@pytest.mark.benchmark(group="build-yolov4")
def test_forward_yolov4_steady_state(benchmark: Any, yolov4: tuple[Path, Path]) -> None:
    from darknet2any.tool.darknet2pytorch import Darknet

    weights, cfg = yolov4
    ours = yolo_io.torch.build(yolo_io.load(weights, cfg)).eval()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        theirs = Darknet(str(cfg)).eval()
        theirs.load_weights(str(weights))
    x = torch.rand(1, 3, 416, 416, generator=torch.Generator().manual_seed(0))

    def run(model: Any) -> Any:
        with torch.no_grad():
            return model(x)

    times = benchmark.pedantic(interleaved_times,
                               args=({"ours": lambda: run(ours), "darknet2any": lambda: run(theirs)},
                                     1 if benchmark.disabled else ROUNDS),
                               rounds=1, iterations=1)
    if benchmark.disabled:
        return
    ratio = record(benchmark, "yolov4 eval forward, 1x3x416x416, CPU",
                   f"steady state: models built, warm, {torch.get_num_threads()} threads",
                   times, "ours", "darknet2any")
    print(f"\nsteady state, yolov4 forward: {'; '.join(medians_ms(times))}; "
          f"ours / darknet2any: {ratio:.2f}x (paired {paired_ratio(times, 'ours', 'darknet2any'):.2f})")
    # At parity, not reliably below: 0.89-1.03 over six runs (the convolutions,
    # three quarters of the time, are the same oneDNN calls in both models);
    # recorded, not asserted.
    record_target(benchmark, "torch.build's yolov4 eval forward / darknet2any's", ratio, 1.0,
                  why="at parity: 0.89-1.03x over six runs, the same oneDNN convolutions")

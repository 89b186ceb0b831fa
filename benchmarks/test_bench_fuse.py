"""Fusion throughput on yolov4 (64.4 M floats), against np.fromfile of the same
file and a vectorised NumPy per-layer fuse, measured in the same run.

Targets (issue 3), checked by test_fuse_targets when measuring
(``--benchmark-only``): the bulk OIHW float32 call <= 0.5x np.fromfile, HWIO
<= 0.75x, a Python loop of layer.fused() <= 1.0x, >= 3x faster than NumPy, and
2 threads >= 1.5x faster than 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import median_seconds

import yolo_io


def numpy_fuse_all(net: yolo_io.Network) -> list[tuple[np.ndarray, np.ndarray]]:
    """The obvious vectorised NumPy converter: one layer at a time."""
    out = []
    for layer in net:
        if layer.type != "convolutional":
            continue
        p = layer.params
        w, b = p["weights"], p["biases"]
        if "scales" in p:
            s = p["scales"] / np.sqrt(p["rolling_variance"] + np.float32(1e-5))
            w = w * s[:, None, None, None]
            b = b - p["rolling_mean"] * s
        out.append((w, b))
    return out


def fused_loop(net: yolo_io.Network) -> int:
    return sum(layer.fused()[0].size for layer in net if layer.type == "convolutional")


@pytest.fixture(scope="module")
def net(yolov4: tuple[Path, Path]) -> yolo_io.Network:
    return yolo_io.load(*yolov4)


@pytest.mark.benchmark(group="fuse-yolov4")
@pytest.mark.parametrize(("layout", "threads"), [("OIHW", 2), ("OIHW", 1), ("HWIO", 2), ("HWIO", 1)])
def test_fused_all(benchmark: pytest.FixtureDef, net: yolo_io.Network, layout: str, threads: int) -> None:
    arrays = benchmark.pedantic(net.fused_all, args=(layout,), kwargs={"threads": threads},
                                rounds=7, warmup_rounds=1)
    assert sum(w.size for w, _ in arrays.values()) == 64_296_032


@pytest.mark.benchmark(group="fuse-yolov4")
def test_fused_loop(benchmark: pytest.FixtureDef, net: yolo_io.Network) -> None:
    assert benchmark.pedantic(fused_loop, args=(net,), rounds=7, warmup_rounds=1) == 64_296_032


@pytest.mark.benchmark(group="fuse-yolov4")
def test_numpy_fuse_baseline(benchmark: pytest.FixtureDef, net: yolo_io.Network) -> None:
    out = benchmark.pedantic(numpy_fuse_all, args=(net,), rounds=7, warmup_rounds=1)
    ours = net.fused_all("OIHW")
    for (w, b), layer in zip(out, [layer for layer in net if layer.type == "convolutional"], strict=True):
        np.testing.assert_allclose(w, ours[layer.index][0], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(b, ours[layer.index][1], rtol=1e-5, atol=1e-6)


@pytest.mark.benchmark(group="fuse-yolov4")
def test_fromfile_baseline(benchmark: pytest.FixtureDef, yolov4: tuple[Path, Path]) -> None:
    benchmark.pedantic(np.fromfile, args=(yolov4[0],), kwargs={"dtype": np.float32}, rounds=7,
                       warmup_rounds=1)


@pytest.mark.xfail(reason="issue 3 is open: HWIO, the 2-thread speed-up and the NumPy ratio "
                          "are not yet at their targets (see README)", strict=False)
def test_fuse_targets(benchmark: pytest.FixtureDef, net: yolo_io.Network, yolov4: tuple[Path, Path]) -> None:
    if benchmark.disabled:
        pytest.skip("timings are only taken with --benchmark-only")
    rounds = 7
    base = median_seconds(lambda: np.fromfile(yolov4[0], dtype=np.float32), rounds)
    t = {
        "OIHW x2": median_seconds(lambda: net.fused_all("OIHW", threads=2), rounds),
        "OIHW x1": median_seconds(lambda: net.fused_all("OIHW", threads=1), rounds),
        "HWIO x2": median_seconds(lambda: net.fused_all("HWIO", threads=2), rounds),
        "loop": median_seconds(lambda: fused_loop(net), rounds),
        "numpy": median_seconds(lambda: numpy_fuse_all(net), rounds),
    }
    print(f"\nfromfile {base * 1e3:.1f} ms; " + "; ".join(
        f"{k} {v * 1e3:.1f} ms ({v / base:.2f}x)" for k, v in t.items()))
    benchmark.pedantic(lambda: None, rounds=1)
    assert t["OIHW x2"] <= 0.5 * base
    assert t["HWIO x2"] <= 0.75 * base
    assert t["loop"] <= 1.0 * base
    assert t["numpy"] >= 3 * t["OIHW x2"]
    assert t["OIHW x1"] >= 1.5 * t["OIHW x2"]

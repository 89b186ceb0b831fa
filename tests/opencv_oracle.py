"""OpenCV's darknet importer as an independent oracle, and the photograph the
oracle tests feed: shared by the ONNX and load_into tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import yolo_io

# Every element within ATOL absolute or RTOL relative of OpenCV's.
ATOL, RTOL = 1e-3, 1e-4


def natural_image(c: int, h: int, w: int, batch: int = 1) -> np.ndarray:
    """scikit-image's astronaut (a photograph), resized to the network, RGB in
    [0, 1], NCHW float32: what darknet feeds its network (letterbox off)."""
    data = pytest.importorskip("skimage.data", reason="scikit-image is not installed (test extra)")
    cv2 = pytest.importorskip("cv2", reason="opencv-python-headless<5 is not installed")
    images = [data.astronaut(), data.chelsea(), data.coffee()][:batch]
    out = []
    for image in images:
        resized = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        chw = resized.transpose(2, 0, 1)
        out.append(chw.mean(0, keepdims=True) if c == 1 else chw)
    return np.stack(out)


def close(a: np.ndarray, b: np.ndarray, atol: float = ATOL, rtol: float = RTOL) -> str | None:
    """None if every element is within atol or within rtol of b, else a report."""
    assert a.shape == b.shape, (a.shape, b.shape)
    with np.errstate(invalid="ignore"):  # inf - inf: equal infinities are equal
        err = np.where(a == b, 0.0, np.abs(a.astype(np.float64) - b))
    bad = (err > atol) & (err > rtol * np.abs(b))
    if not bad.any():
        return None
    return f"{bad.sum()} of {bad.size} elements off; max abs error {err.max():.3g}"


def opencv_weights(net: yolo_io.Network, path: Path) -> Path:
    """``net``'s weights for OpenCV: its batch norm divides by sqrt(var + 1e-6)
    where darknet (normalize_cpu, blas.c) divides by sqrt(var + 1e-5); with
    each variance raised by 9e-6, OpenCV computes darknet's function. Without
    this, deep models differ by ~1.5e-4 relative (yolov3: 0.033 on 220)."""
    arrays = {}
    for layer in net:
        params = dict(layer.params)
        if "rolling_variance" in params:
            var = params["rolling_variance"].astype(np.float64)
            params["rolling_variance"] = (var + (1e-5 - 1e-6)).astype(np.float32)
        if params:
            arrays[layer.index] = params
    return yolo_io.save(path, arrays, net.config)


def opencv_heads(cfg: Path, weights: Path, x: np.ndarray) -> list[np.ndarray]:
    """OpenCV's raw head inputs (the layer before each permute) or, for a
    classifier, its final output, for ``weights`` made by opencv_weights()."""
    cv2 = pytest.importorskip("cv2", reason="opencv-python-headless<5 is not installed")
    if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromDarknet"):
        pytest.skip("this OpenCV has no darknet importer (removed in 5.x)")
    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    net.setInput(x)
    names = list(net.getLayerNames())
    heads = [names[i - 1] for i, n in enumerate(names) if n.startswith("permute_")]
    return [np.asarray(o) for o in (net.forward(heads) if heads else [net.forward()])]

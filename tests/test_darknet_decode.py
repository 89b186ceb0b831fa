"""tests/darknet_decode.py (the NumPy decode of darknet's detection heads)
against two independent oracles:

1. The C darknet itself (AlexeyAB 59596d7, CPU build): tests/data/darknet_decode
   holds, for small cfgs of every head kind, the raw head inputs darknet
   computed and every detection its ``get_network_boxes()`` returned with a
   threshold below all values (see the README there). Tolerance: rtol 2e-6,
   atol 1e-7 (measured: at most 5 float32 ulps; NumPy's exp vs glibc's).
2. OpenCV's Darknet importer (``cv2.dnn.readNetFromDarknet``) on corpus cfgs:
   its [yolo]/[region] output rows (cx, cy, w, h, objectness, class scores...)
   against decode_head of the raw head input OpenCV computed.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import CORPUS_REASON, SHARED_CFG
from darknet_decode import HEAD_ATTRS, decode_all, decode_head

import yolo_io
from yolo_io.testing import write_weights

DATA = Path(__file__).parent / "data" / "darknet_decode"
RTOL, ATOL = 2e-6, 1e-7


def heads(cfg: yolo_io.Config) -> list[yolo_io.CfgLayer]:
    return [layer for layer in cfg if isinstance(layer.attrs, HEAD_ATTRS)]


def grid(layer: yolo_io.CfgLayer) -> tuple[int, int, int]:
    """(anchors, rows, columns) of a head."""
    a = layer.attrs
    if isinstance(a, yolo_io.attrs.DetectionAttrs):
        return a.num, a.side, a.side
    _, h, w = layer.input_shape
    return a.num, h, w  # type: ignore[attr-defined]


def cell_major(num: int, cells: int) -> np.ndarray:
    """Our entry index of darknet's/OpenCV's k-th row, which is cell-major:
    row (cell * num + anchor) is our (anchor * cells + cell)."""
    return np.arange(num * cells).reshape(num, cells).T.ravel()


# -- 1. the C darknet ---------------------------------------------------------


def load(name: str) -> dict[str, np.ndarray]:
    with np.load(DATA / f"{name}.npz") as npz:
        return dict(npz)

DARKNET_CASES = {
    "yolo": "[yolo]: scale_x_y 1.1; new_coords=1 with scale_x_y 2; plain",
    "region": "[region]: softmax; no softmax (raw classes); softmax with classfix=-1",
    "gaussian": "[Gaussian_yolo]: center, scale_x_y 1.05; left_top; right_bottom, scale_x_y 1.2",
    "detection": "[detection]: softmax=1 sqrt=1",
    "detection_plain": "[detection]: softmax=0 sqrt=0",
}


@pytest.mark.parametrize("name", sorted(DARKNET_CASES))
def test_matches_darknet(name: str) -> None:
    cfg = yolo_io.parse_cfg(DATA / f"{name}.cfg")
    ref = load(name)
    hs = heads(cfg)
    raws = {layer.index: ref[f"raw_{layer.index}"] for layer in hs}
    boxes, obj, probs = decode_all(raws, cfg)
    # darknet's detections: the heads in layer order, each cell-major.
    order, offset = [], 0
    for layer in hs:
        num, h, w = grid(layer)
        order.append(offset + cell_major(num, h * w))
        offset += num * h * w
    perm = np.concatenate(order)
    dets = ref["dets"]
    assert boxes.shape == (1, offset, 4) and probs.shape == (1, offset, dets.shape[1] - 5)
    assert len(dets) == offset  # nothing dropped by the threshold
    np.testing.assert_allclose(boxes[0, perm], dets[:, :4], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(probs[0, perm], dets[:, 5:], rtol=RTOL, atol=ATOL)
    if name == "region":
        # darknet reports objectness 1 for [region] (network.c
        # custom_get_region_detections); its layer output holds the value, in the
        # flatten()ed (cell, anchor, entry) layout.
        assert (dets[:, 4] == 1).all()
        got = []
        for layer in hs:
            num, h, w = grid(layer)
            per = 5 + layer.attrs.classes  # type: ignore[attr-defined]
            got.append(ref[f"output_{layer.index}"].reshape(h * w, num, per)[:, :, 4].ravel())
        np.testing.assert_allclose(obj[0, perm], np.concatenate(got), rtol=RTOL, atol=ATOL)
    else:
        np.testing.assert_allclose(obj[0, perm], dets[:, 4], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", sorted(DARKNET_CASES))
def test_batch_and_heads(name: str) -> None:
    """Images of a batch decode independently; decode_all is decode_head of
    every head concatenated."""
    cfg = yolo_io.parse_cfg(DATA / f"{name}.cfg")
    ref = load(name)
    _, net_h, net_w = cfg.input_shape
    parts = []
    for layer in heads(cfg):
        one = ref[f"raw_{layer.index}"]
        batch = np.concatenate([one, -0.5 * one[:, :, ::-1]])
        out = decode_head(batch, layer, net_w, net_h)
        first = decode_head(one, layer, net_w, net_h)
        second = decode_head(batch[1:], layer, net_w, net_h)
        num, h, w = grid(layer)
        for got, a, b in zip(out, first, second, strict=True):
            assert got.dtype == np.float32 and got.shape[:2] == (2, num * h * w)
            np.testing.assert_array_equal(got[:1], a)
            np.testing.assert_array_equal(got[1:], b)
        parts.append(first)
    whole = decode_all({layer.index: ref[f"raw_{layer.index}"] for layer in heads(cfg)}, cfg)
    for k in range(3):
        np.testing.assert_array_equal(whole[k], np.concatenate([p[k] for p in parts], axis=1))


def test_rejects_wrong_input() -> None:
    cfg = yolo_io.parse_cfg(DATA / "yolo.cfg")
    head = heads(cfg)[0]
    with pytest.raises(ValueError, match="channels"):
        decode_head(np.zeros((1, 26, 6, 8), np.float32), head, 32, 24)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        decode_head(np.zeros((27, 6, 8), np.float32), head, 32, 24)
    with pytest.raises(TypeError, match="not a detection head"):
        decode_head(np.zeros((1, 27, 24, 32), np.float32), cfg[0], 32, 24)


# -- 2. OpenCV ----------------------------------------------------------------

# (cfg, what it covers). Each runs at 320x192 (non-square, and small).
OPENCV_CFGS = {
    "yolov3-tiny.cfg": "[yolo] x2, scale_x_y 1",
    "yolov4-tiny.cfg": "[yolo] x2, scale_x_y 1.05",
    "yolov7-tiny.cfg": "[yolo] x3, new_coords=1, scale_x_y 2 (logistic convs)",
    "yolov2-tiny.cfg": "[region], softmax",
}
NET_W, NET_H = 320, 192


def opencv_cfg_text(text: str) -> str:
    """The corpus cfg at NET_W x NET_H, with OpenCV's class-score threshold 0.

    OpenCV reads ``thresh`` from [yolo] (default 0.2) and [region] (yolov2-tiny
    says .6) and zeroes every class score ``objectness * p <= thresh``; darknet
    itself ignores ``thresh`` in [yolo] (so yolo_io warns about it).
    """
    text = re.sub(r"^width\s*=.*$", f"width={NET_W}", text, count=1, flags=re.MULTILINE)
    text = re.sub(r"^height\s*=.*$", f"height={NET_H}", text, count=1, flags=re.MULTILINE)
    text = re.sub(r"^thresh\s*=.*$", "", text, flags=re.MULTILINE)
    return re.sub(r"^\[(yolo|region)\][ \t]*$", r"[\1]\nthresh=0", text, flags=re.MULTILINE)


def iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one (cx, cy, w, h) box with each of others."""
    lo = np.maximum(box[:2] - box[2:] / 2, others[:, :2] - others[:, 2:] / 2)
    hi = np.minimum(box[:2] + box[2:] / 2, others[:, :2] + others[:, 2:] / 2)
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    return np.asarray(inter / (box[2] * box[3] + others[:, 2] * others[:, 3] - inter))


def check_region_nms(boxes: np.ndarray, probs: np.ndarray, scores: np.ndarray) -> int:
    """OpenCV's Region layer keeps its default ``nms_threshold`` 0.4 for
    [region] (the importer sets it only for [yolo]): per class, a score is
    zeroed when a higher-scoring kept box overlaps it by IoU > 0.4. Every
    score OpenCV zeroed must be explained so; returns how many were."""
    suppressed = 0
    for i, k in zip(*np.nonzero((scores == 0) & (probs > 0)), strict=True):
        kept = np.nonzero((scores[:, k] >= probs[i, k]) & (scores[:, k] > 0))[0]
        assert (iou(boxes[i], boxes[kept]) > 0.4 - 1e-5).any(), (i, k)
        suppressed += 1
    return suppressed


@pytest.mark.parametrize("name", sorted(OPENCV_CFGS))
def test_matches_opencv(tmp_path: Path, name: str) -> None:
    cv2: Any = pytest.importorskip("cv2", reason="opencv-python-headless<5 is not installed")
    if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromDarknet"):
        pytest.skip("this OpenCV has no Darknet importer (removed in 5.x)")
    if not (SHARED_CFG / name).is_file():
        pytest.skip(CORPUS_REASON)
    path = tmp_path / name
    path.write_text(opencv_cfg_text((SHARED_CFG / name).read_text()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", yolo_io.CfgWarning)  # thresh= in [yolo]
        cfg = yolo_io.parse_cfg(path)
    assert cfg.input_shape[1:] == (NET_H, NET_W)
    weights = write_weights(tmp_path / "w.weights", cfg, realistic=True, seed=5)
    net = cv2.dnn.readNetFromDarknet(str(path), str(weights))
    names = list(net.getLayerNames())
    # OpenCV turns each head into Permute + Region right after the layer feeding
    # it (the conv, or its activation layer): its position, not its name, which
    # drifts from darknet's indices.
    regions = [p for p, n in enumerate(names) if net.getLayer(n).type == "Region"]
    hs = heads(cfg)
    assert len(regions) == len(hs)
    assert all(net.getLayer(names[p - 1]).type == "Permute" for p in regions)
    blob = np.random.default_rng(0).random((1, *cfg.input_shape), dtype=np.float32)
    net.setInput(blob)
    outs = net.forward([n for p in regions for n in (names[p - 2], names[p])])
    for k, layer in enumerate(hs):
        raw, rows = outs[2 * k], outs[2 * k + 1]
        boxes, obj, probs = decode_head(raw, layer, NET_W, NET_H)
        num, h, w = grid(layer)
        assert raw.shape == (1, *layer.input_shape)
        # OpenCV's rows are cell-major: row (y*W + x)*A + a.
        assert rows.shape == (num * h * w, 5 + probs.shape[-1])
        perm = cell_major(num, h * w)
        boxes, obj, probs = boxes[0, perm], obj[0, perm], probs[0, perm]
        np.testing.assert_allclose(rows[:, :4], boxes, rtol=RTOL, atol=3e-7)
        np.testing.assert_allclose(rows[:, 4], obj, rtol=RTOL, atol=ATOL)
        scores = rows[:, 5:]
        if isinstance(layer.attrs, yolo_io.attrs.RegionAttrs):
            kept = scores > 0
            np.testing.assert_allclose(scores[kept], probs[kept], rtol=RTOL, atol=ATOL)
            assert check_region_nms(boxes, probs, scores) > 0
        else:  # no NMS for [yolo]; thresh=0 keeps every (positive) score
            np.testing.assert_allclose(scores, probs, rtol=RTOL, atol=ATOL)

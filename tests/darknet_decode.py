"""NumPy decode of darknet's detection heads, the reference an ONNX export is
tested against.

Written from AlexeyAB/darknet at commit 59596d7880f6504768df41d6daa586f5cb2b932f
(the [A] of the project's darknet-format spec); "file.c:N" below is a line of ``src/``
there. Each head's *raw* input is the output of the layer before it (the conv
feeding the head), as float32 (N, C, H, W); the result is what darknet's
``get_network_boxes()`` produces for it with ``thresh`` below every value
(nothing dropped, nothing zeroed), image size = network size and
``letterbox=0`` (so ``correct_yolo_boxes()`` is the identity), in this order:

* ``boxes`` (N, A*H*W, 4): (cx, cy, w, h) relative to the network input (0..1);
* ``objectness`` (N, A*H*W);
* ``class_probs`` (N, A*H*W, C): darknet's per-class ``prob`` before its
  ``prob > thresh ? prob : 0``.

Entry ``a*H*W + y*W + x`` is anchor ``a`` (the head's ``mask`` order) at cell
(x, y): anchor-major. darknet's own detection list is cell-major, (y, x, a).

Float rounding follows darknet: values it stores in a ``float`` are rounded to
float32 at that point, and expressions C evaluates in double (``exp()``,
``pow()``, ``/ 4.0``) are computed in float64 here. The results match the C
build to a few float32 ulps (see tests/test_darknet_decode.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

import yolo_io

__all__ = ["HEAD_ATTRS", "decode_all", "decode_head"]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Decoded = tuple[F32, F32, F32]

# The attrs records of the layers decode_head() understands.
HEAD_ATTRS = (yolo_io.attrs.YoloAttrs, yolo_io.attrs.RegionAttrs, yolo_io.attrs.DetectionAttrs)


def _f32(x: Any) -> F32:
    return np.asarray(x, dtype=np.float32)


def _logistic(x: F32) -> F32:
    """activations.h:61 ``logistic_activate``: ``1.f/(1.f + expf(-x))``, all float."""
    one = np.float32(1)
    with np.errstate(over="ignore"):
        return _f32(one / (one + np.exp(-x)))


def _exp(x: F32) -> F64:
    """C's ``exp()`` of a float argument: evaluated in double."""
    with np.errstate(over="ignore"):
        return np.exp(x.astype(np.float64))


def _softmax(x: F32, axis: int) -> F32:
    """blas.c:454 ``softmax`` (temp = 1): ``e = exp(x - max)`` (double exp
    stored in a float), a float running sum, then ``e / sum``."""
    largest = x.max(axis=axis, keepdims=True)
    e = _f32(_exp(_f32(x - largest)))
    total = np.zeros_like(largest)
    for k in range(x.shape[axis]):  # darknet sums in order, in float
        total = _f32(total + np.take(e, [k], axis=axis))
    return _f32(e / total)


def _scale_xy(s: F32, scale_x_y: float) -> F32:
    """blas.c:331 ``scal_add_cpu(N, ALPHA=scale_x_y, BETA=-0.5*(scale_x_y - 1))``:
    ``X = X*ALPHA + BETA`` in float; BETA is computed in double from the float
    ``scale_x_y`` and passed as a float."""
    alpha = np.float32(scale_x_y)
    beta = np.float32(-0.5 * (float(alpha) - 1.0))
    return _f32(_f32(s * alpha) + beta)


def _grid(h: int, w: int) -> tuple[F32, F32]:
    """Cell column i and row j of every position, as float (C's ``int + float``)."""
    j, i = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    return i, j


def _split(raw: F32, per_anchor: int, num: int, what: str) -> F32:
    """(N, A*K, H, W) -> (N, A, K, H, W): darknet's planar head layout, anchor
    a's entry k at channel ``a*K + k`` (yolo_layer.c:369 ``entry_index``)."""
    if raw.ndim != 4:
        raise ValueError(f"{what}: raw must be (N, C, H, W), got shape {raw.shape}")
    n, c, h, w = raw.shape
    if c != num * per_anchor:
        raise ValueError(f"{what}: raw has {c} channels, the head needs {num} * {per_anchor}")
    return raw.reshape(n, num, per_anchor, h, w)


def _flat(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """(N, A, H, W[, K]) -> (N, A*H*W[, K]) in anchor, row, column order."""
    return a.reshape(a.shape[0], a.shape[1] * a.shape[2] * a.shape[3], *a.shape[4:])


def _result(x: F32, y: F32, w: F32, h: F32, obj: F32, probs: F32) -> Decoded:
    """Per-anchor planes (N, A, H, W) and probs (N, A, C, H, W) -> the API's arrays."""
    boxes = np.stack([x, y, w, h], axis=-1)
    return _f32(_flat(boxes)), _f32(_flat(obj)), _f32(_flat(np.moveaxis(probs, 2, -1)))


def _anchors(pairs: Iterable[tuple[float, float]]) -> tuple[F32, F32]:
    """darknet's ``biases`` are float: (A,) widths and heights as (1, A, 1, 1)."""
    arr = _f32(list(pairs)).reshape(-1, 2)
    return arr[:, 0].reshape(1, -1, 1, 1), arr[:, 1].reshape(1, -1, 1, 1)


def _decode_yolo(raw: F32, a: yolo_io.attrs.YoloAttrs, net_w: int, net_h: int) -> Decoded:
    t = _split(raw, 5 + a.classes, a.num, "[yolo]")
    lh, lw = t.shape[-2:]
    i, j = _grid(lh, lw)
    aw, ah = _anchors(a.anchors)  # the mask's pairs, pixels (yolo_layer.c:1106 biases, l.mask[n])
    if a.new_coords:
        # yolo_layer.c:672-674: no activation at all (the conv before is logistic).
        sx, sy = t[:, :, 0], t[:, :, 1]
        obj, cls = t[:, :, 4], t[:, :, 5:]
    else:
        # yolo_layer.c:676 logistic on x, y; :678 logistic on objectness and classes.
        sx, sy = _logistic(t[:, :, 0]), _logistic(t[:, :, 1])
        obj, cls = _logistic(t[:, :, 4]), _logistic(t[:, :, 5:])
    # yolo_layer.c:680 (both branches): x, y = x*scale_x_y - 0.5*(scale_x_y - 1).
    sx, sy = _scale_xy(sx, a.scale_x_y), _scale_xy(sy, a.scale_x_y)
    # yolo_layer.c:140-141 / 146-147: b.x = (i + x) / lw, b.y = (j + y) / lh (float).
    bx = _f32(_f32(i + sx) / np.float32(lw))
    by = _f32(_f32(j + sy) / np.float32(lh))
    tw, th = t[:, :, 2], t[:, :, 3]
    if a.new_coords:
        # yolo_layer.c:142-143: b.w = tw*tw*4*anchor_w / net_w, all float.
        bw = _f32(_f32(_f32(_f32(tw * tw) * np.float32(4)) * aw) / np.float32(net_w))
        bh = _f32(_f32(_f32(_f32(th * th) * np.float32(4)) * ah) / np.float32(net_h))
    else:
        # yolo_layer.c:148-149: b.w = exp(tw) * anchor_w / net_w (double, stored float).
        bw = _f32(_exp(tw) * aw.astype(np.float64) / net_w)
        bh = _f32(_exp(th) * ah.astype(np.float64) / net_h)
    # yolo_layer.c:1115: prob = objectness * class (float); no other factor.
    probs = _f32(obj[:, :, None] * cls)
    return _result(bx, by, bw, bh, obj, probs)


def _decode_gaussian(raw: F32, a: yolo_io.attrs.GaussianYoloAttrs, net_w: int, net_h: int) -> Decoded:
    # gaussian_yolo_layer.c:405-410 entry_gaussian_index: 9 + classes entries per
    # anchor: 0 x, 1 sigma_x, 2 y, 3 sigma_y, 4 w, 5 sigma_w, 6 h, 7 sigma_h,
    # 8 objectness, 9.. classes.
    t = _split(raw, 9 + a.classes, a.num, "[Gaussian_yolo]")
    lh, lw = t.shape[-2:]
    i, j = _grid(lh, lw)
    aw, ah = _anchors(a.anchors)
    act = t.copy()
    # gaussian_yolo_layer.c:421-436: logistic on entries 0-3, 5, 7 and 8.. (w, h
    # raw); scale_x_y on the means x (entry 0, :423) and y (entry 2, :427) only.
    for k in (0, 1, 2, 3, 5, 7):
        act[:, :, k] = _logistic(t[:, :, k])
    act[:, :, 8:] = _logistic(t[:, :, 8:])
    act[:, :, 0] = _scale_xy(act[:, :, 0], a.scale_x_y)
    act[:, :, 2] = _scale_xy(act[:, :, 2], a.scale_x_y)
    # gaussian_yolo_layer.c:138-141 get_gaussian_yolo_box.
    bw = _f32(_exp(t[:, :, 4]) * aw.astype(np.float64) / net_w)
    bh = _f32(_exp(t[:, :, 6]) * ah.astype(np.float64) / net_h)
    bx = _f32(_f32(i + act[:, :, 0]) / np.float32(lw))
    by = _f32(_f32(j + act[:, :, 2]) / np.float32(lh))
    # :145-152: yolo_point moves (x, y) from a corner to the centre.
    if a.yolo_point == "left_top":
        bx, by = _f32(bx + _f32(bw / np.float32(2))), _f32(by + _f32(bh / np.float32(2)))
    elif a.yolo_point == "right_bottom":
        bx, by = _f32(bx - _f32(bw / np.float32(2))), _f32(by - _f32(bh / np.float32(2)))
    obj = act[:, :, 8]
    # :821-822: uc_aver = (sigma_x + sigma_y + sigma_w + sigma_h) / 4.0 (float sum,
    # double divide, stored float); prob = objectness*class * (1.0 - uc_aver).
    s = act[:, :, 1]
    for k in (3, 5, 7):
        s = _f32(s + act[:, :, k])
    uc_aver = _f32(s.astype(np.float64) / 4.0)
    oc = _f32(obj[:, :, None] * act[:, :, 9:])
    probs = _f32(oc.astype(np.float64) * (1.0 - uc_aver.astype(np.float64))[:, :, None])
    return _result(bx, by, bw, bh, obj, probs)


def _decode_region(raw: F32, a: yolo_io.attrs.RegionAttrs, options: dict[str, str]) -> Decoded:
    if a.coords != 4:
        # region_layer.c:387-397 get_region_boxes strides by classes + 5: any
        # other coords would be read misaligned by darknet itself.
        raise NotImplementedError("[region] with coords != 4")
    if options.get("tree"):
        raise NotImplementedError("[region] with a softmax tree (YOLO9000)")
    t = _split(raw, 5 + a.classes, a.num, "[region]")
    # region_layer.c:193 flatten()s the planar input to (cell, anchor, entry); the
    # values are the same as t[:, a, entry, y, x], read here without moving them.
    lh, lw = t.shape[-2:]
    i, j = _grid(lh, lw)
    aw, ah = _anchors(a.anchors)  # grid cells
    # region_layer.c:89-90 get_region_box: b.x = (i + logistic(tx)) / lw.
    bx = _f32(_f32(i + _logistic(t[:, :, 0])) / np.float32(lw))
    by = _f32(_f32(j + _logistic(t[:, :, 1])) / np.float32(lh))
    # region_layer.c:94-95 (DOABS = 1, :12): b.w = exp(tw) * anchor_w / lw, in grid
    # units over the grid (double, stored float); get_region_boxes (:392-395)
    # then multiplies by w = h = 1 (network.c:898).
    bw = _f32(_exp(t[:, :, 2]) * aw.astype(np.float64) / lw)
    bh = _f32(_exp(t[:, :, 3]) * ah.astype(np.float64) / lh)
    # region_layer.c:198: logistic on objectness (darknet's detection list then
    # reports objectness = 1, network.c:902; this is the layer's value).
    obj = _logistic(t[:, :, 4])
    cls = t[:, :, 5:]
    if a.softmax:
        cls = _softmax(cls, axis=2)  # region_layer.c:215
    # else: AlexeyAB leaves the class scores raw (no logistic, unlike pjreddie).
    scale = obj
    if int(_atoi(options.get("classfix", "0"))) == -1:
        scale = np.where(obj < 0.5, np.float32(0), obj).astype(np.float32)  # region_layer.c:389
    probs = _f32(scale[:, :, None] * cls)  # region_layer.c:420
    return _result(bx, by, bw, bh, obj, probs)


def _decode_detection(raw: F32, a: yolo_io.attrs.DetectionAttrs) -> Decoded:
    """YOLOv1: a flat vector of side*side*classes class scores, then
    side*side*num confidences, then side*side*num*4 coordinates, all cell-major
    (detection_layer.c:298-300)."""
    if a.coords != 4:
        raise NotImplementedError("[detection] with coords != 4 (darknet strides boxes by 4)")
    n = raw.shape[0]
    flat = raw.reshape(n, -1)
    s2, num, c = a.side * a.side, a.num, a.classes
    if flat.shape[1] != s2 * ((1 + a.coords) * num + c):
        raise ValueError(f"[detection]: raw has {flat.shape[1]} values, the head needs "
                         f"{s2 * ((1 + a.coords) * num + c)}")
    cls = flat[:, : s2 * c].reshape(n, s2, c)
    if a.softmax:
        cls = _softmax(cls, axis=2)  # detection_layer.c:61, per cell
    conf = flat[:, s2 * c : s2 * (c + num)].reshape(n, s2, num)  # no activation
    box = flat[:, s2 * (c + num) :].reshape(n, s2, num, 4)
    col = _f32(np.arange(s2) % a.side)[None, :, None]
    row = _f32(np.arange(s2) // a.side)[None, :, None]
    side = np.float32(a.side)
    # detection_layer.c:302-305 with w = h = 1: x = (px + col) / side,
    # w = pow(pw, sqrt ? 2 : 1) (double, stored float).
    bx = _f32(_f32(box[..., 0] + col) / side)
    by = _f32(_f32(box[..., 1] + row) / side)
    power = 2 if a.sqrt else 1
    bw = _f32(box[..., 2].astype(np.float64) ** power)
    bh = _f32(box[..., 3].astype(np.float64) ** power)
    probs = _f32(conf[:, :, :, None] * cls[:, :, None, :])  # :310, scale * class
    # (N, cell, anchor[, K]) -> anchor-major (N, anchor, cell[, K]) like the others.
    boxes = np.stack([bx, by, bw, bh], axis=-1).transpose(0, 2, 1, 3).reshape(n, -1, 4)
    return _f32(boxes), _f32(conf.transpose(0, 2, 1).reshape(n, -1)), _f32(
        probs.transpose(0, 2, 1, 3).reshape(n, -1, c))


def _atoi(text: str) -> int:
    """darknet reads ints with atoi: leading digits, 0 if none."""
    digits = ""
    for ch in text.strip():
        if ch.isdigit() or (not digits and ch in "+-"):
            digits += ch
        else:
            break
    try:
        return int(digits)
    except ValueError:
        return 0


def decode_head(raw: np.ndarray, layer: yolo_io.CfgLayer | yolo_io.Layer, net_w: int, net_h: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode one head from its raw input.

    Args:
        raw: float32 (N, A*(5+C), H, W) for [yolo]/[region], (N, A*(9+C), H, W)
            for [Gaussian_yolo], (N, side*side*(5*A+C)) (any shape with that
            many values per image) for [detection].
        layer: the head (its ``attrs`` say how to decode).
        net_w, net_h: the network input size ([yolo]/[Gaussian_yolo] divide
            the anchors, in pixels, by it).

    Returns:
        boxes (N, A*H*W, 4) as (cx, cy, w, h) relative to the network input,
        objectness (N, A*H*W) and class_probs (N, A*H*W, C), entry
        ``a*H*W + y*W + x``. class_probs is darknet's ``prob`` before
        thresholding: [yolo] objectness * sigmoid(class) (new_coords: the raw
        values' product); [Gaussian_yolo] that times (1 - mean of the four
        sigmas); [region] objectness * softmax(classes) (raw classes without
        ``softmax``); [detection] confidence * class (softmax if set).
    """
    a = layer.attrs
    x = _f32(raw)
    if isinstance(a, yolo_io.attrs.GaussianYoloAttrs):
        return _decode_gaussian(x, a, net_w, net_h)
    if isinstance(a, yolo_io.attrs.YoloAttrs):
        return _decode_yolo(x, a, net_w, net_h)
    if isinstance(a, yolo_io.attrs.RegionAttrs):
        return _decode_region(x, a, dict(getattr(layer, "options", {})))
    if isinstance(a, yolo_io.attrs.DetectionAttrs):
        return _decode_detection(x, a)
    raise TypeError(f"layer {layer.index} ({layer.type}) is not a detection head")


def decode_all(raws: dict[int, np.ndarray], net: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every head of ``net`` (a Network or Config) in layer order, its raw input
    ``raws[layer.index]``, concatenated along axis 1. The network input size is
    ``net.input_shape`` (C, H, W)."""
    _, net_h, net_w = net.input_shape
    parts = [decode_head(raws[layer.index], layer, net_w, net_h)
             for layer in net if isinstance(layer.attrs, HEAD_ATTRS)]
    if not parts:
        raise ValueError("the network has no detection head")
    boxes, obj, probs = zip(*parts, strict=True)
    classes = {p.shape[-1] for p in probs}
    if len(classes) != 1:
        raise ValueError(f"heads differ in class count: {sorted(classes)}")
    return np.concatenate(boxes, axis=1), np.concatenate(obj, axis=1), np.concatenate(probs, axis=1)

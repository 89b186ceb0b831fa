"""A NumPy reference forward pass of a darknet network: the oracle for exporters.

``forward(net, x)`` computes what AlexeyAB darknet's CPU inference path
(``network_predict()`` after ``parse_network_cfg_custom()`` + ``load_weights()``,
no ``fuse_conv_batchnorm()``) leaves in every layer's ``l.output``, written from
darknet's C code (``src/*_layer.c``, ``blas.c``, ``im2col.c``, ``activations.c``,
``gemm.c``) but not copied from it. It reads the layers' facts from yolo_io
(``layer.attrs``, ``output_shape``, ``params``), so it also checks those against
darknet when the test compares it with darknet's own outputs
(``tests/test_darknet_forward.py``).

Arithmetic follows darknet's float32 steps where they matter for the last bits
(batch norm, activations, sums in darknet's order); convolution and connected
dot products are accumulated in float64 and rounded once, which is closer to
the exact result than darknet's float32 GEMM (the difference is that GEMM's
rounding, ~1e-6 relative).

Darknet semantics that are easy to get wrong, as implemented here:

* Batch norm (conv, connected, ``[batchnorm]``): ``(x - mean) / sqrt(var + 1e-5f)``
  (``var + 1e-5`` in float32, the sqrt and the division in double), then
  ``* scales``, then ``+ biases``. pjreddie's CPU formula ``sqrt(var) + 1e-6`` is
  not AlexeyAB's.
* Max pooling: windows start at ``-(padding // 2)``; out-of-image taps are
  ``-FLT_MAX`` (a window entirely outside gives ``-FLT_MAX``, not -inf);
  ``[local_avgpool]`` averages the in-image taps only.
* ``[route]``: input i contributes the flat slice
  ``[group_id * n_i / groups, (group_id + 1) * n_i / groups)`` of its C*H*W buffer.
* ``[shortcut]``: output shape = previous layer's; each ``from`` layer adds its
  flat element ``j`` only where ``j < its own C*H*W`` (channel counts may differ).
  Weighted forms per ``shortcut_multilayer_cpu`` (the CPU uses ``relu`` weight
  normalisation; ``fuse_conv_batchnorm`` and the GPU use ``max(w, 0.001)``).
* ``[upsample]`` with a negative stride sums (times ``scale``) each block.
* ``[reorg]`` (old) and ``[reorg3d]`` both call ``reorg_cpu`` on flat buffers,
  with different dimensions; emulated index for index.
* ``relu6``: darknet's CPU ``activate()`` has no RELU6 case and outputs 0; the
  GPU kernel (and hank-ai darknet) compute ``min(max(x, 0), 6)``, which is what
  this module returns. Swish, mish, hard_mish and normalize_channels* exist only
  where a layer calls them explicitly (conv: all; shortcut: swish, mish);
  elsewhere darknet (CPU and GPU) outputs 0, and this module raises
  NotImplementedError instead of imitating that.
* Pass-through layers: ``[dropout]``, ``[empty]`` and, at inference,
  ``[cost]`` and ``[contrastive]`` return their input (darknet's CPU never
  writes the last two's buffers; its GPU copies the input for contrastive).
* ``fuse_conv_batchnorm()`` (what ``darknet detector test`` runs) folds batch
  norms (same result within ~1e-6) but also rewrites weighted shortcuts with
  relu normalisation using ``max(w, 0.001)``: a different result where a
  weight is below 0.001. This module follows the unfused CPU path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

import yolo_io

__all__ = ["FLAT_SOURCES", "HEADS", "forward"]

F32 = np.float32
F64 = np.float64
A32 = npt.NDArray[np.float32]
FLT_MAX = F32(np.finfo(np.float32).max)

# Output the input unchanged (the raw conv output: no activation or decoding).
HEADS = frozenset({"yolo", "Gaussian_yolo", "region", "detection"})
# Layers whose output is a flat vector (returned as (N, outputs)) ...
FLAT_SOURCES = frozenset({"connected"})
# ... and pass-through layers that are flat when their input is (yolo_io's
# "flat" kinds; avgpool's (C, 1, 1) stays an image).
_FLAT_IF_INPUT = frozenset({"dropout", "softmax", "cost", "activation", "contrastive", "empty",
                            "detection"})
_IDENTITY = frozenset({"dropout", "empty", "cost", "contrastive"})


class _Unsupported(NotImplementedError):
    pass


def forward(net: yolo_io.Network, x: np.ndarray, *, upto: int | None = None) -> dict[int, np.ndarray]:
    """x: float32 (N, C, H, W), RGB in [0,1] (as darknet feeds it). Returns {layer index: output}
    for every layer 0..upto-1 (all layers by default): NCHW float32 arrays for layers with a 3-d
    output_shape (C,H,W), (N, outputs) for flat ones (connected, softmax after a flat layer, etc.).
    Head layers ([yolo], [Gaussian_yolo], [region], [detection]) return their INPUT unchanged (the
    raw conv output, no activation/decoding).

    Raises:
        NotImplementedError: a layer type or option this reference does not
            compute (recurrent layers, xnor/binary or antialiased convs, spatial
            or tree softmax, ...) or where darknet's CPU result is degenerate;
            the message names the layer index and type.
        ValueError: ``x`` does not match the network input.
    """
    x = np.asarray(x)
    if x.dtype != np.float32:
        raise ValueError(f"x must be float32, not {x.dtype}")
    want = tuple(net.input_shape)
    if x.ndim != 4 or tuple(x.shape[1:]) != want:
        raise ValueError(f"x must be (N, {want[0]}, {want[1]}, {want[2]}), got {x.shape}")
    stop = len(net) if upto is None else upto
    if not 0 <= stop <= len(net):
        raise ValueError(f"upto must be in 0..{len(net)}, got {upto}")
    n = x.shape[0]
    outs: list[A32] = []  # every output as (N, C, H, W); flat ones as (N, outputs, 1, 1)
    flat: list[bool] = []
    result: dict[int, np.ndarray] = {}
    for layer in net[:stop]:
        i = layer.index
        prev = x if i == 0 else outs[i - 1]
        prev_flat = False if i == 0 else flat[i - 1]
        kind = layer.type
        fn = _LAYERS.get(kind)
        if kind in HEADS or kind in _IDENTITY:
            y = prev
        elif fn is None:
            raise NotImplementedError(f"layer {i} ({kind}): not supported by the reference forward pass")
        else:
            try:
                y = fn(layer, prev, outs)
            except _Unsupported as err:
                raise NotImplementedError(f"layer {i} ({kind}): {err}") from None
        is_flat = kind in FLAT_SOURCES or (kind in _FLAT_IF_INPUT and prev_flat)
        shape = tuple(layer.output_shape)
        if kind not in HEADS and kind not in _IDENTITY:
            if y.size != n * int(np.prod(shape)):
                raise AssertionError(f"layer {i} ({kind}): computed {y.shape}, yolo_io says {shape}")
            y = np.ascontiguousarray(y, dtype=F32).reshape((n, *shape))
        outs.append(y)
        flat.append(is_flat)
        result[i] = y.reshape(n, -1) if is_flat else y
    return result


# --------------------------------------------------------------------------
# activations ([A] activations.h / activations.c, gemm.c:activate_array_cpu_custom)

def _f(v: float) -> np.float32:
    return F32(v)


def _logistic(x: A32) -> A32:
    return F32(1) / (F32(1) + np.exp(-x))


def _tanh_dn(x: A32) -> A32:
    # darknet's tanh_activate: 2 / (1 + expf(-2x)) - 1 (float32)
    return F32(2) / (F32(1) + np.exp(F32(-2) * x)) - F32(1)


def _softplus(x: A32, threshold: float) -> A32:
    t = F32(threshold)
    with np.errstate(over="ignore"):
        ex = np.exp(x)
        mid = np.log(ex + F32(1))
    return np.where(x > t, x, np.where(x < -t, ex, mid)).astype(F32)


def _stair(x: A32) -> A32:
    n = np.floor(x)
    half = np.floor(x / F32(2))
    even = np.fmod(n, 2) == 0  # C's int n % 2 (negative odd n gives -1)
    return np.where(even, half, (x - n) + half).astype(F32)


def _gelu(x: A32) -> A32:
    # 0.5*x*(1 + tanhf(0.797885*x + 0.035677*powf(x, 3))): double constants
    xd = x.astype(F64)
    arg = (0.797885 * xd + 0.035677 * (x * x * x).astype(F64)).astype(F32)
    return (0.5 * xd * (1 + np.tanh(arg).astype(F64))).astype(F32)


def _where(cond: npt.NDArray[np.bool_], a: A32, b: A32) -> A32:
    return np.where(cond, a, b).astype(F32)


# activate(): the generic per-element switch (pointwise, float32)
_POINTWISE: dict[str, Callable[[A32], A32]] = {
    "linear": lambda x: x,
    "logistic": _logistic,
    "loggy": lambda x: F32(2) / (F32(1) + np.exp(-x)) - F32(1),
    "relu": lambda x: _where(x > 0, x, np.zeros_like(x)),
    # not in the CPU activate() (returns 0 there): the GPU kernel's definition
    "relu6": lambda x: np.minimum(np.maximum(x, F32(0)), F32(6)),
    "elu": lambda x: _where(x >= 0, x, np.expm1(np.minimum(x, F32(0))).astype(F32)),
    "selu": lambda x: _where(x >= 0, _f(1.0507) * x,
                             _f(1.0507) * _f(1.6732) * (np.exp(np.minimum(x, F32(0))) - F32(1))),
    "gelu": _gelu,
    "relie": lambda x: _where(x > 0, x, _f(0.01) * x),
    "ramp": lambda x: _where(x > 0, x, np.zeros_like(x)) + _f(0.1) * x,
    "leaky": lambda x: _where(x > 0, x, _f(0.1) * x),
    "revleaky": lambda x: _where(x > 0, x, _f(0.1) * x),
    "tanh": _tanh_dn,
    "plse": lambda x: _where(x < -4, _f(0.01) * (x + F32(4)),
                             _where(x > 4, _f(0.01) * (x - F32(4)) + F32(1), _f(0.125) * x + _f(0.5))),
    "stair": _stair,
    "hardtan": lambda x: np.clip(x, F32(-1), F32(1)),
    "lhtan": lambda x: _where(x < 0, _f(0.001) * x,
                              _where(x > 1, _f(0.001) * (x - F32(1)) + F32(1), x)),
}


def _leaky_double(x: A32) -> A32:
    # activate_array_cpu_custom: (x>0) ? x : .1*x with a double .1
    return _where(x > 0, x, (x.astype(F64) * 0.1).astype(F32))


def _swish(x: A32) -> A32:
    return x * _logistic(x)


def _mish(x: A32) -> A32:
    return x * _tanh_dn(_softplus(x, 20))


def _hard_mish(x: A32) -> A32:
    return _where(x > 0, x, _where(x > -2, x * x / F32(2) + x, np.zeros_like(x)))


def _channel_sum(values: A32, eps: float) -> A32:
    """sum = eps; sum += v_k for k over channels (axis 1), in order, in float32."""
    start = np.full((values.shape[0], 1, *values.shape[2:]), F32(eps), dtype=F32)
    return np.add.accumulate(np.concatenate([start, values], axis=1), axis=1)[:, -1:]


def _normalize_channels(x: A32) -> A32:
    pos = np.where(x > 0, x, F32(0)).astype(F32)
    total = _channel_sum(pos, 0.0001)
    return _where(x > 0, x / total, np.zeros_like(x))


def _normalize_channels_softmax(x: A32, use_max: bool) -> A32:
    m = np.max(x, axis=1, keepdims=True) if use_max else F32(0)
    e = np.exp(x - m).astype(F32)
    return (e / _channel_sum(e, 0.0001)).astype(F32)


def _activate(x: A32, name: str, path: str) -> A32:
    """Darknet's activation on (N, C, ...) ``x`` as a layer of kind ``path`` calls it:
    "conv" (forward_convolutional_layer), "shortcut" (forward_shortcut_layer) or
    "array" (activate_array: connected, local, activation, scale_channels, sam)."""
    if name == "linear":
        return x
    special: dict[str, Callable[[A32], A32]] = {}
    if path in ("conv", "shortcut"):
        special = {"swish": _swish, "mish": _mish}
    if path == "conv":
        special.update({
            "hard_mish": _hard_mish,
            "normalize_channels": _normalize_channels,
            "normalize_channels_softmax": lambda v: _normalize_channels_softmax(v, False),
            "normalize_channels_softmax_maxval": lambda v: _normalize_channels_softmax(v, True),
        })
    if name in special:
        with np.errstate(over="ignore", invalid="ignore"):  # expf overflows as in darknet
            return special[name](x).astype(F32)
    if name == "leaky" and path != "array":
        return _leaky_double(x)
    fn = _POINTWISE.get(name)
    if fn is None:
        raise _Unsupported(f"activation {name!r}: darknet's {path} path has no case for it "
                           "(its activate() returns 0)")
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(fn(x), dtype=F32)


# --------------------------------------------------------------------------
# building blocks

def _batch_norm(y: A32, p: Mapping[str, A32]) -> A32:
    """normalize_cpu + scale_bias + add_bias on (N, C, ...) ``y``."""
    shape = (1, -1) + (1,) * (y.ndim - 2)
    mean = p["rolling_mean"].reshape(shape)
    var = p["rolling_variance"].reshape(shape)
    denom = np.sqrt((var + F32(0.00001)).astype(F64))
    y = ((y - mean).astype(F64) / denom).astype(F32)
    y = y * p["scales"].reshape(shape)
    return (y + p["biases"].reshape(shape)).astype(F32)


def _conv2d(x: A32, w: A32, groups: int, stride_y: int, stride_x: int, pad: int, dilation: int,
            oh: int, ow: int) -> A32:
    """Darknet's grouped conv (im2col_cpu_ext + gemm), accumulated in float64."""
    n, _, h, wd = x.shape
    o, cg, k, _ = w.shape
    og = o // groups
    xp = np.pad(x[:, :cg * groups].astype(F64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    xg = xp.reshape(n, groups, cg, h + 2 * pad, wd + 2 * pad)
    wg = w.astype(F64).reshape(groups, og, cg, k, k)
    out = np.zeros((n, groups, og, oh * ow))
    for dy in range(k):
        for dx in range(k):
            ys, xs = dy * dilation, dx * dilation
            patch = xg[:, :, :, ys:ys + (oh - 1) * stride_y + 1:stride_y,
                       xs:xs + (ow - 1) * stride_x + 1:stride_x].reshape(n, groups, cg, oh * ow)
            tap = np.ascontiguousarray(wg[:, :, :, dy, dx])  # (groups, og, cg); BLAS wants contiguous
            if cg == 1:  # depthwise: a broadcast product beats many 1x1 matmuls
                out += tap[None, :, :, 0, None] * patch
            else:
                out += tap @ patch
    return out.reshape(n, o, oh, ow).astype(F32)


def _reorg_cpu(x: A32, w: int, h: int, c: int, batch: int, stride: int, fwd: bool) -> A32:
    """blas.c:reorg_cpu on flat buffers (returns the flat output buffer)."""
    in_c = c // (stride * stride)
    if in_c == 0:
        raise _Unsupported(f"reorg_cpu with {c} channels and stride {stride} divides by zero")
    b, k, j, i = np.meshgrid(np.arange(batch), np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    in_index = i + w * (j + h * (k + c * b))
    c2 = k % in_c
    offset = k // in_c
    w2 = i * stride + offset % stride
    h2 = j * stride + offset // stride
    out_index = w2 + w * stride * (h2 + h * stride * (c2 + in_c * b))
    src = x.reshape(-1)
    out = np.zeros(batch * c * h * w, dtype=F32)
    if fwd:
        out[out_index.ravel()] = src[in_index.ravel()]
    else:
        out[in_index.ravel()] = src[out_index.ravel()]
    return out


# --------------------------------------------------------------------------
# layers: fn(layer, input (N, C, H, W), all outputs so far) -> output

Outs = list[A32]


def _convolutional(layer: Any, x: A32, outs: Outs) -> A32:
    a = layer.attrs
    if a.xnor or a.binary:
        raise _Unsupported("xnor/binary convolutions are not computed")
    if a.antialiasing:
        raise _Unsupported("antialiasing is not computed")
    p = layer.source_params
    h, w = x.shape[2:]
    _, oh, ow = layer.output_shape
    k, d = a.size, a.dilation
    if k == 1 and a.stride_x == 1 and d == 1 and (a.stride_y != 1 or a.pad != 0):
        # darknet then multiplies the unpadded input as is (l.stride is stride_x)
        raise _Unsupported("a 1x1 conv with padding or stride_y != stride_x reads outside its input in darknet")
    # im2col_cpu_ext's own output size (dilated kernel, padding pad*dilation) must
    # agree with the layer's, which ignores dilation.
    eh = (h + 2 * a.pad * d - (d * (k - 1) + 1)) // a.stride_y + 1
    ew = (w + 2 * a.pad * d - (d * (k - 1) + 1)) // a.stride_x + 1
    if (eh, ew) != (oh, ow):
        raise _Unsupported(f"dilation {d} with pad {a.pad}: darknet's im2col ({eh}x{ew}) and "
                           f"output ({oh}x{ow}) disagree")
    if a.filters % a.groups or x.shape[1] % a.groups:
        # darknet then skips the remainder and, for batch > 1, mis-addresses the groups
        raise _Unsupported(f"filters {a.filters} or channels {x.shape[1]} not divisible by groups {a.groups}")
    y = _conv2d(x, np.asarray(p["weights"]), a.groups, a.stride_y, a.stride_x, a.pad * d, d, oh, ow)
    if a.batch_normalize:
        y = _batch_norm(y, p)
    else:
        y = (y + p["biases"].reshape(1, -1, 1, 1)).astype(F32)
    return _activate(y, a.activation, "conv")


def _connected(layer: Any, x: A32, outs: Outs) -> A32:
    a = layer.attrs
    p = layer.params
    n = x.shape[0]
    y = (x.reshape(n, -1).astype(F64) @ np.asarray(p["weights"]).astype(F64).T).astype(F32)
    if a.batch_normalize:
        mean = p["rolling_mean"]
        denom = np.sqrt((p["rolling_variance"] + F32(0.00001)).astype(F64))
        y = ((y - mean).astype(F64) / denom).astype(F32) * p["scales"]
    y = (y + p["biases"]).astype(F32)
    return _activate(y.reshape(n, -1, 1, 1), a.activation, "array")


def _batchnorm(layer: Any, x: A32, outs: Outs) -> A32:
    return _batch_norm(x, layer.params)


def _local(layer: Any, x: A32, outs: Outs) -> A32:
    a = layer.attrs
    p = layer.params
    n, c, h, w = x.shape
    _, oh, ow = layer.output_shape
    k, s, pad = a.size, a.stride, a.pad  # im2col_cpu pads by the cfg's pad value
    if ((h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1) != (oh, ow):
        raise _Unsupported(f"pad={pad} with size={k}: darknet's im2col and output sizes disagree")
    xp = np.pad(x.astype(F64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((n, c, k, k, oh, ow))
    for dy in range(k):
        for dx in range(k):
            cols[:, :, dy, dx] = xp[:, :, dy:dy + (oh - 1) * s + 1:s, dx:dx + (ow - 1) * s + 1:s]
    cols = cols.reshape(n, c * k * k, oh * ow)
    wl = np.asarray(p["weights"]).astype(F64).reshape(oh * ow, a.filters, c * k * k)
    y = np.einsum("lfk,nkl->nfl", wl, cols)
    y = (y + p["biases"].reshape(1, a.filters, oh * ow)).astype(F32)
    return _activate(y.reshape(n, a.filters, oh, ow), a.activation, "array")


def _maxpool(layer: Any, x: A32, outs: Outs) -> A32:
    a = layer.attrs
    if a.antialiasing:
        raise _Unsupported("antialiasing is not computed")
    n, c, h, w = x.shape
    oc, oh, ow = layer.output_shape
    if a.maxpool_depth:
        y = np.full((n, oc, h, w), -FLT_MAX, dtype=F32)
        for g in range(oc):
            for k in range(g, c, oc):
                y[:, g] = np.maximum(y[:, g], x[:, k])
        return y
    return _pool(x, a, oh, ow, avg=False)


def _local_avgpool(layer: Any, x: A32, outs: Outs) -> A32:
    _, oh, ow = layer.output_shape
    return _pool(x, layer.attrs, oh, ow, avg=True)


def _pool(x: A32, a: Any, oh: int, ow: int, *, avg: bool) -> A32:
    n, c, h, w = x.shape
    k, sy, sx = a.size, a.stride_y, a.stride_x
    off = a.pad_before  # windows start at -padding/2
    after_h = max(0, (oh - 1) * sy + k - off - h)
    after_w = max(0, (ow - 1) * sx + k - off - w)
    widths = ((0, 0), (0, 0), (off, after_h), (off, after_w))
    if avg:
        xp = np.pad(x, widths)
        ones = np.pad(np.ones((1, 1, h, w), dtype=F32), widths)
        acc = np.zeros((n, c, oh, ow), dtype=F32)
        count = np.zeros((1, 1, oh, ow), dtype=F32)
    else:
        xp = np.pad(x, widths, constant_values=-FLT_MAX)
        acc = np.full((n, c, oh, ow), -FLT_MAX, dtype=F32)
    for dy in range(k):
        for dx in range(k):
            sl = (slice(None), slice(None), slice(dy, dy + (oh - 1) * sy + 1, sy),
                  slice(dx, dx + (ow - 1) * sx + 1, sx))
            if avg:
                acc = acc + xp[sl]
                count = count + ones[sl]
            else:
                acc = np.maximum(acc, xp[sl])
    if not avg:
        return acc
    with np.errstate(invalid="ignore"):  # a window wholly outside: 0/0 = NaN, as in darknet
        return (acc / count).astype(F32)


def _avgpool(layer: Any, x: A32, outs: Outs) -> A32:
    n, c, h, w = x.shape
    total = np.add.accumulate(x.reshape(n, c, h * w), axis=2)[:, :, -1]
    return (total / F32(h * w)).astype(F32).reshape(n, c, 1, 1)


def _route(layer: Any, x: A32, outs: Outs) -> A32:
    a = layer.attrs
    parts = []
    for index in a.input_layers:
        src = outs[index].reshape(x.shape[0], -1)
        part = src.shape[1] // a.groups
        parts.append(src[:, part * a.group_id:part * (a.group_id + 1)])
    return np.concatenate(parts, axis=1)


def _shortcut(layer: Any, x: A32, outs: Outs) -> A32:
    a = layer.attrs
    for index, shape in zip(a.input_layers, layer.input_shapes[1:], strict=True):
        if tuple(shape[1:]) != tuple(x.shape[2:]):
            raise _Unsupported(f"from layer {index} is {shape[1]}x{shape[2]}, not {x.shape[2]}x{x.shape[3]} "
                               "(AlexeyAB darknet asserts; pjreddie's samples with a stride)")
    n = x.shape[0]
    src = x.reshape(n, -1)
    size = src.shape[1]
    m = len(a.input_layers)
    weights = None
    if a.weights_type != "none":
        raw = np.asarray(layer.params["weights"], dtype=F32).reshape(m + 1, -1)  # (m+1, 1 or C)
        if a.weights_normalization == "relu":
            r = np.maximum(raw, F32(0))
            total = np.add.accumulate(np.concatenate([np.full((1, raw.shape[1]), F32(0.0001)), r]),
                                      axis=0)[-1]
            weights = (r / total).astype(F32)
        elif a.weights_normalization == "softmax":
            e = np.exp(raw - raw.max(axis=0)).astype(F32)
            total = np.add.accumulate(np.concatenate([np.full((1, raw.shape[1]), F32(0.0001)), e]),
                                      axis=0)[-1]
            weights = (e / total).astype(F32)
        else:
            weights = raw
        per = size // weights.shape[1]  # elements per weight: C*H*W or H*W
        weights = np.repeat(weights, per, axis=1)  # (m+1, size)
    out = (src * weights[0]).astype(F32) if weights is not None else src.copy()
    for i, index in enumerate(a.input_layers):
        add = outs[index].reshape(n, -1)
        k = min(size, add.shape[1])
        term = add[:, :k] if weights is None else add[:, :k] * weights[i + 1, :k]
        out[:, :k] = out[:, :k] + term
    return _activate(out.reshape(x.shape), a.activation, "shortcut")


def _upsample(layer: Any, x: A32, outs: Outs) -> A32:
    a = layer.attrs
    s = a.stride
    scale = F32(a.scale)
    n, c = x.shape[:2]
    if not a.reverse:
        return scale * np.repeat(np.repeat(x, s, axis=2), s, axis=3)
    # reverse: upsample_cpu(l.output, out_w, out_h, c, batch, s, 0, scale, input):
    # output[small] += scale * input_flat[index computed with the OUTPUT's dims]
    _, oh, ow = layer.output_shape
    b, k, j, i = np.meshgrid(np.arange(n), np.arange(c), np.arange(oh * s), np.arange(ow * s), indexing="ij")
    big = b * ow * oh * c * s * s + k * ow * oh * s * s + j * ow * s + i
    g = x.reshape(-1)[big].reshape(n, c, oh, s, ow, s)
    acc = np.zeros((n, c, oh, ow), dtype=F32)
    for dy in range(s):
        for dx in range(s):
            acc = acc + scale * g[:, :, :, dy, :, dx]
    return acc


def _reorg3d(layer: Any, x: A32, outs: Outs) -> A32:
    a = layer.attrs
    oc, oh, ow = layer.output_shape
    return _reorg_cpu(x, ow, oh, oc, x.shape[0], a.stride, a.reverse)


def _reorg_old(layer: Any, x: A32, outs: Outs) -> A32:
    a = layer.attrs
    n, c, h, w = x.shape
    if not a.reverse and (h % a.stride or w % a.stride):
        # reorg_cpu then writes c*h*w values into a buffer of c*s*s*(h/s)*(w/s)
        raise _Unsupported(f"{h}x{w} is not divisible by the stride {a.stride} (darknet overflows its output)")
    return _reorg_cpu(x, w, h, c, n, a.stride, a.reverse)


def _scale_channels(layer: Any, x: A32, outs: Outs) -> A32:
    a = layer.attrs
    src = outs[a.from_layer]
    n = x.shape[0]
    oc, oh, ow = layer.output_shape
    # scale_wh: the previous layer is 1 x H x W (per position), else C x 1 x 1
    y = src * (x.reshape(n, 1, oh, ow) if a.scale_wh else x.reshape(n, oc, 1, 1))
    return _activate(y.astype(F32), a.activation, "array")


def _sam(layer: Any, x: A32, outs: Outs) -> A32:
    a = layer.attrs
    src = outs[a.from_layer]
    return _activate((x.reshape(src.shape) * src).astype(F32), a.activation, "array")


def _softmax(layer: Any, x: A32, outs: Outs) -> A32:
    a = layer.attrs
    if a.spatial:
        raise _Unsupported("spatial softmax (darknet's CPU ignores it, its GPU path does not)")
    if "tree" in layer.options:
        raise _Unsupported("softmax tree is not computed")
    n = x.shape[0]
    flat = x.reshape(n, -1)
    if flat.shape[1] % a.groups:
        raise _Unsupported(f"{flat.shape[1]} inputs do not split into {a.groups} groups")
    g = flat.reshape(n, a.groups, -1)
    t = F32(a.temperature)
    largest = g.max(axis=2, keepdims=True)
    e = np.exp((g / t - largest / t).astype(F64)).astype(F32)  # exp() in double
    total = np.add.accumulate(e, axis=2)[:, :, -1:]
    return (e / total).astype(F32).reshape(x.shape)


def _activation(layer: Any, x: A32, outs: Outs) -> A32:
    return _activate(x, layer.attrs.activation, "array")


def _normalization(layer: Any, x: A32, outs: Outs) -> A32:
    # forward_normalization_layer: a running window sum over channels, whose start
    # (k < size/2) leaves out channel size/2; reproduced as darknet computes it.
    a = layer.attrs
    c = x.shape[1]
    if c < a.size // 2:
        raise _Unsupported(f"{c} channels are fewer than size/2 = {a.size // 2}")
    alpha, kappa = F32(a.alpha), F32(a.kappa)
    sq = (x * x).astype(F32)
    norms = np.empty_like(x)
    cur = np.full_like(x[:, 0], kappa)
    for k in range(a.size // 2):
        cur = cur + alpha * sq[:, k]
    norms[:, 0] = cur
    for k in range(1, c):
        prev = k - (a.size - 1) // 2 - 1
        nxt = k + a.size // 2
        if prev >= 0:
            cur = cur + (-alpha) * sq[:, prev]
        if nxt < c:
            cur = cur + alpha * sq[:, nxt]
        norms[:, k] = cur
    with np.errstate(invalid="ignore"):  # a negative sum gives NaN, as in darknet
        scale = np.power(norms.astype(F64), -float(F32(a.beta))).astype(F32)
    return (scale * x).astype(F32)


def _implicit(layer: Any, x: A32, outs: Outs) -> A32:
    w = np.asarray(layer.params["weights"], dtype=F32).reshape(1, *layer.output_shape)
    return np.repeat(w, x.shape[0], axis=0)


_LAYERS: dict[str, Callable[[Any, A32, Outs], A32]] = {
    "convolutional": _convolutional,
    "connected": _connected,
    "batchnorm": _batchnorm,
    "local": _local,
    "maxpool": _maxpool,
    "local_avgpool": _local_avgpool,
    "avgpool": _avgpool,
    "route": _route,
    "shortcut": _shortcut,
    "upsample": _upsample,
    "reorg3d": _reorg3d,
    "reorg": _reorg_old,
    "scale_channels": _scale_channels,
    "sam": _sam,
    "softmax": _softmax,
    "activation": _activation,
    "normalization": _normalization,
    "implicit": _implicit,
}

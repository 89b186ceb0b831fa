"""Darknet's layers, lowered once: each kind's forward at inference as
:mod:`~yolo_io._lowering.ops` operations, with the darknet source of each rule
named beside it. The ONNX export, the PyTorch module and the Keras model are
all emitted from what :func:`lower` returns; a kind, option or activation
none of them can compute faithfully raises :class:`~yolo_io.ConversionError`
naming the layer and its cfg line, never an approximation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from .._base.errors import ConversionError
from .._model import attrs as A
from .._model.kinds import Refused
from . import ops as O
from .graph import INPUT, Graph, Output

if TYPE_CHECKING:
    from .._model.config import CfgLayer, Config

__all__ = ["LOWER_BY_KIND", "head_output_names", "lower"]

OutputKind = Literal["raw", "decoded"]


def fail(layer: CfgLayer, reason: str) -> ConversionError:
    """The error for what no model yolo_io builds can compute."""
    return ConversionError(f"{layer.location}: {reason}; yolo_io cannot build a model of it "
                           "(ONNX, PyTorch or Keras)")


def fail_decoding(layer: CfgLayer, reason: str) -> ConversionError:
    """The error for a head whose decoding no model computes (its raw input can)."""
    return ConversionError(f"{layer.location}: {reason}; no decoded outputs for it (ask for "
                           "the raw outputs: outputs='raw', or --outputs raw)")


def head_output_names(config: Config) -> list[str]:
    """The raw outputs' names: ``head_{i}`` for every head layer ``i``, in
    layer order; ``["output"]`` for a network without heads."""
    heads = [f"head_{layer.index}" for layer in config if layer.kind.head]
    return heads or ["output"]


def lower(config: Config, *, outputs: OutputKind = "raw", intermediates: bool = False) -> Graph:
    """``config``'s network at inference as operations.

    ``outputs``: ``"raw"``, each head's input as ``head_{i}`` (``output``, the
    last layer's, without heads); ``"decoded"``: ``boxes`` (N, n, 4) as (cx,
    cy, w, h) relative to the input size, ``objectness`` (N, n) and ``scores``
    (N, n, classes), as the ONNX export's. ``intermediates``: also every
    layer's output as ``layer_{i}``. Training-only layers (cost,
    contrastive) are left out and listed in ``Graph.omitted``."""
    g = Graph(config)
    x = INPUT
    for layer in config:
        if layer.kind.training_only:
            g.omitted.append(layer.index)
            continue
        for src in layer.inputs:
            if src in g.omitted:
                raise fail(layer, f"an input from layer {src} ({config[src].section}), "
                                  "which computes nothing at inference")
            if config[src].kind.head:
                # forward_yolo_layer & co. rewrite their output in place
                # (activations, scale_x_y): not the raw input a model gives.
                raise fail(layer, f"an input from the head layer {src} "
                                  f"({config[src].section}), whose output darknet "
                                  "transforms in place")
        g._layer = layer.index
        rule = LOWER_BY_KIND[layer.type]
        if isinstance(rule, Refused):
            raise fail(layer, rule.reason)
        try:
            x = rule(g, layer, x)
        except ValueError as err:  # an operation's shapes do not fit (ops.py)
            raise fail(layer, f"{err}, which darknet computes past its buffers") from err
        if g.shapes[x] != tuple(layer.output_shape) and not layer.kind.flat:
            raise fail(layer, f"an output of {tuple(layer.output_shape)} where the lowering "
                              f"gives {g.shapes[x]}")
        g.layer_values[layer.index] = x
        if layer.kind.head:
            g.heads.append(layer)
    g._layer = -1
    if not g.heads:
        last = max(g.layer_values)
        g.outputs.append(Output("output", g.layer_values[last],
                                tuple(config[last].output_shape)))
    elif outputs == "raw":
        for head in g.heads:
            g.outputs.append(Output(f"head_{head.index}", g.layer_values[head.index],
                                    tuple(head.input_shape)))
    elif outputs == "decoded":
        boxes, objectness, scores = _decode(g)
        for name, value in (("boxes", boxes), ("objectness", objectness), ("scores", scores)):
            g.outputs.append(Output(name, value, g.shapes[value]))
    else:
        raise ValueError(f"outputs must be 'raw' or 'decoded', not {outputs!r}")
    if intermediates:
        for index, value in g.layer_values.items():
            g.outputs.append(Output(f"layer_{index}", value, tuple(config[index].output_shape)))
    g.prune()
    return g


# -- activations -------------------------------------------------------------------


def activation(g: Graph, layer: CfgLayer, name: str, x: int, *,
               explicit: tuple[str, ...] = ()) -> int:
    """darknet's activate_array (activations.c) for ``name``; ``explicit``:
    the activations the layer's forward calls itself (forward_convolutional_layer:
    swish, mish and hard_mish; forward_shortcut_layer: swish and mish)."""
    if name in ("swish", "mish", "hard_mish") and name not in explicit:
        # Anywhere else darknet's activate() has no case for them and outputs
        # 0, which no one means.
        raise fail(layer, f"activation={name} in a {layer.section} layer (darknet outputs 0 "
                          "there: activate() has no case for it)")
    f = np.float32
    if name == "linear":
        return x
    if name in ("leaky", "revleaky"):  # activate(): REVLEAKY falls through to LEAKY
        return g.add(O.LeakyRelu(0.1), x)
    if name == "relie":
        return g.add(O.LeakyRelu(0.01), x)
    if name == "ramp":  # x*(x>0) + .1f*x
        return g.arith("add", g.unary("relu", x), g.scalar_op("mul", x, 0.1))
    if name == "loggy":  # 2/(1+exp(-x)) - 1
        return g.scalar_op("sub", g.scalar_op("mul", g.unary("sigmoid", x), 2), 1)
    if name == "hardtan":
        return g.add(O.Clip(-1.0, 1.0), x)
    if name == "gelu":  # 0.5x(1 + tanh(0.797885x + 0.035677x^3))
        cube = g.arith("mul", g.arith("mul", x, x), x)
        inner = g.arith("add", g.scalar_op("mul", x, 0.797885), g.scalar_op("mul", cube, 0.035677))
        half = g.scalar_op("mul", x, 0.5)
        return g.arith("add", half, g.arith("mul", half, g.unary("tanh", inner)))
    if name in ("plse", "lhtan"):
        # plse: x < -4: .01(x+4); x > 4: .01(x-4)+1; else .125x+.5.
        # lhtan: x < 0: .001x; x > 1: .001(x-1)+1; else x.
        lo, hi, slope, mid_k, mid_b = ((-4, 4, 0.01, 0.125, 0.5) if name == "plse" else
                                       (0, 1, 0.001, 1.0, 0.0))
        low = g.scalar_op("mul", g.scalar_op("sub", x, lo), slope)
        high = g.scalar_op("add", g.scalar_op("mul", g.scalar_op("sub", x, hi), slope), 1)
        middle = g.scalar_op("add", g.scalar_op("mul", x, mid_k), mid_b)
        upper = g.add(O.Where(), g.add(O.Compare("greater"), x, g.const(f(hi))), high, middle)
        return g.add(O.Where(), g.add(O.Compare("less"), x, g.const(f(lo))), low, upper)
    if name == "hard_mish":  # x > 0: x; x > -2: x*x/2 + x; else 0
        quad = g.arith("add", g.scalar_op("div", g.arith("mul", x, x), 2), x)
        neg = g.add(O.Where(), g.add(O.Compare("greater"), x, g.const(f(-2))), quad,
                    g.const(f(0)))
        return g.add(O.Where(), g.add(O.Compare("greater"), x, g.const(f(0))), x, neg)
    if name == "relu":
        return g.unary("relu", x)
    if name == "relu6":
        # As darknet's GPU kernel computes it. Its CPU activate() has no relu6
        # case and outputs 0.
        return g.add(O.Clip(0.0, 6.0), x)
    if name == "logistic":
        return g.unary("sigmoid", x)
    if name == "tanh":
        return g.unary("tanh", x)
    if name == "elu":
        return g.add(O.Elu(1.0), x)
    if name == "selu":
        return g.add(O.Selu(1.6732, 1.0507), x)
    if name == "swish":
        return g.arith("mul", x, g.unary("sigmoid", x))
    if name == "mish":
        # x * tanh(softplus(x)); darknet's softplus switches to x above 20 and
        # exp(x) below -20, which float32 cannot tell from log1p(exp(x)).
        return g.unary("mish", x)
    raise fail(layer, f"activation={name}")


# -- layers ------------------------------------------------------------------------


def _stored(layer: CfgLayer) -> set[str]:
    """The arrays the weights file holds for ``layer``; a layer with
    ``dontload=1`` (and no share_index) holds none, and darknet computes with
    its random initialisation: refused."""
    names = {s.name for s in layer.param_specs}
    if not names and layer.share_index is None:
        raise fail(layer, "dontload=1: the weights file holds no arrays for it, and darknet "
                          "computes with random ones")
    return names


def _batch_norm(layer: CfgLayer, batch_normalize: int) -> bool:
    """Whether the layer computes a batch norm from stored arrays: with
    ``dontloadscales=1`` the file holds none, and yolo_io's fusion (so the
    ONNX export) computes the layer without it."""
    if layer.share_index is not None:
        return bool(batch_normalize)
    stored = _stored(layer)
    return bool(batch_normalize) and "scales" in stored


def _convolutional(g: Graph, layer: CfgLayer, x: int) -> int:
    a = layer.attrs
    assert isinstance(a, A.ConvolutionalAttrs)
    if a.binary or a.xnor:
        raise fail(layer, "binary (XNOR) convolution")
    if a.antialiasing:
        raise fail(layer, f"antialiasing={a.antialiasing}")
    if a.size == 1 and a.stride_x == 1 and a.dilation == 1 and (a.stride_y != 1 or a.pad):
        # forward_convolutional_layer's 1x1 path (l.size == 1 && l.stride ==
        # 1, l.stride being stride_x) multiplies the unpadded input directly:
        # darknet ignores stride_y and the padding here, and reads past its input.
        raise fail(layer, f"a 1x1 conv with stride_y={a.stride_y} and padding {a.pad}, which "
                          "darknet computes wrongly")
    # forward_convolutional_layer pads by pad * dilation (im2col_cpu_ext).
    y = g.add(O.Conv(layer.index, layer.input_shape[0], a.filters, a.size, a.stride_y,
                     a.stride_x, a.pad * a.dilation, a.dilation, a.groups,
                     _batch_norm(layer, a.batch_normalize)), x)
    return activation(g, layer, a.activation, y, explicit=("swish", "mish", "hard_mish"))


def _connected(g: Graph, layer: CfgLayer, x: int) -> int:
    a = layer.attrs
    assert isinstance(a, A.ConnectedAttrs)
    n = int(np.prod(g.shapes[x]))  # (a text model's first layer reads [net] inputs=)
    y = g.add(O.Dense(layer.index, n, a.outputs, _batch_norm(layer, a.batch_normalize)),
              g.reshape(x, n))
    y = activation(g, layer, a.activation, y)
    return g.reshape(y, *layer.output_shape)


def _local(g: Graph, layer: CfgLayer, x: int) -> int:
    a = layer.attrs
    assert isinstance(a, A.LocalAttrs)
    # forward_local_layer (local_layer.c): the cfg's `pad` value is the
    # padding in pixels.
    c, h, w = layer.input_shape
    oh = (h + 2 * a.pad - a.size) // a.stride + 1
    ow = (w + 2 * a.pad - a.size) // a.stride + 1
    y = g.add(O.Local(layer.index, c, a.filters, a.size, a.stride, a.pad, oh, ow), x)
    return activation(g, layer, a.activation, y)


def _pool(g: Graph, layer: CfgLayer, x: int, kind: Literal["max", "average"]) -> int:
    # forward_maxpool_layer / forward_local_avgpool_layer (maxpool_layer.c):
    # window origin -pad/2, cells outside the input ignored (max) or not
    # counted (average).
    a = layer.attrs
    assert isinstance(a, A.PoolAttrs)
    _, h, w = layer.input_shape
    _, oh, ow = layer.output_shape
    before = a.pad_before
    after_h = max(0, (oh - 1) * a.stride_y + a.size - h - before)
    after_w = max(0, (ow - 1) * a.stride_x + a.size - w - before)
    if kind == "average" and max(before, after_h, after_w) >= a.size:
        raise fail(layer, f"padding={a.pad} with size={a.size}: an average over windows that "
                          "can lie wholly outside the input")
    return g.add(O.Pool(kind, a.size, a.stride_y, a.stride_x, (before, before, after_h, after_w)),
                 x)


def _maxpool(g: Graph, layer: CfgLayer, x: int) -> int:
    a = layer.attrs
    assert isinstance(a, A.PoolAttrs)
    if a.maxpool_depth:
        raise fail(layer, "maxpool_depth=1")
    if a.antialiasing:
        raise fail(layer, f"antialiasing={a.antialiasing}")
    return _pool(g, layer, x, "max")


def _local_avgpool(g: Graph, layer: CfgLayer, x: int) -> int:
    return _pool(g, layer, x, "average")


def _avgpool(g: Graph, layer: CfgLayer, x: int) -> int:
    return g.add(O.GlobalAvgPool(), x)


def _identity(g: Graph, layer: CfgLayer, x: int) -> int:
    # A head's output here is its raw input (the decoding is added after the
    # last layer).
    return x


def _dropout(g: Graph, layer: CfgLayer, x: int) -> int:
    # forward_dropout_layer (dropout_layer.c): at inference a copy of its
    # input; in training each value dropped with `probability`, the rest
    # scaled by 1 / (1 - probability). (dropblock=1 drops blocks in darknet's
    # training; a model trains it as plain dropout.)
    a = layer.attrs
    assert isinstance(a, A.DropoutAttrs)
    return g.add(O.Dropout(float(a.probability)), x) if a.probability > 0 else x


def _route(g: Graph, layer: CfgLayer, x: int) -> int:
    a = layer.attrs
    assert isinstance(a, A.RouteAttrs)
    parts = []
    for src, (begin, end), shape in zip(a.input_layers, a.channel_slices, layer.input_shapes,
                                        strict=True):
        t = g.layer_values[src]
        if (begin, end) != (0, shape[0]):
            t = g.slice(t, 1, begin, end)
        parts.append(t)
    return g.concat(1, *parts)


def _flat_fit(g: Graph, t: int, shape: Sequence[int], target: Sequence[int]) -> int:
    """``t`` (of ``shape``) added to a tensor of ``target`` as darknet's
    shortcut_multilayer_cpu (blas.c) adds it: element by element in flat order,
    over the first min(sizes) elements (fewer channels are zero padded, more
    are cut)."""
    if tuple(shape) == tuple(target):
        return t
    n, m = int(np.prod(shape)), int(np.prod(target))
    flat = g.reshape(t, n)
    flat = g.add(O.PadEnd(m - n), flat) if n < m else g.slice(flat, 1, 0, m)
    return g.reshape(flat, *target)


def _shortcut(g: Graph, layer: CfgLayer, x: int) -> int:
    a = layer.attrs
    assert isinstance(a, A.ShortcutAttrs)
    parts = [x]
    for src, shape in zip(a.input_layers, layer.input_shapes[1:], strict=True):
        if tuple(shape[1:]) != tuple(layer.input_shape[1:]):
            # parse_shortcut (parser.c) asserts equal width and height.
            raise fail(layer, f"a shortcut from layer {src} of {tuple(shape)} onto "
                              f"{tuple(layer.input_shape)}: darknet refuses inputs of different "
                              "width or height")
        parts.append(_flat_fit(g, g.layer_values[src], shape, layer.input_shape))
    if a.weights_type == "none":
        y = parts[0]
        for part in parts[1:]:
            y = g.arith("add", y, part)
    else:
        y = g.add(O.WeightedSum(layer.index, len(parts), a.weights_type == "per_channel",
                                a.weights_normalization), *parts)  # type: ignore[arg-type]
    return activation(g, layer, a.activation, y, explicit=("swish", "mish"))


def _upsample(g: Graph, layer: CfgLayer, x: int) -> int:
    a = layer.attrs
    assert isinstance(a, A.UpsampleAttrs)
    if a.reverse:
        raise fail(layer, "upsample with a negative stride (downsampling)")
    # upsample_cpu (blas.c): out[j][i] = scale * in[j / stride][i / stride].
    y = g.add(O.Upsample(a.stride), x)
    return g.scalar_op("mul", y, a.scale) if a.scale != 1 else y


def _reorg(g: Graph, layer: CfgLayer, x: int, *, three_d: bool) -> int:
    a = layer.attrs
    assert isinstance(a, A.ReorgAttrs)
    if a.reverse:
        raise fail(layer, "reverse=1")
    # reorg_cpu (blas.c) with forward=0: out[b, (dy*s + dx)*C' + c, j, i] =
    # x'[b, c, j*s + dy, i*s + dx], where the (w, h, c) it is given are the
    # output's for [reorg3d] (so x' is the input: space to depth) and the
    # input's for the old [reorg] (so x' is the input's memory read as
    # (c/s^2, h*s, w*s): darknet's famous reinterpretation, kept exactly).
    s = a.stride
    oc, oh, ow = layer.output_shape
    if three_d:
        cw, ch, cc = ow, oh, oc
    else:
        cc, ch, cw = layer.input_shape
    if cc % (s * s):
        raise fail(layer, f"{cc} channels, not a multiple of stride^2 = {s * s}")
    if layer.input_shape[1] % s or layer.input_shape[2] % s:
        # reorg_cpu then reads the input with the output's pitch: not a
        # rearrangement of whole cells.
        raise fail(layer, f"an input of {tuple(layer.input_shape)} that stride={s} does not "
                          "divide")
    six = g.reshape(x, cc // (s * s), ch, s, cw, s)
    return g.reshape(g.transpose(six, 0, 3, 5, 1, 2, 4), oc, oh, ow)


def _reorg_layer(g: Graph, layer: CfgLayer, x: int) -> int:
    return _reorg(g, layer, x, three_d=False)


def _reorg3d(g: Graph, layer: CfgLayer, x: int) -> int:
    return _reorg(g, layer, x, three_d=True)


def _scale_channels(g: Graph, layer: CfgLayer, x: int) -> int:
    a = layer.attrs
    assert isinstance(a, A.ScaleChannelsAttrs)
    # forward_scale_channels_layer: out = from * input, the input (N, C, 1, 1)
    # or, with scale_wh, (N, 1, H, W), broadcast.
    y = g.arith("mul", g.layer_values[a.from_layer], x)
    return activation(g, layer, a.activation, y)


def _sam(g: Graph, layer: CfgLayer, x: int) -> int:
    a = layer.attrs
    assert isinstance(a, A.SamAttrs)
    y = g.arith("mul", x, g.layer_values[a.from_layer])  # forward_sam_layer
    return activation(g, layer, a.activation, y)


def _softmax(g: Graph, layer: CfgLayer, x: int) -> int:
    a = layer.attrs
    assert isinstance(a, A.SoftmaxAttrs)
    # softmax_cpu (blas.c): over `groups` contiguous groups of the flat input,
    # each divided by the temperature first.
    if a.spatial:
        raise fail(layer, "spatial softmax")
    if a.tree:
        raise fail(layer, "a softmax tree (tree=, YOLO9000)")
    inputs = int(np.prod(layer.input_shape))
    if inputs % a.groups:
        raise fail(layer, f"groups={a.groups}, which does not divide its {inputs} inputs")
    y = g.scalar_op("div", x, a.temperature) if a.temperature != 1 else x
    soft = g.add(O.Softmax(2), g.reshape(y, a.groups, inputs // a.groups))
    return g.reshape(soft, *layer.output_shape)


def _batchnorm(g: Graph, layer: CfgLayer, x: int) -> int:
    # forward_batchnorm_layer at inference: normalize_cpu (x - mean) /
    # sqrt(var + .00001f), then scale_bias and add_bias.
    return g.add(O.BatchNorm(layer.index, layer.input_shape[0]), x)


def _activation_layer(g: Graph, layer: CfgLayer, x: int) -> int:
    a = layer.attrs
    assert isinstance(a, A.ActivationAttrs)
    return activation(g, layer, a.activation, x)


_RECURRENT = Refused("a recurrent layer (its state carries over from one call to the next)")
Lowering = Callable[[Graph, "CfgLayer", int], int]

#: How each layer kind lowers, or why it cannot; tests/test_kinds.py checks
#: that every kind of the core's table has an entry.
LOWER_BY_KIND: dict[str, Lowering | Refused] = {
    "convolutional": _convolutional,
    "deconvolutional": Refused("a deconvolutional layer"),
    "connected": _connected,
    "local": _local,
    "maxpool": _maxpool,
    "local_avgpool": _local_avgpool,
    "avgpool": _avgpool,
    "route": _route,
    "shortcut": _shortcut,
    "scale_channels": _scale_channels,
    "sam": _sam,
    "upsample": _upsample,
    "reorg": _reorg_layer,
    "reorg3d": _reorg3d,
    "yolo": _identity,
    "Gaussian_yolo": _identity,
    "region": _identity,
    "detection": _identity,
    "rnn": _RECURRENT,
    "lstm": _RECURRENT,
    "gru": _RECURRENT,
    "crnn": _RECURRENT,
    "conv_lstm": _RECURRENT,
    "batchnorm": _batchnorm,
    "dropout": _dropout,
    "softmax": _softmax,
    "cost": Refused("a training-only layer"),  # left out before it gets here
    "normalization": Refused("a local response normalization layer"),
    "activation": _activation_layer,
    "contrastive": Refused("a training-only layer"),  # left out before it gets here
    "crop": Refused("a crop layer"),
    "history": Refused("a history layer (its state carries over from one call to the next)"),
    "implicit": Refused("an implicit layer"),
    "iseg": Refused("an iseg layer"),
    "empty": Refused("an empty layer"),
    "logistic": Refused("a logistic layer"),
    "l2norm": Refused("an l2norm layer"),
}


# -- heads -------------------------------------------------------------------------

Decoded = tuple[int, int, int]


def _decode(g: Graph) -> Decoded:
    """boxes (N, n, 4), objectness (N, n), scores (N, n, classes) of every head,
    concatenated in layer order."""
    classes = {h.attrs.classes for h in g.heads if hasattr(h.attrs, "classes")}
    if len(classes) != 1:
        raise ConversionError(f"heads with different class counts {sorted(classes)} cannot be "
                              "decoded into one scores tensor; ask for the raw outputs "
                              "(outputs='raw', or --outputs raw)")
    g.classes = classes.pop()
    _, net_h, net_w = g.config.input_shape
    parts: list[Decoded] = []
    for head in g.heads:
        x = g.layer_values[head.index]
        g._layer = head.index
        a = head.attrs
        if isinstance(a, A.GaussianYoloAttrs):
            parts.append(_decode_gaussian(g, head, a, x, net_w, net_h))
        elif isinstance(a, A.YoloAttrs):
            parts.append(_decode_yolo(g, head, a, x, net_w, net_h))
        elif isinstance(a, A.RegionAttrs):
            parts.append(_decode_region(g, head, a, x))
        elif isinstance(a, A.DetectionAttrs):
            parts.append(_decode_detection(g, head, a, x))
        else:  # pragma: no cover - every head kind is above
            raise fail_decoding(head, f"decoding a {head.section} head")
    g._layer = -1
    return (g.concat(1, *(p[0] for p in parts)), g.concat(1, *(p[1] for p in parts)),
            g.concat(1, *(p[2] for p in parts)))


def _grid(g: Graph, hh: int, ww: int) -> int:
    gx, gy = np.meshgrid(np.arange(ww, dtype=np.float32), np.arange(hh, dtype=np.float32))
    return g.const(np.stack([gx.ravel(), gy.ravel()]).reshape(1, 1, 2, hh * ww), hint="grid")


def _split_head(g: Graph, x: int, anchors: int, entries: int, hh: int, ww: int
                ) -> tuple[int, int, int, int]:
    """(tx_ty, tw_th, objectness, classes) of a head's (N, A*E, H, W) input as
    (N, A, E', H*W) pieces."""
    five = g.reshape(x, anchors, entries, hh * ww)
    return (g.slice(five, 2, 0, 2), g.slice(five, 2, 2, 4), g.slice(five, 2, 4, 5),
            g.slice(five, 2, 5, entries))


def _finish_head(g: Graph, xy: int, wh: int, obj: int, cls: int) -> Decoded:
    """(N, A, 2, HW) x 2, (N, A, 1, HW), (N, A, C, HW) -> boxes (N, A*HW, 4),
    objectness (N, A*HW), scores (N, A*HW, C) in darknet's entry order."""
    box = g.concat(2, xy, wh)                                          # (N, A, 4, HW)
    boxes = g.reshape(g.transpose(box, 0, 1, 3, 2), -1, 4)
    objectness = g.reshape(obj, -1)
    scores = g.arith("mul", cls, obj)                                  # (N, A, C, HW)
    scores = g.reshape(g.transpose(scores, 0, 1, 3, 2), -1, g.classes)
    return boxes, objectness, scores


def _xy(g: Graph, txy: int, scale_x_y: float, hh: int, ww: int) -> int:
    """x, y <- x*scale_x_y - (scale_x_y-1)/2, then (col + x) / w, (row + y) / h."""
    s = np.float32(scale_x_y)
    if s != 1:
        txy = g.arith("sub", g.arith("mul", txy, g.const(s, hint="scale_x_y")),
                      g.const(np.float32(0.5) * (s - np.float32(1)), hint="shift"))
    size = g.const(np.array([ww, hh], np.float32).reshape(1, 1, 2, 1), hint="grid_size")
    return g.arith("div", g.arith("add", txy, _grid(g, hh, ww)), size)


def _anchors(g: Graph, anchors: Sequence[Sequence[float]], w: float, h: float) -> int:
    return g.const(np.array([[p[0] / w, p[1] / h] for p in anchors],
                            np.float32).reshape(1, len(anchors), 2, 1), hint="anchors")


def _decode_yolo(g: Graph, head: CfgLayer, a: A.YoloAttrs, x: int, net_w: int, net_h: int
                 ) -> Decoded:
    # forward_yolo_layer (yolo_layer.c): logistic on x, y, objectness and
    # classes unless new_coords; then x, y <- x*scale_x_y - (scale_x_y-1)/2.
    # get_yolo_box: bx = (col + x) / w, by = (row + y) / h, bw = exp(tw) *
    # anchor_w / net_w (new_coords: tw*tw*4 * anchor_w / net_w).
    # get_yolo_detections: score = objectness * class probability.
    _, hh, ww = head.input_shape
    anchors, entries = len(a.anchors), 5 + a.classes
    if head.input_shape[0] != anchors * entries:
        raise fail_decoding(head, f"an input of {head.input_shape[0]} channels, not {anchors} "
                                  f"anchors x {entries}")
    txy, twh, obj, cls = _split_head(g, x, anchors, entries, hh, ww)
    if not a.new_coords:
        txy, obj, cls = g.unary("sigmoid", txy), g.unary("sigmoid", obj), g.unary("sigmoid", cls)
    xy = _xy(g, txy, a.scale_x_y, hh, ww)
    anchor = _anchors(g, a.anchors, net_w, net_h)
    if a.new_coords:
        wh = g.arith("mul", g.arith("mul", twh, twh), g.arith("mul", anchor,
                                                             g.const(np.float32(4))))
    else:
        wh = g.arith("mul", g.unary("exp", twh), anchor)
    return _finish_head(g, xy, wh, obj, cls)


def _decode_gaussian(g: Graph, head: CfgLayer, a: A.GaussianYoloAttrs, x: int, net_w: int,
                     net_h: int) -> Decoded:
    # forward_gaussian_yolo_layer (gaussian_yolo_layer.c): per anchor 9 +
    # classes entries: x, sigma_x, y, sigma_y, w, sigma_w, h, sigma_h,
    # objectness, classes. Logistic on all but w and h; scale_x_y on the means
    # x and y. get_gaussian_yolo_box: as [yolo], then yolo_point moves a corner
    # to the centre. get_gaussian_yolo_detections: score = objectness * class *
    # (1 - mean of the four sigmas).
    _, hh, ww = head.input_shape
    anchors, entries = len(a.anchors), 9 + a.classes
    if head.input_shape[0] != anchors * entries:
        raise fail_decoding(head, f"an input of {head.input_shape[0]} channels, not {anchors} "
                                  f"anchors x {entries}")
    if a.yolo_point not in ("center", "left_top", "right_bottom"):
        raise fail_decoding(head, f"yolo_point={a.yolo_point}")
    five = g.reshape(x, anchors, entries, hh * ww)
    act = g.unary("sigmoid", five)
    means = g.concat(2, g.slice(act, 2, 0, 1), g.slice(act, 2, 2, 3))
    sigmas = g.concat(2, *(g.slice(act, 2, k, k + 1) for k in (1, 3, 5, 7)))
    twh = g.concat(2, g.slice(five, 2, 4, 5), g.slice(five, 2, 6, 7))
    obj, cls = g.slice(act, 2, 8, 9), g.slice(act, 2, 9, entries)
    xy = _xy(g, means, a.scale_x_y, hh, ww)
    wh = g.arith("mul", g.unary("exp", twh), _anchors(g, a.anchors, net_w, net_h))
    if a.yolo_point != "center":
        half = g.scalar_op("div", wh, 2)
        xy = g.arith("add" if a.yolo_point == "left_top" else "sub", xy, half)
    certainty = g.arith("sub", g.const(np.float32(1)), g.add(O.Mean(2), sigmas))
    return _finish_head(g, xy, wh, obj, g.arith("mul", cls, certainty))


def _decode_detection(g: Graph, head: CfgLayer, a: A.DetectionAttrs, x: int) -> Decoded:
    # forward_detection_layer / get_detection_detections (detection_layer.c):
    # a flat input of side*side*classes class scores (softmax per cell if set),
    # side*side*num confidences (no activation), side*side*num*4 coordinates,
    # all cell-major; bx = (x + col) / side, bw = w^2 with sqrt=1; score =
    # confidence * class. Entries here: anchor, then cell.
    s2, num, c = a.side * a.side, a.num, a.classes
    if a.coords != 4 or int(np.prod(head.input_shape)) != s2 * (5 * num + c):
        raise fail_decoding(head, f"a detection head with coords={a.coords} and "
                                  f"{int(np.prod(head.input_shape))} inputs")
    flat = g.reshape(x, -1)

    def part(begin: int, end: int, *shape: int) -> int:
        return g.reshape(g.slice(flat, 1, begin, end), *shape)

    cls = part(0, s2 * c, s2, c)
    if a.softmax:
        cls = g.add(O.Softmax(2), cls)
    conf = part(s2 * c, s2 * (c + num), s2, num)
    box = part(s2 * (c + num), s2 * (c + 5 * num), s2, num, 4)
    cells = np.arange(s2)
    grid = np.zeros((1, s2, 1, 2), np.float32)
    grid[0, :, 0, 0], grid[0, :, 0, 1] = cells % a.side, cells // a.side
    xy = g.arith("div", g.arith("add", g.slice(box, 3, 0, 2), g.const(grid, hint="cells")),
                 g.const(np.float32(a.side), hint="side"))
    wh = g.slice(box, 3, 2, 4)
    if a.sqrt:
        wh = g.arith("mul", wh, wh)
    boxes = g.reshape(g.transpose(g.concat(3, xy, wh), 0, 2, 1, 3), -1, 4)  # (N, num*S2, 4)
    conf_t = g.transpose(conf, 0, 2, 1)                                       # (N, num, S2)
    objectness = g.reshape(conf_t, -1)
    scores = g.arith("mul", g.reshape(conf_t, num, s2, 1), g.reshape(cls, 1, s2, c))
    return boxes, objectness, g.reshape(scores, -1, c)


def _decode_region(g: Graph, head: CfgLayer, a: A.RegionAttrs, x: int) -> Decoded:
    # forward_region_layer (region_layer.c): logistic on x, y and the
    # objectness, softmax over the classes; get_region_box: bx = (col + x) / w,
    # bw = exp(tw) * anchor_w / w (anchors in grid cells);
    # get_region_detections: score = objectness * class probability.
    _, hh, ww = head.input_shape
    anchors, entries = len(a.anchors), a.coords + 1 + a.classes
    if a.coords != 4 or head.input_shape[0] != anchors * entries:
        raise fail_decoding(head, f"a region head with coords={a.coords} and "
                                  f"{head.input_shape[0]} input channels")
    if not a.softmax:
        raise fail_decoding(head, "decoding a [region] head without softmax")
    # get_region_boxes: a softmax tree (hierarchy_predictions), or classfix=-1
    # zeroing a class below 0.5 objectness.
    if a.tree:
        raise fail_decoding(head, f"decoding a [region] head with tree={head.options['tree']}")
    if a.classfix:
        raise fail_decoding(head, f"decoding a [region] head with classfix={a.classfix}")
    txy, twh, obj, cls = _split_head(g, x, anchors, entries, hh, ww)
    xy = _xy(g, g.unary("sigmoid", txy), 1.0, hh, ww)
    obj = g.unary("sigmoid", obj)
    cls = g.add(O.Softmax(2), cls)
    wh = g.arith("mul", g.unary("exp", twh), _anchors(g, a.anchors, ww, hh))
    return _finish_head(g, xy, wh, obj, cls)

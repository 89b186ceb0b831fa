"""``yolo_io.keras.build``: a Keras 3 functional model (NHWC) computing a darknet
network, emitted from the shared lowering (:mod:`yolo_io._lowering`).

The lowering speaks NCHW; Keras runs images channels-last (TensorFlow's CPU
convolutions know no other). Each value here carries its layout: images stay
NHWC through convolutions, pooling and element-wise arithmetic, and an
operation that depends on memory order (a reshape, a transpose, a softmax or
mean over an axis) first turns its input back into NCHW, so that darknet's
order is kept exactly (a reorg, a head's decoding). Layers with arrays are
named after darknet's layer index: ``conv{i}``, ``bn{i}``, ``dense{i}``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from .._base.errors import ConversionError
from .._lowering import INPUT, Graph, lower
from .._lowering import ops as O
from .._lowering.ops import normalized_shortcut_weights
from .._model.fusion import BN_EPSILON
from .keras import _keras
from .source import Source, copy_array, layer_arrays, resolve

if TYPE_CHECKING:
    from .._model.config import Config
    from .._model.network import Network

__all__ = ["EMIT_BY_OP", "build"]

_TO_NHWC, _TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)
# The largest finite value of each compute dtype (-it pads a max pooling).
_LARGEST = {"float32": float(np.finfo(np.float32).max), "float16": 65504.0,
            "bfloat16": 3.3895313892515355e38, "float64": float(np.finfo(np.float64).max)}
_AXIS_NHWC = {1: 3, 2: 1, 3: 2}


def build(source: Source, *, outputs: Literal["raw", "decoded"] = "raw") -> Any:
    """A Keras 3 functional model that computes ``source``'s network as darknet does.

    Args:
        source: a loaded :class:`~yolo_io.Network` (its weights assigned;
            batch norm kept as ``BatchNormalization`` with darknet's epsilon;
            a partial file assigns the layers it holds), or a
            :class:`~yolo_io.Config` or cfg path (Keras' default
            initialisation).
        outputs: ``"raw"``: each head's input, in layer order (a classifier:
            its last layer's output); ``"decoded"``: ``boxes``,
            ``objectness``, ``scores`` as the ONNX export's.

    Returns:
        A ``keras.Model`` on any backend. Its input is ``(N, H, W, C)``: RGB
        in [0, 1] at the cfg's size, channels last. Four-dimensional outputs
        are channels last too (a raw head ``(N, H, W, anchors*(5+classes))``);
        the decoded ones are as the ONNX export's. ``model.output_names``
        names them. On the TensorFlow backend ``model.export(path)`` writes a
        SavedModel.

    Raises:
        ConversionError: a layer, option or activation with no faithful
            model, naming the layer and its cfg line.
        ImportError: Keras is missing.
    """
    keras = _keras()
    config, net, kind = resolve(source, outputs, caller="yolo_io.keras.build")
    graph = lower(config, outputs=kind)
    return _Emitter(keras, graph, config, net).model()


@dataclass
class _Value:
    """A tensor of the model being built (or a constant, still an array), and
    whether it holds an image channels-last."""

    tensor: Any
    nhwc: bool = False
    const: npt.NDArray[Any] | None = None


class _Emitter:
    def __init__(self, keras: Any, graph: Graph, config: Config, net: Network | None) -> None:
        self.keras, self.ops, self.graph, self.config, self.net = (keras, keras.ops, graph,
                                                                  config, net)

    def model(self) -> Any:
        c, h, w = self.config.input_shape
        image = self.keras.Input((h, w, c), name="input")
        values: dict[int, _Value] = {INPUT: _Value(image, nhwc=True)}
        for node in self.graph.nodes:
            emit = EMIT_BY_OP[type(node.op)]
            values[node.output] = emit(self, node.op, [values[v] for v in node.inputs],
                                       self.graph.shapes[node.output])
        outputs = []
        for out in self.graph.outputs:
            v = values[out.value]
            if v.const is not None:  # pragma: no cover - the lowering outputs tensors
                raise ConversionError(f"the output {out.name} is a constant")
            tensor = v.tensor
            if len(out.shape) == 3 and not v.nhwc:
                tensor = self.ops.transpose(tensor, _TO_NHWC)
            outputs.append(self.keras.layers.Identity(name=out.name)(tensor))
        return self.keras.Model(image, outputs, name="darknet")

    # -- layouts -------------------------------------------------------------

    def nchw(self, v: _Value) -> Any:
        """``v`` in the lowering's own layout (constants as arrays)."""
        if v.const is not None:
            return v.const
        return self.ops.transpose(v.tensor, _TO_NCHW) if v.nhwc else v.tensor

    def nhwc(self, v: _Value) -> Any:
        """``v``, an image (rank 4), channels last."""
        if v.const is not None:
            return np.transpose(v.const, _TO_NHWC) if v.const.ndim == 4 else v.const
        return v.tensor if v.nhwc else self.ops.transpose(v.tensor, _TO_NHWC)

    def elementwise(self, fn: Callable[..., Any], xs: Sequence[_Value]) -> _Value:
        """``fn`` of the inputs in one layout: channels last if any tensor is
        an image channels last (constants follow), else as the lowering's."""
        tensors = [v for v in xs if v.const is None]
        if not tensors:  # pragma: no cover - the lowering folds none
            raise ConversionError("an operation of constants alone")
        if any(v.nhwc for v in tensors):
            return _Value(fn(*(self.nhwc(v) for v in xs)), nhwc=True)
        return _Value(fn(*(self.nchw(v) for v in xs)))

    def arrays(self, index: int) -> Any:
        return layer_arrays(self.net, index)

    def fail(self, index: int, reason: str) -> ConversionError:
        layer = self.config[index]
        return ConversionError(f"{layer.location}: {reason}; Keras cannot express it")

    # -- operations with arrays ------------------------------------------------

    def batch_norm(self, x: Any, index: int) -> Any:
        layer = self.keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99,
                                                     name=f"bn{index}")
        y = layer(x)
        p = self.arrays(index)
        if p is not None:
            layer.set_weights([copy_array(p["scales"]), copy_array(p["biases"]),
                               copy_array(p["rolling_mean"]), copy_array(p["rolling_variance"])])
        return y

    def emit_conv(self, op: O.Conv, xs: list[_Value], shape: Any) -> _Value:
        layers = self.keras.layers
        # Keras' Conv2D takes no dilation with a stride above 1: then the
        # stride-1 convolution, every stride-th row and column kept (exact).
        strided = op.dilation > 1 and (op.stride_x > 1 or op.stride_y > 1)
        strides = (1, 1) if strided else (op.stride_y, op.stride_x)
        x = self.nhwc(xs[0])
        if op.pad:
            x = layers.ZeroPadding2D(op.pad, name=f"pad{op.layer}")(x)
        conv = layers.Conv2D(op.filters, op.size, strides=strides,
                             padding="valid", dilation_rate=op.dilation, groups=op.groups,
                             use_bias=not op.batch_normalize, name=f"conv{op.layer}")
        y = conv(x)
        p = self.arrays(op.layer)
        if p is not None:
            kernel = copy_array(p["weights"]).reshape(op.filters, op.channels // op.groups,
                                                      op.size, op.size).transpose(2, 3, 1, 0)
            conv.set_weights([kernel] if op.batch_normalize else
                             [kernel, copy_array(p["biases"])])
        if strided:
            y = y[:, ::op.stride_y, ::op.stride_x, :]
        if op.batch_normalize:
            y = self.batch_norm(y, op.layer)
        return _Value(y, nhwc=True)

    def emit_dense(self, op: O.Dense, xs: list[_Value], shape: Any) -> _Value:
        dense = self.keras.layers.Dense(op.outputs, use_bias=not op.batch_normalize,
                                        name=f"dense{op.layer}")
        y = dense(self.nchw(xs[0]))
        p = self.arrays(op.layer)
        if p is not None:
            kernel = copy_array(p["weights"]).reshape(op.outputs, op.inputs).T
            dense.set_weights([kernel] if op.batch_normalize else
                              [kernel, copy_array(p["biases"])])
        if op.batch_normalize:
            y = self.batch_norm(y, op.layer)
        return _Value(y)

    def emit_local(self, op: O.Local, xs: list[_Value], shape: Any) -> _Value:
        # The k*k shifted, strided views of the padded input side by side in
        # (dy, dx, c) order (no im2col kernel: that constant grows as c^2),
        # then per output position its own matrix.
        ops = self.ops
        c, k, s = op.channels, op.size, op.stride
        p = self.arrays(op.layer)
        if p is None:
            raise self.fail(op.layer, "a locally connected layer without weights to assign "
                                      "(Keras 3 has no trainable LocallyConnected2D)")
        x = self.nhwc(xs[0])
        if op.pad:
            x = ops.pad(x, [[0, 0], [op.pad, op.pad], [op.pad, op.pad], [0, 0]])
        oh, ow = op.out_h, op.out_w
        views = [x[:, dy:dy + s * (oh - 1) + 1:s, dx:dx + s * (ow - 1) + 1:s, :]
                 for dy in range(k) for dx in range(k)]
        cols = ops.reshape(ops.concatenate(views, axis=-1), (-1, oh * ow, k * k * c))
        # darknet's (position, filter, c, dy, dx) as (position, filter, dy, dx, c)
        weights = copy_array(p["weights"]).reshape(oh * ow, op.filters, c, k, k)
        weights = weights.transpose(0, 1, 3, 4, 2).reshape(oh * ow, op.filters, k * k * c)
        y = ops.einsum("blk,lfk->blf", cols, np.ascontiguousarray(weights))
        bias = copy_array(p["biases"]).reshape(op.filters, oh, ow).transpose(1, 2, 0)
        y = ops.reshape(y, (-1, oh, ow, op.filters)) + bias[None]
        return _Value(y, nhwc=True)

    def emit_batchnorm(self, op: O.BatchNorm, xs: list[_Value], shape: Any) -> _Value:
        return _Value(self.batch_norm(self.nhwc(xs[0]), op.layer), nhwc=True)

    def emit_weighted_sum(self, op: O.WeightedSum, xs: list[_Value], shape: Any) -> _Value:
        p = self.arrays(op.layer)
        per = shape[0] if op.per_channel else 1
        stored = copy_array(p["weights"]) if p is not None else np.ones(op.n * per, np.float32)
        w = normalized_shortcut_weights(stored, op).astype(np.float32)
        y = self.nhwc(xs[0]) * w[0]
        for x, row in zip(xs[1:], w[1:], strict=True):
            y = y + self.nhwc(x) * row
        return _Value(y, nhwc=True)

    # -- the rest --------------------------------------------------------------

    def emit_const(self, op: O.Const, xs: list[_Value], shape: Any) -> _Value:
        return _Value(None, const=np.asarray(op.value))

    def emit_pool(self, op: O.Pool, xs: list[_Value], shape: Any) -> _Value:
        ops, layers = self.ops, self.keras.layers
        top, left, bottom, right = op.pads
        x = self.nhwc(xs[0])
        pads = [[0, 0], [top, bottom], [left, right], [0, 0]]
        k, s = op.size, (op.stride_y, op.stride_x)
        if op.kind == "max":
            if any(op.pads):  # darknet ignores cells outside: they never win
                dtype = self.keras.config.dtype_policy().compute_dtype  # mixed precision
                x = ops.pad(x, pads, constant_values=-_LARGEST.get(dtype, _LARGEST["float32"]))
            return _Value(layers.MaxPooling2D(k, s, padding="valid")(x), nhwc=True)
        y = layers.AveragePooling2D(k, s, padding="valid")(
            ops.pad(x, pads) if any(op.pads) else x)
        if any(op.pads):  # cells outside are not counted
            inside = np.pad(np.ones((x.shape[1], x.shape[2]), np.float32),
                            [[top, bottom], [left, right]])
            counts = np.lib.stride_tricks.sliding_window_view(inside, (k, k))[::s[0], ::s[1]]
            y = y / counts.mean(axis=(2, 3))[None, :, :, None].astype(np.float32)
        return _Value(y, nhwc=True)

    def emit_upsample(self, op: O.Upsample, xs: list[_Value], shape: Any) -> _Value:
        return _Value(self.keras.layers.UpSampling2D(op.stride, interpolation="nearest")(
            self.nhwc(xs[0])), nhwc=True)

    def emit_reshape(self, op: O.Reshape, xs: list[_Value], shape: Any) -> _Value:
        return _Value(self.ops.reshape(self.nchw(xs[0]), (-1, *shape)))

    def emit_slice(self, op: O.Slice, xs: list[_Value], shape: Any) -> _Value:
        v = xs[0]
        axis = _AXIS_NHWC[op.axis] if v.nhwc else op.axis
        index = (slice(None),) * axis + (slice(op.begin, op.end),)
        return _Value(v.tensor[index], nhwc=v.nhwc)

    def emit_concat(self, op: O.Concat, xs: list[_Value], shape: Any) -> _Value:
        if all(v.nhwc for v in xs):
            return _Value(self.ops.concatenate([v.tensor for v in xs], _AXIS_NHWC[op.axis]),
                          nhwc=True)
        return _Value(self.ops.concatenate([self.nchw(v) for v in xs], op.axis))


def _emit_unary(e: _Emitter, op: O.Unary, xs: list[_Value], shape: Any) -> _Value:
    ops = e.ops
    fns: dict[str, Callable[[Any], Any]] = {
        "sigmoid": ops.sigmoid, "tanh": ops.tanh, "exp": ops.exp, "relu": ops.relu,
        "softplus": ops.softplus, "mish": lambda x: x * ops.tanh(ops.softplus(x)),
        "identity": lambda x: x}
    return e.elementwise(fns[op.kind], xs)


def _elementwise(fn: Callable[[_Emitter, Any], Callable[..., Any]]
                 ) -> Callable[[_Emitter, Any, list[_Value], Any], _Value]:
    def emit(e: _Emitter, op: Any, xs: list[_Value], shape: Any) -> _Value:
        return e.elementwise(fn(e, op), xs)
    return emit


def _in_nchw(fn: Callable[[_Emitter, Any], Callable[[Any], Any]]
             ) -> Callable[[_Emitter, Any, list[_Value], Any], _Value]:
    def emit(e: _Emitter, op: Any, xs: list[_Value], shape: Any) -> _Value:
        return _Value(fn(e, op)(e.nchw(xs[0])))
    return emit


_ARITH = {"add": "add", "sub": "subtract", "mul": "multiply", "div": "divide"}

#: The Keras emitter of each lowered operation; tests/test_kinds.py checks that
#: every operation has one.
EMIT_BY_OP: dict[type[O.Op], Callable[[_Emitter, Any, list[_Value], Any], _Value]] = {
    O.Conv: _Emitter.emit_conv,
    O.Dense: _Emitter.emit_dense,
    O.Local: _Emitter.emit_local,
    O.BatchNorm: _Emitter.emit_batchnorm,
    O.WeightedSum: _Emitter.emit_weighted_sum,
    O.Const: _Emitter.emit_const,
    O.Arith: _elementwise(lambda e, op: getattr(e.ops, _ARITH[op.kind])),
    O.Unary: _emit_unary,
    O.LeakyRelu: _elementwise(lambda e, op: lambda x: e.ops.leaky_relu(x, op.alpha)),
    O.Elu: _elementwise(lambda e, op: lambda x: e.ops.elu(x, op.alpha)),
    # darknet's constants (activations.h), not Keras' more precise SELU ones.
    O.Selu: _elementwise(lambda e, op: lambda x: op.gamma * e.ops.elu(x, op.alpha)),
    O.Clip: _elementwise(lambda e, op: lambda x: e.ops.clip(x, op.low, op.high)),
    O.Compare: _elementwise(lambda e, op: e.ops.greater if op.kind == "greater" else e.ops.less),
    O.Where: _elementwise(lambda e, op: e.ops.where),
    O.Pool: _Emitter.emit_pool,
    O.GlobalAvgPool: lambda e, op, xs, shape: _Value(e.ops.mean(e.nhwc(xs[0]), axis=(1, 2),
                                                                keepdims=True), nhwc=True),
    O.Upsample: _Emitter.emit_upsample,
    O.Reshape: _Emitter.emit_reshape,
    O.Transpose: _in_nchw(lambda e, op: lambda x: e.ops.transpose(x, op.perm)),
    O.Slice: _Emitter.emit_slice,
    O.Concat: _Emitter.emit_concat,
    O.PadEnd: _in_nchw(lambda e, op: lambda x: e.ops.pad(x, [[0, 0], [0, op.count]])),
    O.Softmax: _in_nchw(lambda e, op: lambda x: e.ops.softmax(x, axis=op.axis)),
    O.Mean: _in_nchw(lambda e, op: lambda x: e.ops.mean(x, axis=op.axis, keepdims=True)),
    O.Dropout: lambda e, op, xs, shape: _Value(e.keras.layers.Dropout(op.probability)(
        xs[0].tensor), nhwc=xs[0].nhwc),
}

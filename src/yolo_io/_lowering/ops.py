"""The operations a darknet network lowers to: a small, framework-neutral set,
each a frozen record of typed arguments, with its output shape.

Conventions, the same in every backend:

* Tensors carry a leading batch axis; shapes here leave it out. An ``axis``
  counts the batch axis (1 is the channels of an image), as in ONNX.
* Images are NCHW in meaning; a backend that runs NHWC (Keras) translates.
* Operations that read a layer's arrays (:class:`Conv`, :class:`Dense`,
  :class:`Local`, :class:`BatchNorm`, :class:`WeightedSum`) name the layer; the
  backend decides how to hold them (the ONNX export fuses batch norm into the
  convolution; a PyTorch module keeps ``BatchNorm2d`` so that it can train).

Every other piece of darknet's semantics (its activations' formulas, its
pooling windows, the heads' decoding) is composed from these operations once,
in :mod:`yolo_io._lowering.darknet`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Shape = tuple[int, ...]


class Op:
    """An operation; subclasses are frozen dataclasses."""

    def shape(self, inputs: list[Shape]) -> Shape:
        """The output's shape (without the batch axis) from the inputs'."""
        return inputs[0]


def _out(size: int, k: int, stride: int, before: int, after: int) -> int:
    return (size + before + after - k) // stride + 1


# -- arrays of a layer ----------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Conv(Op):
    """darknet's convolution (forward_convolutional_layer) of layer ``layer``:
    weights (filters, channels/groups, size, size), padding ``pad`` on every
    side, then batch norm at inference (``batch_normalize``) or the bias."""

    layer: int
    channels: int
    filters: int
    size: int
    stride_y: int
    stride_x: int
    pad: int
    dilation: int
    groups: int
    batch_normalize: bool

    def shape(self, inputs: list[Shape]) -> Shape:
        _, h, w = inputs[0]
        k = self.dilation * (self.size - 1) + 1
        return (self.filters, _out(h, k, self.stride_y, self.pad, self.pad),
                _out(w, k, self.stride_x, self.pad, self.pad))


@dataclass(frozen=True, eq=False)
class Dense(Op):
    """darknet's connected layer ``layer`` on a flat (N, inputs) input:
    weights (outputs, inputs), then batch norm or the bias."""

    layer: int
    inputs: int
    outputs: int
    batch_normalize: bool

    def shape(self, inputs: list[Shape]) -> Shape:
        return (self.outputs,)


@dataclass(frozen=True, eq=False)
class Local(Op):
    """darknet's locally connected layer (forward_local_layer): im2col with
    ``pad`` pixels, then per output position its own (filters, channels*size*
    size) matrix; a bias per output element."""

    layer: int
    channels: int
    filters: int
    size: int
    stride: int
    pad: int
    out_h: int
    out_w: int

    def shape(self, inputs: list[Shape]) -> Shape:
        return (self.filters, self.out_h, self.out_w)


@dataclass(frozen=True, eq=False)
class BatchNorm(Op):
    """A [batchnorm] layer at inference: (x - mean) / sqrt(var + eps) * scale + bias."""

    layer: int
    channels: int


@dataclass(frozen=True, eq=False)
class WeightedSum(Op):
    """A weighted [shortcut]'s sum of its ``n`` inputs (all of one shape),
    each scaled by its weight (one per input, or one per input and channel),
    normalized as shortcut_multilayer_cpu (blas.c) normalizes them: relu:
    relu(w) / (1e-4 + sum relu(w)); softmax: exp(w - max) / (1e-4 + sum exp(w -
    max)); none: as stored."""

    layer: int
    n: int
    per_channel: bool
    normalization: Literal["none", "relu", "softmax"]


# -- constants and element-wise arithmetic ---------------------------------------


@dataclass(frozen=True, eq=False)
class Const(Op):
    """A float32 (or int64) constant; its shape includes a leading 1 where it
    broadcasts over the batch, and is ``()`` for a scalar."""

    value: npt.NDArray[np.generic]
    #: What it is (``"anchors"``, ``"grid"``, ...), for the names backends give it.
    hint: str = "c"

    def shape(self, inputs: list[Shape]) -> Shape:
        return tuple(self.value.shape[1:]) if self.value.ndim else ()


def _broadcast(a: Shape, b: Shape) -> Shape:
    return tuple(np.broadcast_shapes(a, b))


@dataclass(frozen=True, eq=False)
class Arith(Op):
    """``a (+ - * /) b``, broadcast."""

    kind: Literal["add", "sub", "mul", "div"]

    def shape(self, inputs: list[Shape]) -> Shape:
        return _broadcast(inputs[0], inputs[1])


@dataclass(frozen=True, eq=False)
class Unary(Op):
    """An element-wise function: ``sigmoid``, ``tanh``, ``exp``, ``relu``,
    ``softplus`` (log(1 + exp(x))), ``mish`` (x * tanh(softplus(x))),
    ``identity``."""

    kind: Literal["sigmoid", "tanh", "exp", "relu", "softplus", "mish", "identity"]


@dataclass(frozen=True, eq=False)
class LeakyRelu(Op):
    alpha: float


@dataclass(frozen=True, eq=False)
class Elu(Op):
    alpha: float


@dataclass(frozen=True, eq=False)
class Selu(Op):
    alpha: float
    gamma: float


@dataclass(frozen=True, eq=False)
class Clip(Op):
    low: float
    high: float


@dataclass(frozen=True, eq=False)
class Compare(Op):
    """``a > b`` or ``a < b``, a boolean tensor."""

    kind: Literal["greater", "less"]

    def shape(self, inputs: list[Shape]) -> Shape:
        return _broadcast(inputs[0], inputs[1])


@dataclass(frozen=True, eq=False)
class Where(Op):
    """``condition ? a : b``, broadcast."""

    def shape(self, inputs: list[Shape]) -> Shape:
        return _broadcast(_broadcast(inputs[0], inputs[1]), inputs[2])


# -- images ----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Pool(Op):
    """darknet's max or local average pooling (maxpool_layer.c): windows of
    ``size`` from ``-pad_top, -pad_left``, input cells outside ignored (max; a
    window wholly outside gives -FLT_MAX) or not counted (average); ``pads``
    are (top, left, bottom, right)."""

    kind: Literal["max", "average"]
    size: int
    stride_y: int
    stride_x: int
    pads: tuple[int, int, int, int]

    def shape(self, inputs: list[Shape]) -> Shape:
        c, h, w = inputs[0]
        top, left, bottom, right = self.pads
        return (c, _out(h, self.size, self.stride_y, top, bottom),
                _out(w, self.size, self.stride_x, left, right))


@dataclass(frozen=True, eq=False)
class GlobalAvgPool(Op):
    """The mean of each channel, (N, C, 1, 1)."""

    def shape(self, inputs: list[Shape]) -> Shape:
        return (inputs[0][0], 1, 1)


@dataclass(frozen=True, eq=False)
class Upsample(Op):
    """Nearest-neighbour upsampling by an integer ``stride`` (upsample_cpu)."""

    stride: int

    def shape(self, inputs: list[Shape]) -> Shape:
        c, h, w = inputs[0]
        return (c, h * self.stride, w * self.stride)


# -- memory order ----------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Reshape(Op):
    """The tensor's elements in row-major (NCHW) order, in a new shape (the
    batch axis kept; one -1 allowed)."""

    to: Shape

    def shape(self, inputs: list[Shape]) -> Shape:
        n = math.prod(inputs[0])
        known = math.prod(d for d in self.to if d != -1)
        out = tuple(n // known if d == -1 else d for d in self.to)
        if math.prod(out) != n:
            raise ValueError(f"a reshape of {inputs[0]} ({n} values) to {self.to}")
        return out


@dataclass(frozen=True, eq=False)
class Dropout(Op):
    """darknet's dropout: the input at inference; in training each value
    dropped with ``probability``, the rest scaled by 1 / (1 - probability)."""

    probability: float


@dataclass(frozen=True, eq=False)
class Transpose(Op):
    """Axes permuted; ``perm`` counts the batch axis and keeps it first."""

    perm: tuple[int, ...]

    def shape(self, inputs: list[Shape]) -> Shape:
        full = (1, *inputs[0])
        return tuple(full[p] for p in self.perm[1:])


@dataclass(frozen=True, eq=False)
class Slice(Op):
    """Elements ``begin:end`` of ``axis``."""

    axis: int
    begin: int
    end: int

    def shape(self, inputs: list[Shape]) -> Shape:
        s = list(inputs[0])
        s[self.axis - 1] = self.end - self.begin
        return tuple(s)


@dataclass(frozen=True, eq=False)
class Concat(Op):
    axis: int

    def shape(self, inputs: list[Shape]) -> Shape:
        s = list(inputs[0])
        s[self.axis - 1] = sum(i[self.axis - 1] for i in inputs)
        return tuple(s)


@dataclass(frozen=True, eq=False)
class PadEnd(Op):
    """Zeros appended to the last axis of a flat (N, n) tensor: (N, n + count)."""

    count: int

    def shape(self, inputs: list[Shape]) -> Shape:
        return (inputs[0][0] + self.count,)


@dataclass(frozen=True, eq=False)
class Softmax(Op):
    axis: int


@dataclass(frozen=True, eq=False)
class Mean(Op):
    """The mean over ``axis``, kept as a size-1 axis."""

    axis: int

    def shape(self, inputs: list[Shape]) -> Shape:
        s = list(inputs[0])
        s[self.axis - 1] = 1
        return tuple(s)


#: Every operation, for the backends' completeness tests.
OPS: tuple[type[Op], ...] = (
    Conv, Dense, Local, BatchNorm, WeightedSum, Const, Arith, Unary, LeakyRelu, Elu, Selu,
    Clip, Compare, Where, Pool, GlobalAvgPool, Upsample, Reshape, Transpose, Slice, Concat,
    PadEnd, Softmax, Mean, Dropout)


def normalized_shortcut_weights(weights: npt.ArrayLike, op: WeightedSum) -> npt.NDArray[np.float64]:
    """A weighted shortcut's stored ``weights`` as :class:`WeightedSum`
    applies them, in double precision: (n, 1) or (n, channels)."""
    w = np.asarray(weights, np.float64).reshape(op.n, -1)
    if op.normalization == "relu":
        v = np.maximum(w, 0)
        w = v / (0.0001 + v.sum(axis=0))
    elif op.normalization == "softmax":
        v = np.exp(w - w.max(axis=0))
        w = v / (0.0001 + v.sum(axis=0))
    return w

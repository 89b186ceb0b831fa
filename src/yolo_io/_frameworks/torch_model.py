"""The PyTorch model of a lowered network (imported by
:func:`yolo_io.torch.build` once torch is needed): one small PyTorch function
per lowered operation, ``EMIT_BY_OP``.

A step of ``forward`` is (operation, inputs, output, values to drop), and its
function ``fn(model, op, output, *inputs)`` finds its modules and constants
in the model when called: the model holds no closures, so it pickles
(``torch.save(model)``), and a copy (``copy.deepcopy``, as an EMA of the
weights makes) computes with its own parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._lowering import INPUT, Graph
from .._lowering import ops as O
from .._model.fusion import BN_EPSILON
from .source import copy_array, layer_arrays, owner_of_arrays

if TYPE_CHECKING:
    from .._model.config import Config
    from .._model.network import Network

__all__ = ["BN_MOMENTUM", "EMIT_BY_OP", "DarknetModel"]

#: darknet's batch-norm update: rolling = .99 * rolling + .01 * batch.
BN_MOMENTUM = 0.01

Step = tuple[O.Op, tuple[int, ...], int, tuple[int, ...]]


class DarknetModel(nn.Module):
    """A darknet network as a PyTorch module (made by :func:`yolo_io.torch.build`).

    ``layers[i]`` holds darknet layer ``i``'s parameters (``conv``, ``bn``,
    ``linear``, or darknet's own names); ``output_names`` names ``forward``'s
    results; ``config`` is the parsed cfg."""

    def __init__(self, graph: Graph, config: Config, net: Network | None) -> None:
        super().__init__()
        self.config = config
        self.output_names = tuple(o.name for o in graph.outputs)
        self.layers = nn.ModuleList(nn.Module() for _ in range(len(config)))
        last_use: dict[int, int] = {}
        for position, node in enumerate(graph.nodes):
            for v in node.inputs:
                last_use[v] = position
        kept = {o.value for o in graph.outputs}
        fresh = {n.output for n in graph.nodes if isinstance(n.op, _FRESH)}
        steps: list[Step] = []
        for position, node in enumerate(graph.nodes):
            make = _MAKERS.get(type(node.op))
            if make is not None:
                make(self, node.op, net, graph.shapes[node.output], node.output)
            drop = tuple(v for v in dict.fromkeys(node.inputs)
                         if last_use[v] == position and v not in kept)
            op = node.op
            if isinstance(op, (O.Unary, O.LeakyRelu)) and node.inputs[0] in drop and \
                    node.inputs[0] in fresh:
                # Its input is a tensor of its own, read by nothing else: the
                # activation may overwrite it when no gradient is recorded.
                op = _InPlace(op)
            steps.append((op, node.inputs, node.output, drop))
        self._steps = steps
        self._outputs = tuple(o.value for o in graph.outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        values: dict[int, torch.Tensor] = {INPUT: x}
        for op, inputs, output, drop in self._steps:
            fn = _in_place if type(op) is _InPlace else EMIT_BY_OP[type(op)]
            values[output] = fn(self, op, output, *[values[v] for v in inputs])
            for v in drop:
                del values[v]
        if len(self._outputs) == 1:
            return values[self._outputs[0]]
        return tuple(values[v] for v in self._outputs)

    def extra_repr(self) -> str:
        return f"cfg={self.config.path!s}, outputs={list(self.output_names)}"


# -- parameters, made once ------------------------------------------------------
#
# A module whose values come from darknet's arrays is made on the meta device
# (no initialisation, no memory) and given tensors over one copy of each array;
# one without (a cfg alone, past the end of a partial file) is initialised as
# PyTorch does.

Arrays = Mapping[str, Any] | None


def _device(p: Arrays) -> str | None:
    return "meta" if p is not None else None


def _tensor(a: Any, shape: Sequence[int] | None = None) -> torch.Tensor:
    t = torch.from_numpy(copy_array(a))
    return t if shape is None else t.reshape(tuple(shape))


def _bn(channels: int, dims: int, p: Arrays) -> nn.Module:
    m = (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(
        channels, eps=BN_EPSILON, momentum=BN_MOMENTUM, device=_device(p))
    if p is not None:
        m.weight = nn.Parameter(_tensor(p["scales"]))
        m.bias = nn.Parameter(_tensor(p["biases"]))
        m.running_mean = _tensor(p["rolling_mean"])
        m.running_var = _tensor(p["rolling_variance"])
        m.num_batches_tracked = torch.tensor(0, dtype=torch.long)
    return m


def _make_conv(model: DarknetModel, op: O.Conv, net: Network | None, shape: Any,
               v: int) -> None:
    if owner_of_arrays(model.config, op.layer) != op.layer:
        return  # share_index: computes with the owner's modules (_conv)
    p = layer_arrays(net, op.layer)
    conv = nn.Conv2d(op.channels, op.filters, op.size, stride=(op.stride_y, op.stride_x),
                     padding=op.pad, dilation=op.dilation, groups=op.groups,
                     bias=not op.batch_normalize, device=_device(p))
    if p is not None:
        conv.weight = nn.Parameter(_tensor(p["weights"], conv.weight.shape))
        if not op.batch_normalize:
            conv.bias = nn.Parameter(_tensor(p["biases"]))
    owner = model.layers[op.layer]
    owner.conv = conv
    if op.batch_normalize:
        owner.bn = _bn(op.filters, 2, p)


def _make_dense(model: DarknetModel, op: O.Dense, net: Network | None, shape: Any,
                v: int) -> None:
    p = layer_arrays(net, op.layer)
    owner = model.layers[op.layer]
    owner.linear = linear = nn.Linear(op.inputs, op.outputs, bias=not op.batch_normalize,
                                      device=_device(p))
    if p is not None:
        linear.weight = nn.Parameter(_tensor(p["weights"], linear.weight.shape))
        if not op.batch_normalize:
            linear.bias = nn.Parameter(_tensor(p["biases"]))
    if op.batch_normalize:
        owner.bn = _bn(op.outputs, 1, p)


def _darknet_parameter(model: DarknetModel, net: Network | None, index: int, name: str,
                       init: Callable[[torch.Tensor], Any]) -> None:
    """Layer ``index``'s darknet array ``name``, in darknet's shape (its
    parameter spec's, which yolo_io.save expects back)."""
    shape = next(s.shape for s in model.config[index].param_specs if s.name == name)
    p = layer_arrays(net, index)
    if p is not None:
        value = _tensor(p[name], shape)
    else:
        value = torch.empty(tuple(shape))
        init(value)
    model.layers[index].register_parameter(name, nn.Parameter(value))


def _make_local(model: DarknetModel, op: O.Local, net: Network | None, shape: Any,
                v: int) -> None:
    bound = 1 / math.sqrt(op.channels * op.size * op.size)
    _darknet_parameter(model, net, op.layer, "weights",
                       lambda t: nn.init.uniform_(t, -bound, bound))
    _darknet_parameter(model, net, op.layer, "biases", nn.init.zeros_)


def _make_batchnorm(model: DarknetModel, op: O.BatchNorm, net: Network | None, shape: Any,
                    v: int) -> None:
    model.layers[op.layer].bn = _bn(op.channels, 2, layer_arrays(net, op.layer))


def _make_weighted_sum(model: DarknetModel, op: O.WeightedSum, net: Network | None,
                       shape: Any, v: int) -> None:
    # darknet initialises them to 1 (make_shortcut_layer).
    _darknet_parameter(model, net, op.layer, "weights", nn.init.ones_)


def _make_const(model: DarknetModel, op: O.Const, net: Network | None, shape: Any,
                v: int) -> None:
    model.register_buffer(f"const_{v}", torch.from_numpy(np.array(op.value)), persistent=False)


_MAKERS: dict[type[O.Op], Callable[..., None]] = {
    O.Conv: _make_conv, O.Dense: _make_dense, O.Local: _make_local,
    O.BatchNorm: _make_batchnorm, O.WeightedSum: _make_weighted_sum, O.Const: _make_const}


# -- the forward, one function per operation -------------------------------------


def _conv(m: DarknetModel, op: O.Conv, v: int, x: torch.Tensor) -> torch.Tensor:
    source = owner_of_arrays(m.config, op.layer)
    owner: Any = m.layers[source]
    conv: Any = owner.conv
    if source == op.layer:
        y = conv(x)
    else:  # share_index: the owner's parameters, this layer's stride, padding, dilation
        y = F.conv2d(x, conv.weight, conv.bias, (op.stride_y, op.stride_x), op.pad,
                     op.dilation, op.groups)
    return owner.bn(y) if op.batch_normalize else y  # type: ignore[no-any-return]


def _dense(m: DarknetModel, op: O.Dense, v: int, x: torch.Tensor) -> torch.Tensor:
    layer: Any = m.layers[op.layer]
    y = layer.linear(x)
    return layer.bn(y) if op.batch_normalize else y  # type: ignore[no-any-return]


def _local(m: DarknetModel, op: O.Local, v: int, x: torch.Tensor) -> Any:
    layer: Any = m.layers[op.layer]
    ckk, positions = op.channels * op.size * op.size, op.out_h * op.out_w
    cols = F.unfold(x, op.size, padding=op.pad, stride=op.stride)     # (N, ckk, L)
    y = torch.einsum("bkl,lfk->bfl", cols, layer.weights.reshape(positions, op.filters, ckk))
    return (y.reshape(x.shape[0], op.filters, op.out_h, op.out_w)
            + layer.biases.reshape(1, op.filters, op.out_h, op.out_w))


def _weighted_sum(m: DarknetModel, op: O.WeightedSum, v: int, *xs: torch.Tensor) -> Any:
    layer: Any = m.layers[op.layer]
    w = layer.weights.reshape(op.n, -1)
    if op.normalization == "relu":
        r = torch.relu(w)
        w = r / (0.0001 + r.sum(0))
    elif op.normalization == "softmax":
        e = torch.exp(w - w.max(0).values)
        w = e / (0.0001 + e.sum(0))
    per = w.shape[1]
    y = xs[0] * w[0].reshape(1, per, 1, 1)
    for k in range(1, op.n):
        y = y + xs[k] * w[k].reshape(1, per, 1, 1)
    return y


def _pool(m: DarknetModel, op: O.Pool, v: int, x: torch.Tensor) -> torch.Tensor:
    top, left, bottom, right = op.pads
    pads, k, s = (left, right, top, bottom), op.size, (op.stride_y, op.stride_x)
    if op.kind == "max":
        if top == left == bottom == right and 2 * top <= k:  # no window wholly outside
            return F.max_pool2d(x, k, s, padding=top)
        if any(op.pads):  # darknet ignores cells outside: they never win
            x = F.pad(x, pads, value=-torch.finfo(x.dtype).max)
        return F.max_pool2d(x, k, s)
    if not any(op.pads):
        return F.avg_pool2d(x, k, s)
    # Cells outside the input are not counted: divided by the share of each
    # window inside it.
    inside = F.avg_pool2d(F.pad(x.new_ones((1, 1, *x.shape[2:])), pads), k, s)
    return F.avg_pool2d(F.pad(x, pads), k, s) / inside


# Operations whose output is a new tensor, never a view of another value.
_FRESH = (O.Conv, O.Dense, O.BatchNorm, O.Local, O.WeightedSum)


@dataclass(frozen=True, eq=False)
class _InPlace(O.Op):
    """An activation that may overwrite its input (see DarknetModel.__init__)."""

    op: O.Unary | O.LeakyRelu


_INPLACE: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid_, "tanh": torch.tanh_, "exp": torch.exp_, "relu": torch.relu_,
    "mish": lambda x: F.mish(x, inplace=True)}


def _in_place(m: DarknetModel, op: O.Op, v: int, x: torch.Tensor) -> torch.Tensor:
    assert isinstance(op, _InPlace)
    inner = op.op
    if torch.is_grad_enabled():  # autograd needs the input: as usual
        return EMIT_BY_OP[type(inner)](m, inner, v, x)
    if isinstance(inner, O.LeakyRelu):
        return F.leaky_relu(x, inner.alpha, inplace=True)
    fn = _INPLACE.get(inner.kind)
    return fn(x) if fn is not None else EMIT_BY_OP[O.Unary](m, inner, v, x)


_ARITH: dict[str, Callable[..., torch.Tensor]] = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}
_UNARY: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "exp": torch.exp, "relu": torch.relu,
    "softplus": F.softplus, "mish": F.mish, "identity": lambda x: x}

#: The PyTorch function of each lowered operation; tests/test_kinds.py checks
#: that every operation has one.
EMIT_BY_OP: dict[type[O.Op], Callable[..., torch.Tensor]] = {
    O.Conv: _conv,
    O.Dense: _dense,
    O.Local: _local,
    O.BatchNorm: lambda m, op, v, x: m.layers[op.layer].bn(x),
    O.WeightedSum: _weighted_sum,
    O.Const: lambda m, op, v: getattr(m, f"const_{v}"),
    O.Arith: lambda m, op, v, a, b: _ARITH[op.kind](a, b),
    O.Unary: lambda m, op, v, x: _UNARY[op.kind](x),
    O.LeakyRelu: lambda m, op, v, x: F.leaky_relu(x, op.alpha),
    O.Elu: lambda m, op, v, x: F.elu(x, op.alpha),
    # darknet's constants (activations.h), not torch's more precise SELU ones.
    O.Selu: lambda m, op, v, x: op.gamma * F.elu(x, op.alpha),
    O.Clip: lambda m, op, v, x: torch.clamp(x, op.low, op.high),
    O.Compare: lambda m, op, v, a, b: torch.gt(a, b) if op.kind == "greater" else torch.lt(a, b),
    O.Where: lambda m, op, v, c, a, b: torch.where(c, a, b),
    O.Pool: _pool,
    O.GlobalAvgPool: lambda m, op, v, x: x.mean((2, 3), keepdim=True),
    O.Upsample: lambda m, op, v, x: x.repeat_interleave(op.stride, 2).repeat_interleave(
        op.stride, 3),
    O.Reshape: lambda m, op, v, x: x.reshape(x.shape[0], *op.to),
    O.Transpose: lambda m, op, v, x: x.permute(op.perm),
    O.Slice: lambda m, op, v, x: x.narrow(op.axis, op.begin, op.end - op.begin),
    O.Concat: lambda m, op, v, *xs: torch.cat(xs, op.axis),
    O.PadEnd: lambda m, op, v, x: F.pad(x, (0, op.count)),
    O.Softmax: lambda m, op, v, x: torch.softmax(x, op.axis),
    O.Mean: lambda m, op, v, x: x.mean(op.axis, keepdim=True),
    O.Dropout: lambda m, op, v, x: F.dropout(x, op.probability, training=m.training),
}

"""``yolo_io.torch.build``: a PyTorch module computing a darknet network, emitted
from the shared lowering (:mod:`yolo_io._lowering`): one small PyTorch
function per lowered operation, darknet's semantics written once there.

Parameters are named as the ``"yolo_io"`` state-dict naming names them
(``layers.{i}.conv.weight``, ``layers.{i}.bn.*``, ``layers.{i}.linear.*``,
darknet's names for the rest), so ``yolo_io.save(path, model.state_dict(),
cfg)`` writes the model back as darknet weights. Batch norm stays a
``BatchNorm2d`` with darknet's epsilon and momentum, so the model trains.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .._lowering import INPUT, Graph, lower
from .._lowering import ops as O
from .._model.fusion import BN_EPSILON
from .source import Source, copy_array, layer_arrays, owner_of_arrays, resolve

if TYPE_CHECKING:
    import torch

    from .._model.config import Config
    from .._model.network import Network

__all__ = ["build"]

#: darknet's batch-norm update: rolling = .99 * rolling + .01 * batch.
BN_MOMENTUM = 0.01


def build(source: Source, *, outputs: Literal["raw", "decoded"] = "raw") -> torch.nn.Module:
    """A ``torch.nn.Module`` that computes ``source``'s network as darknet does.

    Args:
        source: a loaded :class:`~yolo_io.Network` (its weights assigned,
            unfused: batch norm stays ``BatchNorm2d`` with darknet's epsilon,
            so the model can be fine-tuned; a partial file such as
            ``yolov4.conv.137`` assigns the layers it holds and initialises
            the rest as from a cfg), or a :class:`~yolo_io.Config` or cfg path
            (PyTorch's default initialisation, to train from scratch).
        outputs: ``"raw"``: each head's input, in layer order (a classifier:
            its last layer's output), the tensors the ONNX export's raw
            outputs are; ``"decoded"``: ``(boxes, objectness, scores)`` as
            the ONNX export's ``outputs="decoded"``.

    Returns:
        The module. Its input is ``(N, C, H, W)``, RGB in [0, 1] at the cfg's
        size, as darknet's. ``forward`` returns one tensor when the model has
        one output, else a tuple, named by ``model.output_names``. It works in
        ``train()`` and ``eval()``, with ``torch.jit.trace`` and
        ``torch.export.export``, on any device and floating dtype it is moved
        to; ``model.state_dict()`` goes back through :func:`yolo_io.save`.

    Raises:
        ConversionError: a layer, option or activation with no faithful
            model, naming the layer and its cfg line.
        ImportError: PyTorch is missing.
    """
    try:
        import torch  # noqa: F401
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("yolo_io.torch.build needs PyTorch: pip install torch") from err
    config, net, kind = resolve(source, outputs, caller="yolo_io.torch.build")
    graph = lower(config, outputs=kind)
    model: torch.nn.Module = _module_class()(graph, config, net)
    return model


_CLASS: Any = None


def _module_class() -> Any:
    """The model's class, defined once torch is imported."""
    global _CLASS  # a class needs torch to be defined
    if _CLASS is None:
        _CLASS = _define()
    return _CLASS


def _define() -> Any:
    import torch
    from torch import nn
    from torch.nn import functional as F

    class DarknetModel(nn.Module):
        """A darknet network as a PyTorch module (made by :func:`yolo_io.torch.build`).

        ``layers[i]`` holds darknet layer ``i``'s parameters; ``output_names``
        names ``forward``'s results; ``config`` is the parsed cfg."""

        def __init__(self, graph: Graph, config: Config, net: Network | None) -> None:
            super().__init__()
            self.config = config
            self.output_names = tuple(o.name for o in graph.outputs)
            self.layers = nn.ModuleList(nn.Module() for _ in range(len(config)))
            self._assign = net
            steps: list[tuple[Callable[..., Any], tuple[int, ...], int, tuple[int, ...]]] = []
            last_use: dict[int, int] = {}
            for position, node in enumerate(graph.nodes):
                for v in node.inputs:
                    last_use[v] = position
            kept = {o.value for o in graph.outputs}
            for position, node in enumerate(graph.nodes):
                fn = EMIT[type(node.op)](self, node.op, graph.shapes[node.output],
                                         [graph.shapes[v] for v in node.inputs], node.output)
                drop = tuple(v for v in dict.fromkeys(node.inputs)
                             if last_use[v] == position and v not in kept)
                steps.append((fn, node.inputs, node.output, drop))
            self._steps = steps
            self._outputs = tuple(o.value for o in graph.outputs)
            del self._assign

        def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
            values: dict[int, torch.Tensor] = {INPUT: x}
            for fn, inputs, output, drop in self._steps:
                values[output] = fn(self, *[values[v] for v in inputs])
                for v in drop:
                    del values[v]
            if len(self._outputs) == 1:
                return values[self._outputs[0]]
            return tuple(values[v] for v in self._outputs)

        def extra_repr(self) -> str:
            return f"cfg={self.config.path!s}, outputs={list(self.output_names)}"

        # -- parameters -------------------------------------------------------

        def arrays(self, index: int) -> Any:
            return layer_arrays(self._assign, index)

        def owner(self, index: int) -> nn.Module:
            return self.layers[index]

    # Each step is fn(model, *inputs) and finds its modules and constants in
    # the model when called, so that a copy of the model (copy.deepcopy, as an
    # EMA of the weights makes) computes with its own.

    def const(model: Any, name: str, value: np.ndarray) -> Callable[..., torch.Tensor]:
        model.register_buffer(name, torch.from_numpy(np.array(value)), persistent=False)
        return lambda m: getattr(m, name)

    # A module whose values come from darknet's arrays is made on the meta
    # device (no initialisation, no memory) and given tensors over one copy
    # of each array; one without (a cfg alone) is initialised as PyTorch does.

    def device(p: Any) -> str | None:
        return "meta" if p is not None else None

    def tensor(a: Any, shape: Sequence[int] | None = None) -> torch.Tensor:
        t = torch.from_numpy(copy_array(a))
        return t if shape is None else t.reshape(tuple(shape))

    def bn(channels: int, dims: int, p: Any) -> nn.Module:
        m = (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(
            channels, eps=BN_EPSILON, momentum=BN_MOMENTUM, device=device(p))
        if p is not None:
            m.weight = nn.Parameter(tensor(p["scales"]))
            m.bias = nn.Parameter(tensor(p["biases"]))
            m.running_mean = tensor(p["rolling_mean"])
            m.running_var = tensor(p["rolling_variance"])
            m.num_batches_tracked = torch.tensor(0, dtype=torch.long)
        return m

    def emit_conv(model: Any, op: O.Conv, shape: Any, ins: Any, v: int) -> Callable[..., Any]:
        owner = model.owner(op.layer)
        source = owner_of_arrays(model.config, op.layer)
        if source != op.layer:
            # share_index: the owner's parameters (darknet shares its arrays),
            # with this layer's own stride, padding and dilation.
            stride, pad, dilation = (op.stride_y, op.stride_x), op.pad, op.dilation

            def shared(m: Any, x: torch.Tensor) -> Any:
                conv = m.layers[source].conv
                y = F.conv2d(x, conv.weight, conv.bias, stride, pad, dilation, conv.groups)
                return m.layers[source].bn(y) if op.batch_normalize else y

            return shared
        p = model.arrays(op.layer)
        conv = nn.Conv2d(op.channels, op.filters, op.size, stride=(op.stride_y, op.stride_x),
                         padding=op.pad, dilation=op.dilation, groups=op.groups,
                         bias=not op.batch_normalize, device=device(p))
        if p is not None:
            conv.weight = nn.Parameter(tensor(p["weights"], conv.weight.shape))
            if not op.batch_normalize:
                conv.bias = nn.Parameter(tensor(p["biases"]))
        norm = bn(op.filters, 2, p) if op.batch_normalize else None
        owner.conv = conv
        i = op.layer
        if norm is None:
            return lambda m, x: m.layers[i].conv(x)
        owner.bn = norm
        return lambda m, x: m.layers[i].bn(m.layers[i].conv(x))

    def emit_dense(model: Any, op: O.Dense, shape: Any, ins: Any, v: int) -> Callable[..., Any]:
        owner = model.owner(op.layer)
        p = model.arrays(op.layer)
        owner.linear = linear = nn.Linear(op.inputs, op.outputs, bias=not op.batch_normalize,
                                          device=device(p))
        if p is not None:
            linear.weight = nn.Parameter(tensor(p["weights"], linear.weight.shape))
            if not op.batch_normalize:
                linear.bias = nn.Parameter(tensor(p["biases"]))
        i = op.layer
        if not op.batch_normalize:
            return lambda m, x: m.layers[i].linear(x)
        owner.bn = bn(op.outputs, 1, p)
        return lambda m, x: m.layers[i].bn(m.layers[i].linear(x))

    def darknet_parameter(model: Any, index: int, name: str,
                          init: Callable[[torch.Tensor], Any]) -> None:
        """Layer ``index``'s darknet array ``name``, in darknet's shape (that
        of the cfg's parameter spec, which yolo_io.save expects back)."""
        shape = next(s.shape for s in model.config[index].param_specs if s.name == name)
        p = model.arrays(index)
        if p is not None:
            value = tensor(p[name], shape)
        else:
            value = torch.empty(tuple(shape))
            init(value)
        model.owner(index).register_parameter(name, nn.Parameter(value))

    def emit_local(model: Any, op: O.Local, shape: Any, ins: Any, v: int) -> Callable[..., Any]:
        ckk, positions = op.channels * op.size * op.size, op.out_h * op.out_w
        bound = 1 / math.sqrt(ckk)
        darknet_parameter(model, op.layer, "weights", lambda t: nn.init.uniform_(t, -bound, bound))
        darknet_parameter(model, op.layer, "biases", nn.init.zeros_)

        def local(m: Any, x: torch.Tensor) -> Any:
            weights, biases = m.layers[op.layer].weights, m.layers[op.layer].biases
            cols = F.unfold(x, op.size, padding=op.pad, stride=op.stride)   # (N, ckk, L)
            y = torch.einsum("bkl,lfk->bfl", cols, weights.reshape(positions, op.filters, ckk))
            return (y.reshape(x.shape[0], op.filters, op.out_h, op.out_w)
                    + biases.reshape(1, op.filters, op.out_h, op.out_w))

        return local

    def emit_batchnorm(model: Any, op: O.BatchNorm, shape: Any, ins: Any, v: int
                       ) -> Callable[..., Any]:
        model.owner(op.layer).bn = bn(op.channels, 2, model.arrays(op.layer))
        return lambda m, x: m.layers[op.layer].bn(x)

    def emit_weighted_sum(model: Any, op: O.WeightedSum, shape: Any, ins: Any, v: int
                          ) -> Callable[..., Any]:
        per = shape[0] if op.per_channel else 1
        # darknet initialises them to 1 (make_shortcut_layer).
        darknet_parameter(model, op.layer, "weights", nn.init.ones_)

        def weighted(m: Any, *xs: torch.Tensor) -> Any:
            w = m.layers[op.layer].weights.reshape(op.n, per)
            if op.normalization == "relu":
                r = torch.relu(w)
                w = r / (0.0001 + r.sum(0))
            elif op.normalization == "softmax":
                e = torch.exp(w - w.max(0).values)
                w = e / (0.0001 + e.sum(0))
            y = xs[0] * w[0].reshape(1, per, 1, 1)
            for k in range(1, op.n):
                y = y + xs[k] * w[k].reshape(1, per, 1, 1)
            return y

        return weighted

    def emit_const(model: Any, op: O.Const, shape: Any, ins: Any, v: int) -> Callable[..., Any]:
        return const(model, f"const_{v}", op.value)

    arith: dict[str, Callable[..., Any]] = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}
    unary: dict[str, Callable[..., Any]] = {
        "sigmoid": torch.sigmoid, "tanh": torch.tanh, "exp": torch.exp, "relu": torch.relu,
        "softplus": F.softplus, "mish": F.mish, "identity": lambda x: x}

    def emit_pool(model: Any, op: O.Pool, shape: Any, ins: Any, v: int) -> Callable[..., Any]:
        top, left, bottom, right = op.pads
        pads, padded = (left, right, top, bottom), any(op.pads)
        k, s = op.size, (op.stride_y, op.stride_x)
        if op.kind == "max":
            def maxpool(m: Any, x: torch.Tensor) -> torch.Tensor:
                if padded:  # darknet ignores cells outside: they never win
                    x = F.pad(x, pads, value=-torch.finfo(x.dtype).max)
                return F.max_pool2d(x, k, s)
            return maxpool

        def average(m: Any, x: torch.Tensor) -> torch.Tensor:
            if not padded:
                return F.avg_pool2d(x, k, s)
            # Cells outside the input are not counted: divide by the share of
            # each window inside it.
            inside = F.avg_pool2d(F.pad(x.new_ones((1, 1, *x.shape[2:])), pads), k, s)
            return F.avg_pool2d(F.pad(x, pads), k, s) / inside

        return average

    def emit_reshape(model: Any, op: O.Reshape, shape: Any, ins: Any, v: int
                     ) -> Callable[..., Any]:
        to = tuple(shape)  # resolved: no -1
        return lambda m, x: x.reshape(x.shape[0], *to)

    EMIT: dict[type[O.Op], Callable[..., Callable[..., Any]]] = {
        O.Conv: emit_conv,
        O.Dense: emit_dense,
        O.Local: emit_local,
        O.BatchNorm: emit_batchnorm,
        O.WeightedSum: emit_weighted_sum,
        O.Const: emit_const,
        O.Arith: lambda m, op, *_: lambda _, a, b: arith[op.kind](a, b),
        O.Unary: lambda m, op, *_: lambda _, x: unary[op.kind](x),
        O.LeakyRelu: lambda m, op, *_: lambda _, x: F.leaky_relu(x, op.alpha),
        O.Elu: lambda m, op, *_: lambda _, x: F.elu(x, op.alpha),
        # darknet's constants (activations.h), not torch's more precise SELU ones.
        O.Selu: lambda m, op, *_: lambda _, x: op.gamma * F.elu(x, op.alpha),
        O.Clip: lambda m, op, *_: lambda _, x: torch.clamp(x, op.low, op.high),
        O.Compare: lambda m, op, *_: (lambda _, a, b: torch.gt(a, b)) if op.kind == "greater"
        else (lambda _, a, b: torch.lt(a, b)),
        O.Where: lambda m, op, *_: lambda _, c, a, b: torch.where(c, a, b),
        O.Pool: emit_pool,
        O.GlobalAvgPool: lambda m, op, *_: lambda _, x: x.mean((2, 3), keepdim=True),
        O.Upsample: lambda m, op, *_: lambda _, x: x.repeat_interleave(
            op.stride, 2).repeat_interleave(op.stride, 3),
        O.Reshape: emit_reshape,
        O.Transpose: lambda m, op, *_: lambda _, x: x.permute(op.perm),
        O.Slice: lambda m, op, *_: lambda _, x: x.narrow(op.axis, op.begin, op.end - op.begin),
        O.Concat: lambda m, op, *_: lambda _, *xs: torch.cat(xs, op.axis),
        O.PadEnd: lambda m, op, *_: lambda _, x: F.pad(x, (0, op.count)),
        O.Softmax: lambda m, op, *_: lambda _, x: torch.softmax(x, op.axis),
        O.Mean: lambda m, op, *_: lambda _, x: x.mean(op.axis, keepdim=True),
    }
    EMIT_BY_OP.update(EMIT)  # filled when torch is imported
    return DarknetModel


#: The PyTorch emitter of each lowered operation, filled on first use (it needs
#: torch); tests/test_kinds.py checks that every operation has one.
EMIT_BY_OP: dict[type[O.Op], Callable[..., Callable[..., Any]]] = {}

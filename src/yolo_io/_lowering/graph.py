"""The lowered network: operations on numbered values, in execution order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from . import ops as O

if TYPE_CHECKING:
    from .._model.config import CfgLayer, Config

#: The value of the network's input, ``(N, C, H, W)``.
INPUT = 0


@dataclass(frozen=True)
class Node:
    """``output = op(*inputs)``; ``layer``: the darknet layer it computes
    (-1: the heads' decoding)."""

    op: O.Op
    inputs: tuple[int, ...]
    output: int
    layer: int


@dataclass(frozen=True)
class Output:
    """A graph output: its name (as in the ONNX export), value and shape
    (without the batch axis)."""

    name: str
    value: int
    shape: O.Shape


@dataclass
class Graph:
    """A darknet network lowered to :mod:`~yolo_io._lowering.ops`.

    ``shapes[v]`` is value ``v``'s shape without the batch axis;
    ``layer_values[i]`` the value darknet layer ``i`` outputs (absent for a
    layer left out: ``omitted``); ``heads`` the detection heads in layer
    order."""

    config: Config
    nodes: list[Node] = field(default_factory=list)
    shapes: list[O.Shape] = field(default_factory=list)
    layer_values: dict[int, int] = field(default_factory=dict)
    outputs: list[Output] = field(default_factory=list)
    heads: list[CfgLayer] = field(default_factory=list)
    omitted: list[int] = field(default_factory=list)
    classes: int = 0
    _layer: int = -1
    _consts: dict[int, O.Const] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.shapes.append(tuple(self.config.input_shape))

    # -- building -----------------------------------------------------------

    def add(self, op: O.Op, *inputs: int) -> int:
        """Appends ``op`` of ``inputs``; its output value."""
        out = len(self.shapes)
        self.shapes.append(op.shape([self.shapes[i] for i in inputs]))
        self.nodes.append(Node(op, tuple(inputs), out, self._layer))
        return out

    def const(self, value: npt.ArrayLike, dtype: type = np.float32, hint: str = "c") -> int:
        op = O.Const(np.asarray(value, dtype=dtype), hint)
        out = self.add(op)
        self._consts[out] = op
        return out

    def arith(self, kind: Literal["add", "sub", "mul", "div"], a: int, b: int) -> int:
        if a in self._consts and b in self._consts:  # folded: no backend sees constants alone
            fn = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}[kind]
            x, y = self._consts[a], self._consts[b]
            return self.const(fn(x.value, y.value), x.value.dtype.type,
                              x.hint if x.value.size >= y.value.size else y.hint)
        return self.add(O.Arith(kind), a, b)

    def unary(self, kind: Literal["sigmoid", "tanh", "exp", "relu", "softplus", "mish",
                                  "identity"], x: int) -> int:
        return self.add(O.Unary(kind), x)

    def scalar_op(self, kind: Literal["add", "sub", "mul", "div"], x: int, value: float) -> int:
        return self.arith(kind, x, self.const(np.float32(value)))

    def slice(self, x: int, axis: int, begin: int, end: int) -> int:
        return self.add(O.Slice(axis, begin, end), x)

    def reshape(self, x: int, *to: int) -> int:
        return self.add(O.Reshape(tuple(to)), x)

    def transpose(self, x: int, *perm: int) -> int:
        return self.add(O.Transpose(tuple(perm)), x)

    def concat(self, axis: int, *parts: int) -> int:
        return parts[0] if len(parts) == 1 else self.add(O.Concat(axis), *parts)

    def prune(self) -> None:
        """Drops the nodes no output depends on (constants folded away)."""
        live = {out.value for out in self.outputs}
        kept: list[Node] = []
        for node in reversed(self.nodes):
            if node.output in live:
                kept.append(node)
                live.update(node.inputs)
        self.nodes = kept[::-1]

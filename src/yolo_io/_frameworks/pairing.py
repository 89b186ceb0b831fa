"""Pairing a network's layers with the layers of a framework model that was
written by hand (``yolo_io.torch.load_into``, ``yolo_io.keras.load_into`` and
their ``check_model``). Framework-neutral: the framework modules describe their
model as :class:`Part` objects (the layers that hold parameters) and, where
they can, a data-flow graph of :class:`Node` objects; this module pairs them
with darknet's layers, checks every shape and diagnoses what does not fit.

Units. A darknet convolutional or connected layer (with its batch norm, if it
has one) or a ``[batchnorm]`` layer is one unit; so is a framework conv,
depthwise conv or dense layer together with the batch norm that takes its
output directly, or a batch norm on its own. Units are compared by their
signature: ``("conv", in, out, kh, kw, groups)``, ``("dense", in, out)`` or
``("bn", channels)``; whether each side has a batch norm is checked after
pairing, so that the message can say "use fuse=True".

Pairing, in order of preference:

1. ``mapping``: pairs the caller names.
2. The data flow, whenever the framework gives a graph of the model (Keras'
   functional graph or a traced call(); a traced forward for torch; a model
   that connects its layers otherwise is refused even where its shapes line
   up), matched with darknet's own (route = ordered
   concatenation, shortcut/sam/scale_channels = combination, every other
   layer passes its input on). Units are matched in darknet's order: a unit
   pairs with the framework unit of the same signature whose input is the
   counterpart of its input; where several could, each is tried in turn and
   the one that lets the rest of the graph match is kept (if two do, the
   error asks for a mapping).
3. Without a graph, the framework's order (torch: the order modules are
   registered in), when its units' signatures are darknet's, one for one.

Framework layers that are not paired are errors with ``strict`` (the
default), as are darknet layers without a counterpart.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .._base.errors import ConversionError, ModelMismatchError
from .._model.attrs import GaussianYoloAttrs
from .._model.config import core_config
from .._model.fusion import BN_EPSILON
from .._model.kinds import Refused

if TYPE_CHECKING:
    from .._model.config import CfgLayer, Config

Signature = tuple[Any, ...]

# A search over the ways to pair look-alike siblings gives up after this many steps.
_BUDGET = 200_000


@dataclass
class Part:
    """A framework layer that holds parameters.

    ``sig`` is None for a kind of layer yolo_io cannot pair (anything but
    convolutions, dense layers and batch norms). ``shapes``: the framework's
    parameter names and shapes; ``bias``: a conv/dense layer has one; ``eps``
    and ``affine``: of a batch norm."""

    name: str
    type_name: str
    sig: Signature | None
    shapes: dict[str, tuple[int, ...]]
    bias: bool = False
    eps: float = BN_EPSILON
    affine: bool = True
    obj: Any = None
    stride: tuple[int, int] | None = None  # a conv's (y, x)
    dilation: tuple[int, int] | None = None
    # A conv's own padding, (top, bottom, left, right) for an input of (h, w),
    # and what it pads with ("zeros", "reflect", ...).
    padding: Callable[[int, int], tuple[int, int, int, int]] | None = None
    padding_mode: str = "zeros"

    @property
    def kind(self) -> str | None:
        return None if self.sig is None else str(self.sig[0])


@dataclass
class Node:
    """One operation of a framework model's data flow: ``"input"``, ``"part"``
    (a call of ``parts[part]``), ``"concat"`` (channel concatenation, preds in
    order), ``"combine"`` (an element-wise operation of several inputs, such as
    an addition), or ``"op"`` (anything else; it passes its input on; ``pad``:
    it pads its input with zeros)."""

    kind: str
    preds: list[int] = field(default_factory=list)
    part: int = -1
    pad: tuple[int, int, int, int] | None = None  # an op that zero-pads (top, bottom, left, right)


@dataclass
class Model:
    """A framework model as the pairing sees it: the framework's name, its
    parts in the framework's order, its graph (None when not known), how the
    pairing orders or follows it (for messages), and a function that gives a
    part's parameter shapes for a darknet signature (for messages)."""

    framework: str
    parts: list[Part]
    graph: list[Node] | None
    order: str
    expected_shapes: Callable[[Part, Signature], dict[str, tuple[int, ...]]]


@dataclass
class DUnit:
    """A darknet unit: its layer, signature, and whether it has a batch norm:
    its own, or (``bn_layer``) a ``[batchnorm]`` layer that takes its output
    and nothing else does (darknet then has two layers where frameworks have
    a conv and its batch norm)."""

    layer: CfgLayer
    sig: Signature
    bn: bool
    bn_layer: CfgLayer | None = None
    attrs: Any = None  # a conv's attrs, as a dict (ConvolutionalAttrs' fields)
    owner: int = -1  # the layer whose arrays it uses (share_index), or its own

    def __post_init__(self) -> None:
        if self.owner < 0:
            self.owner = self.layer.index

    @property
    def index(self) -> int:
        return self.layer.index


@dataclass
class FUnit:
    """A framework unit: a main part (conv, depthwise, dense or batch norm) and
    the batch norm that takes its output directly, if any."""

    main: int
    bn: int | None = None
    node: int | None = None  # the graph node of the unit's output
    pred: int | None = None  # the graph node of its input (op nodes skipped)


@dataclass
class Pair:
    dunit: DUnit | None
    funit: FUnit | None
    how: str  # "mapping", "order", "data flow", or "" for an unpaired unit


@dataclass
class Pairing:
    """Darknet's units and the framework's, paired: :meth:`rows` for a table,
    ``str()`` to print it."""

    config: Config
    model: Model
    units: list[FUnit]
    pairs: list[Pair]
    fuse: bool
    pending_notes: Callable[[], list[str]] | None = None
    _notes: list[str] = field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        """What the pairing could not check (look-alike layers paired by
        order), in words."""
        if self.pending_notes is not None:
            self._notes += self.pending_notes()
            self.pending_notes = None
        return self._notes

    def part(self, k: int) -> Part:
        return self.model.parts[k]

    def names(self, u: FUnit) -> str:
        return " + ".join(self.part(k).name for k in (u.main, u.bn) if k is not None)

    def shapes(self, u: FUnit) -> str:
        return "; ".join(_dims(s) for k in (u.main, u.bn) if k is not None
                         for s in self.part(k).shapes.values() if len(s) > 1 or k == u.main)

    def status(self, p: Pair) -> str:
        if p.funit is None:
            return "not in the model"
        if p.dunit is None:
            return "not in the cfg"
        if p.dunit.bn and p.funit.bn is None and p.dunit.sig[0] != "bn":
            return "ok, batch norm fused"
        return "ok"

    def rows(self) -> list[dict[str, Any]]:
        """One dict per pair: ``layer`` (darknet index or None), ``type``,
        ``line``, ``framework`` (names), ``shapes`` (the framework's),
        ``paired_by`` and ``status``."""
        out = []
        for p in self.pairs:
            d, f = p.dunit, p.funit
            out.append({
                "layer": d.index if d else None,
                "type": d.layer.type if d else None,
                "line": d.layer.line if d else None,
                "framework": self.names(f) if f else None,
                "shapes": self.shapes(f) if f else None,
                "paired_by": p.how or None,
                "status": self.status(p),
            })
        return out

    def __str__(self) -> str:
        headers = ("layer", "type", "line", self.model.framework + " layer", "shapes",
                   "paired by", "status")
        body = [[_cell(r["layer"]), _cell(r["type"]), _cell(r["line"]), _cell(r["framework"]),
                 _cell(r["shapes"]), _cell(r["paired_by"]), r["status"]] for r in self.rows()]
        widths = [max(len(h), *(len(b[k]) for b in body)) if body else len(h)
                  for k, h in enumerate(headers)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
        lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)).rstrip()
                  for b in body]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        paired = sum(1 for p in self.pairs if p.dunit and p.funit)
        return f"<Pairing of {paired} units with a {self.model.framework} model>"


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def _dims(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


def _shapes_text(shapes: Mapping[str, tuple[int, ...]]) -> str:
    return ", ".join(f"{k} {_dims(v)}" for k, v in shapes.items()) or "no parameters"


def describe(sig: Signature) -> str:
    """A signature in words: ``conv 3x3 512->255``, ``dense 4096->1000``."""
    if sig[0] == "conv":
        _, cin, cout, kh, kw, groups = sig
        g = "" if groups == 1 else (" depthwise" if groups == cin else f" groups={groups}")
        return f"conv {kh}x{kw} {cin}->{cout}{g}"
    if sig[0] == "dense":
        return f"dense {sig[1]}->{sig[2]}"
    return f"batch norm of {sig[1]} channels"


# -- darknet's side -------------------------------------------------------------------------


def darknet_units(config: Config) -> list[DUnit]:
    """The units of a network, in layer order. A layer that stores parameters
    no framework layer type here takes raises ConversionError."""
    readers: dict[int, int] = {}  # how many layers read each layer (when needed)

    def read_once(i: int) -> bool:
        if not readers:
            for layer in config:
                for j in set(layer.inputs) or {layer.index - 1}:
                    readers[j] = readers.get(j, 0) + 1
        return readers.get(i) == 1

    out: list[DUnit] = []
    merged: set[int] = set()
    for layer in config:
        if layer.index in merged:
            continue
        share = layer.share_index
        owner = layer.index if share is None else share
        shapes = (layer if share is None else config[share]).param_shapes
        fusion = layer.fusion
        if fusion == "conv":
            # The attrs' (name, value) pairs, without building the record:
            # this runs for every conv of every load_into.
            a = dict(core_config(config).layer_attrs(layer.index))
            if a["binary"] or a["xnor"]:
                raise ConversionError(
                    f"{layer.location} is an XNOR/binary convolution: darknet binarises its "
                    "weights (and inputs) at inference, which a float framework conv does not")
            o, i_g, kh, kw = shapes["weights"]
            cin = layer.input_shape[0]
            out.append(DUnit(layer, ("conv", cin, o, kh, kw, max(1, cin // max(1, i_g))),
                             "scales" in shapes, attrs=a, owner=owner))
        elif fusion == "dense":
            o, i = shapes["weights"]
            out.append(DUnit(layer, ("dense", i, o), "scales" in shapes, owner=owner))
        elif PAIRING_ROLE_BY_KIND[layer.type] == "bn":
            out.append(DUnit(layer, ("bn", shapes["scales"][0]), True))
        elif layer.param_count > 0:  # a Refused kind, or a weighted shortcut
            raise ConversionError(
                f"{layer.location} stores parameters that no framework layer type yolo_io "
                "pairs takes (it pairs convolutional, connected and batchnorm layers)")
        else:
            continue
        u = out[-1]
        if u.bn or u.sig[0] == "bn" or layer.index + 1 >= len(config):
            continue
        nxt = config[layer.index + 1]
        # Only through a linear activation is conv + [batchnorm] a conv and its
        # batch norm (bn(leaky(x)) is a conv, an activation, a batch norm).
        if (PAIRING_ROLE_BY_KIND[nxt.type] == "bn" and layer.activation == "linear"
                and nxt.inputs == (layer.index,) and read_once(layer.index)
                and nxt.param_count > 0):
            u.bn, u.bn_layer = True, nxt
            merged.add(nxt.index)
    return out


def darknet_graph(config: Config, units: Sequence[DUnit]) -> list[Node]:
    """Darknet's data flow as Nodes: the input is node 0 and layer i node
    i + 1. Route = concat (one input: an op), shortcut/sam/
    scale_channels = combine, units = parts (part = position in ``units``),
    everything else an op of its input."""
    nodes = [Node("input")]
    unit_of = {u.index: k for k, u in enumerate(units)}
    # A [batchnorm] merged into its conv's unit passes the unit's value on.
    for layer in config:
        # layer.inputs: absolute indices; () for layer 0, which reads the input.
        preds = [i + 1 for i in layer.inputs] or [layer.index]
        if layer.index in unit_of:
            nodes.append(Node("part", preds[:1], unit_of[layer.index]))
        elif PAIRING_ROLE_BY_KIND[layer.type] == "concat" and len(preds) > 1:
            nodes.append(Node("concat", preds))
        elif PAIRING_ROLE_BY_KIND[layer.type] == "combine" and len(preds) > 1:
            nodes.append(Node("combine", preds))
        else:
            nodes.append(Node("op", preds[:1]))
    return nodes


# -- the framework's side -------------------------------------------------------------------


def _consumers(nodes: Sequence[Node]) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in nodes]
    for k, n in enumerate(nodes):
        for p in n.preds:
            out[p].append(k)
    return out


def framework_units(model: Model) -> list[FUnit]:
    """The model's units in its order: each conv/dense part with the batch
    norm that takes its output directly (graph: the batch norm's only input
    is the part's node, which feeds nothing else; no graph: the batch norm
    comes right after it in the framework's order and has its channels)."""
    parts = model.parts
    units: list[FUnit] = []
    if model.graph is None:
        k = 0
        while k < len(parts):
            p = parts[k]
            nxt = parts[k + 1] if k + 1 < len(parts) else None
            if (p.kind in ("conv", "dense") and nxt is not None and nxt.kind == "bn"
                    and p.sig is not None and nxt.sig == ("bn", p.sig[2])):
                units.append(FUnit(k, k + 1))
                k += 2
            else:
                units.append(FUnit(k))
                k += 1
        return units
    nodes = model.graph
    consumers = _consumers(nodes)
    node_of: dict[int, int] = {}
    for k, n in enumerate(nodes):
        if n.kind == "part":
            if n.part in node_of:
                raise ConversionError(
                    f"{model.framework} layer {parts[n.part].name!r} is called more than once; "
                    "a layer that shares its parameters between places has no darknet "
                    "counterpart")
            node_of[n.part] = k
    merged: set[int] = set()
    for k, p in enumerate(parts):
        if p.kind != "bn" or k not in node_of:
            continue
        n = nodes[node_of[k]]
        if len(n.preds) != 1:
            continue
        src = nodes[n.preds[0]]
        if src.kind == "part" and parts[src.part].kind in ("conv", "dense") \
                and consumers[n.preds[0]] == [node_of[k]]:
            merged.add(k)
    for k in range(len(parts)):
        if k in merged:
            continue
        unit = FUnit(k, node=node_of.get(k))
        if k in node_of:
            after = consumers[node_of[k]]
            if len(after) == 1 and nodes[after[0]].kind == "part" and nodes[after[0]].part in merged:
                unit.bn = nodes[after[0]].part
                unit.node = after[0]
            unit.pred = _skip_ops(nodes, nodes[node_of[k]].preds[0]) if nodes[node_of[k]].preds \
                else None
        units.append(unit)
    return units


def _skip_ops(nodes: Sequence[Node], k: int) -> int:
    """The node whose value ``k`` passes on: ops of one input are skipped, a
    concat of one input is its input, and so is an op whose inputs all come
    from one value (an activation written as ``x * tanh(softplus(x))``)."""
    while True:
        n = nodes[k]
        if n.kind in ("op", "concat") and len(n.preds) == 1:
            k = n.preds[0]
        elif n.kind == "op" and len(n.preds) > 1 and \
                len(roots := {_skip_ops(nodes, p) for p in n.preds}) == 1:
            k = roots.pop()
        else:
            return k


def _canonical(nodes: Sequence[Node], k: int) -> tuple[str, tuple[int, ...]]:
    """(kind, preds) of node ``k`` after ops are skipped: a concat's inputs
    that are concats themselves are spliced in (cat(cat(a, b), c) is
    cat(a, b, c)); a combine's are sorted; an op of several inputs is a
    combine."""
    n = nodes[k]
    if n.kind == "concat":
        flat: list[int] = []
        for p in n.preds:
            q = _skip_ops(nodes, p)
            if nodes[q].kind == "concat":
                flat.extend(_canonical(nodes, q)[1])
            else:
                flat.append(q)
        return "concat", tuple(flat)
    if n.kind in ("combine", "op"):
        return "combine", tuple(sorted(_skip_ops(nodes, p) for p in n.preds))
    return n.kind, ()


# -- pairing --------------------------------------------------------------------------------


class _Failure(Exception):
    """Where the graphs stop matching: darknet unit ``dunit`` (or the unit
    after a route/shortcut node that has no counterpart) and the framework
    node its input corresponds to (None: not known)."""

    def __init__(self, dunit: int, src: int | None, used: set[int], node: int = -1) -> None:
        super().__init__(dunit)
        self.dunit = dunit
        self.src = src
        self.used = used
        self.node = node


class _Ambiguous(Exception):
    """Darknet unit ``dunit`` fits framework units ``funits`` equally well."""

    def __init__(self, dunit: int, funits: list[int]) -> None:
        super().__init__(dunit)
        self.dunit = dunit
        self.funits = funits


def _pair_by_order(dunits: Sequence[DUnit], model: Model, funits: Sequence[FUnit],
                   dfree: Sequence[int], ffree: Sequence[int], strict: bool
                   ) -> dict[int, int] | None:
    n = len(dfree) if strict else min(len(dfree), len(ffree))
    if strict and len(dfree) != len(ffree):
        return None
    if any(dunits[d].sig != model.parts[funits[f].main].sig
           for d, f in zip(dfree[:n], ffree[:n], strict=True)):
        return None
    return dict(zip(dfree[:n], ffree[:n], strict=True))


class _GraphMatch:
    """Darknet unit -> framework unit, following both graphs (see the module
    docs)."""

    def __init__(self, dunits: Sequence[DUnit], dnodes: Sequence[Node], model: Model,
                 funits: Sequence[FUnit], fixed: Mapping[int, int], strict: bool) -> None:
        self.dunits = dunits
        self.dnodes = dnodes
        self.fnodes = model.graph or []
        self.parts = model.parts
        self.funits = funits
        self.fixed = fixed
        self.strict = strict
        # Framework nodes by their canonical (kind, preds), to find the node
        # that does to the counterparts what a darknet node does to its inputs.
        self.by_shape: dict[tuple[str, tuple[int, ...]], list[int]] = {}
        for k, n in enumerate(self.fnodes):
            if n.kind in ("concat", "combine") or (n.kind == "op" and len(n.preds) > 1):
                self.by_shape.setdefault(_canonical(self.fnodes, k), []).append(k)
        self.units_after: dict[int, list[int]] = {}
        for k, u in enumerate(funits):
            if u.pred is not None:
                self.units_after.setdefault(u.pred, []).append(k)
        self.inputs = [k for k, n in enumerate(self.fnodes) if n.kind == "input"]
        self.order = [k for k, n in enumerate(dnodes) if k and (
            n.kind == "part" or n.kind == "combine" or
            (n.kind == "concat" and len(_canonical(dnodes, k)[1]) > 1))]
        self.steps = 0

    def counterpart(self, phi: Mapping[int, int], d: int) -> int | None:
        d = _skip_ops(self.dnodes, d)
        if self.dnodes[d].kind == "input":
            return self.inputs[0] if len(self.inputs) == 1 else None
        return phi.get(d)

    def candidates(self, du: int, src: int | None, used: set[int]) -> list[int]:
        if du in self.fixed:
            return [self.fixed[du]]
        if src is None:
            return []
        sig = self.dunits[du].sig
        return [f for f in self.units_after.get(src, [])
                if f not in used and self.parts[self.funits[f].main].sig == sig]

    def run(self) -> dict[int, int]:
        return self.search(0, {}, set(self.fixed.values()), dict(self.fixed))

    def search(self, at: int, phi: dict[int, int], used: set[int], pairs: dict[int, int]
               ) -> dict[int, int]:
        while at < len(self.order):
            self.steps += 1
            if self.steps > _BUDGET:
                raise _Failure(-1, None, used)
            d = self.order[at]
            n = self.dnodes[d]
            if n.kind != "part":
                kind, preds = _canonical(self.dnodes, d)
                mapped = [self.counterpart(phi, p) for p in preds]
                found: list[int] = []
                if all(m is not None for m in mapped):
                    ms = tuple(m for m in mapped if m is not None)
                    found = self.by_shape.get((kind, ms if kind == "concat" else
                                               tuple(sorted(ms))), [])
                if found:
                    phi[d] = found[0]
                elif self.strict:
                    raise _Failure(_next_unit(self.dnodes, self.order, at), None, used, d)
                at += 1
                continue
            du = n.part
            src = self.counterpart(phi, n.preds[0])
            cands = self.candidates(du, src, used)
            if not cands:
                if self.strict or (src is not None and any(
                        f not in used for f in self.units_after.get(src, []))):
                    raise _Failure(du, src, used)
                at += 1  # strict=False: not in the model
                continue
            usable = [f for f in cands if self.funits[f].node is not None]
            if len(usable) == 1:
                f = usable[0]
                node = self.funits[f].node
                assert node is not None
                phi[d] = node
                used.add(f)
                pairs[du] = f
                at += 1
                continue
            # Look-alikes: each is tried; the one that lets the rest of the
            # graph match is kept. If two do, the structure cannot tell them
            # apart (they differ at most in layers without parameters).
            failure: _Failure | None = None
            fits: list[tuple[int, dict[int, int]]] = []
            for f in usable:
                node = self.funits[f].node
                assert node is not None
                try:
                    result = self.search(at + 1, {**phi, d: node}, used | {f}, {**pairs, du: f})
                except _Failure as err:
                    if err.dunit == -1:
                        raise
                    if failure is None or err.dunit > failure.dunit:
                        failure = err
                    continue
                fits.append((f, result))
            if fits:
                # strict=False leaves what does not fit unpaired, so a wrong
                # choice may "fit" too, with fewer pairs: the most pairs win.
                most = max(len(r) for _, r in fits)
                best = [(g, r) for g, r in fits if len(r) == most]
                if len(best) > 1:
                    raise _Ambiguous(du, [g for g, _ in best[:2]])
                return best[0][1]
            raise failure or _Failure(du, src, used)
            at += 1
        return pairs


def _next_unit(dnodes: Sequence[Node], order: Sequence[int], at: int) -> int:
    for d in order[at:]:
        if dnodes[d].kind == "part":
            return dnodes[d].part
    return -2


def pair(config: Config, model: Model, *, mapping: Mapping[int, Any] | None = None,
         strict: bool = True, fuse: bool = False) -> Pairing:
    """Pairs ``config``'s units with ``model``'s (see the module docs) and
    checks them; raises ModelMismatchError (or ConversionError for a layer
    no framework type takes) naming the first that does not fit."""
    dunits = darknet_units(config)
    funits = framework_units(model)
    _refuse_unknown_parts(model)
    fixed = _fixed_pairs(config, model, dunits, funits, mapping or {})
    _check_fixed(config, model, dunits, funits, fixed, fuse)

    def by_order() -> dict[int, int] | None:
        used = set(fixed.values())
        return _pair_by_order(dunits, model, funits,
                              [d for d in range(len(dunits)) if d not in fixed],
                              [f for f in range(len(funits)) if f not in used], strict)

    result: dict[int, int] | None = None
    how = "order"
    failure: _Failure | None = None
    matcher: _GraphMatch | None = None
    if model.graph is None:
        result = by_order()
    if result is None and model.graph is not None:
        dnodes = darknet_graph(config, dunits)
        matcher = _GraphMatch(dunits, dnodes, model, funits, fixed, strict)
        try:
            result = matcher.run()
            how = "data flow"
        except _Ambiguous as err:
            _ambiguous(config, model, dunits, funits, err)
        except _Failure as err:
            # Not the order instead: the data flow says the model computes
            # something else, even where its shapes line up one for one.
            failure = err
    if result is not None:
        result.update(fixed)
    pairing = _pairing(config, model, dunits, funits, result or {}, fixed, how, fuse)
    if result is not None and how == "order":
        pairing.pending_notes = lambda: _look_alike_notes(config, model, dunits, fixed)
    if result is None:
        if failure is not None and matcher is not None and failure.dunit != -1:
            _diagnose_graph(pairing, matcher, failure)
        try:
            _diagnose_order(pairing, dunits, funits, strict)
        except ModelMismatchError as err:
            if "could not be traced" not in model.order:
                raise
            # Said so: the layers were only compared in the framework's order.
            err.args = (f"{err.args[0]} (compared in {model.order})",)
            raise
    _check_pairs(pairing, fuse)
    if strict:
        _check_complete(pairing)
    return pairing


def _pairing(config: Config, model: Model, dunits: Sequence[DUnit], funits: Sequence[FUnit],
             result: Mapping[int, int], fixed: Mapping[int, int], how: str,
             fuse: bool) -> Pairing:
    pairs: list[Pair] = []
    for d, du in enumerate(dunits):
        f = result.get(d)
        pairs.append(Pair(du, funits[f] if f is not None else None,
                          "" if f is None else ("mapping" if d in fixed else how)))
    taken = set(result.values())
    pairs += [Pair(None, u, "") for k, u in enumerate(funits) if k not in taken]
    return Pairing(config, model, list(funits), pairs, fuse)


def _check_fixed(config: Config, model: Model, dunits: Sequence[DUnit], funits: Sequence[FUnit],
                 fixed: Mapping[int, int], fuse: bool) -> None:
    """A pair the mapping fixes is checked first: a layer of the wrong kind
    or shape is named as such, not blamed on the layers after it."""
    for d, f in fixed.items():
        if model.parts[funits[f].main].sig != dunits[d].sig:
            _mismatch(_pairing(config, model, dunits, funits, fixed, fixed, "mapping", fuse),
                      dunits[d], funits[f])


def _look_alike_notes(config: Config, model: Model, dunits: Sequence[DUnit],
                      fixed: Mapping[int, int]) -> list[str]:
    """Darknet units of the same shapes on the same input, which an order
    pairing cannot tell apart from the shapes alone."""
    nodes = darknet_graph(config, dunits)
    groups: dict[tuple[Any, int], list[int]] = {}
    for k, u in enumerate(dunits):
        if k not in fixed:
            groups.setdefault((u.sig, _skip_ops(nodes, nodes[u.index + 1].preds[0])), []).append(k)
    return [f"darknet layers {', '.join(str(dunits[k].index) for k in ks)} have the same shapes "
            f"and the same input: {model.order} paired them; the data flow would tell them "
            "apart (torch: trace=True)" for ks in groups.values() if len(ks) > 1]


def _refuse_unknown_parts(model: Model) -> None:
    for p in model.parts:
        if p.sig is None:
            raise ModelMismatchError(
                f"{model.framework} layer {p.name!r} ({p.type_name}, parameters "
                f"{_shapes_text(p.shapes)}) has parameters, but no darknet layer is of its "
                "kind (yolo_io pairs convolutions, depthwise convolutions, dense layers and "
                "batch norms)", framework_layer=p.name, found=p.shapes)


def _fixed_pairs(config: Config, model: Model, dunits: Sequence[DUnit], funits: Sequence[FUnit],
                 mapping: Mapping[int, Any]) -> dict[int, int]:
    by_layer = {u.index: k for k, u in enumerate(dunits)}
    by_name: dict[str, int] = {}
    for k, u in enumerate(funits):
        for p in (u.main, u.bn):
            if p is not None:
                by_name[model.parts[p].name] = k
    out: dict[int, int] = {}
    taken: dict[int, int] = {}  # darknet layer index -> framework unit
    for index, name in mapping.items():
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(config):
            raise ModelMismatchError(
                f"mapping keys are darknet layer indices (0..{len(config) - 1}) of "
                f"{config.path}, not {index!r}",
                framework_layer=name if isinstance(name, str) else None)
        if index not in by_layer:
            layer = config[index]
            raise ModelMismatchError(
                f"mapping[{index}]: {layer.location} stores no parameters to load",
                framework_layer=name if isinstance(name, str) else None, darknet_layer=index,
                line=layer.line)
        if isinstance(name, str):
            names: tuple[Any, ...] = (name,)
        elif isinstance(name, (list, tuple)):
            names = tuple(name)
        else:
            names = ()
        if not names or not all(isinstance(n, str) for n in names):
            raise ModelMismatchError(
                f"mapping[{index}] ({config[index].location}) is {_name_text(name)}: the "
                f"mapping's values are {model.framework} layer names (str; a conv and its "
                "batch norm as a tuple of two), not layer objects",
                darknet_layer=index, line=config[index].line)
        units = set()
        for n in names:
            if n not in by_name:
                close = difflib.get_close_matches(n, list(by_name), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ModelMismatchError(
                    f"mapping[{index}] names {model.framework} layer {n!r}, which the model "
                    f"does not have{hint}", framework_layer=n, darknet_layer=index,
                    line=config[index].line)
            units.add(by_name[n])
        if len(units) != 1:
            raise ModelMismatchError(
                f"mapping[{index}] ({config[index].location}) names layers of two different "
                f"units: {', '.join(map(repr, names))}", framework_layer=names[0],
                darknet_layer=index, line=config[index].line)
        unit = units.pop()
        twice = next((i for i, f in taken.items() if f == unit), None)
        if twice is not None:
            raise ModelMismatchError(
                f"mapping pairs {model.framework} layer {_name_text(name)} with two darknet "
                f"layers: {config[twice].location} and {config[index].location}",
                framework_layer=names[0], darknet_layer=index, line=config[index].line)
        taken[index] = unit
        out[by_layer[index]] = unit
    return out


def _name_text(name: Any) -> str:
    """A mapping value in a message: its repr, or its type for an object."""
    if isinstance(name, str) or (isinstance(name, (list, tuple)) and
                                 all(isinstance(n, str) for n in name)):
        return repr(name)
    return f"a {type(name).__name__} object"


# -- checks and diagnosis -------------------------------------------------------------------


def _head_after(config: Config, layer: CfgLayer) -> CfgLayer | None:
    nxt = layer.index + 1
    if nxt < len(config) and config[nxt].kind.head:
        return config[nxt]
    return None


def _classes_hint(config: Config, layer: CfgLayer, found_out: int) -> str:
    """Why a head conv's filter count differs: the model was built for
    another number of classes. Names the filters= and classes= lines."""
    head = _head_after(config, layer)
    if head is None:
        return ""
    classes = getattr(head.attrs, "classes", 0)
    expected_out = layer.output_shape[0]
    if not head.kind.grid_head:  # [detection]: no filters= per anchor
        return ""
    # Values per anchor besides the classes: x, y, w, h, objectness, and
    # for Gaussian_yolo the uncertainty of each coordinate.
    extra = 9 if isinstance(head.attrs, GaussianYoloAttrs) else 5
    per = expected_out // max(1, classes + extra)
    if per <= 0 or found_out % per or found_out // per <= extra:
        return ""
    model_classes = found_out // per - extra
    if model_classes * per + extra * per != found_out or model_classes == classes:
        return ""
    # Every head of this kind: a model built for another class count differs
    # at each of them.
    flines, clines = [], []
    for h in config:
        if h.kind == head.kind and h.index > 0 and "classes" in h.options:
            conv = config[h.index - 1]
            if "filters" in conv.options and conv.output_shape[0] == expected_out:
                flines.append(str(conv.option_line("filters")))
                clines.append(str(h.option_line("classes")))
    where = ""
    if layer.index + 1 == head.index and flines:
        where = (f": {config.path}:{'/'.join(flines)}: filters={expected_out} and "
                 f"{config.path}:{'/'.join(clines)}: classes={classes}")
    return (f" The model was built for {model_classes} classes ({per} anchors x "
            f"({model_classes} + {extra}) = {found_out} filters); the cfg is for "
            f"{classes}{where}. Build the model for {classes} classes, or use weights and a "
            f"cfg trained for {model_classes} (filters={found_out}, classes={model_classes}).")


def _ambiguous(config: Config, model: Model, dunits: Sequence[DUnit], funits: Sequence[FUnit],
               err: _Ambiguous) -> None:
    d = dunits[err.dunit]
    names = [model.parts[funits[f].main].name for f in err.funits]
    raise ModelMismatchError(
        f"darknet {d.layer.location} ({describe(d.sig)}) could be {model.framework} layer "
        f"{names[0]!r} or {names[1]!r}: both fit the data flow, and the layers around them "
        "differ at most in layers without parameters, which the pairing does not compare; "
        f"pass mapping={{{d.index}: {names[0]!r}}} (or the other) to say which",
        darknet_layer=d.index, line=d.layer.line)


def _diagnose_graph(pairing: Pairing, m: _GraphMatch, failure: _Failure) -> None:
    """The data flows stop matching at darknet unit ``failure.dunit``: the
    framework layer fed where it should be has other shapes (a wrong filter
    count), is one the cfg does not have (its successor fits), or the model
    lacks the darknet layer (the framework layer fits darknet's next)."""
    model = pairing.model
    if failure.dunit == -2 or failure.node >= 0:
        d = m.dnodes[failure.node] if failure.node >= 0 else None
        layer = _layer_of_node(pairing.config, m, failure.node)
        what = "concatenation" if d is not None and d.kind == "concat" else "combination"
        raise ModelMismatchError(
            f"the {model.framework} model has no {what} that matches darknet "
            f"{layer.location if layer is not None else 'route'}: its inputs' counterparts "
            "are not combined that way in the model (another order of a route's inputs, "
            "or another layer feeding it)", darknet_layer=layer.index if layer else None,
            line=layer.line if layer else 0, pairing=pairing)
    du = m.dunits[failure.dunit]
    src = failure.src
    others = [f for f in m.units_after.get(src, []) if f not in failure.used] \
        if src is not None else []
    if len(others) >= 1:
        f = others[0]
        fnode = m.funits[f].node
        after = [g for g in m.units_after.get(fnode, []) if g not in failure.used] \
            if fnode is not None else []
        if any(m.parts[m.funits[g].main].sig == du.sig for g in after):
            feeding = _unit_inputs(pairing.config, m, du)
            before = next((u for u in m.dunits if u.index in feeding), None)
            _extra(pairing, m.funits[f], before or _unit_before(m, du), du)
        nexts = [u for u in m.dunits if u.index > du.index and
                 du.index in _unit_inputs(pairing.config, m, u)]
        if any(u.sig == m.parts[m.funits[f].main].sig for u in nexts):
            _missing(pairing, du, None)
        _mismatch(pairing, du, m.funits[f])
    if src is not None and not others and not m.units_after.get(src):
        fed = next((model.parts[u.main].name for u in m.funits if u.node == src), None)
        why = f" (nothing in the model takes the output of {fed!r})" if fed else ""
        raise ModelMismatchError(
            f"darknet {du.layer.location} ({describe(du.sig)}) has no counterpart in the "
            f"{model.framework} model{why} (pass strict=False to load the layers that have "
            "one)", darknet_layer=du.index, line=du.layer.line, pairing=pairing)
    raise ModelMismatchError(
        f"no {model.framework} layer takes the place of darknet {du.layer.location} "
        f"({describe(du.sig)}): nothing with its shapes is fed by the counterpart of its "
        "input; the model is connected differently there (pass mapping= to pair layers "
        "by name)", darknet_layer=du.index, line=du.layer.line, pairing=pairing)


def _layer_of_node(config: Config, m: _GraphMatch, node: int) -> CfgLayer | None:
    return config[node - 1] if 0 < node <= len(config) else None


def _unit_before(m: _GraphMatch, du: DUnit) -> DUnit | None:
    before = [u for u in m.dunits if u.index < du.index]
    return before[-1] if before else None


def _unit_inputs(config: Config, m: _GraphMatch, du: DUnit) -> set[int]:
    """Darknet layer indices of the units whose output reaches ``du`` through
    layers that pass their input on."""
    node = _skip_ops(m.dnodes, m.dnodes[du.index + 1].preds[0])
    n = m.dnodes[node]
    return {m.dunits[n.part].index} if n.kind == "part" else set()


def _diagnose_order(pairing: Pairing, dunits: Sequence[DUnit], funits: Sequence[FUnit],
                    strict: bool) -> None:
    """Aligns the two orders of units and raises at the first difference: a
    unit of other shapes, one the model has and the cfg does not, or the
    reverse."""
    model = pairing.model
    parts = model.parts
    dsig = [u.sig for u in dunits]
    fsig = [parts[u.main].sig for u in funits]
    matcher = difflib.SequenceMatcher(a=dsig, b=fsig, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if tag == "replace" and i2 - i1 == j2 - j1:
            _mismatch(pairing, dunits[i1], funits[j1])
        if tag == "insert" or (tag == "replace" and j2 - j1 > i2 - i1):
            _extra(pairing, funits[j1], dunits[i1 - 1] if i1 else None,
                   dunits[i1] if i1 < len(dunits) else None)
        _missing(pairing, dunits[i1], funits[j1 - 1] if j1 else None)
    raise ModelMismatchError(
        f"the {model.framework} model's layers have the shapes of {pairing.config.path}'s, "
        f"but they could not be paired by {model.order}, and its data flow is not known; "
        "pass mapping= to pair them by name", pairing=pairing)


def _mismatch(pairing: Pairing, d: DUnit, f: FUnit) -> None:
    model = pairing.model
    part = model.parts[f.main]
    expected = model.expected_shapes(part, d.sig)
    found_sig = part.sig
    assert found_sig is not None
    hint = ""
    if found_sig[0] == d.sig[0] == "conv" and found_sig[1:2] == d.sig[1:2] and \
            found_sig[3:] == d.sig[3:]:
        hint = _classes_hint(pairing.config, d.layer, found_sig[2])
        if not hint:
            try:
                hint = (f" Its filter count differs: {pairing.config.path}:"
                        f"{d.layer.option_line('filters')}: filters={d.sig[2]}, the model has "
                        f"{found_sig[2]}.")
            except KeyError:
                hint = f" Its filter count differs: darknet {d.sig[2]}, the model {found_sig[2]}."
    elif found_sig[0] == d.sig[0] and found_sig[1] != d.sig[1]:
        hint = (f" Its input has {found_sig[1]} channels where darknet's has {d.sig[1]}: an "
                "earlier layer or route of the model differs.")
    raise ModelMismatchError(
        f"{model.framework} layer {part.name!r} ({part.type_name}) does not fit darknet "
        f"{d.layer.location}: expected {describe(d.sig)} ({_shapes_text(expected)}), found "
        f"{describe(found_sig)} ({_shapes_text(part.shapes)}).{hint}",
        framework_layer=part.name, darknet_layer=d.index, line=d.layer.line,
        expected=expected, found=part.shapes, pairing=pairing)


def _extra(pairing: Pairing, f: FUnit, before: DUnit | None, after: DUnit | None) -> None:
    model = pairing.model
    part = model.parts[f.main]
    assert part.sig is not None
    where = ""
    if before is not None:
        where = f" after the counterpart of darknet {before.layer.location}"
    if after is not None:
        where += f"{',' if where else ''} where darknet's next is {after.layer.location} " \
                 f"({describe(after.sig)})"
    raise ModelMismatchError(
        f"the {model.framework} model has a layer the cfg does not: {part.name!r} "
        f"({part.type_name}, {describe(part.sig)}, {_shapes_text(part.shapes)}){where}",
        framework_layer=part.name, darknet_layer=after.index if after else None,
        line=after.layer.line if after else 0, found=part.shapes, pairing=pairing)


def _missing(pairing: Pairing, d: DUnit, before: FUnit | None) -> None:
    model = pairing.model
    where = ""
    if before is not None:
        where = f" (after {model.framework} layer {model.parts[before.main].name!r})"
    raise ModelMismatchError(
        f"the {model.framework} model lacks darknet {d.layer.location}: {describe(d.sig)} "
        f"has no counterpart{where}", darknet_layer=d.index, line=d.layer.line,
        pairing=pairing)


def _check_pairs(pairing: Pairing, fuse: bool) -> None:
    model = pairing.model
    node_of = {n.part: k for k, n in enumerate(model.graph or []) if n.kind == "part"}
    for p in pairing.pairs:
        d, f = p.dunit, p.funit
        if d is None or f is None:
            continue
        main = model.parts[f.main]
        if main.sig != d.sig:
            _mismatch(pairing, d, f)
        if d.sig[0] == "bn":
            _check_bn(pairing, d, main)
            continue
        if d.attrs is not None:
            _check_conv_geometry(pairing, d, main, node_of.get(f.main))
        if f.bn is not None:
            if not d.bn:
                raise ModelMismatchError(
                    f"{model.framework} layer {model.parts[f.bn].name!r} is a batch norm after "
                    f"{main.name!r}, but darknet {d.layer.location} has none "
                    "(batch_normalize=0): the model computes something else",
                    framework_layer=model.parts[f.bn].name, darknet_layer=d.index,
                    line=d.layer.line, pairing=pairing)
            bn = model.parts[f.bn]
            if bn.sig != ("bn", d.sig[2]):
                assert bn.sig is not None
                raise ModelMismatchError(
                    f"{model.framework} batch norm {bn.name!r} after {main.name!r} has "
                    f"{bn.sig[1]} channels, but darknet {d.layer.location} has {d.sig[2]}",
                    framework_layer=bn.name, darknet_layer=d.index, line=d.layer.line,
                    expected={"channels": (d.sig[2],)}, found=bn.shapes, pairing=pairing)
            _check_bn(pairing, d, bn)
        elif d.bn:
            if not fuse or not main.bias:
                why = ("pass fuse=True to fold it into the layer's bias" if main.bias else
                       "the layer has no bias either, so the batch norm cannot be folded in")
                raise ModelMismatchError(
                    f"darknet {d.layer.location} has a batch norm (batch_normalize=1), but "
                    f"{model.framework} layer {main.name!r} is not followed directly by one: "
                    f"{why}", framework_layer=main.name, darknet_layer=d.index,
                    line=d.layer.line, pairing=pairing)
        elif not main.bias:
            raise ModelMismatchError(
                f"{model.framework} layer {main.name!r} has no bias, but darknet "
                f"{d.layer.location} has biases and no batch norm: the model cannot hold them",
                framework_layer=main.name, darknet_layer=d.index, line=d.layer.line,
                pairing=pairing)


def _check_conv_geometry(pairing: Pairing, d: DUnit, part: Part, node: int | None) -> None:
    """Strides, dilation and padding: the weights fit whatever they are, but
    the model would compute something else."""
    a = d.attrs
    checks = [("dilation", part.dilation, (a["dilation"], a["dilation"]))]
    if not a["antialiasing"]:  # antialiasing: the conv runs at stride 1, a blur strides
        checks.insert(0, ("stride", part.stride, (a["stride_y"], a["stride_x"])))
    for what, found, want in checks:
        if found is not None and tuple(found) != want:
            raise ModelMismatchError(
                f"{pairing.model.framework} layer {part.name!r} ({part.type_name}) has {what} "
                f"{_pair_text(found)}, but darknet {d.layer.location} has {what} "
                f"{_pair_text(want)}: the weights fit, but the model computes something else",
                framework_layer=part.name, darknet_layer=d.index, line=d.layer.line,
                pairing=pairing)
    _check_padding(pairing, d, part, node)


def _check_padding(pairing: Pairing, d: DUnit, part: Part, node: int | None) -> None:
    """Darknet pads ``pad * dilation`` zeros on each side (``pad``: size/2
    with ``pad=1``, else ``padding=``; the core's attrs). The model's padding
    is its conv's own plus the zero padding of the operations right before
    it (a ZeroPad2d / ZeroPadding2D, F.pad), when its data flow is known. An
    uneven padding computes the same when it pads the top and left as darknet
    does and gives the same output size for the cfg's input (a ZeroPadding2D
    of (1, 0) before a stride-2 "valid" conv, on an even size). Without the
    data flow, what the conv itself proves wrong is refused (a mode other
    than zeros; a padding no zero padding before it makes darknet's), and
    the rest is a note."""
    if part.padding is None:
        return
    a = d.attrs
    _, h, w = d.layer.input_shape
    framework = pairing.model.framework
    before = [0, 0, 0, 0]
    graph = pairing.model.graph
    if graph is not None and node is not None:
        k = graph[node].preds[0] if graph[node].preds else -1
        while k >= 0 and graph[k].pad is not None and len(graph[k].preds) == 1:
            before = [x + y for x, y in zip(before, graph[k].pad, strict=True)]  # type: ignore[arg-type]
            k = graph[k].preds[0]
    found = _padded(part, h, w, before)
    want = a["pad"] * a["dilation"]
    lines = [f"{o}= at line {d.layer.option_line(o)}" for o in ("pad", "padding")
             if o in d.layer.options]
    where = f" ({pairing.config.path}: {', '.join(lines)})" if lines else ""
    why = ""
    if part.padding_mode != "zeros" and any(found):
        why = (f"pads with padding_mode={part.padding_mode!r}, but darknet "
               f"{d.layer.location} pads with zeros")
    elif not _fits(found, h, w, want, a, part):
        dil = f" (pad {a['pad']} x dilation {a['dilation']})" if a["dilation"] != 1 else ""
        why = (f"pads {_padding_text(found)} for its {h}x{w} input, but darknet "
               f"{d.layer.location} pads {want} on each side{dil}{where}")
        if (graph is None or node is None) and _completable(part, h, w, want, a):
            # A zero padding before it (ZeroPad2d, F.pad, ZeroPadding2D) may make it
            # darknet's, which only its data flow shows. None can where the conv pads
            # more on a side (no layer takes padding away), or where Keras' "same" at
            # stride 2 pads (0, 1) on an even size (a padded input changes its own).
            pairing._notes.append(
                f"{framework} layer {part.name!r} ({part.type_name}) {why}: right only if a "
                "zero padding right before it pads the rest, which the data flow would show, "
                "but it was not traced, so this was not checked; pass trace=True to decide "
                "(a model that cannot be traced is then an error)")
            return
    if why:
        raise ModelMismatchError(
            f"{framework} layer {part.name!r} ({part.type_name}) {why}: the weights fit, but "
            "the model computes something else", framework_layer=part.name,
            darknet_layer=d.index, line=d.layer.line,
            expected={"padding": (want,) * 4}, found={"padding": tuple(found)}, pairing=pairing)


def _padded(part: Part, h: int, w: int, before: Sequence[int]) -> list[int]:
    """The padding (top, bottom, left, right) of ``before`` and then the conv's
    own for the input it sees (Keras' "same" depends on its size)."""
    assert part.padding is not None
    own = part.padding(h + before[0] + before[1], w + before[2] + before[3])
    return [x + y for x, y in zip(before, own, strict=True)]


def _fits(found: Sequence[int], h: int, w: int, want: int, a: Mapping[str, Any],
          part: Part) -> bool:
    """Padding ``found`` computes what darknet's ``want`` on each side does:
    the same top and left, and the same output size."""
    return found[0] == found[2] == want and _even(h, found[0] + found[1], want, a, part, 0) \
        and _even(w, found[2] + found[3], want, a, part, 1)


def _completable(part: Part, h: int, w: int, want: int, a: Mapping[str, Any]) -> bool:
    """Some zero padding before the conv (at most ``want`` on a side) makes
    its padding darknet's; each axis on its own, as they do not interact."""
    def axis(k: int, size: int) -> bool:
        for first, second in ((p, q) for p in range(want + 1) for q in range(want + 1)):
            found = _padded(part, h, w, [first, second, 0, 0] if k == 0 else [0, 0, first, second])
            if found[2 * k] == want and _even(size, found[2 * k] + found[2 * k + 1], want, a,
                                               part, k):
                return True
        return False

    return axis(0, h) and axis(1, w)


def _even(size: int, total: int, want: int, a: Mapping[str, Any], part: Part, axis: int) -> bool:
    """The same output size along one axis with ``total`` padding as with
    darknet's ``want`` on each side."""
    k = a["size"]
    dil = a["dilation"]
    stride = part.stride[axis] if part.stride is not None else 1
    span = dil * (k - 1) + 1
    return bool((size + total - span) // stride == (size + 2 * want - span) // stride)


def _padding_text(found: Sequence[int]) -> str:
    if len(set(found)) == 1:
        return f"{found[0]} on each side"
    return "(" + ", ".join(map(str, found)) + ") (top, bottom, left, right)"


def _pair_text(yx: Sequence[int]) -> str:
    return str(yx[0]) if yx[0] == yx[1] else f"{yx[0]}x{yx[1]} (y x)"


def bn_past_partial_end(path: str, d: DUnit, main: Part) -> ModelMismatchError:
    """The error for a unit whose separate [batchnorm] layer is past the end
    of a partial file while its conv is in it."""
    assert d.bn_layer is not None
    return ModelMismatchError(
        f"{d.bn_layer.location} is past the end of the partial file {path}, but the model's "
        f"{main.name!r} takes it with {d.layer.location}: load a file that holds both",
        framework_layer=main.name, darknet_layer=d.bn_layer.index, line=d.bn_layer.line)


def _check_bn(pairing: Pairing, d: DUnit, part: Part) -> None:
    if not part.affine:
        raise ModelMismatchError(
            f"{pairing.model.framework} batch norm {part.name!r} has no scale or offset, but "
            f"darknet {d.layer.location}'s batch norm has both", framework_layer=part.name,
            darknet_layer=d.index, line=d.layer.line, pairing=pairing)


def _check_complete(pairing: Pairing) -> None:
    for p in pairing.pairs:
        if p.funit is None and p.dunit is not None:
            raise ModelMismatchError(
                f"darknet {p.dunit.layer.location} ({describe(p.dunit.sig)}) has no counterpart "
                f"in the {pairing.model.framework} model (pass strict=False to load the "
                "layers that have one)", darknet_layer=p.dunit.index,
                line=p.dunit.layer.line, pairing=pairing)
        if p.dunit is None and p.funit is not None:
            part = pairing.model.parts[p.funit.main]
            raise ModelMismatchError(
                f"{pairing.model.framework} layer {part.name!r} ({part.type_name}, "
                f"{_shapes_text(part.shapes)}) has no counterpart in {pairing.config.path} "
                "(pass strict=False to leave it as it is)", framework_layer=part.name,
                found=part.shapes, pairing=pairing)


Role = Literal["unit", "bn", "concat", "combine", "op"]

_TAKES_NO_FRAMEWORK_LAYER = Refused("no framework layer type yolo_io pairs has its parameters")

#: What each darknet layer kind is in the pairing: "unit" (a convolutional or
#: connected layer: one framework layer with weights), "bn" (a [batchnorm]
#: layer: a framework batch norm), "concat" (a route of several inputs),
#: "combine" (shortcut, sam, scale_channels of several inputs), "op" (a node
#: of the data flow without parameters), or Refused: a kind whose parameters
#: no framework layer type takes (refused when it has some).
#: tests/test_kinds.py checks that every kind of the core's table has an entry.
PAIRING_ROLE_BY_KIND: dict[str, Role | Refused] = {
    "convolutional": "unit",
    "deconvolutional": _TAKES_NO_FRAMEWORK_LAYER,
    "connected": "unit",
    "local": _TAKES_NO_FRAMEWORK_LAYER,
    "maxpool": "op",
    "local_avgpool": "op",
    "avgpool": "op",
    "route": "concat",
    "shortcut": "combine",
    "scale_channels": "combine",
    "sam": "combine",
    "upsample": "op",
    "reorg": "op",
    "reorg3d": "op",
    "yolo": "op",
    "Gaussian_yolo": "op",
    "region": "op",
    "detection": "op",
    "rnn": _TAKES_NO_FRAMEWORK_LAYER,
    "lstm": _TAKES_NO_FRAMEWORK_LAYER,
    "gru": _TAKES_NO_FRAMEWORK_LAYER,
    "crnn": _TAKES_NO_FRAMEWORK_LAYER,
    "conv_lstm": _TAKES_NO_FRAMEWORK_LAYER,
    "batchnorm": "bn",
    "dropout": "op",
    "softmax": "op",
    "cost": "op",
    "normalization": "op",
    "activation": "op",
    "contrastive": "op",
    "crop": "op",
    "history": "op",
    "implicit": _TAKES_NO_FRAMEWORK_LAYER,
    "iseg": "op",
    "empty": "op",
    "logistic": "op",
    "l2norm": "op",
}

"""PyTorch helpers (needs ``torch``, an optional dependency).

>>> import yolo_io, yolo_io.torch
>>> net = yolo_io.load("yolov4.weights", "yolov4.cfg")
>>> model.load_state_dict(yolo_io.torch.state_dict(net, naming="darknet2pytorch"))
>>> yolo_io.torch.load_into(my_model, net)        # any nn.Module: paired by structure
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._base.errors import ConversionError, ModelMismatchError, YoloIOError
from .._model.fusion import BN_EPSILON, bn_for_eps, fold_bn, threads_arg
from .._model.network import core_weights
from .pairing import Model, Node, Pairing, Part, bn_past_partial_end, pair

if TYPE_CHECKING:
    import torch

    from .._model.config import CfgLayer, Config
    from .._model.network import Network

__all__ = ["check_model", "load_into", "state_dict"]


def _torch() -> Any:
    try:
        import torch
    except ImportError as err:
        raise ImportError("yolo_io.torch needs PyTorch: python -m pip install torch") from err
    return torch


def state_dict(net: Network, *, fuse: bool = False, layout: str | None = None,
               naming: str = "yolo_io", dense_layout: str | None = None,
               bn_eps: float | None = None, threads: int | None = None,
               dtype: str = "float32") -> dict[str, torch.Tensor]:
    """:meth:`Network.state_dict` as torch tensors that share memory with it:
    no copy beyond the one arena of fused/transposed weights.

    The options are those of :meth:`Network.state_dict`.

    Raises:
        ImportError: torch is not installed.
    """
    torch = _torch()
    arrays = net.state_dict(fuse=fuse, layout=layout, naming=naming, dense_layout=dense_layout,
                            bn_eps=bn_eps, threads=threads, dtype=dtype)
    return {key: torch.from_numpy(array) for key, array in arrays.items()}


# -- the model as the pairing sees it -----------------------------------------------------------


def _part(name: str, m: Any, nn: Any, lazy: Any) -> Part | None:
    own = m._parameters
    kind = type(m)
    if not own:
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):  # affine=False
            return Part(name, kind.__name__, ("bn", m.num_features), {}, eps=float(m.eps),
                        affine=False, obj=m)
        return None
    if isinstance(m, lazy) and m.has_uninitialized_params():
        raise ModelMismatchError(
            f"torch layer {name!r} ({kind.__name__}) is not initialized yet (a lazy "
            "module): run the model once before loading into it", framework_layer=name)
    shapes = {k: tuple(v.shape) for k, v in own.items() if v is not None}
    if isinstance(m, (nn.Conv2d, nn.Linear)) and "weight" not in shapes:
        raise ModelMismatchError(
            f"torch layer {name!r} ({kind.__name__}) has no plain weight parameter (a "
            "weight_norm, spectral_norm or parametrization replaced it): remove it before "
            "loading (torch.nn.utils.parametrize.remove_parametrizations)",
            framework_layer=name, found=shapes)
    if isinstance(m, nn.Conv2d):
        out, in_g, kh, kw = shapes["weight"]
        return Part(name, kind.__name__, ("conv", in_g * m.groups, out, kh, kw, m.groups),
                    shapes, bias="bias" in shapes, obj=m, stride=tuple(m.stride),
                    dilation=tuple(m.dilation), padding=_padding(m),
                    padding_mode=str(m.padding_mode))
    if isinstance(m, nn.Linear):
        out, inp = shapes["weight"]
        return Part(name, kind.__name__, ("dense", inp, out), shapes, bias="bias" in shapes,
                    obj=m)
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        if m.running_mean is None:
            raise ModelMismatchError(
                f"torch layer {name!r} ({kind.__name__}) keeps no running statistics "
                "(track_running_stats=False), so it cannot hold darknet's batch norm",
                framework_layer=name)
        shapes["running_mean"] = shapes["running_var"] = (m.num_features,)
        return Part(name, kind.__name__, ("bn", m.num_features), shapes, eps=float(m.eps),
                    affine=bool(m.affine), obj=m)
    return Part(name, kind.__name__, None, shapes, obj=m)


def _padding(m: Any) -> Any:
    """A Conv2d's padding (top, bottom, left, right), as its forward pads:
    ``"same"`` puts the odd pixel after (torch's ``Conv2d.__init__``)."""
    if isinstance(m.padding, str):
        if m.padding == "valid":
            pads = (0, 0, 0, 0)
        else:
            (ty, tx) = (d * (k - 1) for d, k in zip(m.dilation, m.kernel_size, strict=True))
            pads = (ty // 2, ty - ty // 2, tx // 2, tx - tx // 2)
    else:
        py, px = (int(v) for v in m.padding)
        pads = (py, py, px, px)
    return lambda h, w: pads


def _expected_shapes(part: Part, sig: tuple[Any, ...]) -> dict[str, tuple[int, ...]]:
    if sig[0] == "conv":
        _, cin, cout, kh, kw, g = sig
        out: dict[str, tuple[int, ...]]
        out = {"weight": (cout, cin // g, kh, kw)}
    elif sig[0] == "dense":
        out = {"weight": (sig[2], sig[1])}
    else:
        return {k: (sig[1],) for k in ("weight", "bias", "running_mean", "running_var")}
    if part.bias:
        out["bias"] = (out["weight"][0],)
    return out


def _named_modules(module: Any) -> list[tuple[str, Any]]:
    """``module.named_modules()`` (the same names, order and de-duplication),
    twice as fast: it is a tenth of load_into's own time on yolov4."""
    stack = [("", module)]
    seen: set[int] = set()
    out = []
    while stack:
        name, m = stack.pop()
        if id(m) in seen:
            continue
        seen.add(id(m))
        out.append((name, m))
        for key, child in reversed(m._modules.items()):
            if child is not None:
                stack.append((f"{name}.{key}" if name else key, child))
    return out


def _model(module: Any, torch: Any) -> Model:
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"expected a torch.nn.Module, not {type(module).__name__}")
    nn, lazy = torch.nn, torch.nn.modules.lazy.LazyModuleMixin
    parts = [p for name, m in _named_modules(module) if (p := _part(name, m, nn, lazy))]
    owner: dict[int, str] = {}
    for p in parts:
        for t in p.obj._parameters.values():
            if t is not None and owner.setdefault(id(t), p.name) != p.name:
                raise ModelMismatchError(
                    f"torch layers {owner[id(t)]!r} and {p.name!r} share a parameter (tied "
                    "weights): darknet's layers each have their own, and loading one would "
                    "overwrite the other", framework_layer=p.name)
    return Model("torch", parts, None, "the order its modules are registered in",
                 _expected_shapes)


# -- the traced data flow ---------------------------------------------------------------------


def _tensors(obj: Any, torch: Any) -> Iterable[Any]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            yield from _tensors(x, torch)
    elif isinstance(obj, dict):
        for x in obj.values():
            yield from _tensors(x, torch)


_CONCAT = frozenset({"cat", "concat", "concatenate"})


def _trace(module: Any, parts: list[Part], example: Any, torch: Any, notes: list[str]
           ) -> list[Node] | None:
    """The data flow of one forward pass: on the meta device (shapes only,
    no arithmetic) when the model allows it, else on ``example``. None when
    the forward fails both ways (the reason goes to ``notes``)."""
    from torch.overrides import TorchFunctionMode

    part_of = {id(p.obj): k for k, p in enumerate(parts)}
    nodes: list[Node] = [Node("input")]
    prov: dict[int, int] = {}
    keep: list[Any] = []
    depth = [0]
    pending: dict[int, list[int]] = {}

    def mark(t: Any, node: int) -> None:
        prov[id(t)] = node
        keep.append(t)

    class Recorder(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (),
                               kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            if depth[0]:
                return out
            ins = [prov[id(t)] for t in _tensors((args, kwargs), torch) if id(t) in prov]
            if not ins:
                return out
            outs = list(_tensors(out, torch))
            if not outs:  # x.shape, x.size(): no value flows on
                return out
            name = getattr(func, "__name__", "")
            dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
            if name in _CONCAT and dim in (1, -3):
                nodes.append(Node("concat", ins))
            elif name == "pad" and len(ins) == 1 and (pad := _zero_pad(args, kwargs)):
                nodes.append(Node("op", ins, pad=pad))
            else:
                # Even an op of one input is a node: a batch norm after an
                # activation is not the conv's own (an in-place activation
                # marks its input tensor anew).
                nodes.append(Node("op", list(dict.fromkeys(ins))))
            for o in outs:
                mark(o, len(nodes) - 1)
            return out

    def pre(m: Any, args: Any) -> None:
        depth[0] += 1
        pending.setdefault(id(m), []).append(
            next((prov[id(t)] for t in _tensors(args, torch) if id(t) in prov), -1))

    def post(m: Any, args: Any, out: Any) -> None:
        depth[0] -= 1
        pred = pending[id(m)].pop()
        nodes.append(Node("part", [pred] if pred >= 0 else [], part_of[id(m)]))
        for o in _tensors(out, torch):
            mark(o, len(nodes) - 1)

    def run(on_meta: bool) -> None:
        del nodes[1:]
        prov.clear()
        keep.clear()
        depth[0] = 0
        pending.clear()
        x = example
        with torch.no_grad():
            if on_meta:
                state = {k: torch.empty_like(v, device="meta")
                         for k, v in module.state_dict(keep_vars=True).items()}
                x = example.to("meta")
                mark(x, 0)
                # A batch norm keeps the shape, and the meta device computes
                # shapes only: its own forward (decomposed on meta) would cost
                # about half of the trace.
                bns = [p.obj for p in parts if p.kind == "bn"]
                own = [m.__dict__.get("forward") for m in bns]
                try:
                    for m in bns:
                        m.forward = _same_shape
                    with torch.device("meta"), Recorder():
                        torch.func.functional_call(module, state, (x,), strict=False)
                finally:
                    for m, f in zip(bns, own, strict=True):
                        if f is None:
                            del m.forward
                        else:
                            m.forward = f
            else:
                mark(x, 0)
                with Recorder():
                    module(x)

    hooks = []
    saved = _snapshot(module)
    try:
        for p in parts:
            hooks.append(p.obj.register_forward_pre_hook(pre))
            hooks.append(p.obj.register_forward_hook(post))
        module.eval()
        errors: list[str] = []
        for on_meta in (True, False):
            try:
                run(on_meta)
                return nodes
            except Exception as err:  # noqa: BLE001 - any error of the user's forward
                errors.append(f"{type(err).__name__}: {err}")
                if {n.part for n in nodes if n.kind == "part"} == set(range(len(parts))):
                    # It failed after its last layer with parameters (in its
                    # post-processing, say): what the pairing needs was traced.
                    return nodes
        notes.append(f"its forward could not be traced ({errors[1]}; on the meta device: "
                     f"{errors[0]})")
        return None
    finally:
        for h in hooks:
            h.remove()
        _restore(saved)
    return nodes


def _zero_pad(args: Any, kwargs: dict[str, Any]) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of an ``F.pad`` call that pads the last two
    dimensions with zeros (ZeroPad2d's, say); None for any other."""
    pad = kwargs.get("pad", args[1] if len(args) > 1 else None)
    mode = kwargs.get("mode", args[2] if len(args) > 2 else "constant")
    value = kwargs.get("value", args[3] if len(args) > 3 else None)
    if mode != "constant" or value not in (None, 0) or not isinstance(pad, (tuple, list)) \
            or len(pad) not in (2, 4) or not all(isinstance(v, int) for v in pad):
        return None
    left, right, top, bottom = (*pad, 0, 0)[:4]
    return (top, bottom, left, right)


def _same_shape(x: Any) -> Any:
    """A new tensor of the shape of ``x`` (a batch norm's output on meta)."""
    return x.new_empty(x.shape)


Saved = list[tuple[Any, dict[str, Any], dict[str, Any]]]


def _snapshot(module: Any) -> Saved:
    """Every submodule's attributes (training flags, tensors a forward caches
    on itself, such as a detection head's grid) and the contents of its
    lists and dicts (its parameter, buffer and submodule tables; a head's
    list of grids), so that a traced forward leaves the module as it was."""
    saved = []
    for m in module.modules():
        attrs = dict(m.__dict__)
        contents = {k: list(v) if isinstance(v, list) else dict(v)
                    for k, v in attrs.items() if isinstance(v, list | dict)}
        saved.append((m, attrs, contents))
    return saved


def _restore(saved: Saved) -> None:
    for m, attrs, contents in saved:
        current = m.__dict__
        for key in [k for k in current if k not in attrs]:
            del current[key]
        current.update(attrs)
        for key, items in contents.items():
            container = current[key]
            if isinstance(container, list):
                container[:] = items
            else:
                container.clear()
                container.update(items)


# -- the arrays --------------------------------------------------------------------------------


class _Plan:
    """Every tensor to write and where its values come from, checked before
    the first write: the file itself (``reads``, by the core's threaded
    pread), the core's fusion (``fused``), or a new array (``arrays``)."""

    def __init__(self, torch: Any) -> None:
        self.torch = torch
        self.float32 = torch.float32
        # (layer, name, address, bytes) of tensors the core fills; ``keep``
        # holds the tensors, so that the addresses stay valid.
        self.reads: list[tuple[int, str, int, int]] = []
        self.keep: list[Any] = []
        # layer, weight tensor, bias tensor, their names
        self.fused: list[tuple[int, Any, Any, str, str]] = []
        self.arrays: list[tuple[Any, npt.NDArray[np.float32], str, CfgLayer]] = []
        # (device, start, end, name, layer) of every tensor written: no two may overlap.
        self.extents: list[tuple[str, int, int, str, CfgLayer]] = []

    @staticmethod
    def _shape_error(tensor_name: str, tensor: Any, shape: tuple[int, ...],
                     layer: CfgLayer) -> None:
        if tuple(tensor.shape) != tuple(shape):
            raise ModelMismatchError(
                f"torch tensor {tensor_name!r} has shape {tuple(tensor.shape)}, but "
                f"{layer.location} needs {tuple(shape)}",
                framework_layer=tensor_name.rpartition(".")[0], darknet_layer=layer.index,
                line=layer.line)

    def target(self, tensor: Any, tensor_name: str, layer: CfgLayer) -> None:
        """Refuses a tensor a write would fail on, or succeed on and lose
        (checked for every tensor before the first write, so that an error
        leaves the model as it was)."""
        why = ""
        if tensor.is_meta:
            why = ("is on the meta device, which holds no values: what load_into wrote "
                   "would be lost when to_empty() allocates the model. Call "
                   "model.to_empty(device='cpu') first, or build the model on the CPU")
        elif not (tensor.dtype.is_floating_point and not tensor.dtype.is_complex):
            why = f"has dtype {tensor.dtype}, which cannot hold darknet's float values"
        elif tensor.is_inference():
            why = ("was created in torch.inference_mode(), so it cannot be written outside "
                   "it: clone() it, or build the model outside inference mode")
        elif tensor.layout != self.torch.strided:
            why = f"has layout {tensor.layout}, not a dense (strided) tensor"
        elif _self_overlapping(tuple(tensor.shape), tuple(tensor.stride())):
            why = ("has elements that share memory (an expanded or as_strided tensor, "
                   f"strides {tuple(tensor.stride())}): writing darknet's values into it "
                   "would keep one value of each group; make it a real tensor "
                   "(nn.Parameter(t.clone()))")
        if why:
            raise ModelMismatchError(
                f"torch tensor {tensor_name!r} {why} ({layer.location} goes there)",
                framework_layer=tensor_name.rpartition(".")[0], darknet_layer=layer.index,
                line=layer.line)
        if tensor.numel():
            span = 1 + sum((n - 1) * st for n, st in zip(tensor.shape, tensor.stride(),
                                                        strict=True))
            start = tensor.data_ptr()
            self.extents.append((str(tensor.device), start, start + span * tensor.element_size(),
                                 tensor_name, layer))

    def check_overlaps(self) -> None:
        """Two tensors written that share memory (a bias that is a view into
        a weight, say) would take each other's values."""
        extents = sorted(self.extents, key=lambda e: e[:3])
        for a, b in itertools.pairwise(extents):
            if a[0] == b[0] and b[1] < a[2]:
                raise ModelMismatchError(
                    f"torch tensors {a[3]!r} and {b[3]!r} share memory (views of one "
                    f"tensor?), but take the values of {a[4].location} and {b[4].location}: "
                    "writing one would overwrite the other; give each its own tensor",
                    framework_layer=b[3].rpartition(".")[0], darknet_layer=b[4].index,
                    line=b[4].line)

    def fast(self, tensor: Any) -> bool:
        """The core can fill it in place: a CPU float32 C-contiguous tensor."""
        return bool(tensor.dtype == self.float32 and tensor.is_cpu and tensor.is_contiguous())

    def read(self, layer: CfgLayer, src: _Source, name: str, tensor: Any,
             tensor_name: str) -> None:
        """``tensor`` takes ``layer``'s array ``name``."""
        self.target(tensor, tensor_name, layer)
        if self.fast(tensor) and (src.plain_weights or name != "weights"):
            # The pairing matched this tensor's shape (its signature); the core
            # checks the byte count.
            self.reads.append((src.owner, name, tensor.data_ptr(), 4 * tensor.numel()))
            self.keep.append(tensor)
            return
        source = src[name]
        if tensor.shape != source.shape:
            self._shape_error(tensor_name, tensor, source.shape, layer)
        self.arrays.append((tensor, np.asarray(source).reshape(tuple(tensor.shape)), tensor_name,
                            layer))

    def array(self, tensor: Any, values: npt.NDArray[np.float32], tensor_name: str,
              layer: CfgLayer) -> None:
        self.target(tensor, tensor_name, layer)
        self._shape_error(tensor_name, tensor, values.shape, layer)
        self.arrays.append((tensor, values, tensor_name, layer))

    def fuse(self, layer: CfgLayer, weight: Any, bias: Any, prefix: str) -> None:
        """``weight`` and ``bias`` take ``layer``'s batch norm folded in."""
        self.target(weight, prefix + ".weight", layer)
        self.target(bias, prefix + ".bias", layer)
        self.fused.append((layer.index, weight, bias, prefix + ".weight", prefix + ".bias"))

    def run(self, net: Network, threads: int) -> None:
        """Writes every tensor: first those torch copies into (they are kept,
        to be put back if a later write fails), then those filled in place."""
        torch = self.torch
        self.check_overlaps()
        fast = {i: (w.detach().numpy(), b.detach().numpy()) for i, w, b, _, _ in self.fused
                if self.fast(w) and self.fast(b)}
        kept: list[tuple[Any, Any]] = []  # (tensor, its values before) of tensors copied into
        name = ""

        def copy(tensor: Any, values: npt.NDArray[Any], tensor_name: str) -> None:
            nonlocal name
            name = tensor_name
            before = tensor.detach().to("cpu", copy=True)
            tensor.copy_(torch.from_numpy(np.array(values, np.float32)))
            kept.append((tensor, before))

        with torch.no_grad():
            try:
                for i, w, b, wname, bname in self.fused:
                    if i not in fast:
                        fw, fb = net[i].fused("OIHW" if net[i].fusion == "conv" else "OI",
                                              flatten="CHW")
                        copy(w, fw, wname)
                        copy(b, fb, bname)
                # The pages each layer's arrays were read from leave the
                # resident set behind the copies.
                from .._model.network import evict_behind

                step = evict_behind(net)
                for tensor, values, tensor_name, layer in self.arrays:
                    if not self.fast(tensor):
                        step(layer.index)
                        copy(tensor, values, tensor_name)
                name = ""
                if self.reads:
                    # Tensors checked by fast() (CPU, float32, contiguous), by
                    # address: no NumPy view per tensor.
                    core_weights(net).read_params_into(self.reads, threads)
                if fast:
                    net.fuse_into(fast, "OIHW", dense_layout="OI", flatten="CHW",
                                  threads=threads)
                for tensor, values, _, layer in self.arrays:
                    if self.fast(tensor):
                        step(layer.index)
                        np.copyto(tensor.detach().numpy(), values.reshape(tuple(tensor.shape)))
                step(None)
            except Exception as err:
                for tensor, before in reversed(kept):
                    tensor.copy_(before)
                if isinstance(err, YoloIOError) or not name:
                    raise
                raise ConversionError(
                    f"torch tensor {name!r} could not take darknet's values "
                    f"({type(err).__name__}: {err}); the tensors written before it were put "
                    "back") from err


def _self_overlapping(shape: tuple[int, ...], strides: tuple[int, ...]) -> bool:
    """Whether two elements of a strided tensor share memory: with its
    dimensions sorted by stride, each stride must pass the extent of the
    dimensions before it."""
    dims = sorted((st, n) for n, st in zip(shape, strides, strict=True) if n > 1)
    extent = 0
    for st, n in dims:
        if st <= extent:
            return True
        extent += (n - 1) * st
    return False


class _Source:
    """A darknet layer's arrays for the plan, fetched only if a tensor needs
    them as an array: the fast path reads the file by layer and name."""

    __slots__ = ("_net", "_params", "owner", "plain_weights")

    def __init__(self, net: Network, owner: int, plain_weights: bool) -> None:
        self._net = net
        self.owner = owner
        self.plain_weights = plain_weights
        self._params: Mapping[str, npt.NDArray[np.float32]] | None = None

    @property
    def params(self) -> Mapping[str, npt.NDArray[np.float32]]:
        if self._params is None:
            self._params = self._net[self.owner].params
        return self._params

    def __getitem__(self, name: str) -> npt.NDArray[np.float32]:
        return self.params[name]


def _plan(net: Network, pairing: Pairing, torch: Any) -> _Plan:
    plan = _Plan(torch)
    parts = pairing.model.parts
    covered = net.covered_layers
    transposed = net.header.transpose
    for p in pairing.pairs:
        d, f = p.dunit, p.funit
        if d is None or f is None or d.index >= covered:
            continue
        layer = d.layer
        main = parts[f.main]
        # Weights stored strided: a flipped conv, a connected matrix under a
        # legacy (transposing) header.
        plain = not (d.attrs["flipped"] if d.attrs is not None else
                     d.sig[0] == "dense" and transposed)
        src = _Source(net, d.owner, plain)
        if d.sig[0] == "bn":
            _plan_bn(plan, layer, src, main)
            continue
        m = main.obj
        if d.bn_layer is not None:
            if d.bn_layer.index >= covered:
                raise bn_past_partial_end(net.path, d, main)
            _plan_separate_bn(plan, net, layer, src, d.bn_layer.index, main,
                              parts[f.bn] if f.bn is not None else None)
            continue
        if d.bn and f.bn is None:  # fold darknet's batch norm into the layer (fuse=True)
            plan._shape_error(main.name + ".weight", m.weight, src["weights"].shape, layer)
            plan.fuse(layer, m.weight, m.bias, main.name)
            continue
        plan.read(layer, src, "weights", m.weight, main.name + ".weight")
        if d.bn:
            assert f.bn is not None
            if m.bias is not None:  # darknet's batch norm has the offset; the conv's bias is 0
                plan.array(m.bias, np.zeros(tuple(m.bias.shape), np.float32),
                           main.name + ".bias", layer)
            _plan_bn(plan, layer, src, parts[f.bn])
        else:
            plan.read(layer, src, "biases", m.bias, main.name + ".bias")
    return plan


def _plan_separate_bn(plan: _Plan, net: Network, layer: CfgLayer, src: _Source, bn_index: int,
                      main: Part, bn_part: Part | None) -> None:
    """A conv/connected layer without batch norm followed by a [batchnorm]
    layer: the model's conv and batch norm take the two, or with fuse=True
    its conv (with a bias) takes them folded together."""
    m = main.obj
    bn_layer = net.config[bn_index]
    bn_src = _Source(net, bn_index, True)
    if bn_part is None:
        w, b = fold_bn(src["weights"], src["biases"], bn_src.params, out_axis=0)
        plan.array(m.weight, w, main.name + ".weight", layer)
        plan.array(m.bias, b, main.name + ".bias", layer)
        return
    plan.read(layer, src, "weights", m.weight, main.name + ".weight")
    if m.bias is not None:
        plan.read(layer, src, "biases", m.bias, main.name + ".bias")
        _plan_bn(plan, bn_layer, bn_src, bn_part)
    else:  # the conv's bias goes into the batch norm's mean: bn(x + b) = bn'(x), mean' = mean - b
        mean = (bn_src["rolling_mean"].astype(np.float64) - src["biases"]).astype(np.float32)
        _plan_bn(plan, bn_layer, bn_src, bn_part, mean=mean)


def _plan_bn(plan: _Plan, layer: CfgLayer, src: _Source, part: Part, *,
             mean: npt.NDArray[np.float32] | None = None) -> None:
    bn = part.obj
    plan.read(layer, src, "biases", bn.bias, part.name + ".bias")
    if mean is None:
        plan.read(layer, src, "rolling_mean", bn.running_mean, part.name + ".running_mean")
    else:
        plan.array(bn.running_mean, mean, part.name + ".running_mean", layer)
    if part.eps == BN_EPSILON:  # darknet's epsilon: the stored arrays as they are
        plan.read(layer, src, "scales", bn.weight, part.name + ".weight")
        plan.read(layer, src, "rolling_variance", bn.running_var, part.name + ".running_var")
    else:
        gamma, var = bn_for_eps(layer, src.params, part.eps, stacklevel=5)
        plan.array(bn.weight, gamma, part.name + ".weight", layer)
        plan.array(bn.running_var, var, part.name + ".running_var", layer)


# -- the public functions ----------------------------------------------------------------------


def _pairing(module: Any, net: Network | Config, *, mapping: Mapping[int, Any] | None,
             strict: bool, fuse: bool, trace: bool | None, example_input: Any) -> Pairing:
    torch = _torch()
    from .._model.network import Network

    config = net.config if isinstance(net, Network) else net
    model = _model(module, torch)
    notes: list[str] = []

    def traced() -> list[Node] | None:
        example = example_input
        if example is None:
            c, h, w = config.input_shape
            first = next(iter(module.parameters()), None)
            example = torch.zeros(1, c, h, w) if first is None else \
                torch.zeros(1, c, h, w, device=first.device, dtype=first.dtype)
        return _trace(module, model.parts, example, torch, notes)

    if trace is False:
        notes.append("trace=False: its data flow (what feeds each layer, the order of a "
                     "route's inputs) was not checked, only the shapes in " + model.order)
    else:
        model.graph = traced()
        if model.graph is None:
            if trace:
                raise ConversionError(
                    "trace=True, but the torch model's forward could not be traced: "
                    f"{notes[-1].removeprefix('its forward could not be traced ')}; pass "
                    "trace=False to pair by the order its modules are registered in, without "
                    "checking the data flow")
            model.order += "; " + notes[-1]
            notes[-1] += ("; its data flow (what feeds each layer, the order of a route's "
                          "inputs) was not checked, only the shapes in the order its modules "
                          "are registered in (pass example_input= if the forward needs "
                          "another input)")
        else:
            model.order = "the traced forward's data flow"
    pairing = pair(config, model, mapping=mapping, strict=strict, fuse=fuse)
    pairing._notes[:0] = notes
    return pairing


def check_model(module: torch.nn.Module, net: Network | Config, *,
                mapping: Mapping[int, Any] | None = None, strict: bool = True,
                fuse: bool = False, trace: bool | None = None,
                example_input: torch.Tensor | None = None) -> Pairing:
    """Pair ``net``'s layers with ``module``'s, as :func:`load_into` would, and
    check every shape, without changing the module.

    Returns:
        The :class:`~yolo_io.torch.Pairing`: ``print()`` it for a table of
        darknet layer, cfg line, torch module, shapes, how each pair was found
        and its status; ``.rows()`` for the same as dicts.

    Raises:
        ModelMismatchError: (a ConversionError) the first module that does not
            fit, with its name, the expected and found shapes, the darknet
            layer and its cfg line, and the likely cause (a class count, a
            layer too many or too few).
    """
    return _pairing(module, net, mapping=mapping, strict=strict, fuse=fuse, trace=trace,
                    example_input=example_input)


def load_into(module: torch.nn.Module, net: Network, *, fuse: bool = False,
              mapping: Mapping[int, Any] | None = None, strict: bool = True,
              trace: bool | None = None, example_input: torch.Tensor | None = None,
              threads: int | None = None) -> Pairing:
    """Load ``net``'s parameters into any ``nn.Module`` that computes the same
    network, whatever its module names: Conv2d (any ``groups``), Linear and
    BatchNorm1d/2d are paired with darknet's convolutional, connected and
    batchnorm layers by structure, every shape is checked, and only then is
    anything written.

    Pairing: ``mapping`` first; then the data flow of a traced forward pass
    (on the meta device when the model allows it, so nothing is computed;
    else on ``example_input``, zeros of the network's input shape by
    default), which copes with models that create their branches in another
    order than darknet and refuses one that connects them otherwise (a
    route's inputs concatenated in another order). A forward that cannot be
    traced (or ``trace=False``) pairs by the order the modules are registered
    in, comparing shapes only; the pairing's notes say so.

    Every conv's stride, dilation and padding (amount, with any zero padding
    traced right before it, and mode) must be darknet's.

    Values: OIHW weights and Linear (out, in) weights as darknet stores them;
    a batch norm's running_var is adjusted to the module's own ``eps`` (see
    :meth:`Layer.bn_params`); with ``fuse=True``, a darknet batch norm whose
    conv has a bias and no BatchNorm after it in the model is folded into
    that conv (darknet's arithmetic, in the C++ core). A conv with a bias
    followed by a BatchNorm gets a zero bias. ``num_batches_tracked`` is left
    alone. CPU float32 tensors are filled in place by the core (read straight
    from the file with ``threads`` threads; default: all cores); others
    (GPU, float16) through ``Tensor.copy_``.

    Args:
        module: the model.
        net: the loaded network (:func:`yolo_io.load`).
        fuse: allow folding batch norms into convs that have a bias and no
            BatchNorm of their own.
        mapping: ``{darknet layer index: module name}`` (the conv, linear or
            batch norm module; a conv's batch norm follows it) for pairs the
            structure cannot settle.
        strict: every darknet layer with parameters has a module and every
            module with parameters a darknet layer (False: the ones without a
            counterpart are left alone, as for ``load_state_dict``).
        trace: None: pair by the traced forward's data flow, or by the
            registration order (noted) if it cannot be traced; True: the
            same, but a forward that cannot be traced is an error; False:
            never trace (noted; for models whose forward needs more than an
            image).
        example_input: the input of the traced forward, when it does not
            run on the meta device.
        threads: threads that read the file (default: all cores).

    Returns:
        The :class:`~yolo_io.torch.Pairing` that was loaded (printable).

    Raises:
        ModelMismatchError: a module that does not fit (see
            :func:`check_model`), or a tensor that cannot take the values
            (on the meta device: ``to_empty()`` first; not floating-point;
            expanded or sharing memory with another; an inference tensor);
            all checked before the first write: the module is unchanged.
        ConversionError: a darknet layer no torch layer type here takes; a
            copy that failed nonetheless (what was written before it is put
            back).
    """
    pairing = _pairing(module, net, mapping=mapping, strict=strict, fuse=fuse, trace=trace,
                       example_input=example_input)
    plan = _plan(net, pairing, _torch())
    plan.run(net, threads_arg(threads))
    return pairing

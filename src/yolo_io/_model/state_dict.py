"""Network.state_dict(): the arrays of a network under the parameter names of
a framework's Darknet port, so that ``model.load_state_dict(...)`` takes them.

Namings (see the README for the full tables):

``"yolo_io"`` (the default)
    ``layers.{i}.conv.weight|bias``, ``layers.{i}.linear.weight|bias``,
    ``layers.{i}.bn.weight|bias|running_mean|running_var|num_batches_tracked``
    (i = darknet layer index). Every other layer that stores data keeps
    darknet's names: ``layers.{i}.{param}`` (e.g. ``layers.3.wf.weights`` of an
    LSTM), as copies in darknet's layout.
``"darknet2pytorch"``
    Tianxiaomo/pytorch-YOLOv4's ``tool/darknet2pytorch.py`` and PyPI
    ``darknet2any``: ``models.{i}.conv{k}.weight|bias``,
    ``models.{i}.bn{k}.*`` (k counts convolutional sections from 1), and
    ``models.{i}.weight|bias`` (linear activation) or ``models.{i}.0.weight|bias``
    for a connected layer.
``"ultralytics"``
    ultralytics/yolov3 (archive) and WongKinYiu/PyTorch_YOLOv4:
    ``module_list.{i}.Conv2d.weight|bias``, ``module_list.{i}.BatchNorm2d.*``;
    fused (``fuse=True``), a convolution with batch norm is
    ``module_list.{i}.0.weight|bias``, as after their ``model.fuse()``.

What a naming cannot express raises ConversionError naming the layer and cfg
line, rather than producing a dict that loads into a model that computes
something else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from .._base.errors import ConversionError
from .attrs import BatchnormAttrs
from .fusion import BN_EPSILON, Located, bn_for_eps, cast

if TYPE_CHECKING:
    from .attrs import LayerAttrs
    from .config import Config, ParamSpec, Shape

Pair = tuple[npt.NDArray[np.generic], npt.NDArray[np.generic]]


class Layer(Located, Protocol):
    """What a state dict reads of a loaded layer (:class:`yolo_io.Layer`): a
    Protocol, so that this module, which ``Network.state_dict`` calls, does not
    import ``network.py`` back."""

    @property
    def section(self) -> str: ...
    @property
    def input_shape(self) -> Shape: ...
    @property
    def attrs(self) -> LayerAttrs: ...
    @property
    def fusion(self) -> str | None: ...
    @property
    def location(self) -> str: ...
    @property
    def activation(self) -> str | None: ...
    @property
    def param_specs(self) -> tuple[ParamSpec, ...]: ...
    @property
    def param_count(self) -> int: ...
    @property
    def share_index(self) -> int | None: ...
    @property
    def params(self) -> Mapping[str, npt.NDArray[np.float32]]: ...
    @property
    def loaded(self) -> bool: ...
    @property
    def source_params(self) -> Mapping[str, npt.NDArray[np.float32]]: ...


class Network(Protocol):
    """What a state dict reads of a loaded network (:class:`yolo_io.Network`)."""

    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Layer]: ...
    def fused_all(self, layout: str | None = None, *, dtype: str = "float32",
                  dense_layout: str | None = None, flatten: str = "auto",
                  threads: int | None = None, fuse: bool = True) -> dict[int, Pair]: ...

NAMINGS = ("yolo_io", "darknet2pytorch", "ultralytics")

# BatchNorm epsilon of each naming's framework: darknet's for ours, and for
# darknet2pytorch, whose BatchNorm2d keeps torch's default, the same 1e-5;
# ultralytics builds BatchNorm2d(eps=1e-4).
BN_EPS = {"yolo_io": BN_EPSILON, "darknet2pytorch": BN_EPSILON, "ultralytics": 1e-4}

# Sections darknet2pytorch's create_network() adds a module for (by their
# literal cfg name); any other section adds none and shifts later indices.
_D2P_SECTIONS = frozenset({
    "convolutional", "maxpool", "avgpool", "softmax", "cost", "reorg", "upsample", "route",
    "shortcut", "sam", "connected", "region", "yolo",
})
_D2P_CONNECTED_ACTIVATIONS = ("linear", "leaky", "relu")


def _section(layer: Layer) -> str:
    return layer.section.strip("[]")


def _refuse(layer: Layer, naming: str, why: str) -> ConversionError:
    return ConversionError(f"{layer.location} has no {naming} equivalent: {why}")


def _has_data(layer: Layer) -> bool:
    return layer.param_count > 0 or layer.share_index is not None


def _check_darknet2pytorch(net: Network, fuse: bool) -> None:
    for layer in net:
        if _section(layer) not in _D2P_SECTIONS:
            raise _refuse(layer, "darknet2pytorch", "its create_network() adds no module for "
                          f"{layer.section}, so every later module index shifts and its "
                          "forward() runs the wrong modules")
        if not _has_data(layer):
            continue
        if layer.fusion is None:
            raise _refuse(layer, "darknet2pytorch", f"its {_section(layer)} module has no "
                          "parameters, so darknet's stored ones would be lost")
        if layer.fusion == "conv":
            shape = layer.source_params["weights"].shape
            groups = layer.input_shape[0] // max(1, shape[1])
            if groups != 1:
                raise _refuse(layer, "darknet2pytorch", f"it ignores groups={groups} and builds "
                              "a dense Conv2d of another shape")
        else:
            if "scales" in layer.source_params and not fuse:
                raise _refuse(layer, "darknet2pytorch", "its nn.Linear has no batch norm; "
                              "use fuse=True")
            if layer.activation not in _D2P_CONNECTED_ACTIVATIONS:
                raise _refuse(layer, "darknet2pytorch", "it builds connected layers only with "
                              f"activation linear, leaky or relu, not {layer.activation}")
            c, h, w = layer.input_shape
            if h * w > 1:
                raise _refuse(layer, "darknet2pytorch", f"its nn.Linear takes the {c} input "
                              f"channels, not the flattened {c}x{h}x{w} image")


def _check_ultralytics(net: Network) -> None:
    for layer in net:
        if _has_data(layer) and layer.fusion != "conv":
            raise _refuse(layer, "ultralytics", f"its models load darknet weights only into "
                          f"convolutions, not {layer.section}")


def _prefix(naming: str, layer: Layer, conv_number: int) -> tuple[str, str, str]:
    """(conv/linear key prefix, bn key prefix, fused conv prefix) of a layer."""
    i = layer.index
    if naming == "darknet2pytorch":
        if layer.fusion == "dense":
            head = f"models.{i}." if layer.activation == "linear" else f"models.{i}.0."
            return head, "", head
        return f"models.{i}.conv{conv_number}.", f"models.{i}.bn{conv_number}.", \
            f"models.{i}.conv{conv_number}."
    if naming == "ultralytics":
        return f"module_list.{i}.Conv2d.", f"module_list.{i}.BatchNorm2d.", f"module_list.{i}.0."
    module = "conv" if layer.fusion == "conv" else "linear"
    return f"layers.{i}.{module}.", f"layers.{i}.bn.", f"layers.{i}.{module}."


def check(net: Network, naming: str, fuse: bool, bn_eps: float | None) -> float:
    """Refuses what ``naming`` cannot hold (ConversionError); the BN epsilon."""
    if naming not in NAMINGS:
        raise ValueError(f"naming must be one of {', '.join(map(repr, NAMINGS))}, not {naming!r}")
    if naming == "darknet2pytorch":
        _check_darknet2pytorch(net, fuse)
    elif naming == "ultralytics":
        _check_ultralytics(net)
    return BN_EPS[naming] if bn_eps is None else float(bn_eps)


def build(
    net: Network,
    *,
    fuse: bool,
    layout: str | None,
    naming: str,
    dense_layout: str | None,
    bn_eps: float | None,
    threads: int | None,
    dtype: str = "float32",
) -> dict[str, npt.NDArray[np.generic]]:
    eps = check(net, naming, fuse, bn_eps)
    # Weights and biases (beta when unfused) of every conv/connected layer: one
    # arena, filled in parallel.
    arrays = net.fused_all(layout, dense_layout=dense_layout, threads=threads, fuse=fuse,
                           dtype=dtype)
    out: dict[str, npt.NDArray[np.generic]] = {}
    for part in layer_parts(net, fuse=fuse, naming=naming, eps=eps, dtype=dtype,
                            pair_of=lambda layer: arrays.get(layer.index), stacklevel=4):
        out.update(part)
    return out


def layer_parts(
    net: Network,
    *,
    fuse: bool,
    naming: str,
    eps: float,
    dtype: str,
    pair_of: Callable[[Layer], Pair | None],
    stacklevel: int,
) -> Iterator[dict[str, npt.NDArray[np.generic]]]:
    """The state dict one layer at a time, in layer order: ``pair_of(layer)``
    gives a conv/connected layer's (weights, biases) as :meth:`fused_all`
    would (None: the layer has none). ``stacklevel``: of the caller of the
    public function, for PrecisionWarnings."""
    conv_number = 0
    last = len(net) - 1
    for layer in net:
        out: dict[str, npt.NDArray[np.generic]] = {}
        if layer.fusion == "conv":
            conv_number += 1
        pair = pair_of(layer) if layer.fusion is not None else None
        if pair is None:
            if _has_data(layer) and layer.loaded and layer.fusion is None:
                # Only the yolo_io naming gets here: the others refused above.
                p = layer.params
                if isinstance(layer.attrs, BatchnormAttrs):
                    gamma, var = bn_for_eps(layer, p, eps, stacklevel=stacklevel)
                    _put_bn(out, f"layers.{layer.index}.bn.", cast(gamma, dtype),
                            cast(p["biases"], dtype), cast(p["rolling_mean"], dtype),
                            cast(var, dtype))
                else:
                    out.update({f"layers.{layer.index}.{name}": cast(a, dtype)
                                for name, a in p.items()})
            yield out
            continue
        w, b = pair
        main, bn, fused_prefix = _prefix(naming, layer, conv_number)
        p = layer.source_params
        if fuse or "scales" not in p:
            head = fused_prefix if fuse and "scales" in p else main
            out[head + "weight"] = w
            out[head + "bias"] = b
        else:
            out[main + "weight"] = w
            gamma, var = bn_for_eps(layer, p, eps, stacklevel=stacklevel)
            _put_bn(out, bn, cast(gamma, dtype), b, cast(p["rolling_mean"], dtype),
                    cast(var, dtype))
        if naming == "darknet2pytorch" and layer.index == last:
            _add_darknet2pytorch_loss_alias(net, out)
        yield out


def _put_bn(out: dict[str, npt.NDArray[np.generic]], prefix: str, gamma: npt.NDArray[np.generic],
            beta: npt.NDArray[np.generic], mean: npt.NDArray[np.generic],
            var: npt.NDArray[np.generic]) -> None:
    out[prefix + "weight"] = gamma
    out[prefix + "bias"] = beta
    out[prefix + "running_mean"] = mean
    out[prefix + "running_var"] = var
    out[prefix + "num_batches_tracked"] = np.zeros((), np.int64)


def _add_darknet2pytorch_loss_alias(net: Network, out: dict[str, npt.NDArray[np.generic]]) -> None:
    """darknet2pytorch's Darknet sets ``self.loss = self.models[-1]``, so a
    freshly built model lists the last module's parameters a second time under
    ``loss.`` (until its first forward()); strict loading wants them too."""
    if len(net) == 0:
        return
    head = f"models.{len(net) - 1}."
    for key in [k for k in out if k.startswith(head)]:
        out["loss." + key[len(head):]] = out[key]


# -- the way back: a state dict to darknet's arrays, for yolo_io.save() --------

_BN_BACK = {"weight": "scales", "bias": "biases", "running_mean": "rolling_mean",
            "running_var": "rolling_variance"}


def detect_naming(keys: Iterable[str]) -> str:
    """The naming of a state dict, from its keys: ``models.`` (darknet2pytorch),
    ``module_list.`` (ultralytics) or ``layers.`` (yolo_io)."""
    heads = {k.split(".", 1)[0] for k in keys if k.split(".", 1)[0] != "loss"}
    found = [n for n, h in (("darknet2pytorch", "models"), ("ultralytics", "module_list"),
                            ("yolo_io", "layers")) if h in heads]
    if len(found) != 1 or len(heads) != 1:
        raise ConversionError(
            "the state dict's keys are in no naming yolo_io knows (they start with "
            f"{', '.join(sorted(heads)) or 'nothing'}); expected layers.* (yolo_io), models.* "
            "(darknet2pytorch) or module_list.* (ultralytics), unfused")
    return found[0]


def from_state_dict(config: Config, state: Mapping[str, Any], *,
                    naming: str | None = None) -> dict[int, dict[str, Any]]:
    """Layer index -> {darknet name: array} from an unfused state dict in a
    naming :func:`build` produces. Batch-norm variances that the naming's
    framework epsilon adjusted (ultralytics: 1e-4) are adjusted back:
    ``var + eps - 1e-5`` in float64, rounded to float32, which is darknet's
    value to within one float32 rounding (channels whose scale had to be
    rescaled on the way out cannot be recovered). Keys that no layer takes
    raise ConversionError naming the key."""
    naming = detect_naming(state) if naming is None else naming
    eps = BN_EPS[naming]
    out: dict[int, dict[str, Any]] = {}
    used: set[str] = set()
    conv_number = 0

    def take(key: str) -> Any:
        used.add(key)
        a = as_array(state[key], f"state dict key {key!r}")
        # One rule for every naming: darknet stores floats, and an integer
        # array where one belongs is a mistake (not cast here and refused there).
        if a.dtype.kind != "f":
            raise ConversionError(f"state dict key {key!r} has dtype {a.dtype}; only "
                                  "floating-point arrays are written (as float32)")
        return a

    for layer in config:
        if layer.fusion == "conv":
            conv_number += 1
        if layer.param_count == 0:
            if layer.share_index is not None and layer.fusion is not None:
                # state_dict() exports a sharing layer's arrays again (copies of
                # the shared layer's); darknet stores them once.
                main, bn, _ = _prefix(naming, layer, conv_number)  # type: ignore[arg-type]
                prefixes = tuple(p for p in (main, bn) if p)
                used.update(k for k in state if k.startswith(prefixes))
            continue
        names = {s.name for s in layer.param_specs}
        params: dict[str, Any] = {}
        if layer.fusion is not None:
            main, bn, _ = _prefix(naming, layer, conv_number)  # type: ignore[arg-type]
            for key, name in ((main + "weight", "weights"), (main + "bias", "biases")):
                if key in state:
                    params[name] = take(key)
            if "scales" in names:
                for suffix, name in _BN_BACK.items():
                    if bn + suffix in state:
                        params[name] = take(bn + suffix)
                used.add(bn + "num_batches_tracked")
        elif naming == "yolo_io":
            prefix = f"layers.{layer.index}."
            if isinstance(layer.attrs, BatchnormAttrs):
                for suffix, name in _BN_BACK.items():
                    if prefix + "bn." + suffix in state:
                        params[name] = take(prefix + "bn." + suffix)
                used.add(prefix + "bn.num_batches_tracked")
            else:
                for name in names:
                    if prefix + name in state:
                        params[name] = take(prefix + name)
        if "rolling_variance" in params and eps != BN_EPSILON:
            var = np.asarray(params["rolling_variance"]).astype(np.float64)
            params["rolling_variance"] = (var + eps - BN_EPSILON).astype(np.float32)
        out[layer.index] = params
    extra = sorted(k for k in state if k not in used and not k.startswith("loss."))
    if extra:
        raise ConversionError(f"state dict key {extra[0]!r} ({naming} naming) belongs to no "
                              f"layer of {config.path} that stores data"
                              + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))
    return out


def as_array(value: Any, what: str = "the array") -> npt.NDArray[Any]:
    """An array from NumPy arrays, torch tensors (detached, on the CPU;
    bfloat16 as float32) or anything with ``__array__``, without a copy where
    it can. A tensor without values (on the meta device) or of a dtype NumPy
    cannot hold (float8, quantized; a sparse layout) raises ConversionError
    naming ``what``."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        if getattr(value, "is_meta", False):
            raise ConversionError(f"{what} is a tensor on the meta device, which holds no "
                                  "values: load or compute its values before saving")
        try:
            value = value.detach().cpu()
            if str(getattr(value, "dtype", "")) == "torch.bfloat16":
                value = value.float()
            value = value.numpy()
        except (TypeError, RuntimeError, NotImplementedError) as err:
            # float8 and quantized tensors usually come with scales kept
            # elsewhere: casting their values alone would give wrong numbers.
            raise ConversionError(
                f"{what} is a torch tensor of dtype {getattr(value, 'dtype', '?')} and layout "
                f"{getattr(value, 'layout', '?')} that has no NumPy equivalent ({err}); "
                "convert it to a dense float32 tensor first (undoing any scaling it carries)"
                ) from err
    return np.asarray(value)

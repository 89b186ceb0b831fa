"""``yolo-io verify``: the ONNX export against OpenCV's Darknet importer.

One image goes through both: OpenCV's ``cv2.dnn.readNetFromDarknet`` (an
implementation of darknet's forward pass that yolo_io did not write) and
onnxruntime on the exported model, fed the same tensor. Wherever both expose a
darknet layer's output they are compared, and the first layer whose error is
above tolerance is reported: since errors propagate, that layer is where the
two disagree. The outputs of the graph are compared too.

How OpenCV names layers (read from opencv modules/dnn/src/darknet/darknet_io.cpp,
and checked by experiment with opencv-python-headless 4.14 on every corpus cfg
it loads): each darknet layer appends its own OpenCV layers, in order, named
``<kind>_<counter>``, where the counter counts darknet layers plus the extra
layers emitted so far, so names drift from darknet indices (yolov3-tiny:
``conv_0 bn_0 leaky_1 pool_1 conv_2 ...``). A darknet layer emits its main
layer (``conv``, ``fullyConnected``, ``pool`` for [maxpool], ``avgpool``,
``softmax``, ``identity`` for a one-input [route], [dropout] and [cost],
``slice`` for a one-input [route] with groups, ``concat`` for a
several-input [route], ``shortcut``, ``scale_channels``, ``sam``, ``upsample``,
``reorg``), then ``bn`` if it has batch_normalize=1, then one layer named after
the activation (``leaky``, ``mish``, ``swish``, ``logistic``, ``relu``,
``tanh``) unless it is linear; [yolo] and [region] emit ``permute`` then
``yolo`` (``detection_out`` for [region]). The darknet layer's output is the
LAST OpenCV layer it emitted (OpenCV's own ``fused_layer_names``); a head is
compared by its input, the previous layer's output.

Where OpenCV departs from darknet, it is said in the notes rather than
failed or hidden: its batch norm adds epsilon 1e-6 where darknet adds 1e-5
(OpenCV is given rolling_variance + 9e-6, so that both compute darknet's
value; uncompensated, deep models drift by ~2e-4 relative, above the float32
tolerance); from the first layer it is known to get wrong (a [route] with
groups over several inputs, dilation, stride_x/stride_y, share_index, a
[shortcut] over several layers or of different sizes, [upsample] scale=, a
batch-normalized [connected], an activation darknet does not apply or a
default it does, [scale_channels] scale_wh=1) it is not compared, the cfg
being cut there for OpenCV; its [region] layer orders and thresholds unlike
darknet (the region head's input is compared); its [yolo] layers zero the
scores below thresh= (scores are compared where OpenCV's is non-zero). Decoded
box widths and heights are compared as the raw values they were decoded from
(log(w / anchor), or sqrt(w / (4 anchor)) with new_coords): exp() magnifies
the raw value's rounding into the side, absurdly so for random weights. OpenCV
runs with layer fusion off: 4.14 returns zeros for some requested outputs of
fused layers, and darknet does not fuse either. A cfg its importer refuses
(an unknown section or activation) is an error: OpenCV cannot be the oracle.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .._base.errors import ConversionError, YoloIOError
from .._base.paths import PathArg, fs_path, shown
from .._base.progress import Progress, Reporter
from .._lowering.image import network_input, read_pixels
from .._model.attrs import (
    ConnectedAttrs,
    ConvolutionalAttrs,
    PoolAttrs,
    RegionAttrs,
    RouteAttrs,
    ScaleChannelsAttrs,
    ShortcutAttrs,
    SoftmaxAttrs,
    UpsampleAttrs,
    YoloAttrs,
)
from .._model.config import CfgLayer, Config, parse
from .._model.fusion import BN_EPSILON
from .._model.kinds import Refused
from .._model.network import Network, load

__all__ = ["TOLERANCES", "LayerComparison", "OutputComparison", "Verification",
           "darknet_image", "opencv_layer_names", "verify"]

from .tolerances import TOLERANCES

_EXTRA = "pip install 'yolo_io[verify]' (onnx, onnxruntime, opencv-python-headless<5)"
_DEFAULT_IMAGE = "skimage.data.astronaut()"
_BN_EPS_DARKNET = BN_EPSILON
_BN_EPS_OPENCV = 1e-6


# -- results -----------------------------------------------------------------------


@dataclass(frozen=True)
class LayerComparison:
    """One darknet layer's output in the ONNX model against OpenCV's.

    Attributes:
        index: the darknet layer.
        type: its type (``"convolutional"``, ...).
        opencv: the OpenCV layer whose output was compared.
        shape: the compared tensor's shape (the ONNX one).
        max_abs: largest absolute difference.
        max_rel: ``max_abs`` divided by the largest magnitude of OpenCV's
            tensor (inf when that tensor is all zeros and the other is not).
        ok: within tolerance: ``max_abs <= atol`` or ``max_rel <= rtol``.
        head_input: a detection head, compared by its input (the raw conv
            output), since OpenCV's head layers decode, reorder and threshold.
    """

    index: int
    type: str
    opencv: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    ok: bool
    head_input: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "type": self.type, "opencv": self.opencv,
                "shape": list(self.shape), "max_abs": _finite(self.max_abs),
                "max_rel": _finite(self.max_rel), "ok": self.ok,
                "head_input": self.head_input}


@dataclass(frozen=True)
class OutputComparison:
    """One output of the ONNX graph against what OpenCV computed.

    Attributes:
        name: the graph output (``head_16``, ``output``, ``boxes``, ...).
        shape: its shape.
        reference: what it was compared with, in words.
        max_abs, max_rel, ok: as in :class:`LayerComparison`.
        compared: how many values were compared (scores: only where OpenCV's
            is non-zero, since OpenCV zeroes those below the [yolo] thresh).
    """

    name: str
    shape: tuple[int, ...]
    reference: str
    max_abs: float
    max_rel: float
    ok: bool
    compared: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "reference": self.reference,
                "max_abs": _finite(self.max_abs), "max_rel": _finite(self.max_rel),
                "ok": self.ok, "compared": self.compared}


@dataclass
class Verification:
    """The result of :func:`verify`.

    Attributes:
        cfg, weights: the model's files.
        onnx: the ONNX model run, or None when it was exported on the fly.
        image: the image fed (a path, or ``skimage.data.astronaut()``).
        dtype: the weights dtype the tolerance is for.
        atol, rtol: the tolerance (see :data:`TOLERANCES`).
        layers: per compared darknet layer, in order.
        outputs: per compared graph output.
        notes: where OpenCV differs from darknet, what was not compared, and why.
        compared_until: layers ``0 .. compared_until - 1`` could be compared
            with OpenCV (all of them: ``len(cfg)``).
        opencv_version, onnxruntime_version: the two runtimes.
    """

    cfg: str
    weights: str
    onnx: str | None
    image: str
    dtype: str
    atol: float
    rtol: float
    layers: list[LayerComparison] = field(default_factory=list)
    outputs: list[OutputComparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    compared_until: int = 0
    layer_count: int = 0
    opencv_version: str = ""
    onnxruntime_version: str = ""

    @property
    def ok(self) -> bool:
        """Every compared layer and output is within tolerance."""
        return all(c.ok for c in self.layers) and all(o.ok for o in self.outputs)

    @property
    def complete(self) -> bool:
        """Every layer could be compared with OpenCV and at least one graph
        output was: ``ok`` then vouches for the whole model, not a prefix."""
        return self.compared_until >= self.layer_count and any(o.compared for o in self.outputs)

    @property
    def first_divergence(self) -> LayerComparison | None:
        """The first layer (in darknet order) above tolerance, or None."""
        return next((c for c in self.layers if not c.ok), None)

    def worst(self, n: int = 5) -> list[LayerComparison]:
        """The ``n`` layers with the largest relative error, worst first."""
        return sorted(self.layers, key=lambda c: _sort_key(c.max_rel), reverse=True)[:n]

    def to_dict(self) -> dict[str, Any]:
        first = self.first_divergence
        return {"cfg": self.cfg, "weights": self.weights, "onnx": self.onnx,
                "image": self.image, "dtype": self.dtype, "atol": _finite(self.atol),
                "rtol": _finite(self.rtol), "ok": self.ok, "complete": self.complete,
                "first_divergence": first.to_dict() if first else None,
                "compared_until": self.compared_until, "layer_count": self.layer_count,
                "layers": [c.to_dict() for c in self.layers],
                "outputs": [o.to_dict() for o in self.outputs], "notes": list(self.notes),
                "opencv": self.opencv_version, "onnxruntime": self.onnxruntime_version}

    def summary(self, *, all_layers: bool = False) -> str:
        """A readable report: the verdict, the first divergence, the worst
        layers (every layer with ``all_layers``), the outputs and the notes."""
        return "\n".join(_summary_lines(self, all_layers))

    def __str__(self) -> str:
        return self.summary()


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _span(first: int, last: int) -> str:
    return f"layer {first}" if first == last else f"layers {first}..{last}"


def _not_compared(v: Verification) -> str:
    if v.compared_until >= v.layer_count:
        return ""
    return (f" ({_span(v.compared_until, v.layer_count - 1)} not compared with OpenCV: "
            f"see the notes)")


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _sort_key(x: float) -> float:
    return math.inf if math.isnan(x) else x


def _num(x: float) -> str:
    return "nan" if math.isnan(x) else "inf" if math.isinf(x) else f"{x:.2e}"


def _dims(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def fmt(cells: Sequence[str]) -> str:
        return "  " + "  ".join(c.rjust(w) if i in right else c.ljust(w)
                                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
                                ).rstrip()

    return [fmt(headers), *(fmt(r) for r in rows)]


def _layer_rows(layers: Sequence[LayerComparison]) -> list[str]:
    rows = [[str(c.index), c.type + (" (input)" if c.head_input else ""), c.opencv,
             _dims(c.shape), _num(c.max_abs), _num(c.max_rel), "ok" if c.ok else "DIVERGES"]
            for c in layers]
    return _table(["#", "type", "OpenCV layer", "shape", "max abs", "max rel", ""], rows,
                  {0, 4, 5})


def _summary_lines(v: Verification, all_layers: bool) -> list[str]:
    lines = [f"verify: {v.cfg} + {v.weights}",
             (f"  ONNX: {v.onnx or 'exported on the fly'}, run by onnxruntime "
              f"{v.onnxruntime_version}; oracle: OpenCV {v.opencv_version}'s Darknet importer"),
             f"  image: {v.image}",
             (f"  tolerance ({v.dtype} weights): max abs <= {v.atol:g} or max rel <= "
              f"{v.rtol:g} (relative to the largest |value| of OpenCV's tensor)")]
    if v.layers:
        bad = [c for c in v.layers if not c.ok]
        lines.append(f"layers: {len(v.layers)} of {v.layer_count} compared, {len(bad)} above "
                     f"tolerance" + _not_compared(v))
        first = v.first_divergence
        if first is not None:
            lines.append(f"first divergence: layer {first.index} [{first.type}] (OpenCV "
                         f"{first.opencv}): max abs {_num(first.max_abs)}, max rel "
                         f"{_num(first.max_rel)}")
            around = [c for c in v.layers if c.index < first.index][-2:]
            lines += _layer_rows([*around, *bad[:3]])
        if all_layers:
            lines.append("all layers:")
            lines += _layer_rows(v.layers)
        else:
            lines.append("worst layers:")
            lines += _layer_rows(v.worst(5))
    else:
        lines.append("layers: none compared" + _not_compared(v))
    if v.outputs:
        lines.append("outputs:")
        # An output of which no value was compared (scores: OpenCV's all 0)
        # shows no error and no verdict.
        rows = [[o.name, _dims(o.shape), o.reference, "-", "-", "not compared"]
                if o.ok and not o.compared else
                [o.name, _dims(o.shape), o.reference, _num(o.max_abs), _num(o.max_rel),
                 "ok" if o.ok else "DIVERGES"] for o in v.outputs]
        lines += _table(["name", "shape", "compared with", "max abs", "max rel", ""], rows,
                        {3, 4})
    if v.notes:
        lines.append("notes:")
        lines += [f"  - {n}" for n in v.notes]
    compared = sum(1 for o in v.outputs if o.compared)
    if v.ok and not v.complete:
        lines.append(f"PARTIAL: within tolerance where compared, but only "
                     f"{_count(len(v.layers), 'layer')} of {v.layer_count} and "
                     f"{_count(compared, 'output')} could be compared with OpenCV "
                     f"(see the notes; --strict makes this exit 1)")
    elif v.ok:
        lines.append(f"ok: the ONNX model matches OpenCV within tolerance "
                     f"({_count(len(v.layers), 'layer')}, {_count(compared, 'output')} "
                     f"compared)")
    else:
        first = v.first_divergence
        where = (f"first at layer {first.index} [{first.type}]" if first is not None else
                 "outputs " + ", ".join(o.name for o in v.outputs if not o.ok))
        lines.append(f"FAILED: the ONNX model differs from OpenCV above tolerance ({where})")
    return lines


# -- dependencies ------------------------------------------------------------------


def _missing(name: str, what: str, err: ImportError) -> ImportError:
    return ImportError(f"verify needs {what} ({name} cannot be imported: {err}): {_EXTRA}")


def _onnxruntime() -> ModuleType:
    try:
        import onnxruntime
    except ImportError as err:
        raise _missing("onnxruntime", "onnxruntime", err) from err
    module: ModuleType = onnxruntime
    return module


def _onnx() -> ModuleType:
    try:
        import onnx
    except ImportError as err:
        raise _missing("onnx", "the onnx package", err) from err
    return onnx


def _opencv() -> ModuleType:
    try:
        import cv2
    except ImportError as err:
        raise _missing("cv2", "OpenCV", err) from err
    dnn = getattr(cv2, "dnn", None)
    if dnn is None or not hasattr(dnn, "readNetFromDarknet"):
        raise ImportError(f"OpenCV {getattr(cv2, '__version__', '?')} has no Darknet importer "
                          f"(cv2.dnn.readNetFromDarknet was removed in OpenCV 5): "
                          f"pip install 'opencv-python-headless<5'")
    return cv2


# -- the image ---------------------------------------------------------------------


def darknet_image(config: Config, image: PathArg | None = None
                  ) -> tuple[npt.NDArray[np.float32], str]:
    """The network input darknet makes of an image for ``config``: RGB (or
    gray for one channel), scaled by 1/255, resized to the cfg's width and
    height as darknet's resize_image does (letterboxed if ``[net]`` has
    ``letter_box=1``), as a (1, C, H, W) float32 array; and a description of
    the image. ``image`` None: scikit-image's ``astronaut()``.

    Raises:
        ImportError: no ``image`` and no scikit-image.
        FileNotFoundError, OSError: the image cannot be read or decoded.
        YoloIOError: the cfg takes neither 1 nor 3 channels.
    """
    c, h, w = config.input_shape
    if c not in (1, 3):
        raise YoloIOError(f"{config.path}: the network takes {c} channels; verify feeds an "
                          f"RGB (3) or gray (1) image")
    if image is None:
        try:
            from skimage import data
        except ImportError as err:
            raise ImportError("no --image given, and scikit-image (whose astronaut() is the "
                              "default image) is not installed: pass --image PATH or pip "
                              "install scikit-image") from err
        pixels, _ = read_pixels(np.asarray(data.astronaut(),  # type: ignore[no-untyped-call,unused-ignore]
                                           dtype=np.uint8), c)
        what = _DEFAULT_IMAGE
    else:
        pixels, what = read_pixels(image, c)
    letter = config.net.letter_box
    how = "letterboxed" if letter else "resized"
    desc = f"{what} ({pixels.shape[1]}x{pixels.shape[0]}), {how} to {w}x{h}"
    return network_input(pixels, w, h, letter)[None], desc


# -- OpenCV ------------------------------------------------------------------------


def _opencv_limit(config: Config) -> tuple[int, str | None]:
    """The first layer OpenCV's importer is known to get wrong (len(config)
    if none), with why: from there on OpenCV cannot be the oracle."""
    for layer in config:
        why = _opencv_problem(layer)
        if why:
            return layer.index, f"layer {layer.index} [{layer.type}] (line {layer.line}): {why}"
    return len(config), None


def _opencv_problem(layer: CfgLayer) -> str | None:
    a = layer.attrs
    theirs = layer.options.get("activation", "linear")  # OpenCV's rule, any layer
    ours = layer.activation or "linear"
    if theirs != ours:
        if "activation" not in layer.options:
            return (f"no activation= line: darknet applies its default for a "
                    f"{layer.section}, {ours}, and OpenCV's importer none")
        return (f"OpenCV's importer applies activation={theirs} to it, which darknet "
                f"{'ignores' if layer.activation is None else 'reads as ' + ours} for a "
                f"{layer.section}")
    if isinstance(a, ConvolutionalAttrs):
        if a.share_index is not None:
            return (f"it shares layer {a.share_index}'s weights (share_index), but OpenCV's "
                    f"importer reads a full set of weights for it, so every later array is "
                    f"misplaced")
        if a.dilation > 1:
            return f"OpenCV's importer ignores dilation={a.dilation}"
        if a.stride_x != a.stride_y or {"stride_x", "stride_y"} & set(layer.options):
            return "OpenCV's importer ignores stride_x/stride_y (it reads stride= only)"
        if a.antialiasing:
            return "OpenCV's importer ignores antialiasing"
    if isinstance(a, ConnectedAttrs) and a.batch_normalize:
        return "OpenCV computes NaN for the batch norm of a [connected] layer"
    if isinstance(a, PoolAttrs) and (a.stride_x != a.stride_y or
                                     {"stride_x", "stride_y"} & set(layer.options)):
        return "OpenCV's importer ignores stride_x/stride_y (it reads stride= only)"
    if isinstance(a, SoftmaxAttrs):
        if a.temperature != 1:
            return f"OpenCV's importer ignores temperature={a.temperature:g}"
        if layer.input_shape[1] * layer.input_shape[2] > 1:
            return ("a softmax over an image: darknet normalises the whole C*H*W vector, "
                    "OpenCV each position over the channels")
    if isinstance(a, RouteAttrs) and a.groups > 1 and len(a.input_layers) > 1:
        return ("a route with groups over several inputs: OpenCV builds a slice per input "
                "and a concat, but its weights reader counts one layer, so every later "
                "layer's weights go to the wrong OpenCV layer")
    if isinstance(a, ShortcutAttrs):
        if len(a.input_layers) > 1:
            return "OpenCV's importer adds only the first from= layer of a [shortcut]"
        if a.weights_type != "none":
            return f"OpenCV's importer ignores weights_type={a.weights_type}"
        sizes = {tuple(s[1:]) for s in layer.input_shapes}
        if len(sizes) > 1:
            return ("it adds tensors of different width and height, which OpenCV's Eltwise "
                    "layer refuses")
    if isinstance(a, UpsampleAttrs) and a.scale != 1:
        return f"OpenCV's importer ignores scale={a.scale:g}"
    if isinstance(a, ScaleChannelsAttrs) and a.scale_wh:
        return "OpenCV's Scale layer cannot apply scale_wh=1"
    return None


def opencv_layer_names(config: Config, names: Sequence[str], stop: int | None = None
                       ) -> tuple[dict[int, str], int, str | None]:
    """Maps darknet layers ``0 .. stop-1`` to the OpenCV layer holding their
    output (the last one each emitted: see the module docstring), checking the
    kinds of OpenCV's layer list on the way.

    Returns:
        (darknet index -> OpenCV layer name, the number of layers mapped, and
        why mapping stopped early or None).
    """
    stop = len(config) if stop is None else stop
    out: dict[int, str] = {}
    pos = 0
    for layer in config[:stop]:
        expected = _expected_kinds(layer)
        got = list(names[pos:pos + len(expected)])
        wrong = len(got) < len(expected) or any(
            kind is not None and not (g == kind or g.startswith(kind + "_"))
            for g, kind in zip(got, expected, strict=False))
        if wrong:
            return out, layer.index, (
                f"OpenCV's layer list stops matching the cfg at layer {layer.index} "
                f"[{layer.type}]: expected {' '.join(k or '?' for k in expected)}, found "
                f"{' '.join(got) or 'nothing'}")
        pos += len(expected)
        out[layer.index] = got[-1]
    return out, stop, None


def _expected_kinds(layer: CfgLayer) -> list[str | None]:
    a = layer.attrs
    if isinstance(a, RouteAttrs):
        main: str | None = ("concat" if len(a.input_layers) > 1 else
                            "slice" if a.groups > 1 else "identity")
        kinds: list[str | None] = [main]
    else:
        emitted = OPENCV_TYPES_BY_KIND[layer.type]
        kinds = [None] if isinstance(emitted, Refused) or not emitted else list(emitted)
    if layer.fusion is not None and getattr(a, "batch_normalize", False):
        kinds.append("bn")
    # OpenCV adds the cfg's activation= to any layer, as darknet does not.
    activation = layer.options.get("activation", "linear")
    if activation != "linear":
        kinds.append(activation)
    return kinds


def _opencv_weights(net: Network, path: Path, stop: int) -> float | None:
    """Writes ``net``'s first ``stop`` layers as a .weights file for OpenCV
    (header 0.2.5, which OpenCV reads; legacy transposed files are written
    the usual way round) with every rolling_variance raised by 9e-6: OpenCV's
    batch norm adds 1e-6 where darknet adds 1e-5, and var + 9e-6 + 1e-6 is
    darknet's var + 1e-5. Returns the smallest variance (None: no batch norm)."""
    from .._writing.weights import save

    save(path, net, header=(0, 2, 5, 0), upto=stop, progress=False)
    data = np.memmap(path, dtype=np.uint8, mode="r+")
    offset = 20
    smallest: float | None = None
    try:
        for layer in net.config[:stop]:
            for spec in layer.param_specs:
                if spec.name.rsplit(".", 1)[-1] == "rolling_variance" and spec.size:
                    start = offset + 4 * spec.offset
                    var = data[start:start + 4 * spec.size].view(np.float32)
                    low = float(var.min())
                    smallest = low if smallest is None else min(smallest, low)
                    var += np.float32(_BN_EPS_DARKNET - _BN_EPS_OPENCV)
            offset += 4 * layer.param_count
        data.flush()
    finally:
        del data
    return smallest


def _truncated_cfg(config: Config, stop: int, path: Path) -> None:
    """The cfg text up to (not including) layer ``stop``'s section."""
    lines = config.source.splitlines(keepends=True)
    keep = lines if stop >= len(config) else lines[:config[stop].line - 1]
    path.write_bytes(b"".join(keep))


# -- comparing ---------------------------------------------------------------------


def _errors(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> tuple[float, float]:
    """(max |a - b|, that divided by max |b|); equal infinities count as equal."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if a.size == 0:
        return 0.0, 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a - b)
        diff[a == b] = 0
        max_abs = float(diff.max()) if not np.isnan(diff).any() else math.nan
        peak = float(np.abs(b).max()) if not np.isnan(b).any() else math.nan
    if math.isnan(max_abs) or math.isnan(peak):
        return max_abs, math.nan
    if peak == 0 or math.isinf(peak):
        return max_abs, 0.0 if max_abs == 0 else math.inf
    return max_abs, max_abs / peak


def _within(max_abs: float, max_rel: float, atol: float, rtol: float) -> bool:
    return max_abs <= atol or max_rel <= rtol


# -- verify ------------------------------------------------------------------------


def verify(
    weights: PathArg | Network,
    cfg: PathArg | Config | None = None,
    *,
    onnx_path: PathArg | None = None,
    image: PathArg | None = None,
    dtype: str | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    opset: int = 17,
    progress: Progress = None,
) -> Verification:
    """Run the ONNX export and OpenCV's Darknet importer on one image and
    compare them layer by layer.

    Without ``onnx_path`` the network is exported on the fly (into a
    temporary folder) with every layer's output (``intermediates=True``) and
    decoded outputs when every head is a [yolo] head. With ``onnx_path`` that
    model is run: layer by layer where it has ``layer_{i}`` outputs (export
    with ``intermediates=True``), else its outputs only.

    Args:
        weights: the ``.weights`` file (or a loaded Network; then ``cfg`` is
            not needed).
        cfg: its ``.cfg``.
        onnx_path: an exported model to check instead of exporting one.
        image: the image (default: scikit-image's ``astronaut()``).
        dtype: ``"float32"`` or ``"float16"``: the weights dtype of the
            export, which sets the default tolerance (:data:`TOLERANCES`).
            Default: float32, or the given model's own (its metadata).
        atol, rtol: override the tolerance.
        opset: of the on-the-fly export.
        progress: a bar over the stages (exporting, onnxruntime, OpenCV,
            comparing) on a terminal (None, the default), always (True) or
            never (False), or a callback ``(done, total, what)`` called as
            each stage starts, ``what`` naming it.

    Returns:
        A :class:`Verification`; ``ok`` is False if a layer or an output is
        above tolerance (``first_divergence`` names the first layer).

    Raises:
        ImportError: onnxruntime, OpenCV (< 5) or onnx is missing, or no
            ``image`` and no scikit-image; the message says what to install.
        YoloIOError: OpenCV cannot be the oracle for this cfg (its importer
            refuses it, or cannot run it), or the ONNX model does not fit it.
        ConversionError: the network has no ONNX export.
    """
    ort = _onnxruntime()
    cv2 = _opencv()
    if dtype is not None and dtype not in TOLERANCES:
        raise ValueError(f"dtype must be one of {', '.join(TOLERANCES)}, not {dtype!r}")
    onnx_file = None if onnx_path is None else Path(fs_path(onnx_path, "onnx_path"))
    if onnx_file is not None and not onnx_file.is_file():
        code = errno.EISDIR if onnx_file.is_dir() else errno.ENOENT
        raise (IsADirectoryError if code == errno.EISDIR else FileNotFoundError)(
            code, os.strerror(code), str(onnx_file))
    if onnx_file is None:
        _onnx()
    if isinstance(weights, Network):
        net, owned = weights, False
    else:
        if cfg is None:
            raise TypeError("verify() needs the cfg of a .weights file")
        net, owned = load(weights, parse(cfg, stacklevel=2)), True
    stages = 3 if onnx_file is not None else 4
    with Reporter(progress, stages, "verify", unit="stage", caller="yolo_io.onnx.verify",
                  legacy=_stage_text) as report:
        started = [0]

        def say(what: str) -> None:
            report(started[0], what)
            started[0] += 1

        try:
            result = _verify(net, cv2, ort, onnx_file, image, dtype, atol, rtol, opset, say)
        finally:
            if owned:
                net.close()
        report.finish()
    return result


def _stage_text(old: Callable[[object], object], done: int, what: str) -> object:
    """The old one-argument progress callback: the text of each stage."""
    return old(what)


def _verify(net: Network, cv2: Any, ort: Any, onnx_file: Path | None,
            image: PathArg | None, dtype: str | None, atol: float | None,
            rtol: float | None, opset: int, say: Callable[[str], object]) -> Verification:
    config = net.config
    if net.partial:
        raise YoloIOError(f"{net.path} holds only the first {net.covered_layers} of "
                          f"{len(config)} layers: verify needs them all")
    x, image_desc = darknet_image(config, image)
    with tempfile.TemporaryDirectory(prefix="yolo_io-verify-") as tmp:
        folder = Path(tmp)
        _opencv_accepts(cv2, config, folder)  # before the (slow) export
        # -- the ONNX model
        notes: list[str] = []
        if onnx_file is None:
            model_path, exported = _export(net, folder, dtype or "float32", opset, notes, say)
        else:
            model_path, exported = onnx_file, False
        say("running onnxruntime")
        session = _session(ort, model_path)
        meta = dict(session.get_modelmeta().custom_metadata_map)
        model_dtype = dtype or meta.get("yolo_io.weights_dtype", "float32")
        if model_dtype not in TOLERANCES:
            model_dtype = "float32"
        defaults = TOLERANCES[model_dtype]
        result = Verification(
            cfg=config.path, weights=net.path, onnx=None if exported else str(onnx_file),
            image=image_desc, dtype=model_dtype,
            atol=defaults[0] if atol is None else float(atol),
            rtol=defaults[1] if rtol is None else float(rtol), notes=notes,
            layer_count=len(config), opencv_version=str(cv2.__version__),
            onnxruntime_version=str(ort.__version__))
        ours = _run_onnx(session, x, config, model_path)
        omitted = set(json.loads(meta.get("yolo_io.omitted_layers", "[]") or "[]"))
        # -- OpenCV
        say("running OpenCV")
        theirs, mapped, heads_out = _run_opencv(cv2, net, x, folder, result)
        # -- compare
        say("comparing")
        _compare_layers(config, ours, theirs, mapped, omitted, result)
        _compare_outputs(config, ours, theirs, mapped, heads_out, result)
    if not result.layers and not result.outputs:
        raise YoloIOError(f"nothing could be compared with OpenCV for {config.path}: "
                          + " ".join(result.notes))
    return result


def _export(net: Network, folder: Path, dtype: str, opset: int, notes: list[str],
            say: Callable[[str], object]) -> tuple[Path, bool]:
    from . import onnx as yolo_onnx

    say("exporting to ONNX")
    path = folder / "model.onnx"
    heads = [layer for layer in net.config if layer.kind.head]
    weights: Literal["float32", "float16"] = "float16" if dtype == "float16" else "float32"
    outputs: Literal["raw", "decoded"] = (
        "decoded" if heads and all(_plain_yolo(h) for h in heads) else "raw")
    try:
        yolo_onnx.export(path, net, opset=opset, outputs=outputs, dtype=weights,
                         intermediates=True)
    except ConversionError:
        if outputs == "raw":
            raise
        outputs = "raw"
        yolo_onnx.export(path, net, opset=opset, outputs=outputs, dtype=weights,
                         intermediates=True)
    notes.append(f"exported on the fly: yolo_io.onnx.export(opset={opset}, outputs={outputs!r}, "
                 f"dtype={dtype!r}, intermediates=True)")
    return path, True


def _session(ort: Any, path: Path) -> Any:
    try:
        # onnxruntime takes UTF-8 names: another name's model is given as its bytes
        utf8 = shown(str(path)) == str(path)
        model = str(path) if utf8 else path.read_bytes()
        return ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise YoloIOError(f"{path}: onnxruntime cannot load it: {first}") from err


def _run_onnx(session: Any, x: npt.NDArray[np.float32], config: Config, path: Path
              ) -> dict[str, npt.NDArray[Any]]:
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise YoloIOError(f"{path} takes {len(inputs)} inputs; a darknet export takes one")
    shape = list(inputs[0].shape)
    want = list(x.shape)
    fixed = [d for d in shape[1:] if isinstance(d, int)]
    if len(shape) != 4 or (len(fixed) == 3 and fixed != want[1:]):
        raise YoloIOError(f"{path} takes an input of shape {shape}, but {config.path} is "
                          f"{_dims(want[1:])} (C x H x W): not a model of this cfg")
    if inputs[0].type != "tensor(float)":
        raise YoloIOError(f"{path} takes {inputs[0].type}; verify feeds float32")
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, {inputs[0].name: x})
    return dict(zip(names, (np.asarray(v) for v in values), strict=True))


def _opencv_accepts(cv2: Any, config: Config, folder: Path) -> None:
    """Raises YoloIOError if OpenCV's importer refuses the cfg (an unknown
    section or activation): then it cannot be the oracle."""
    full = folder / "opencv-full.cfg"
    full.write_bytes(config.source)
    try:
        cv2.dnn.readNetFromDarknet(str(full))
    except cv2.error as err:
        raise YoloIOError(f"OpenCV cannot be the oracle for {config.path}: its Darknet "
                          f"importer refuses it ({_cv_message(err)})") from err


def _run_opencv(cv2: Any, net: Network, x: npt.NDArray[np.float32], folder: Path,
                result: Verification
                ) -> tuple[dict[str, npt.NDArray[Any]], dict[int, str], dict[int, str]]:
    """OpenCV's outputs by layer name, darknet layer -> OpenCV name, and the
    [yolo] layers' own OpenCV outputs (for the decoded outputs)."""
    config = net.config
    stop, why = _opencv_limit(config)
    if why is not None:
        result.notes.append(f"{why}; {_span(stop, len(config) - 1)} not compared with OpenCV")
    cfg_path = folder / "opencv.cfg"
    _truncated_cfg(config, stop, cfg_path)
    weights_path = folder / "opencv.weights"
    smallest = _opencv_weights(net, weights_path, stop)
    if smallest is not None:
        effect = 1 - math.sqrt((smallest + _BN_EPS_OPENCV) / (smallest + _BN_EPS_DARKNET))
        result.notes.append(
            f"OpenCV's batch norm adds epsilon 1e-6 to the variance where darknet adds "
            f"1e-5; OpenCV was given rolling_variance + 9e-6 so that it computes darknet's "
            f"values (uncompensated, the smallest variance here, {smallest:.3g}, would "
            f"change its layer by {effect:.2g} relative)")
    if stop == 0:
        return {}, {}, {}
    try:
        cvnet = cv2.dnn.readNetFromDarknet(str(cfg_path), str(weights_path))
    except cv2.error as err:
        raise YoloIOError(f"OpenCV cannot be the oracle for {config.path}: its importer "
                          f"fails on it ({_cv_message(err)})") from err
    # Fusion off: OpenCV 4.14 returns zeros for some requested outputs of fused
    # layers (csdarknet53-omega layer 2), and darknet does not fuse either.
    cvnet.enableFusion(False)
    names = [str(n) for n in cvnet.getLayerNames()]
    mapped, count, mismatch = opencv_layer_names(config, names, stop)
    if mismatch is not None:
        result.notes.append(f"{mismatch}; {_span(count, len(config) - 1)} not compared with "
                            f"OpenCV")
    elif len(names) != sum(len(_expected_kinds(layer)) for layer in config[:stop]):
        result.notes.append(f"OpenCV has {len(names)} layers where {stop} darknet layers "
                            f"should make {sum(len(_expected_kinds(la)) for la in config[:stop])}")
    result.compared_until = count
    heads_out = {i: name for i, name in mapped.items() if _plain_yolo(config[i])}
    wanted = sorted(set(mapped.values()) | set(heads_out.values()), key=names.index)
    cvnet.setInput(x)
    try:
        values = cvnet.forward(wanted)
    except cv2.error as err:
        raise YoloIOError(f"OpenCV cannot be the oracle for {config.path}: it fails to run "
                          f"it ({_cv_message(err)})") from err
    return (dict(zip(wanted, (np.asarray(v) for v in values), strict=True)), mapped,
            heads_out)


def _cv_message(err: BaseException) -> str:
    """OpenCV's error without its source path: "OpenCV(4.14.0) /io/...cpp:963:
    error: (-212:Parsing error) Unknown layer type: rnn in function 'f'" ->
    "Parsing error: Unknown layer type: rnn"."""
    text = " ".join(str(err).split())
    found = re.search(r"error: \(-?\d+:([^)]*)\) (.*?)(?: in function '[^']*')?$", text)
    return f"{found.group(1)}: {found.group(2)}" if found else text or type(err).__name__


def _compare_layers(config: Config, ours: dict[str, npt.NDArray[Any]],
                    theirs: dict[str, npt.NDArray[Any]], mapped: dict[int, str],
                    omitted: set[int], result: Verification) -> None:
    has_layers = any(name.startswith("layer_") for name in ours)
    if not has_layers:
        result.notes.append("the ONNX model has no layer_{i} outputs (export it with "
                            "intermediates=True, or `yolo-io export --intermediates`): only "
                            "its outputs are compared")
        return
    region_noted = False
    for layer in config:
        key = f"layer_{layer.index}"
        if key not in ours or layer.index in omitted:
            continue
        head = layer.kind.head
        source = layer.index - 1 if head else layer.index
        if source not in mapped:
            continue
        if isinstance(layer.attrs, RegionAttrs) and not region_noted:
            region_noted = True
            result.notes.append("OpenCV's [region] layer orders and thresholds its output "
                                "unlike darknet: the region head's input is compared instead")
        a = ours[key]
        b = theirs[mapped[source]]
        result.layers.append(_layer_comparison(layer, mapped[source], a, b, result, head))


def _layer_comparison(layer: CfgLayer, opencv: str, a: npt.NDArray[Any], b: npt.NDArray[Any],
                      result: Verification, head: bool) -> LayerComparison:
    if a.size != b.size:
        result.notes.append(f"layer {layer.index}: the ONNX tensor is {_dims(a.shape)}, "
                            f"OpenCV's {opencv} is {_dims(b.shape)}")
        return LayerComparison(layer.index, layer.type, opencv, tuple(a.shape), math.inf,
                               math.inf, False, head)
    max_abs, max_rel = _errors(a, b.reshape(a.shape))
    return LayerComparison(layer.index, layer.type, opencv, tuple(a.shape), max_abs, max_rel,
                           _within(max_abs, max_rel, result.atol, result.rtol), head)


def _compare_outputs(config: Config, ours: dict[str, npt.NDArray[Any]],
                     theirs: dict[str, npt.NDArray[Any]], mapped: dict[int, str],
                     heads_out: dict[int, str], result: Verification) -> None:
    decoded = [n for n in ("boxes", "objectness", "scores") if n in ours]
    last = max((i for i in range(len(config)) if not config[i].kind.training_only),
               default=len(config) - 1)
    for name, value in ours.items():
        if name.startswith("layer_") or name in decoded:
            continue
        if name == "selected":
            result.notes.append("`selected` (NMS indices) is not compared: OpenCV's [yolo] "
                                "layers do not run NMS")
            continue
        index = (int(name[5:]) if name.startswith("head_") and name[5:].isdigit() else
                 last if name == "output" else None)
        if index is None or not 0 <= index < len(config):
            result.notes.append(f"the output {name} is not one yolo_io exports: not compared")
            continue
        source = index - 1 if name.startswith("head_") else index
        if source not in mapped:
            result.notes.append(f"the output {name} is not compared: OpenCV does not compute "
                                f"layer {source}")
            continue
        what = (f"OpenCV {mapped[source]} (layer {index}'s input)" if name.startswith("head_")
                else f"OpenCV {mapped[source]}")
        result.outputs.append(_output_comparison(name, value.shape, value,
                                                 theirs[mapped[source]], what, result))
    if decoded:
        _compare_decoded(config, ours, theirs, heads_out, result)


def _output_comparison(name: str, shape: Sequence[int], a: npt.NDArray[Any],
                       b: npt.NDArray[Any], what: str, result: Verification
                       ) -> OutputComparison:
    if a.size != b.size:
        return OutputComparison(name, tuple(shape), f"{what}: {_dims(b.shape)}, a different "
                                f"size", math.inf, math.inf, False, 0)
    max_abs, max_rel = _errors(a, b.reshape(a.shape))
    return OutputComparison(name, tuple(shape), what, max_abs, max_rel,
                            _within(max_abs, max_rel, result.atol, result.rtol), int(a.size))


def _raw_sides(a: npt.NDArray[Any], b: npt.NDArray[Any], heads: Sequence[CfgLayer],
               net_w: int, net_h: int, result: Verification
               ) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Boxes (n, 4) as the values to compare: x and y as they are, w and h
    turned back into the raw values they were decoded from: log(w / anchor),
    or sqrt(w / (4 anchor)) for new_coords heads. A side is exp(raw) * anchor
    (or 4 raw^2 * anchor), so its own difference is the raw value's magnified
    (exp() makes an absolute rounding difference relative), which on the huge
    sides of random weights says nothing; the raw value's difference is what
    the layers are held to. Sides that are 0 or infinite in one of the two
    (exp() under- or overflow: float32 overflows above a raw 88.7, where
    darknet's double exp() may not) are left out, and counted in a note."""
    anchors, squared = [], []
    for head in heads:
        attrs = head.attrs
        assert isinstance(attrs, YoloAttrs)
        cells = head.input_shape[1] * head.input_shape[2]
        for aw, ah in attrs.anchors:
            anchors.append(np.repeat([[aw / net_w, ah / net_h]], cells, axis=0))
            squared.append(np.full(cells, attrs.new_coords))
    anchor = np.concatenate(anchors)
    new = np.concatenate(squared)[:, None]
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sa, sb = a[:, 2:] / anchor, b[:, 2:] / anchor
        fine_a = np.isfinite(sa) & (new | (sa > 0))
        fine_b = np.isfinite(sb) & (new | (sb > 0))
        usable = fine_a & fine_b
        ra = np.where(new, np.sqrt(np.abs(sa) / 4), np.log(sa))
        rb = np.where(new, np.sqrt(np.abs(sb) / 4), np.log(sb))
    both = ~fine_a & ~fine_b
    if both.any():
        result.notes.append(f"{int(both.sum())} box sides are 0 or infinite in both (exp() of "
                            "a raw value beyond float32's range): not compared")
    one = fine_a ^ fine_b
    if one.any():
        # 0 or infinite in only one of the two: a divergence, whatever its size.
        result.notes.append(f"{int(one.sum())} box sides are 0 or infinite in only one of the "
                            "two: counted as an infinite error")
    inf = np.full(int(one.sum()), np.inf)
    return (np.concatenate([a[:, :2].ravel(), ra[usable], np.zeros_like(inf)]),
            np.concatenate([b[:, :2].ravel(), rb[usable], inf]))


def _compare_decoded(config: Config, ours: dict[str, npt.NDArray[Any]],
                     theirs: dict[str, npt.NDArray[Any]], heads_out: dict[int, str],
                     result: Verification) -> None:
    heads = [layer for layer in config if layer.kind.head]
    if not all(_plain_yolo(h) for h in heads):
        result.notes.append("the decoded outputs are not compared: OpenCV decodes only "
                            "[yolo] heads the way darknet does")
        return
    missing = [h.index for h in heads if h.index not in heads_out]
    if missing:
        result.notes.append(f"the decoded outputs are not compared: OpenCV does not compute "
                            f"head {missing[0]}")
        return
    parts = []
    for head in heads:
        attrs = head.attrs
        assert isinstance(attrs, YoloAttrs)
        _, hh, ww = head.input_shape
        anchors = len(attrs.mask)
        rows = np.asarray(theirs[heads_out[head.index]])
        entries = 5 + attrs.classes
        if rows.size != hh * ww * anchors * entries:
            result.notes.append(f"the decoded outputs are not compared: OpenCV's "
                                f"{heads_out[head.index]} is {_dims(rows.shape)}, not "
                                f"{hh * ww * anchors} rows of {entries}")
            return
        # OpenCV: one row per (row, column, anchor); darknet: (anchor, row, column).
        parts.append(rows.reshape(hh, ww, anchors, entries).transpose(2, 0, 1, 3)
                     .reshape(-1, entries))
    ref = np.concatenate(parts)
    what = "OpenCV " + ", ".join(heads_out[h.index] for h in heads)
    for name, b in (("boxes", ref[:, :4]), ("objectness", ref[:, 4]), ("scores", ref[:, 5:])):
        if name not in ours:
            continue
        shape = ours[name].shape
        a = ours[name][0]
        if a.shape != b.shape:
            result.outputs.append(OutputComparison(
                name, tuple(shape), f"{what}: {_dims(b.shape)}, a different shape",
                math.inf, math.inf, False, 0))
            continue
        if name == "scores":
            kept = b > 0
            result.outputs.append(_output_comparison(name, shape, a[kept], b[kept],
                                                     f"{what}, where > 0", result))
            result.notes.append("scores are compared where OpenCV's is above 0: OpenCV "
                                "zeroes those below the [yolo] thresh=")
            continue
        if name == "boxes":
            _, net_h, net_w = config.input_shape
            a, b = _raw_sides(a, b, heads, net_w, net_h, result)
            result.outputs.append(_output_comparison(name, shape, a, b,
                                                     f"{what} (w, h as raw values)", result))
            continue
        result.outputs.append(_output_comparison(name, shape, a, b, what, result))


def _plain_yolo(layer: CfgLayer) -> bool:
    """A [yolo] head (not Gaussian_yolo): the one head OpenCV decodes as
    darknet does, and whose decoded outputs the export writes."""
    return type(layer.attrs) is YoloAttrs


_NO_OPENCV = Refused("OpenCV's darknet importer has no such layer")

#: The OpenCV layer types each darknet layer kind becomes in OpenCV's darknet
#: importer, in order (None: a route, which depends on its inputs and groups),
#: or Refused: the importer has no such layer. tests/test_kinds.py checks that
#: every kind of the core's table has an entry.
OPENCV_TYPES_BY_KIND: dict[str, tuple[str, ...] | Refused | None] = {
    "convolutional": ("conv",),
    "deconvolutional": _NO_OPENCV,
    "connected": ("fullyConnected",),
    "local": _NO_OPENCV,
    "maxpool": ("pool",),
    "local_avgpool": _NO_OPENCV,
    "avgpool": ("avgpool",),
    "route": None,
    "shortcut": ("shortcut",),
    "scale_channels": ("scale_channels",),
    "sam": ("sam",),
    "upsample": ("upsample",),
    "reorg": ("reorg",),
    "reorg3d": _NO_OPENCV,
    "yolo": ("permute", "yolo"),
    "Gaussian_yolo": _NO_OPENCV,
    "region": ("permute", "detection"),
    "detection": _NO_OPENCV,
    "rnn": _NO_OPENCV,
    "lstm": _NO_OPENCV,
    "gru": _NO_OPENCV,
    "crnn": _NO_OPENCV,
    "conv_lstm": _NO_OPENCV,
    "batchnorm": _NO_OPENCV,
    "dropout": ("identity",),
    "softmax": ("softmax",),
    "cost": ("identity",),
    "normalization": _NO_OPENCV,
    "activation": _NO_OPENCV,
    "contrastive": _NO_OPENCV,
    "crop": _NO_OPENCV,
    "history": _NO_OPENCV,
    "implicit": _NO_OPENCV,
    "iseg": _NO_OPENCV,
    "empty": _NO_OPENCV,
    "logistic": _NO_OPENCV,
    "l2norm": _NO_OPENCV,
}

"""ONNX export of a darknet network, built with the ``onnx`` package only.

No framework is involved: every darknet layer becomes the ONNX operators that
compute what darknet's own ``forward_*`` function computes (the darknet source
of each rule is named beside it below), with batch norm folded by the C++ core
exactly as darknet folds it. A layer, activation or option that cannot be
expressed raises :class:`~yolo_io.ConversionError` naming the layer and its
cfg line; nothing is silently replaced by an identity.

    import yolo_io, yolo_io.onnx
    net = yolo_io.load("yolov4.weights", "yolov4.cfg")
    yolo_io.onnx.export("yolov4.onnx", net, outputs="decoded")
    print(yolo_io.onnx.verify(net, onnx_path="yolov4.onnx").summary())

The graph's input ``input`` is ``(batch, C, H, W)`` float32, RGB scaled to
[0, 1] and resized to the cfg's size (letterboxed if ``[net]`` says
``letter_box=1``), as darknet feeds its network. Requires ``pip install onnx``
(the ``onnx`` extra); :func:`verify` (from ``verify.py``) also needs
onnxruntime and OpenCV's darknet importer (the ``verify`` extra).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import importlib.util
import json
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, overload

import numpy as np
import numpy.typing as npt

from .._base.deprecation import warn_deprecated
from .._base.errors import ConversionError
from .._base.paths import PathArg, fs_path, shown
from .._lowering import INPUT, lower
from .._lowering import head_output_names as _head_names
from .._lowering import ops as O
from .._lowering.ops import normalized_shortcut_weights
from .._model import attrs as A
from .._model.config import CfgLayer
from .._model.fusion import BN_EPSILON
from .._model.kinds import KINDS
from .._model.network import Network, evict_behind

if TYPE_CHECKING:
    import onnx

__all__ = ["HEAD_TYPES", "export", "head_output_names"]

#: Darknet layer types whose input is a detection head's raw output.
HEAD_TYPES = tuple(k.name for k in KINDS.values() if k.head)
_OUTPUTS = ("raw", "decoded", "nms")
_EXTERNAL_DATA_LIMIT = 2_000_000_000  # protobuf's 2 GiB limit, with room for the graph
_EXTERNAL_TENSOR_MIN = 1024  # smaller tensors stay in the model file
_AHEAD = 3  # layers the export's fusion may run ahead of the file writes
F = TypeVar("F", bound=Callable[..., Any])


def head_output_names(net: Network | Any) -> list[str]:
    """The raw head outputs' names in an exported graph: ``head_{i}`` for
    every head layer ``i`` (``[yolo]``, ``[Gaussian_yolo]``, ``[region]``,
    ``[detection]``), in layer order; ``["output"]`` for a network without
    heads (a classifier: the last layer's output)."""
    return _head_names(net.config if isinstance(net, Network) else net)


def _network_first_deprecated(fn: F) -> F:
    """The old order of :func:`export`, ``export(net, path=None)`` (``net``
    first, by position or by name, ``path`` optional), still works for one
    release, with a DeprecationWarning; ``inspect.signature`` shows the new."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        first = args[0] if args else None
        if isinstance(first, Network) or (not args and "path" not in kwargs and "net" in kwargs):
            net = first if isinstance(first, Network) else kwargs.pop("net")
            rest = args[1:]
            if len(rest) > 1:
                raise TypeError(f"export() takes 2 positional arguments, got {len(args)}")
            if rest and "path" in kwargs:
                raise TypeError("export() got multiple values for 'path'")
            path = rest[0] if rest else kwargs.pop("path", None)
            warn_deprecated("yolo_io.onnx.export(net, path)",
                            "call export(path, net), with path None for the model in memory")
            return fn(path, net, **kwargs)
        return fn(*args, **kwargs)

    return cast(F, wrapper)


@overload
def export(
    path: None,
    net: Network,
    *,
    opset: int = 17,
    outputs: Literal["raw", "decoded", "nms"] = "raw",
    dtype: Literal["float32", "float16"] = "float32",
    dynamic_batch: bool = True,
    mish: Literal["auto", "decomposed", "native"] = "auto",
    intermediates: bool = False,
    score_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_detections: int = 100,
) -> onnx.ModelProto: ...


@overload
def export(
    path: PathArg,
    net: Network,
    *,
    opset: int = 17,
    outputs: Literal["raw", "decoded", "nms"] = "raw",
    dtype: Literal["float32", "float16"] = "float32",
    dynamic_batch: bool = True,
    mish: Literal["auto", "decomposed", "native"] = "auto",
    intermediates: bool = False,
    score_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_detections: int = 100,
) -> Path: ...


@_network_first_deprecated
def export(
    path: PathArg | None,
    net: Network,
    *,
    opset: int = 17,
    outputs: Literal["raw", "decoded", "nms"] = "raw",
    dtype: Literal["float32", "float16"] = "float32",
    dynamic_batch: bool = True,
    mish: Literal["auto", "decomposed", "native"] = "auto",
    intermediates: bool = False,
    score_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_detections: int = 100,
) -> onnx.ModelProto | Path:
    """Export ``net`` as an ONNX model, saved to ``path`` (None: returned).

    The path comes first, as in every writer (``save(path, net)``); the old
    order, ``export(net)`` and ``export(net, path)``, still works for one
    release with a DeprecationWarning.

    Args:
        path: where to save the model (atomically: a temporary file in the same
            folder, ``.yolo_io-XXXXXXXXXXXXXXXX.tmp``, then a rename), or None
            for the model itself. Models over 2 GB keep their weights in
            ``<path>.data`` beside it (ONNX external data). One of the
            network's files (by inode) is refused with OutputIsInputError.
        net: a loaded network (every layer's weights present: not a partial
            file); required.
        opset: the ONNX opset, 13 or later.
        outputs: ``"raw"``: each head's input, ``head_{i}`` of shape
            ``(batch, anchors*(5+classes), h, w)`` (``"output"`` for a
            classifier); ``"decoded"``: ``boxes`` ``(batch, n, 4)`` as
            (cx, cy, w, h) relative to the input size, ``objectness``
            ``(batch, n)`` and ``scores`` ``(batch, n, classes)`` (objectness
            times class probability, before any threshold), decoded as each
            darknet head decodes, all heads concatenated in layer order, each
            head's entries in darknet's order (anchor, row, column; a raw
            width or height above ~88.7, where float32 exp() overflows, gives
            an infinite box where darknet, computing exp() in double, has a
            finite absurd one); ``"nms"``: those plus ``selected`` ``(k, 3)`` (batch, class, box
            index) from ONNX ``NonMaxSuppression``.
        dtype: ``"float16"`` stores the weights as float16 (half the size) and
            casts them to float32 in the graph; inputs, outputs and arithmetic
            stay float32.
        dynamic_batch: a symbolic batch dimension (else 1).
        mish: ``"decomposed"`` is ``x * tanh(softplus(x))`` (every runtime,
            including TensorRT and OpenCV, which lack the Mish op);
            ``"native"`` the Mish operator (opset 18+); ``"auto"``: native
            from opset 18.
        intermediates: also output every layer's result as ``layer_{i}``
            (what ``yolo-io verify`` compares layer by layer).
        score_threshold, iou_threshold, max_detections: the NMS settings
            (``max_detections`` per class and image): thresholds in [0, 1],
            ``max_detections`` at least 1; checked whatever ``outputs`` is.

    Returns:
        Without ``path``, the model (an ``onnx.ModelProto``). With ``path``,
        the path written: the file is then streamed from the fused arrays,
        never built in memory (``onnx.load(path)`` reads it back).

    Raises:
        ConversionError: a layer type, activation or option that has no
            faithful export, naming the layer and its cfg line.
        ValueError: an option out of range (``opset``, ``mish``, the NMS
            settings), naming the option and the value.
        ImportError: the ``onnx`` package is missing.
    """
    if importlib.util.find_spec("onnx") is None:  # pragma: no cover - depends on the environment
        raise ImportError("yolo_io.onnx needs the onnx package: pip install 'yolo_io[onnx]'")
    if path is not None and not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"export(path, net): path must be a file name or None, not "
                        f"{type(path).__name__}")
    if not isinstance(net, Network):
        raise TypeError(f"export(path, net) takes a Network, not {type(net).__name__}")
    if outputs not in _OUTPUTS:
        raise ValueError(f"outputs must be one of {_OUTPUTS}, not {outputs!r}")
    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be 'float32' or 'float16', not {dtype!r}")
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)):
        raise TypeError(f"opset must be an int, not {type(opset).__name__}")
    if opset < 13:
        raise ValueError(f"opset {opset} is too old: 13 or later")
    import onnx.defs

    if opset > onnx.defs.onnx_opset_version():
        raise ValueError(f"opset {opset} is newer than this onnx package knows "
                         f"({onnx.defs.onnx_opset_version()})")
    if mish not in ("auto", "decomposed", "native"):
        raise ValueError(f"mish must be 'auto', 'decomposed' or 'native', not {mish!r}")
    if mish == "native" and opset < 18:
        raise ValueError("the Mish operator needs opset 18 or later")
    _check_nms_options(score_threshold, iou_threshold, max_detections)
    if path is not None and not fs_path(path):  # Path("") would be the folder "."
        raise FileNotFoundError(errno.ENOENT, "an empty path is no file name", "")
    if net.partial:
        raise ConversionError(f"{net.path} holds only the first {net.covered_layers} of "
                              f"{len(net)} layers: an export needs them all")
    builder = _Builder(net, opset=opset, dtype=dtype, dynamic_batch=dynamic_batch,
                       native_mish=mish == "native" or (mish == "auto" and opset >= 18))
    model = builder.build(outputs=outputs, intermediates=intermediates,
                          score_threshold=score_threshold, iou_threshold=iou_threshold,
                          max_detections=max_detections)
    builder.params(None)
    fill = _Filler(net, dtype, builder.initializers)
    try:
        if path is not None:
            return _save(model, builder.initializers, Path(fs_path(path)), fill)
        return _with_data(model, builder.initializers, fill)
    finally:
        fill.close()


def _check_nms_options(score_threshold: object, iou_threshold: object,
                       max_detections: object) -> None:
    """Refuses NMS settings that ONNX ``NonMaxSuppression`` would take but that
    mean nothing (a threshold outside [0, 1] or NaN, no box kept), whatever
    ``outputs`` is, so that a caller learns of them before the graph is built."""
    for name, value in (("score_threshold", score_threshold), ("iou_threshold", iou_threshold)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer,
                                                             np.floating)):
            raise TypeError(f"{name} must be a number in [0, 1], not {type(value).__name__}")
        if not 0 <= value <= 1:  # NaN fails too
            raise ValueError(f"{name} must be in [0, 1], got {float(value):g}")
    if isinstance(max_detections, bool) or not isinstance(max_detections, (int, np.integer)):
        raise TypeError(f"max_detections must be an int, not {type(max_detections).__name__}")
    if max_detections >= 2**63:
        raise ValueError(f"max_detections {int(max_detections)} is too large: at most 2**63 - 1 "
                         f"(boxes kept per class and image)")
    if max_detections < 1:
        raise ValueError(f"max_detections must be at least 1 (boxes kept per class and image), "
                         f"got {int(max_detections)}")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


# Protobuf keys (field number << 3 | 2, length-delimited) of the fields the
# streamed writer puts together itself: ModelProto.graph, GraphProto.initializer
# and TensorProto.raw_data (onnx/onnx.proto).
_MODEL_GRAPH, _GRAPH_INITIALIZER, _TENSOR_RAW_DATA = b"\x3a", b"\x2a", b"\x4a"

@dataclass(frozen=True)
class _Lazy:
    """A fused parameter computed only when its bytes are written: part 0
    (weights) or 1 (bias) of ``layer``'s :meth:`~yolo_io.Layer.fused`, of
    ``shape`` as fused, stored with ``dims``."""

    layer: int
    part: int
    shape: tuple[int, ...]
    dims: tuple[int, ...]
    dtype: np.dtype[Any]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def reshape(self, *dims: int) -> _Lazy:
        return _Lazy(self.layer, self.part, self.shape, dims, self.dtype)


Tensors = list[tuple[Any, "npt.NDArray[Any] | _Lazy"]]
Pair = tuple[npt.NDArray[np.generic], npt.NDArray[np.generic]]


class _Filler:
    """Computes lazy parameters layer by layer, in the order they are
    written, into ``_AHEAD + 1`` reused buffers (each sized for the largest
    layer): while the caller writes one layer's arrays, a worker thread fuses
    up to ``_AHEAD`` layers ahead (the core's fusion and the file writes both
    release the GIL), so a large layer after small ones does not stall the
    writes. close() it when done."""

    def __init__(self, net: Network, dtype: str, tensors: Tensors) -> None:
        self.net, self.dtype = net, dtype
        sizes: dict[int, int] = {}
        for _, source in tensors:
            if isinstance(source, _Lazy):
                sizes[source.layer] = sizes.get(source.layer, 0) + _aligned(source.nbytes)
        self.order = list(sizes)  # layers in the order their arrays are written
        size = max(sizes.values(), default=0)
        self.buffers = [np.empty(size, np.uint8) for _ in range(min(_AHEAD + 1, len(sizes)))]
        self.lazies: dict[tuple[int, int], _Lazy] = {
            (s.layer, s.part): s for _, s in tensors if isinstance(s, _Lazy)}
        self.position = -1
        self.current: tuple[npt.NDArray[Any], npt.NDArray[Any]] | None = None
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="yolo_io-onnx-fuse")
        # Fusion starts now, while the caller still builds the file's head.
        self.pending: dict[int, Future[tuple[npt.NDArray[Any], npt.NDArray[Any]]]] = {
            k: self.pool.submit(self.fuse, k) for k in range(len(self.buffers))}

    def close(self) -> None:
        """Waits for the worker (and drops the fusions not yet started)."""
        self.pool.shutdown(wait=True, cancel_futures=True)

    def fuse(self, position: int) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        """Fuses layer ``order[position]`` into buffer ``position % len(buffers)``:
        free, since the layer written from it before is done when this runs."""
        layer = self.order[position]
        w, b = self.lazies[layer, 0], self.lazies[layer, 1]
        buffer = self.buffers[position % len(self.buffers)]
        split = _aligned(w.nbytes)
        weights = buffer[:w.nbytes].view(w.dtype).reshape(w.shape)
        bias = buffer[split:split + b.nbytes].view(b.dtype).reshape(b.shape)
        # One thread: the other core writes the file meanwhile.
        self.net.fuse_into({layer: (weights, bias)}, "OIHW", dtype=self.dtype,
                           dense_layout="OI", flatten="CHW", threads=1)
        return weights, bias

    def __call__(self, source: npt.NDArray[Any] | _Lazy) -> npt.NDArray[Any]:
        if not isinstance(source, _Lazy):
            return source
        if self.position < 0 or self.order[self.position] != source.layer:
            self.position += 1
            assert self.order[self.position] == source.layer, "written out of order"
            # The previous layer is written: its buffer takes the next one.
            following = self.position + len(self.buffers) - 1
            if self.position > 0 and following < len(self.order):
                self.pending[following] = self.pool.submit(self.fuse, following)
            self.current = self.pending.pop(self.position).result()
        assert self.current is not None
        return self.current[source.part]


def _aligned(n: int) -> int:
    return (n + 63) // 64 * 64


def _with_data(model: onnx.ModelProto, tensors: Tensors, fill: _Filler) -> onnx.ModelProto:
    """The model with every initializer's bytes in it (one copy each)."""
    for proto, array in tensors:
        proto.raw_data = fill(array).tobytes()
        model.graph.initializer.append(proto)
    return model


def _save(model: onnx.ModelProto, tensors: Tensors, path: Path, fill: _Filler) -> Path:
    """Writes ``model`` (a graph without initializers) and its initializers'
    arrays, serialized piece by piece straight from the arrays: the bytes of a
    model whose graph holds these initializers, without building that model in
    memory. The core's atomic writer (as :func:`yolo_io.save`'s) writes a
    temporary file beside ``path``, fsyncs it, renames it over ``path``
    keeping the replaced file's mode, and fsyncs the folder.
    Over protobuf's 2 GB limit, tensors of at least ``_EXTERNAL_TENSOR_MIN``
    bytes go to ``<path>.data`` (ONNX external data, renamed into place
    first)."""
    from onnx import TensorProto

    from .._writing.atomic import (
        atomic_file,
        network_inputs,
        refuse_inputs,
        resolve_target,
    )

    target = Path(resolve_target(path))
    if not target.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(target))
    external = sum(a.nbytes for _, a in tensors) > _EXTERNAL_DATA_LIMIT
    data_path = target.with_name(target.name + ".data")  # the name the model gives
    inputs = network_inputs(fill.net)
    refuse_inputs(target, inputs)
    # The data file is always a regular file: ONNX's checker refuses external
    # data behind a symbolic link, so a link there is replaced (its target is
    # left as it was). It is an output only when written: when the weights
    # fit inside the model, at most an orphaned link or file is removed.
    if external:
        refuse_inputs(data_path, inputs)
    if external and shown(data_path.name) != data_path.name:  # before any byte is written
        raise ValueError(f"{shown(str(target))}: a model over 2 GB keeps its weights in "
                         f"{shown(data_path.name)}, which the model names in UTF-8 (ONNX "
                         f"strings are UTF-8); give the model a UTF-8 file name")

    # The model replaced may have kept its weights in <path>.data: once the
    # new model (with its weights inside) is in place, that file is orphaned.
    try:  # (a target name near the length limit leaves no room for ".data": none there)
        orphan = (not external and data_path.is_file()
                  and _uses_external_data(target, data_path))
    except OSError:
        orphan = False
    pieces: list[bytes | npt.NDArray[Any] | _Lazy] = []
    # atomic_file commits when its block ends and aborts on any error; the
    # stack exits last-in first: the data file is renamed into place before
    # the model that names it.
    with contextlib.ExitStack() as files:
        out = files.enter_context(atomic_file(str(target)))
        data = files.enter_context(atomic_file(str(data_path))) if external else None
        offset = 0
        for proto, array in tensors:
            if data is not None and array.nbytes >= _EXTERNAL_TENSOR_MIN:
                stored = TensorProto()
                stored.CopyFrom(proto)
                stored.data_location = TensorProto.EXTERNAL
                for key, value in (("location", data_path.name), ("offset", str(offset)),
                                   ("length", str(array.nbytes))):
                    entry = stored.external_data.add()
                    entry.key, entry.value = key, value
                data.write(_flat(fill(array)))
                offset += array.nbytes
                head = stored.SerializeToString()
                pieces.append(_GRAPH_INITIALIZER + _varint(len(head)) + head)
                continue
            head = proto.SerializeToString()
            raw = _TENSOR_RAW_DATA + _varint(array.nbytes)
            size = len(head) + len(raw) + array.nbytes
            # With external data, what stays inline is small: computed now,
            # so that the lazy arrays are filled in the order they come.
            data_bytes = fill(array).tobytes() if data is not None else array
            pieces += [_GRAPH_INITIALIZER + _varint(size) + head + raw, data_bytes]
        graph = model.graph.SerializeToString()
        graph_size = len(graph) + sum(len(p) if isinstance(p, bytes) else p.nbytes
                                      for p in pieces)
        model.graph.Clear()
        try:
            head = model.SerializeToString()
        finally:
            model.graph.ParseFromString(graph)
        out.write(head + _MODEL_GRAPH + _varint(graph_size) + graph)
        for piece in pieces:
            out.write(piece if isinstance(piece, bytes) else _flat(fill(piece)))
    if orphan:
        data_path.unlink(missing_ok=True)  # a link: the link alone
    return target


def _uses_external_data(model: Path, data: Path) -> bool:
    """Whether the ONNX file ``model`` keeps tensors in the file ``data``."""
    import onnx

    try:
        stored = onnx.load(str(model), load_external_data=False)
    except Exception:  # noqa: BLE001 - any unreadable file: leave its neighbours alone
        return False
    return any(entry.key == "location" and entry.value == data.name
               for tensor in stored.graph.initializer for entry in tensor.external_data)


def _flat(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """An array as the contiguous 1-d buffer the core's writer takes."""
    return np.ascontiguousarray(array).reshape(-1)


@dataclass
class _Builder:
    net: Network
    opset: int
    dtype: str
    dynamic_batch: bool
    native_mish: bool
    nodes: list[Any] = field(default_factory=list)
    initializers: Tensors = field(default_factory=list)
    omitted: list[int] = field(default_factory=list)
    fused: dict[int, tuple[Any, Any]] = field(default_factory=dict)
    _counter: int = 0
    _behind: Callable[[int | None], None] | None = None

    # -- small helpers -------------------------------------------------------

    def params(self, index: int | None) -> Mapping[str, npt.NDArray[np.float32]]:
        """Layer ``index``'s arrays, which the builder copies into the graph's
        own: the pages of the layer read before leave the resident set
        (evict_behind); None: the last one's, and returns nothing."""
        if self._behind is None:
            self._behind = evict_behind(self.net)
        self._behind(index)
        return {} if index is None else self.net[index].params

    def name(self, hint: str) -> str:
        self._counter += 1
        return f"{hint}__{self._counter}"

    def node(self, op: str, inputs: Sequence[str], output: str | None = None, *,
             hint: str = "t", **attrs: Any) -> str:
        from onnx import helper

        out = output or self.name(hint)
        # The core refuses such values in the cfg (a CfgError at their line);
        # this keeps a model ONNX rejects from being written if one got past it.
        sizes = [v for key in ("kernel_shape", "strides", "dilations") for v in attrs.get(key, ())]
        if min(sizes, default=1) < 1 or min(attrs.get("pads", ()), default=0) < 0 or \
                attrs.get("group", 1) < 1:
            raise ConversionError(f"{op} node {out} would have {attrs}: sizes, strides, "
                                  f"dilations and groups must be at least 1, pads at least 0")
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

    def const(self, value: npt.ArrayLike, hint: str, dtype: Any = np.float32) -> str:
        return self.tensor(np.asarray(value, dtype=dtype), hint)

    def tensor(self, array: npt.NDArray[Any], hint: str) -> str:
        """An initializer: its TensorProto without data, and the array whose
        bytes it gets (in the model, or streamed to the file)."""
        from onnx import TensorProto, helper

        name = self.name(hint)
        proto = TensorProto(name=name, dims=array.shape,
                            data_type=helper.np_dtype_to_tensor_dtype(array.dtype))
        self.initializers.append((proto, np.ascontiguousarray(array)))
        return name


    def ints(self, values: Sequence[int], hint: str = "shape") -> str:
        return self.const(np.asarray(values, dtype=np.int64), hint, np.int64)

    def weight(self, array: npt.NDArray[np.generic] | _Lazy, hint: str) -> str:
        """A float32 parameter: stored as float16 (then cast) when asked."""
        from onnx import TensorProto, helper

        if isinstance(array, _Lazy):
            name = self.name(hint)
            proto = TensorProto(name=name, dims=array.dims,
                                data_type=helper.np_dtype_to_tensor_dtype(array.dtype))
            self.initializers.append((proto, array))
        else:
            name = self.tensor(array, hint)
        if array.dtype == np.float16:
            return self.node("Cast", [name], hint=hint + "_f32", to=TensorProto.FLOAT)
        return name

    # -- the graph -----------------------------------------------------------

    def build(self, *, outputs: str, intermediates: bool, score_threshold: float,
              iou_threshold: float, max_detections: int) -> onnx.ModelProto:
        import onnx
        from onnx import TensorProto, helper

        net = self.net
        c, h, w = net.config.input_shape
        batch: str | int = "batch" if self.dynamic_batch else 1
        graph = lower(net.config, outputs="raw" if outputs == "raw" else "decoded",
                      intermediates=intermediates)
        self.omitted = graph.omitted
        self.fused = self.lazy_parameters()
        names: dict[int, str] = {INPUT: "input"}
        for node in graph.nodes:
            emit = EMIT_BY_OP[type(node.op)]
            names[node.output] = emit(self, node.op, [names[v] for v in node.inputs])

        graph_outputs: list[Any] = []
        for out in graph.outputs:
            self.node("Identity", [names[out.value]], out.name)
            graph_outputs.append(helper.make_tensor_value_info(out.name, TensorProto.FLOAT,
                                                               [batch, *out.shape]))
        if outputs == "nms" and graph.heads:
            boxes, scores = names[graph.outputs[0].value], names[graph.outputs[2].value]
            per_class = self.node("Transpose", [scores], perm=[0, 2, 1])
            self.node("NonMaxSuppression",
                      [boxes, per_class, self.ints([max_detections]),
                       self.const([iou_threshold], "iou"), self.const([score_threshold], "score")],
                      "selected", center_point_box=1)
            graph_outputs.insert(3, helper.make_tensor_value_info("selected", TensorProto.INT64,
                                                                  ["selected", 3]))
        onnx_graph = helper.make_graph(
            self.nodes, "darknet",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, c, h, w])],
            graph_outputs)
        model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", self.opset)],
                                  producer_name="yolo_io")
        model.ir_version = min(model.ir_version, 8 if self.opset < 19 else 9)
        onnx.helper.set_model_props(model, self.metadata(graph.heads))
        return model

    def lazy_parameters(self) -> dict[int, tuple[Any, Any]]:
        """Placeholders of every conv and connected layer's fused (weights,
        bias), with the shapes :meth:`Layer.fused` gives them."""
        dt = np.dtype(np.float16 if self.dtype == "float16" else np.float32)
        out: dict[int, tuple[Any, Any]] = {}
        for layer in self.net.config:
            a = layer.attrs
            if isinstance(a, A.ConvolutionalAttrs):
                shape: tuple[int, ...] = (a.filters, layer.input_shape[0] // a.groups, a.size,
                                          a.size)
                n = a.filters
            elif isinstance(a, A.ConnectedAttrs):
                shape, n = (a.outputs, int(np.prod(layer.input_shape))), a.outputs
            else:
                continue
            out[layer.index] = (_Lazy(layer.index, 0, shape, shape, dt),
                                _Lazy(layer.index, 1, (n,), (n,), dt))
        return out

    def metadata(self, heads: list[CfgLayer]) -> dict[str, str]:
        net = self.net
        c, h, w = net.config.input_shape
        records = []
        for head in heads:
            a = head.attrs
            record: dict[str, Any] = {"layer": head.index, "type": head.type,
                                      "input_shape": list(head.input_shape)}
            if isinstance(a, A.YoloAttrs):
                stride = (w // head.input_shape[2], h // head.input_shape[1])
                record.update(classes=a.classes, mask=list(a.mask), anchors=[list(p) for p in a.anchors],
                              stride=list(stride), scale_x_y=a.scale_x_y, new_coords=a.new_coords,
                              nms_kind=a.nms_kind, beta_nms=a.beta_nms)
            elif isinstance(a, A.RegionAttrs):
                record.update(classes=a.classes, coords=a.coords, num=a.num,
                              anchors=[list(p) for p in a.anchors], softmax=a.softmax)
            elif isinstance(a, A.DetectionAttrs):
                record.update(classes=a.classes, coords=a.coords, num=a.num, side=a.side,
                              sqrt=a.sqrt, softmax=a.softmax)
            records.append(record)
        return {
            "yolo_io.heads": json.dumps(records),
            "yolo_io.input": json.dumps({
                "shape": [c, h, w], "channel_order": "RGB" if c == 3 else "as darknet loads it",
                "scale": "1/255 (pixel values in [0, 1])", "layout": "NCHW",
                "letter_box": int(net.config.net.letter_box)}),
            "yolo_io.omitted_layers": json.dumps(self.omitted),
            "yolo_io.weights_dtype": self.dtype,
            "yolo_io.cfg": shown(Path(str(net.config.path)).name),  # UTF-8 in any case
        }


    # -- operations ----------------------------------------------------------

    def param_dtype(self) -> type:
        return np.float16 if self.dtype == "float16" else np.float32

    def emit_conv(self, op: O.Conv, x: list[str]) -> str:
        weights, bias = self.fused[op.layer]
        wname = self.weight(weights, f"w{op.layer}")
        bname = self.weight(bias, f"b{op.layer}")
        return self.node("Conv", [x[0], wname, bname], hint=f"conv{op.layer}",
                         kernel_shape=[op.size, op.size], strides=[op.stride_y, op.stride_x],
                         pads=[op.pad] * 4, dilations=[op.dilation] * 2, group=op.groups)

    def emit_dense(self, op: O.Dense, x: list[str]) -> str:
        weights, bias = self.fused[op.layer]
        return self.node("Gemm", [x[0], self.weight(weights, f"w{op.layer}"),
                                  self.weight(bias, f"b{op.layer}")], hint=f"fc{op.layer}",
                         transB=1)

    def emit_local(self, op: O.Local, x: list[str]) -> str:
        # The k*k shifted, strided views of the padded input stacked in (dy,
        # dx, c) order (no im2col kernel: that constant grows as c^2), then per
        # output position its own (filters, k*k*c) matrix.
        c, k, s, oh, ow = op.channels, op.size, op.stride, op.out_h, op.out_w
        p = self.params(op.layer)
        dt = self.param_dtype()
        padded = x[0]
        if op.pad:
            padded = self.node("Pad", [padded, self.ints([0, 0, op.pad, op.pad, 0, 0, op.pad,
                                                          op.pad])], mode="constant")
        views = [self.node("Slice", [padded, self.ints([dy, dx]),
                                     self.ints([dy + s * (oh - 1) + 1, dx + s * (ow - 1) + 1]),
                                     self.ints([2, 3]), self.ints([s, s])])
                 for dy in range(k) for dx in range(k)]
        cols = self.node("Reshape", [self.node("Concat", views, axis=1),
                                     self.ints([0, c * k * k, oh * ow])])
        stored: npt.NDArray[Any] = np.asarray(p["weights"]).astype(dt).reshape(
            oh * ow, op.filters, c, k, k)
        weights = self.weight(np.ascontiguousarray(stored.transpose(0, 1, 3, 4, 2)).reshape(
            oh * ow, op.filters, k * k * c), f"w{op.layer}")
        y = self.node("Einsum", [cols, weights], equation="bkl,lfk->bfl")
        y = self.node("Reshape", [y, self.ints([0, op.filters, oh, ow])])
        bias = self.weight(np.asarray(p["biases"]).astype(dt).reshape(1, op.filters, oh, ow),
                           f"b{op.layer}")
        return self.node("Add", [y, bias])

    def emit_batchnorm(self, op: O.BatchNorm, x: list[str]) -> str:
        # Folded in double precision into y = x * k + m.
        p = self.params(op.layer)
        var = np.asarray(p["rolling_variance"], np.float64)
        k = np.asarray(p["scales"], np.float64) / np.sqrt(var + BN_EPSILON)
        m = np.asarray(p["biases"], np.float64) - np.asarray(p["rolling_mean"], np.float64) * k
        dt = self.param_dtype()
        kk = self.weight(k.astype(dt).reshape(1, -1, 1, 1), f"bn_k{op.layer}")
        mm = self.weight(m.astype(dt).reshape(1, -1, 1, 1), f"bn_m{op.layer}")
        return self.node("Add", [self.node("Mul", [x[0], kk]), mm])

    def emit_weighted_sum(self, op: O.WeightedSum, x: list[str]) -> str:
        # The weights normalized in double precision, once (see O.WeightedSum).
        w = normalized_shortcut_weights(self.params(op.layer)["weights"], op)
        dt = self.param_dtype()
        scales = [self.weight(row.astype(dt).reshape(1, -1, 1, 1), f"shortcut_w{op.layer}")
                  for row in w]
        y = self.node("Mul", [x[0], scales[0]])
        for part, scale in zip(x[1:], scales[1:], strict=True):
            y = self.node("Add", [y, self.node("Mul", [part, scale])])
        return y

    def emit_const(self, op: O.Const, x: list[str]) -> str:
        return self.tensor(np.ascontiguousarray(op.value), op.hint)

    def emit_arith(self, op: O.Arith, x: list[str]) -> str:
        return self.node(op.kind.capitalize(), x)

    def emit_unary(self, op: O.Unary, x: list[str]) -> str:
        if op.kind == "mish" and not self.native_mish:
            return self.node("Mul", [x[0], self.node("Tanh", [self.node("Softplus", x)])])
        return self.node(_UNARY[op.kind], x)

    def emit_leaky_relu(self, op: O.LeakyRelu, x: list[str]) -> str:
        return self.node("LeakyRelu", x, alpha=op.alpha)

    def emit_elu(self, op: O.Elu, x: list[str]) -> str:
        return self.node("Elu", x, alpha=op.alpha)

    def emit_selu(self, op: O.Selu, x: list[str]) -> str:
        return self.node("Selu", x, alpha=op.alpha, gamma=op.gamma)

    def emit_clip(self, op: O.Clip, x: list[str]) -> str:
        return self.node("Clip", [x[0], self.const(np.float32(op.low), "low"),
                                  self.const(np.float32(op.high), "high")])

    def emit_compare(self, op: O.Compare, x: list[str]) -> str:
        return self.node(op.kind.capitalize(), x)

    def emit_where(self, op: O.Where, x: list[str]) -> str:
        return self.node("Where", x)

    def emit_pool(self, op: O.Pool, x: list[str]) -> str:
        top, left, bottom, right = op.pads
        attrs: dict[str, Any] = {"kernel_shape": [op.size, op.size],
                                 "strides": [op.stride_y, op.stride_x]}
        y = x[0]
        if max(op.pads) < op.size:
            attrs["pads"] = [top, left, bottom, right]
        else:
            # ONNX pads must be smaller than the kernel: pad explicitly with
            # darknet's -FLT_MAX (a window wholly outside gives -FLT_MAX too).
            # The lowering refuses such an average.
            assert op.kind == "max"
            y = self.node("Pad", [y, self.ints([0, 0, top, left, 0, 0, bottom, right]),
                                  self.const(np.float32(-np.finfo(np.float32).max), "lowest")])
        if op.kind == "average":
            attrs["count_include_pad"] = 0
        return self.node("MaxPool" if op.kind == "max" else "AveragePool", [y], **attrs)

    def emit_global_avg_pool(self, op: O.GlobalAvgPool, x: list[str]) -> str:
        return self.node("GlobalAveragePool", x)

    def emit_upsample(self, op: O.Upsample, x: list[str]) -> str:
        return self.node("Resize", [x[0], "", self.const([1, 1, op.stride, op.stride], "scales")],
                         mode="nearest", coordinate_transformation_mode="asymmetric",
                         nearest_mode="floor")

    def emit_reshape(self, op: O.Reshape, x: list[str]) -> str:
        return self.node("Reshape", [x[0], self.ints([0, *op.to])])

    def emit_transpose(self, op: O.Transpose, x: list[str]) -> str:
        return self.node("Transpose", x, perm=list(op.perm))

    def emit_slice(self, op: O.Slice, x: list[str]) -> str:
        return self.node("Slice", [x[0], self.ints([op.begin]), self.ints([op.end]),
                                   self.ints([op.axis])])

    def emit_concat(self, op: O.Concat, x: list[str]) -> str:
        return self.node("Concat", x, axis=op.axis)

    def emit_pad_end(self, op: O.PadEnd, x: list[str]) -> str:
        return self.node("Pad", [x[0], self.ints([0, 0, 0, op.count])], mode="constant")

    def emit_softmax(self, op: O.Softmax, x: list[str]) -> str:
        return self.node("Softmax", x, axis=op.axis)

    def emit_dropout(self, op: O.Dropout, x: list[str]) -> str:
        return self.node("Identity", x)  # an inference graph

    def emit_mean(self, op: O.Mean, x: list[str]) -> str:
        if self.opset < 18:
            return self.node("ReduceMean", x, axes=[op.axis], keepdims=1)
        return self.node("ReduceMean", [x[0], self.ints([op.axis])], keepdims=1)


_UNARY = {"sigmoid": "Sigmoid", "tanh": "Tanh", "exp": "Exp", "relu": "Relu",
          "softplus": "Softplus", "mish": "Mish", "identity": "Identity"}

#: The ONNX emitter of each lowered operation; tests/test_kinds.py checks that
#: every operation has one.
EMIT_BY_OP: dict[type[O.Op], Callable[[_Builder, Any, list[str]], str]] = {
    O.Conv: _Builder.emit_conv,
    O.Dense: _Builder.emit_dense,
    O.Local: _Builder.emit_local,
    O.BatchNorm: _Builder.emit_batchnorm,
    O.WeightedSum: _Builder.emit_weighted_sum,
    O.Const: _Builder.emit_const,
    O.Arith: _Builder.emit_arith,
    O.Unary: _Builder.emit_unary,
    O.LeakyRelu: _Builder.emit_leaky_relu,
    O.Elu: _Builder.emit_elu,
    O.Selu: _Builder.emit_selu,
    O.Clip: _Builder.emit_clip,
    O.Compare: _Builder.emit_compare,
    O.Where: _Builder.emit_where,
    O.Pool: _Builder.emit_pool,
    O.GlobalAvgPool: _Builder.emit_global_avg_pool,
    O.Upsample: _Builder.emit_upsample,
    O.Reshape: _Builder.emit_reshape,
    O.Transpose: _Builder.emit_transpose,
    O.Slice: _Builder.emit_slice,
    O.Concat: _Builder.emit_concat,
    O.PadEnd: _Builder.emit_pad_end,
    O.Softmax: _Builder.emit_softmax,
    O.Mean: _Builder.emit_mean,
    O.Dropout: _Builder.emit_dropout,
}

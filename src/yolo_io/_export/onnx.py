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
from .._model import attrs as A
from .._model.config import CfgLayer
from .._model.fusion import BN_EPSILON
from .._model.kinds import KINDS, Refused
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
    cfg = net.config if isinstance(net, Network) else net
    heads = [f"head_{layer.index}" for layer in cfg if layer.kind.head]
    return heads or ["output"]


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

    def fail(self, layer: CfgLayer, reason: str) -> ConversionError:
        return ConversionError(f"{layer.location}: {reason}; the ONNX export does not support it")

    # -- the graph -----------------------------------------------------------

    def build(self, *, outputs: str, intermediates: bool, score_threshold: float,
              iou_threshold: float, max_detections: int) -> onnx.ModelProto:
        import onnx
        from onnx import TensorProto, helper

        net = self.net
        cfg = net.config
        c, h, w = cfg.input_shape
        batch: str | int = "batch" if self.dynamic_batch else 1
        fused = self.lazy_parameters()
        tensors: dict[int, str] = {}
        heads: list[CfgLayer] = []
        x = "input"
        for layer in cfg:
            if layer.kind.training_only:  # left out (listed in the metadata)
                self.omitted.append(layer.index)
                continue
            for src in layer.inputs:
                if src in self.omitted:
                    raise self.fail(layer, f"an input from layer {src} ({cfg[src].section}), "
                                           "which computes nothing at inference")
                if cfg[src].kind.head:
                    # forward_yolo_layer & co. rewrite their output in place
                    # (activations, scale_x_y): not the raw input exported here.
                    raise self.fail(layer, f"an input from the head layer {src} "
                                           f"({cfg[src].section}), whose output darknet "
                                           "transforms in place")
            tensors[layer.index] = self.layer(layer, x, tensors, fused.get(layer.index))
            x = tensors[layer.index]
            if layer.kind.head:
                heads.append(layer)

        graph_outputs: list[Any] = []

        def output(name: str, source: str, shape: Sequence[int | str]) -> None:
            self.node("Identity", [source], name)
            graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))

        if not heads:
            last = cfg[len(cfg) - 1 - self._trailing_omitted(cfg)]
            output("output", tensors[last.index], [batch, *last.output_shape])
        elif outputs == "raw":
            for head in heads:
                output(f"head_{head.index}", tensors[head.index], [batch, *head.input_shape])
        else:
            boxes, objectness, scores, n, classes = self.decode(heads, tensors)
            output("boxes", boxes, [batch, n, 4])
            output("objectness", objectness, [batch, n])
            output("scores", scores, [batch, n, classes])
            if outputs == "nms":
                per_class = self.node("Transpose", [scores], perm=[0, 2, 1])
                selected = self.node(
                    "NonMaxSuppression",
                    [boxes, per_class, self.ints([max_detections]),
                     self.const([iou_threshold], "iou"), self.const([score_threshold], "score")],
                    center_point_box=1)
                self.node("Identity", [selected], "selected")
                graph_outputs.append(helper.make_tensor_value_info("selected", TensorProto.INT64,
                                                                   ["selected", 3]))
        if intermediates:
            for index, tensor in tensors.items():
                shape = cfg[index].output_shape
                output(f"layer_{index}", tensor, [batch, *shape])

        graph = helper.make_graph(
            self.nodes, "darknet",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, c, h, w])],
            graph_outputs)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)],
                                  producer_name="yolo_io")
        model.ir_version = min(model.ir_version, 8 if self.opset < 19 else 9)
        onnx.helper.set_model_props(model, self.metadata(heads))
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

    def _trailing_omitted(self, cfg: Any) -> int:
        n = 0
        for layer in reversed(list(cfg)):
            if layer.index not in self.omitted:
                break
            n += 1
        return n

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

    # -- layers --------------------------------------------------------------

    def layer(self, layer: CfgLayer, x: str, tensors: dict[int, str],
              fused: Pair | None) -> str:
        """The ONNX nodes of ``layer`` (its emitter in EMIT_BY_KIND)."""
        emit = EMIT_BY_KIND[layer.type]
        if isinstance(emit, Refused):
            raise self.fail(layer, emit.reason)
        return emit(self, layer, x, tensors, fused, f"t{layer.index}_{layer.type}")

    def emit_convolutional(self, layer: CfgLayer, x: str, tensors: dict[int, str],
                           fused: Pair | None, out: str) -> str:
        a = layer.attrs
        assert isinstance(a, A.ConvolutionalAttrs) and fused is not None
        if a.binary or a.xnor:
            raise self.fail(layer, "binary (XNOR) convolution")
        if a.antialiasing:
            raise self.fail(layer, f"antialiasing={a.antialiasing}")
        if a.size == 1 and a.stride_x == 1 and a.dilation == 1 and (a.stride_y != 1 or a.pad):
            # forward_convolutional_layer's 1x1 path (l.size == 1 &&
            # l.stride == 1, l.stride being stride_x) multiplies the
            # unpadded input directly: darknet ignores stride_y and the
            # padding here, and reads past its input.
            raise self.fail(layer, f"a 1x1 conv with stride_y={a.stride_y} and padding "
                                   f"{a.pad}, which darknet computes wrongly")
        wname = self.weight(fused[0], f"w{layer.index}")
        bname = self.weight(fused[1], f"b{layer.index}")
        # forward_convolutional_layer pads by pad * dilation (im2col_cpu_ext).
        y = self.node("Conv", [x, wname, bname], hint=f"conv{layer.index}",
                      kernel_shape=[a.size, a.size], strides=[a.stride_y, a.stride_x],
                      pads=[a.pad * a.dilation] * 4, dilations=[a.dilation] * 2,
                      group=a.groups)
        self.check_shape(layer, self.conv_shape(layer, a))
        return self.activation(layer, a.activation, y, out, explicit=True)

    def emit_connected(self, layer: CfgLayer, x: str, tensors: dict[int, str],
                       fused: Pair | None, out: str) -> str:
        a = layer.attrs
        assert isinstance(a, A.ConnectedAttrs) and fused is not None
        weights, bias = fused
        flat = self.node("Reshape", [x, self.ints([0, -1, 1, 1])])
        wname = self.weight(weights.reshape(*weights.shape, 1, 1), f"w{layer.index}")
        bname = self.weight(bias, f"b{layer.index}")
        y = self.node("Conv", [flat, wname, bname], hint=f"fc{layer.index}", kernel_shape=[1, 1])
        return self.activation(layer, a.activation, y, out)

    def emit_local_layer(self, layer: CfgLayer, x: str, tensors: dict[int, str],
                         fused: Pair | None, out: str) -> str:
        a = layer.attrs
        assert isinstance(a, A.LocalAttrs)
        return self.local(layer, a, x, out)

    def emit_maxpool(self, layer: CfgLayer, x: str, tensors: dict[int, str],
                     fused: Pair | None, out: str) -> str:
        a = layer.attrs
        assert isinstance(a, A.PoolAttrs)
        if a.maxpool_depth:
            raise self.fail(layer, "maxpool_depth=1")
        if a.antialiasing:
            raise self.fail(layer, f"antialiasing={a.antialiasing}")
        return self.pool(layer, a, x, out, "MaxPool")

    def emit_local_avgpool(self, layer: CfgLayer, x: str, tensors: dict[int, str],
                           fused: Pair | None, out: str) -> str:
        a = layer.attrs
        assert isinstance(a, A.PoolAttrs)
        return self.pool(layer, a, x, out, "AveragePool")

    def emit_avgpool(self, layer: CfgLayer, x: str, tensors: dict[int, str],
                     fused: Pair | None, out: str) -> str:
        return self.node("GlobalAveragePool", [x], out)

    def emit_identity(self, layer: CfgLayer, x: str, tensors: dict[int, str],
                      fused: Pair | None, out: str) -> str:
        # dropout: darknet's forward at inference copies its input
        # (dropout_layer.c: only `state.train` scales and drops); a head's
        # output here is its raw input (decoding is added separately).
        return self.node("Identity", [x], out)

    def emit_route(self, layer: CfgLayer, x: str, tensors: dict[int, str],
                   fused: Pair | None, out: str) -> str:
        a = layer.attrs
        assert isinstance(a, A.RouteAttrs)
        parts = []
        for src, (begin, end), shape in zip(a.input_layers, a.channel_slices,
                                            layer.input_shapes, strict=True):
            t = tensors[src]
            if (begin, end) != (0, shape[0]):
                t = self.node("Slice", [t, self.ints([begin]), self.ints([end]),
                                        self.ints([1])])
            parts.append(t)
        if len(parts) == 1:
            return self.node("Identity", parts, out)
        return self.node("Concat", parts, out, axis=1)

    def emit_shortcut(self, layer: CfgLayer, x: str, tensors: dict[int, str],
                      fused: Pair | None, out: str) -> str:
        a = layer.attrs
        assert isinstance(a, A.ShortcutAttrs)
        scales = self.shortcut_weights(layer, a)
        y = x if scales is None else self.node("Mul", [x, scales[0]])
        for k, (src, shape) in enumerate(zip(a.input_layers, layer.input_shapes[1:],
                                             strict=True), 1):
            if tuple(shape[1:]) != tuple(layer.input_shape[1:]):
                # parse_shortcut (parser.c) asserts equal width and height.
                raise self.fail(layer, f"a shortcut from layer {src} of {tuple(shape)} onto "
                                       f"{tuple(layer.input_shape)}: darknet refuses inputs "
                                       "of different width or height")
            added = self.flat_fit(tensors[src], shape, layer.input_shape)
            if scales is not None:
                added = self.node("Mul", [added, scales[k]])
            y = self.node("Add", [y, added])
        return self.activation(layer, a.activation, y, out, explicit=True)

    def emit_upsample(self, layer: CfgLayer, x: str, tensors: dict[int, str],
                      fused: Pair | None, out: str) -> str:
        a = layer.attrs
        assert isinstance(a, A.UpsampleAttrs)
        if a.reverse:
            raise self.fail(layer, "upsample with a negative stride (downsampling)")
        # upsample_cpu (blas.c): out[j][i] = scale * in[j / stride][i / stride].
        y = self.node("Resize", [x, "", self.const([1, 1, a.stride, a.stride], "scales")],
                      mode="nearest", coordinate_transformation_mode="asymmetric",
                      nearest_mode="floor")
        if a.scale != 1:
            y = self.node("Mul", [y, self.const(np.float32(a.scale), "scale")])
        return self.node("Identity", [y], out)

    def emit_reorg_layer(self, layer: CfgLayer, x: str, tensors: dict[int, str],
                         fused: Pair | None, out: str) -> str:
        return self.reorg(layer, x, out, three_d=False)

    def emit_reorg3d(self, layer: CfgLayer, x: str, tensors: dict[int, str],
                     fused: Pair | None, out: str) -> str:
        return self.reorg(layer, x, out, three_d=True)

    def emit_scale_channels(self, layer: CfgLayer, x: str, tensors: dict[int, str],
                            fused: Pair | None, out: str) -> str:
        a = layer.attrs
        assert isinstance(a, A.ScaleChannelsAttrs)
        # forward_scale_channels_layer: out = from * input, the input
        # (N, C, 1, 1) or, with scale_wh, (N, 1, H, W), broadcast.
        y = self.node("Mul", [tensors[a.from_layer], x])
        return self.activation(layer, a.activation, y, out)

    def emit_sam(self, layer: CfgLayer, x: str, tensors: dict[int, str],
                 fused: Pair | None, out: str) -> str:
        a = layer.attrs
        assert isinstance(a, A.SamAttrs)
        y = self.node("Mul", [x, tensors[a.from_layer]])  # forward_sam_layer
        return self.activation(layer, a.activation, y, out)

    def emit_softmax_layer(self, layer: CfgLayer, x: str, tensors: dict[int, str],
                           fused: Pair | None, out: str) -> str:
        a = layer.attrs
        assert isinstance(a, A.SoftmaxAttrs)
        return self.softmax(layer, a, x, out)

    def emit_batchnorm_layer(self, layer: CfgLayer, x: str, tensors: dict[int, str],
                             fused: Pair | None, out: str) -> str:
        return self.batchnorm(layer, x, out)

    def emit_activation_layer(self, layer: CfgLayer, x: str, tensors: dict[int, str],
                              fused: Pair | None, out: str) -> str:
        a = layer.attrs
        assert isinstance(a, A.ActivationAttrs)
        return self.activation(layer, a.activation, x, out)

    def local(self, layer: CfgLayer, a: A.LocalAttrs, x: str, out: str) -> str:
        # forward_local_layer (local_layer.c): im2col with the cfg's `pad`
        # value as the padding in pixels, then per output position j its own
        # (n, c*size*size) matrix, weights[j]; biases per output element.
        c, h, w = layer.input_shape
        k = a.size
        oh, ow = (h + 2 * a.pad - k) // a.stride + 1, (w + 2 * a.pad - k) // a.stride + 1
        self.check_shape(layer, (a.filters, oh, ow))
        eye = np.zeros((c * k * k, c, k, k), np.float32)
        for ci in range(c):
            for dy in range(k):
                for dx in range(k):
                    eye[(ci * k + dy) * k + dx, ci, dy, dx] = 1
        p = self.params(layer.index)
        dt = np.float16 if self.dtype == "float16" else np.float32
        patches = self.node("Conv", [x, self.const(eye, "im2col")], kernel_shape=[k, k],
                            strides=[a.stride, a.stride], pads=[a.pad] * 4)
        cols = self.node("Reshape", [patches, self.ints([0, c * k * k, oh * ow])])
        weights = self.weight(np.asarray(p["weights"]).astype(dt).reshape(oh * ow, a.filters,
                                                                         c * k * k),
                              f"w{layer.index}")
        y = self.node("Einsum", [cols, weights], equation="bkl,lfk->bfl")
        y = self.node("Reshape", [y, self.ints([0, a.filters, oh, ow])])
        bias = self.weight(np.asarray(p["biases"]).astype(dt).reshape(1, a.filters, oh, ow),
                           f"b{layer.index}")
        return self.activation(layer, a.activation, self.node("Add", [y, bias]), out)

    def conv_shape(self, layer: CfgLayer, a: A.ConvolutionalAttrs) -> tuple[int, int, int]:
        _, h, w = layer.input_shape
        k = a.dilation * (a.size - 1) + 1
        pad = a.pad * a.dilation
        return (a.filters, (h + 2 * pad - k) // a.stride_y + 1, (w + 2 * pad - k) // a.stride_x + 1)

    def check_shape(self, layer: CfgLayer, shape: tuple[int, int, int]) -> None:
        if tuple(shape) != tuple(layer.output_shape):
            raise self.fail(layer, f"an output of {tuple(layer.output_shape)} where the ONNX "
                                   f"operator gives {tuple(shape)}")

    def shortcut_weights(self, layer: CfgLayer, a: A.ShortcutAttrs) -> list[str] | None:
        """The weight of each input of a weighted shortcut, normalized as
        shortcut_multilayer_cpu (blas.c) normalizes them: per input, one
        value (per_feature) or one per channel (per_channel); relu: relu(w) /
        (1e-4 + sum of relu(w)); softmax: exp(w - max) / (1e-4 + sum of
        exp(w - max)); none: w as stored. Computed here in double precision."""
        if a.weights_type == "none":
            return None
        n = len(a.input_layers) + 1
        w = np.asarray(self.params(layer.index)["weights"], np.float64).reshape(n, -1)
        if a.weights_normalization == "relu":
            v = np.maximum(w, 0)
            w = v / (0.0001 + v.sum(axis=0))
        elif a.weights_normalization == "softmax":
            v = np.exp(w - w.max(axis=0))
            w = v / (0.0001 + v.sum(axis=0))
        dt = np.float16 if self.dtype == "float16" else np.float32
        return [self.weight(row.astype(dt).reshape(1, -1, 1, 1), f"shortcut_w{layer.index}")
                for row in w]

    def flat_fit(self, t: str, shape: Sequence[int], target: Sequence[int]) -> str:
        """``t`` (shape ``shape``) added to a tensor of ``target`` as darknet's
        shortcut_multilayer_cpu (blas.c) adds it: element by element in flat
        order, over the first min(sizes) elements (fewer channels are zero
        padded, more are cut)."""
        if tuple(shape) == tuple(target):
            return t
        n, m = int(np.prod(shape)), int(np.prod(target))
        flat = self.node("Reshape", [t, self.ints([0, -1])])
        if n < m:
            flat = self.node("Pad", [flat, self.ints([0, 0, 0, m - n])], mode="constant")
        else:
            flat = self.node("Slice", [flat, self.ints([0]), self.ints([m]), self.ints([1])])
        return self.node("Reshape", [flat, self.ints([0, *target])])

    def pool(self, layer: CfgLayer, a: A.PoolAttrs, x: str, out: str, op: str) -> str:
        # forward_maxpool_layer / forward_local_avgpool_layer (maxpool_layer.c):
        # window origin -pad/2, cells outside the input ignored (max) or not
        # counted (average).
        c, h, w = layer.input_shape
        _, oh, ow = layer.output_shape
        before = a.pad_before
        after_h = max(0, (oh - 1) * a.stride_y + a.size - h - before)
        after_w = max(0, (ow - 1) * a.stride_x + a.size - w - before)
        pads = [before, before, after_h, after_w]
        attrs: dict[str, Any] = {"kernel_shape": [a.size, a.size],
                                 "strides": [a.stride_y, a.stride_x]}
        if max(pads) < a.size:
            attrs["pads"] = pads
        elif op == "MaxPool":
            # ONNX pads must be smaller than the kernel: pad explicitly with
            # darknet's -FLT_MAX (a window wholly outside gives -FLT_MAX too).
            x = self.node("Pad", [x, self.ints([0, 0, before, before, 0, 0, after_h, after_w]),
                                  self.const(np.float32(-np.finfo(np.float32).max), "lowest")])
        else:
            raise self.fail(layer, f"padding={a.pad} with size={a.size}: an average over "
                                   "windows that can lie wholly outside the input")
        if op == "AveragePool":
            attrs["count_include_pad"] = 0
        y = self.node(op, [x], out, **attrs)
        got = ((h + before + after_h - a.size) // a.stride_y + 1,
               (w + before + after_w - a.size) // a.stride_x + 1)
        self.check_shape(layer, (c, *got))
        return y

    def reorg(self, layer: CfgLayer, x: str, out: str, *, three_d: bool) -> str:
        a = layer.attrs
        assert isinstance(a, A.ReorgAttrs)
        if a.reverse:
            raise self.fail(layer, "reverse=1")
        # reorg_cpu (blas.c) with forward=0: out[b, (dy*s + dx)*C' + c, j, i] =
        # x'[b, c, j*s + dy, i*s + dx], where the (w, h, c) it is given are the
        # output's for [reorg3d] (so x' is the input: space to depth) and the
        # input's for the old [reorg] (so x' is the input's memory read as
        # (c/s^2, h*s, w*s): darknet's famous reinterpretation, kept exactly).
        s = a.stride
        oc, oh, ow = layer.output_shape
        if three_d:
            cw, ch, cc = ow, oh, oc
        else:
            cc, ch, cw = layer.input_shape
        if cc % (s * s):
            raise self.fail(layer, f"{cc} channels, not a multiple of stride^2 = {s * s}")
        if three_d and (layer.input_shape[1] % s or layer.input_shape[2] % s):
            # reorg_cpu then reads the input with the output's pitch: not a
            # rearrangement of whole cells.
            raise self.fail(layer, f"an input of {tuple(layer.input_shape)} that stride={s} "
                                   "does not divide")
        six = self.node("Reshape", [x, self.ints([0, cc // (s * s), ch, s, cw, s])])
        moved = self.node("Transpose", [six], perm=[0, 3, 5, 1, 2, 4])
        return self.node("Reshape", [moved, self.ints([0, oc, oh, ow])], out)

    def softmax(self, layer: CfgLayer, a: A.SoftmaxAttrs, x: str, out: str) -> str:
        # softmax_cpu (blas.c): over `groups` contiguous groups of the flat
        # input, each divided by the temperature first.
        if a.spatial:
            raise self.fail(layer, "spatial softmax")
        if a.tree:
            raise self.fail(layer, "a softmax tree (tree=, YOLO9000)")
        inputs = int(np.prod(layer.input_shape))
        if inputs % a.groups:
            raise self.fail(layer, f"groups={a.groups}, which does not divide its {inputs} inputs")
        y = x
        if a.temperature != 1:
            y = self.node("Div", [y, self.const(np.float32(a.temperature), "temperature")])
        grouped = self.node("Reshape", [y, self.ints([0, a.groups, -1])])
        soft = self.node("Softmax", [grouped], axis=2)
        return self.node("Reshape", [soft, self.ints([0, *layer.output_shape])], out)

    def batchnorm(self, layer: CfgLayer, x: str, out: str) -> str:
        # forward_batchnorm_layer at inference: normalize_cpu (x - mean) /
        # sqrt(var + .00001f), then scale_bias and add_bias; folded here in
        # double precision into y = x * k + m.
        p = self.params(layer.index)
        var = np.asarray(p["rolling_variance"], np.float64)
        k = np.asarray(p["scales"], np.float64) / np.sqrt(var + BN_EPSILON)
        m = np.asarray(p["biases"], np.float64) - np.asarray(p["rolling_mean"], np.float64) * k
        dt = np.float16 if self.dtype == "float16" else np.float32
        kk = self.weight(k.astype(dt).reshape(1, -1, 1, 1), f"bn_k{layer.index}")
        mm = self.weight(m.astype(dt).reshape(1, -1, 1, 1), f"bn_m{layer.index}")
        return self.node("Add", [self.node("Mul", [x, kk]), mm], out)

    def activation(self, layer: CfgLayer, name: str, x: str, out: str, *,
                   explicit: bool = False) -> str:
        """darknet's activate_array (activations.c) for ``name``; ``explicit``:
        the layer's forward calls swish, mish and hard_mish itself, as only
        the convolutional and shortcut layers do."""
        if name in ("swish", "mish", "hard_mish") and not explicit:
            # In any other layer darknet's activate() has no case for them and
            # outputs 0, which no one means.
            raise self.fail(layer, f"activation={name} in a {layer.section} layer (darknet "
                                   "outputs 0 there: activate() has no case for it)")
        if name == "linear":
            return self.node("Identity", [x], out)
        if name in ("leaky", "revleaky"):  # activate(): REVLEAKY falls through to LEAKY
            return self.node("LeakyRelu", [x], out, alpha=0.1)
        if name == "relie":
            return self.node("LeakyRelu", [x], out, alpha=0.01)
        if name == "ramp":  # x*(x>0) + .1f*x
            return self.node("Add", [self.node("Relu", [x]),
                                     self.node("Mul", [x, self.const(np.float32(0.1), "c")])], out)
        if name == "loggy":  # 2/(1+exp(-x)) - 1
            two_sig = self.node("Mul", [self.node("Sigmoid", [x]), self.const(np.float32(2), "c")])
            return self.node("Sub", [two_sig, self.const(np.float32(1), "c")], out)
        if name == "hardtan":
            return self.node("Clip", [x, self.const(np.float32(-1), "c"),
                                      self.const(np.float32(1), "c")], out)
        if name == "gelu":  # 0.5x(1 + tanh(0.797885x + 0.035677x^3))
            cube = self.node("Mul", [self.node("Mul", [x, x]), x])
            inner = self.node("Add", [self.node("Mul", [x, self.const(np.float32(0.797885), "c")]),
                                      self.node("Mul", [cube, self.const(np.float32(0.035677),
                                                                         "c")])])
            half = self.node("Mul", [x, self.const(np.float32(0.5), "c")])
            return self.node("Add", [half, self.node("Mul", [half, self.node("Tanh", [inner])])],
                             out)
        if name in ("plse", "lhtan"):
            # plse: x < -4: .01(x+4); x > 4: .01(x-4)+1; else .125x+.5.
            # lhtan: x < 0: .001x; x > 1: .001(x-1)+1; else x.
            lo, hi, slope, mid_k, mid_b = ((-4, 4, 0.01, 0.125, 0.5) if name == "plse" else
                                           (0, 1, 0.001, 1.0, 0.0))
            f = np.float32
            low = self.node("Mul", [self.node("Sub", [x, self.const(f(lo), "c")]),
                                    self.const(f(slope), "c")])
            high = self.node("Add", [self.node("Mul", [self.node("Sub", [x, self.const(f(hi), "c")]),
                                                       self.const(f(slope), "c")]),
                                     self.const(f(1), "c")])
            middle = self.node("Add", [self.node("Mul", [x, self.const(f(mid_k), "c")]),
                                       self.const(f(mid_b), "c")])
            upper = self.node("Where", [self.node("Greater", [x, self.const(f(hi), "c")]), high,
                                        middle])
            return self.node("Where", [self.node("Less", [x, self.const(f(lo), "c")]), low, upper],
                             out)
        if name == "hard_mish":  # x > 0: x; x > -2: x*x/2 + x; else 0
            f = np.float32
            quad = self.node("Add", [self.node("Div", [self.node("Mul", [x, x]),
                                                       self.const(f(2), "c")]), x])
            neg = self.node("Where", [self.node("Greater", [x, self.const(f(-2), "c")]), quad,
                                      self.const(f(0), "c")])
            return self.node("Where", [self.node("Greater", [x, self.const(f(0), "c")]), x, neg],
                             out)
        if name == "relu":
            return self.node("Relu", [x], out)
        if name == "relu6":
            # As darknet's GPU kernel computes it. Its CPU activate() has no
            # relu6 case and outputs 0.
            return self.node("Clip", [x, self.const(np.float32(0), "zero"),
                                      self.const(np.float32(6), "six")], out)
        if name == "logistic":
            return self.node("Sigmoid", [x], out)
        if name == "tanh":
            return self.node("Tanh", [x], out)
        if name == "elu":
            return self.node("Elu", [x], out, alpha=1.0)
        if name == "selu":
            return self.node("Selu", [x], out, alpha=1.6732, gamma=1.0507)
        if name == "swish":
            return self.node("Mul", [x, self.node("Sigmoid", [x])], out)
        if name == "mish":
            if self.native_mish:
                return self.node("Mish", [x], out)
            # x * tanh(softplus(x)); darknet's softplus switches to x above 20
            # and exp(x) below -20, which float32 cannot tell from log1p(exp(x)).
            soft = self.node("Softplus", [x])
            return self.node("Mul", [x, self.node("Tanh", [soft])], out)
        raise self.fail(layer, f"activation={name}")

    # -- heads ---------------------------------------------------------------

    def decode(self, heads: list[CfgLayer], tensors: dict[int, str]
               ) -> tuple[str, str, str, int, int]:
        parts: list[tuple[str, str, str]] = []
        total = 0
        classes = {h.attrs.classes for h in heads if hasattr(h.attrs, "classes")}
        if len(classes) != 1:
            raise ConversionError(f"heads with different class counts {sorted(classes)} cannot be "
                                  "decoded into one scores tensor; export outputs='raw'")
        n_classes = classes.pop()
        _, net_h, net_w = self.net.config.input_shape
        for head in heads:
            a = head.attrs
            if isinstance(a, A.GaussianYoloAttrs):
                parts.append(self.decode_gaussian(head, a, tensors[head.index], net_w, net_h))
            elif isinstance(a, A.YoloAttrs):
                parts.append(self.decode_yolo(head, a, tensors[head.index], net_w, net_h))
            elif isinstance(a, A.RegionAttrs):
                parts.append(self.decode_region(head, a, tensors[head.index]))
            elif isinstance(a, A.DetectionAttrs):
                parts.append(self.decode_detection(head, a, tensors[head.index]))
                total += a.num * a.side * a.side
                continue
            else:
                raise self.fail(head, f"decoding a {head.section} head (export outputs='raw')")
            _, hh, ww = head.input_shape
            total += len(a.anchors) * hh * ww
        if len(parts) == 1:
            return (*parts[0], total, n_classes)
        boxes = self.node("Concat", [p[0] for p in parts], axis=1)
        objectness = self.node("Concat", [p[1] for p in parts], axis=1)
        scores = self.node("Concat", [p[2] for p in parts], axis=1)
        return boxes, objectness, scores, total, n_classes

    def split_head(self, x: str, anchors: int, entries: int, hh: int, ww: int
                   ) -> tuple[str, str, str, str, str]:
        """(tx_ty, tw_th, objectness, classes, grid) of a head's (N, A*E, H, W)
        input as (N, A, E', H*W) pieces."""
        five = self.node("Reshape", [x, self.ints([0, anchors, entries, hh * ww])])

        def piece(begin: int, end: int) -> str:
            return self.node("Slice", [five, self.ints([begin]), self.ints([end]), self.ints([2])])

        grid_x, grid_y = np.meshgrid(np.arange(ww, dtype=np.float32),
                                     np.arange(hh, dtype=np.float32))
        grid = self.const(np.stack([grid_x.ravel(), grid_y.ravel()]).reshape(1, 1, 2, hh * ww),
                          "grid")
        return piece(0, 2), piece(2, 4), piece(4, 5), piece(5, entries), grid

    def finish_head(self, xy: str, wh: str, obj: str, cls: str
                    ) -> tuple[str, str, str]:
        """(N, A, 2, HW) x 2, (N, A, 1, HW), (N, A, C, HW) -> boxes (N, A*HW,
        4), objectness (N, A*HW), scores (N, A*HW, C) in darknet's entry order."""
        box = self.node("Concat", [xy, wh], axis=2)                      # (N, A, 4, HW)
        boxes = self.node("Reshape", [self.node("Transpose", [box], perm=[0, 1, 3, 2]),
                                      self.ints([0, -1, 4])])
        objectness = self.node("Reshape", [obj, self.ints([0, -1])])
        scores = self.node("Mul", [cls, obj])                            # (N, A, C, HW)
        n_classes_last = self.node("Transpose", [scores], perm=[0, 1, 3, 2])
        scores = self.node("Reshape", [n_classes_last, self.ints([0, -1, self._classes])])
        return boxes, objectness, scores

    def decode_yolo(self, head: CfgLayer, a: A.YoloAttrs, x: str, net_w: int, net_h: int
                    ) -> tuple[str, str, str]:
        # forward_yolo_layer (yolo_layer.c): logistic on x, y, objectness and
        # classes unless new_coords; then x, y <- x*scale_x_y - (scale_x_y-1)/2.
        # get_yolo_box: bx = (col + x) / w, by = (row + y) / h, bw = exp(tw) *
        # anchor_w / net_w (new_coords: tw*tw*4 * anchor_w / net_w).
        # get_yolo_detections: score = objectness * class probability.
        _, hh, ww = head.input_shape
        anchors = len(a.anchors)
        entries = 5 + a.classes
        if head.input_shape[0] != anchors * entries:
            raise self.fail(head, f"an input of {head.input_shape[0]} channels, not "
                                  f"{anchors} anchors x {entries}")
        self._classes = a.classes
        txy, twh, obj, cls, grid = self.split_head(x, anchors, entries, hh, ww)
        if not a.new_coords:
            txy = self.node("Sigmoid", [txy])
            obj = self.node("Sigmoid", [obj])
            cls = self.node("Sigmoid", [cls])
        s = np.float32(a.scale_x_y)
        if s != 1:
            txy = self.node("Sub", [self.node("Mul", [txy, self.const(s, "scale_x_y")]),
                                    self.const(np.float32(0.5) * (s - np.float32(1)), "shift")])
        size = self.const(np.array([ww, hh], np.float32).reshape(1, 1, 2, 1), "grid_size")
        xy = self.node("Div", [self.node("Add", [txy, grid]), size])
        anchor = self.const(np.array([[p[0] / net_w, p[1] / net_h] for p in a.anchors],
                                     np.float32).reshape(1, anchors, 2, 1), "anchors")
        if a.new_coords:
            wh = self.node("Mul", [self.node("Mul", [twh, twh]),
                                   self.node("Mul", [anchor, self.const(np.float32(4), "four")])])
        else:
            wh = self.node("Mul", [self.node("Exp", [twh]), anchor])
        return self.finish_head(xy, wh, obj, cls)

    def decode_gaussian(self, head: CfgLayer, a: A.GaussianYoloAttrs, x: str, net_w: int,
                        net_h: int) -> tuple[str, str, str]:
        # forward_gaussian_yolo_layer (gaussian_yolo_layer.c): per anchor 9 +
        # classes entries: x, sigma_x, y, sigma_y, w, sigma_w, h, sigma_h,
        # objectness, classes. Logistic on all but w and h; scale_x_y on the
        # means x and y. get_gaussian_yolo_box: as [yolo], then yolo_point
        # moves a corner to the centre. get_gaussian_yolo_detections: score =
        # objectness * class * (1 - mean of the four sigmas).
        _, hh, ww = head.input_shape
        anchors = len(a.anchors)
        entries = 9 + a.classes
        if head.input_shape[0] != anchors * entries:
            raise self.fail(head, f"an input of {head.input_shape[0]} channels, not "
                                  f"{anchors} anchors x {entries}")
        self._classes = a.classes
        five = self.node("Reshape", [x, self.ints([0, anchors, entries, hh * ww])])
        act = self.node("Sigmoid", [five])

        def piece(t: str, begin: int, end: int) -> str:
            return self.node("Slice", [t, self.ints([begin]), self.ints([end]), self.ints([2])])

        means = self.node("Concat", [piece(act, 0, 1), piece(act, 2, 3)], axis=2)
        sigmas = self.node("Concat", [piece(act, k, k + 1) for k in (1, 3, 5, 7)], axis=2)
        twh = self.node("Concat", [piece(five, 4, 5), piece(five, 6, 7)], axis=2)
        obj, cls = piece(act, 8, 9), piece(act, 9, entries)
        s = np.float32(a.scale_x_y)
        if s != 1:
            means = self.node("Sub", [self.node("Mul", [means, self.const(s, "scale_x_y")]),
                                      self.const(np.float32(0.5) * (s - np.float32(1)), "shift")])
        grid_x, grid_y = np.meshgrid(np.arange(ww, dtype=np.float32),
                                     np.arange(hh, dtype=np.float32))
        grid = self.const(np.stack([grid_x.ravel(), grid_y.ravel()]).reshape(1, 1, 2, hh * ww),
                          "grid")
        size = self.const(np.array([ww, hh], np.float32).reshape(1, 1, 2, 1), "grid_size")
        xy = self.node("Div", [self.node("Add", [means, grid]), size])
        anchor = self.const(np.array([[p[0] / net_w, p[1] / net_h] for p in a.anchors],
                                     np.float32).reshape(1, anchors, 2, 1), "anchors")
        wh = self.node("Mul", [self.node("Exp", [twh]), anchor])
        if a.yolo_point in ("left_top", "right_bottom"):
            half = self.node("Div", [wh, self.const(np.float32(2), "two")])
            xy = self.node("Add" if a.yolo_point == "left_top" else "Sub", [xy, half])
        elif a.yolo_point != "center":
            raise self.fail(head, f"yolo_point={a.yolo_point}")
        certainty = self.node("Sub", [self.const(np.float32(1), "one"),
                                      self.node("ReduceMean", [sigmas], axes=[2], keepdims=1)
                                      if self.opset < 18 else
                                      self.node("ReduceMean", [sigmas, self.ints([2])],
                                                keepdims=1)])
        boxes, objectness, scores = self.finish_head(xy, wh, obj,
                                                     self.node("Mul", [cls, certainty]))
        return boxes, objectness, scores

    def decode_detection(self, head: CfgLayer, a: A.DetectionAttrs, x: str
                         ) -> tuple[str, str, str]:
        # forward_detection_layer / get_detection_detections (detection_layer.c):
        # a flat input of side*side*classes class scores (softmax per cell if
        # set), side*side*num confidences (no activation), side*side*num*4
        # coordinates, all cell-major; bx = (x + col) / side, bw = w^2 with
        # sqrt=1; score = confidence * class. Entries here: anchor, then cell.
        s2, num, c = a.side * a.side, a.num, a.classes
        if a.coords != 4 or int(np.prod(head.input_shape)) != s2 * (5 * num + c):
            raise self.fail(head, f"a detection head with coords={a.coords} and "
                                  f"{int(np.prod(head.input_shape))} inputs")
        self._classes = c
        flat = self.node("Reshape", [x, self.ints([0, -1])])

        def part(begin: int, end: int, shape: Sequence[int]) -> str:
            piece = self.node("Slice", [flat, self.ints([begin]), self.ints([end]),
                                        self.ints([1])])
            return self.node("Reshape", [piece, self.ints([0, *shape])])

        cls = part(0, s2 * c, [s2, c])
        if a.softmax:
            cls = self.node("Softmax", [cls], axis=2)
        conf = part(s2 * c, s2 * (c + num), [s2, num])
        box = part(s2 * (c + num), s2 * (c + 5 * num), [s2, num, 4])
        cells = np.arange(s2)
        grid = np.zeros((1, s2, 1, 4), np.float32)
        grid[0, :, 0, 0], grid[0, :, 0, 1] = cells % a.side, cells // a.side
        xy = self.node("Slice", [box, self.ints([0]), self.ints([2]), self.ints([3])])
        wh = self.node("Slice", [box, self.ints([2]), self.ints([4]), self.ints([3])])
        xy = self.node("Div", [self.node("Add", [xy, self.const(grid[..., :2], "cells")]),
                               self.const(np.float32(a.side), "side")])
        if a.sqrt:
            wh = self.node("Mul", [wh, wh])
        boxes = self.node("Transpose", [self.node("Concat", [xy, wh], axis=3)],
                          perm=[0, 2, 1, 3])                              # (N, num, S2, 4)
        boxes = self.node("Reshape", [boxes, self.ints([0, -1, 4])])
        conf_t = self.node("Transpose", [conf], perm=[0, 2, 1])           # (N, num, S2)
        objectness = self.node("Reshape", [conf_t, self.ints([0, -1])])
        scores = self.node("Mul", [self.node("Unsqueeze", [conf_t, self.ints([3])]),
                                   self.node("Unsqueeze", [cls, self.ints([1])])])
        scores = self.node("Reshape", [scores, self.ints([0, -1, c])])
        return boxes, objectness, scores

    def decode_region(self, head: CfgLayer, a: A.RegionAttrs, x: str) -> tuple[str, str, str]:
        # forward_region_layer (region_layer.c): logistic on x, y and the
        # objectness, softmax over the classes; get_region_box: bx = (col +
        # x) / w, bw = exp(tw) * anchor_w / w (anchors in grid cells);
        # get_region_detections: score = objectness * class probability.
        _, hh, ww = head.input_shape
        anchors = len(a.anchors)
        entries = a.coords + 1 + a.classes
        if a.coords != 4 or head.input_shape[0] != anchors * entries:
            raise self.fail(head, f"a region head with coords={a.coords} and "
                                  f"{head.input_shape[0]} input channels")
        if not a.softmax:
            raise self.fail(head, "decoding a [region] head without softmax")
        # get_region_boxes: a softmax tree (hierarchy_predictions), or
        # classfix=-1 zeroing a class below 0.5 objectness.
        if a.tree:
            raise self.fail(head, f"decoding a [region] head with tree={head.options['tree']}")
        if a.classfix:
            raise self.fail(head, f"decoding a [region] head with classfix={a.classfix}")
        self._classes = a.classes
        txy, twh, obj, cls, grid = self.split_head(x, anchors, entries, hh, ww)
        txy = self.node("Sigmoid", [txy])
        obj = self.node("Sigmoid", [obj])
        cls = self.node("Softmax", [cls], axis=2)
        size = self.const(np.array([ww, hh], np.float32).reshape(1, 1, 2, 1), "grid_size")
        xy = self.node("Div", [self.node("Add", [txy, grid]), size])
        anchor = self.const(np.array([[p[0] / ww, p[1] / hh] for p in a.anchors],
                                     np.float32).reshape(1, anchors, 2, 1), "anchors")
        wh = self.node("Mul", [self.node("Exp", [twh]), anchor])
        return self.finish_head(xy, wh, obj, cls)

    _classes: int = 0


_RECURRENT = Refused("a recurrent layer (its state carries over from one call to the next)")
Emitter = Callable[[_Builder, CfgLayer, str, dict[int, str], Pair | None, str], str]

#: The ONNX emitter of each layer kind (a method of _Builder), or why the kind
#: cannot be exported; tests/test_kinds.py checks that every kind of the
#: core's table has an entry.
EMIT_BY_KIND: dict[str, Emitter | Refused] = {
    "convolutional": _Builder.emit_convolutional,
    "deconvolutional": Refused("a deconvolutional layer"),
    "connected": _Builder.emit_connected,
    "local": _Builder.emit_local_layer,
    "maxpool": _Builder.emit_maxpool,
    "local_avgpool": _Builder.emit_local_avgpool,
    "avgpool": _Builder.emit_avgpool,
    "route": _Builder.emit_route,
    "shortcut": _Builder.emit_shortcut,
    "scale_channels": _Builder.emit_scale_channels,
    "sam": _Builder.emit_sam,
    "upsample": _Builder.emit_upsample,
    "reorg": _Builder.emit_reorg_layer,
    "reorg3d": _Builder.emit_reorg3d,
    # A head's output here is its raw input (decoding is added separately).
    "yolo": _Builder.emit_identity,
    "Gaussian_yolo": _Builder.emit_identity,
    "region": _Builder.emit_identity,
    "detection": _Builder.emit_identity,
    "rnn": _RECURRENT,
    "lstm": _RECURRENT,
    "gru": _RECURRENT,
    "crnn": _RECURRENT,
    "conv_lstm": _RECURRENT,
    "batchnorm": _Builder.emit_batchnorm_layer,
    # darknet's forward at inference copies its input (dropout_layer.c: only
    # `state.train` scales and drops).
    "dropout": _Builder.emit_identity,
    "softmax": _Builder.emit_softmax_layer,
    "cost": Refused("a training-only layer"),  # left out before it gets here
    "normalization": Refused("a local response normalization layer"),
    "activation": _Builder.emit_activation_layer,
    "contrastive": Refused("a training-only layer"),  # left out before it gets here
    "crop": Refused("a crop layer"),
    "history": Refused("a history layer (its state carries over from one call to the next)"),
    "implicit": Refused("an implicit layer"),
    "iseg": Refused("an iseg layer"),
    "empty": Refused("an empty layer"),
    "logistic": Refused("a logistic layer"),
    "l2norm": Refused("an l2norm layer"),
}

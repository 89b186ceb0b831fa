"""A loaded network: Network, its Layer objects, and load()."""

from __future__ import annotations

import itertools
import operator
import os
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple, final, overload

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

from .. import _core
from .._base.deprecation import keyword_only, renamed
from .._base.errors import (
    CfgError,
    OutputIsInputError,
    SwappedArgumentsError,
    WeightsSizeError,
    YoloIOError,
)
from .._base.paths import PathArg, fs_path, is_path
from .config import (
    CfgLayer,
    Config,
    Shape,
    core_config,
    normalize_index,
    parse,
    parse_bytes,
)
from .fusion import as_bfloat16, bn_for_eps, plain_bits, threads_arg, warn_overflow

__all__ = ["Header", "Layer", "Network", "core_weights", "evict_behind",
           "explain_size_errors_with", "file_kinds", "fused_layers", "layer_fused", "load"]


class Header(NamedTuple):
    """The header of a ``.weights`` file.

    ``size`` is 16 (32-bit ``seen``, versions below 0.2) or 20 bytes;
    ``transpose`` is set by legacy headers (major or minor > 1000), whose
    connected-layer weights are stored transposed (yolo_io's views undo it).
    """

    major: int
    minor: int
    revision: int
    seen: int
    size: int
    transpose: bool



class Layer(CfgLayer):
    """A layer of a loaded Network: the cfg facts plus its data in the file."""

    __slots__ = ("_net", "_walk")

    def __init__(self, net: Network, info: _core.LayerInfo,
                 walk: _core.FusedWalk | None = None) -> None:
        super().__init__(core_config(net.config), info)
        self._net = net
        self._walk = walk  # the lookahead of the walk that made this layer

    @property
    def params(self) -> Mapping[str, npt.NDArray[np.float32]]:
        """The layer's arrays: read-only, zero-copy views into the mapped file.

        Darknet's names and layout; a convolution has ``biases``, (with
        batch_normalize) ``scales``, ``rolling_mean``, ``rolling_variance``, and
        ``weights`` of shape (filters, channels/groups, size, size). A view
        keeps the mapping alive after the Network is closed or dropped; copy it
        (``a.copy()``) to get a writeable array. Empty for layers that store
        nothing and for layers past the end of a partial file. FormatError
        when the file no longer holds the layer's bytes (truncated since it
        was loaded; a view taken before and read then is SIGBUS, see the
        README's *Lifetimes*).
        """
        return MappingProxyType(self._net._live().params(self.index))

    @property
    def offset(self) -> int:
        """Byte offset of this layer's data in the ``.weights`` file."""
        return self._net._live().offset(self.index)

    @property
    def nbytes(self) -> int:
        """Bytes of this layer's data (``4 * param_count``)."""
        return 4 * self._info.nfloats

    @property
    def loaded(self) -> bool:
        """False for a layer beyond the end of a partial file."""
        return self._net._live().loaded(self.index)

    @keyword_only("dtype")
    def fused(
        self, layout: str | None = None, *, dtype: str = "float32", flatten: str = "auto",
        threads: int | None = None,
    ) -> tuple[npt.NDArray[np.generic], npt.NDArray[np.generic]]:
        """(weights, bias) with batch norm folded in, computed in the C++ core.

        For a convolutional or connected layer with ``batch_normalize``, darknet's
        own fusion (``network.c:fuse_conv_batchnorm``, in double precision)::

            w' = w * gamma / sqrt(var + 1e-5)      b' = beta - mean * gamma / sqrt(var + 1e-5)

        Without batch norm: the stored arrays. A conv with ``share_index`` gives
        the arrays of the layer it shares.

        Args:
            layout: convolutional: ``"OIHW"`` (darknet, PyTorch, ONNX; the
                default), ``"HWIO"`` (TF/Keras Conv2D), ``"OHWI"`` (TFLite) or
                ``"HWCM"`` (Keras DepthwiseConv2D, depthwise convs only; the
                same bytes as HWIO). Connected: ``"OI"`` (torch Linear; the
                default) or ``"IO"`` (Keras Dense).
            dtype: ``"float32"``, ``"float16"`` (round to nearest even) or
                ``"bfloat16"`` (returned as ``ml_dtypes.bfloat16`` when that
                package is installed, else as the uint16 bit patterns).
            flatten: for a connected layer whose input is an image (after a
                conv or pool): the order of its input columns. ``"auto"``
                re-orders darknet's CHW flattening to HWC for the ``"IO"``
                layout, because Keras flattens NHWC tensors (keeping CHW there
                is a classic silent bug of hand-written converters); ``"CHW"``
                or ``"HWC"`` force one.
            threads: threads for the weights of a large layer (default: all
                cores), which share its parts of about 256 KiB: the calling
                thread and up to ``threads - 1`` workers of the core's one
                pool (started at the first call, at most one fewer than the
                cores, shared by every call); a small layer is computed on the
                calling thread. The GIL is released.

        Returns:
            Two new, writeable arrays (no further copy), independent of the
            file. Arrays of a megabyte or more are in memory advised for huge
            pages, as NumPy's own large arrays are. In a loop over the network
            (``for layer in net``, :meth:`Network.fusable_layers`) the next
            layers are fused ahead, and the weights of a batch (up to 16
            layers, 32 MiB) share one block of huge pages: keeping one of
            them keeps its block. Biases are arrays of their own.

        Raises:
            ValueError: not a conv/connected layer, an unknown layout or dtype,
                HWCM on a conv that is not depthwise.
            IndexError: the layer is past the end of a partial file.

        Warns:
            PrecisionWarning: values that overflow float16/bfloat16 to inf.

        Example:
            >>> w, b = net[0].fused(layout="HWIO")      # Keras Conv2D kernel, bias
        """
        # stacklevel 4: the caller of the keyword_only wrapper of this method
        return self._fused(layout, dtype, flatten, fuse=True, threads=threads, stacklevel=4)

    def _fused(
        self, layout: str | None, dtype: str, flatten: str, *, fuse: bool,
        threads: int | None = None, stacklevel: int = 3,
    ) -> tuple[npt.NDArray[np.generic], npt.NDArray[np.generic]]:
        live = self._net._live()
        if self._walk is None:
            w, b, overflow = live.fused(self.index, layout, dtype, flatten, fuse,
                                        threads_arg(threads))
        else:
            w, b, overflow = self._walk.fused(live, self.index, layout, dtype, flatten, fuse,
                                              threads_arg(threads))
        warn_overflow(overflow, dtype, self._where(), stacklevel=stacklevel)
        return as_bfloat16(w, dtype), as_bfloat16(b, dtype)

    def _where(self) -> str:
        return f"layer {self.index} ({self.type}, {self._net.config.path} line {self.line})"

    @renamed(eps="bn_eps")
    def bn_params(
        self, layout: str | None = None, *, bn_eps: float = 1e-3
    ) -> dict[str, npt.NDArray[np.float32]]:
        """Unfused weights plus batch-norm arrays for a framework whose BN adds
        its own epsilon (Keras: 1e-3, PyTorch: 1e-5), adjusted so that it
        reproduces darknet's ``gamma * (x - mean) / sqrt(var + 1e-5) + beta``.

        ``rolling_variance`` becomes ``var + 1e-5 - bn_eps``. Where that would be
        negative, the variance is set to 0 and ``scales`` (gamma) is rescaled by
        ``sqrt(bn_eps) / sqrt(var + 1e-5)`` instead, which is still exact, and a
        PrecisionWarning names the channels.

        Returns:
            New float32 arrays: ``weights`` (in ``layout``, as for
            :meth:`fused`), ``biases`` (beta), ``scales``, ``rolling_mean``,
            ``rolling_variance``.

        Raises:
            ValueError: the layer has no batch norm.
        """
        p = self.source_params
        if "scales" not in p:
            raise ValueError(f"layer {self.index} ({self.type}, line {self.line}) has no batch norm")
        w, beta = self._fused(layout, "float32", "auto", fuse=False)
        gamma, var = bn_for_eps(self, p, bn_eps, stacklevel=3)  # above the renamed wrapper
        return {
            "weights": w.astype(np.float32, copy=False),
            "biases": beta.astype(np.float32, copy=False),
            "scales": gamma,
            "rolling_mean": p["rolling_mean"].copy(),
            "rolling_variance": var,
        }

    @property
    def source_params(self) -> Mapping[str, npt.NDArray[np.float32]]:
        """The arrays this layer computes with: its own :attr:`params`, or for
        a convolution with ``share_index`` those of the layer it shares."""
        share = self.share_index
        return self._net[share].params if share is not None else self.params

    def _source_params(self) -> Mapping[str, npt.NDArray[np.float32]]:
        return self.source_params


@final
class Network(Sequence[Layer]):
    """A ``.weights`` file, memory-mapped and checked against its cfg.

    Created by :func:`load`. Only the header has been read; each layer's
    ``params`` are views into the mapping, created when asked for.

    ``close()`` (or leaving a ``with`` block) drops the network's reference to
    the mapping: later calls that need the file raise YoloIOError, while arrays
    already handed out stay valid, because each holds its own reference. The
    file is unmapped when the last of them is gone. (This differs from
    ``mmap.close()``, which refuses while exports exist.)
    """

    __slots__ = ("_config", "_path", "_walks", "_weights")

    def __init__(self, config: Config, weights: _core.Weights) -> None:
        self._config = config
        self._weights: _core.Weights | None = weights
        self._path = weights.path
        # The lookaheads of walks over the layers, stopped by close().
        self._walks: weakref.WeakSet[_core.FusedWalk] = weakref.WeakSet()

    def _new_walk(self) -> _core.FusedWalk | None:
        """A lookahead for a walk over the layers in order (None once closed)."""
        if self._weights is None:
            return None
        walk = _core.FusedWalk(self._weights)
        self._walks.add(walk)
        return walk

    def _live(self) -> _core.Weights:
        if self._weights is None:
            raise YoloIOError(f"network is closed: {self._path}")
        return self._weights

    @property
    def config(self) -> Config:
        """The parsed cfg."""
        return self._config

    @property
    def path(self) -> str:
        """The ``.weights`` file (or the ``.safetensors`` export)."""
        return self._path

    @property
    def header(self) -> Header:
        """The file's header: major, minor, revision, seen, size, transpose."""
        return Header(*self._live().header)

    @property
    def input_shape(self) -> Shape:
        """(C, H, W) from ``[net]``."""
        return self._config.input_shape

    @property
    def partial(self) -> bool:
        """True when the file covers only the first :attr:`covered_layers` layers."""
        return self._live().covered_layers < len(self)

    @property
    def covered_layers(self) -> int:
        """Number of leading layers whose data is in the file."""
        return self._live().covered_layers

    @property
    def raw(self) -> npt.NDArray[np.uint8]:
        """The whole file as a read-only uint8 view (shares memory with every
        ``params`` view). FormatError when the file was truncated since it
        was loaded, as for :attr:`Layer.params`."""
        return self._live().raw

    def fusable_layers(self) -> list[Layer]:
        """The layers whose :meth:`Layer.fused` works: those of a kind that
        stores weights and fuses (``fusion``, from the core's kind table:
        convolutional, connected), present in the file (a partial file holds
        only the first ones). ``fused()`` of any other layer raises. Their
        ``fused()`` calls look ahead as the iterator's do (what is fused ahead,
        up to 32 MiB, is kept until the list is gone or the network closed).

        Example:
            >>> fused = [layer.fused() for layer in net.fusable_layers()]
        """
        core = core_config(self._config)
        walk = self._new_walk()  # stopped when the last of these layers is gone, or by close()
        layers = (Layer(self, core.layer(i), walk) for i in range(len(core)))
        return [layer for layer in layers if layer.fusion is not None and layer.loaded]

    def fused_all(
        self,
        layout: str | None = None,
        *,
        dtype: str = "float32",
        dense_layout: str | None = None,
        flatten: str = "auto",
        threads: int | None = None,
        fuse: bool = True,
    ) -> dict[int, tuple[npt.NDArray[np.generic], npt.NDArray[np.generic]]]:
        """Every convolutional and connected layer's :meth:`Layer.fused` arrays
        at once: one 64-byte-aligned arena, filled in parallel over layers by
        ``threads`` threads (default: all cores; the calling thread and the
        core's pool, as for :meth:`Layer.fused`) with the GIL released.

        Args:
            layout: the convolutions' layout (``"OIHW"``, ``"HWIO"``, ``"OHWI"``);
                None is the convolutions' default, ``"OIHW"``.
            dense_layout: the connected layers' layout; default ``"IO"`` with an
                NHWC conv layout (HWIO, OHWI), else ``"OI"``.
            dtype, flatten: as for :meth:`Layer.fused`.
            fuse: False leaves the batch norms out: the stored weights and
                biases (beta), only transposed and converted.

        Returns:
            ``{layer index: (weights, bias)}``; the arrays are writeable views
            into the arena, which lives as long as any of them.
        """
        return self._fused_layers(layout, dtype=dtype, dense_layout=dense_layout, flatten=flatten,
                                  threads=threads, fuse=fuse, stacklevel=3)

    def _fused_layers(
        self,
        layout: str | None,
        *,
        dtype: str,
        dense_layout: str | None,
        flatten: str = "auto",
        threads: int | None,
        fuse: bool,
        first: int = 0,
        last: int = -1,
        stacklevel: int,
    ) -> dict[int, tuple[npt.NDArray[np.generic], npt.NDArray[np.generic]]]:
        """:meth:`fused_all` of layers ``first..last-1`` (``last`` -1: to the
        end); PrecisionWarnings ``stacklevel`` frames up."""
        arrays, overflow = self._live().fused_all(layout, dense_layout, dtype, flatten,
                                                  threads_arg(threads), fuse, first, last)
        warn_overflow(overflow, dtype, None, stacklevel=stacklevel)
        if dtype == "bfloat16":
            return {i: (as_bfloat16(w, dtype), as_bfloat16(b, dtype)) for i, (w, b) in arrays.items()}
        return arrays

    def state_dict(
        self,
        *,
        fuse: bool = False,
        layout: str | None = None,
        naming: str = "yolo_io",
        dense_layout: str | None = None,
        bn_eps: float | None = None,
        threads: int | None = None,
        dtype: str = "float32",
    ) -> dict[str, npt.NDArray[np.generic]]:
        """The network's arrays under a framework's parameter names, ready for
        ``load_state_dict`` (through :func:`yolo_io.torch.state_dict` for torch).

        Args:
            fuse: fold batch norms into the conv/connected weights (darknet's
                arithmetic, as :meth:`Layer.fused`); the keys are then those of
                a model without batch norm (``"ultralytics"``: of a model after
                its ``fuse()``).
            layout: the convolutions' layout; torch wants ``"OIHW"``, the
                default (None).
            naming: ``"yolo_io"`` (ours: ``layers.{i}.conv.weight``,
                ``layers.{i}.bn.running_var``, ...), ``"darknet2pytorch"``
                (Tianxiaomo/pytorch-YOLOv4 and ``darknet2any``:
                ``models.{i}.conv{k}.weight``, ``models.{i}.bn{k}.weight``, ...)
                or ``"ultralytics"`` (ultralytics/yolov3, WongKinYiu/PyTorch_YOLOv4:
                ``module_list.{i}.Conv2d.weight``, ``module_list.{i}.BatchNorm2d.*``).
            dense_layout: the connected layers' layout (default as for
                :meth:`fused_all`).
            bn_eps: the target's BatchNorm epsilon. Unfused, running_var is
                adjusted so that it reproduces darknet's 1e-5 (see
                :meth:`Layer.bn_params`). Default: the naming's framework's
                (1e-5; ultralytics builds ``BatchNorm2d(eps=1e-4)``).
            threads: threads for the weights (default: all cores).
            dtype: of every floating-point array: ``"float32"``, ``"float16"``
                or ``"bfloat16"`` (as :meth:`Layer.fused`; batch-norm arrays
                are rounded to nearest even as well).

        Returns:
            ``{key: array}``. Weights and biases are writeable views into one
            arena (see :meth:`fused_all`); batch-norm arrays are new; every
            batch norm has ``num_batches_tracked`` (int64 0, shape ``()``).
            Layers without data (``dontload``, past the end of a partial file)
            have no keys.

        Raises:
            ConversionError: a layer the naming's models cannot hold (e.g. a
                grouped conv for darknet2pytorch, which ignores ``groups``; a
                connected layer for ultralytics); the message names the layer
                and cfg line.
            ValueError: an unknown naming or layout.
        """
        from .state_dict import build

        return build(self, fuse=fuse, layout=layout, naming=naming, dense_layout=dense_layout,
                     bn_eps=bn_eps, threads=threads, dtype=dtype)

    def fuse_into(
        self,
        targets: Mapping[int, tuple[npt.NDArray[np.generic], npt.NDArray[np.generic]]],
        layout: str | None = None,
        *,
        dtype: str = "float32",
        dense_layout: str | None = None,
        flatten: str = "auto",
        threads: int | None = None,
    ) -> None:
        """Write the fused arrays of the layers in ``targets`` into the caller's
        buffers, e.g. a torch model's parameters viewed as NumPy, in parallel and
        without temporaries.

        Args:
            targets: ``{layer index: (weights, bias)}`` of writeable, C-contiguous,
                aligned arrays of exactly the shape and dtype :meth:`Layer.fused`
                would return (bfloat16: uint16 or ``ml_dtypes.bfloat16``).
            layout, dense_layout, dtype, flatten, threads: as for :meth:`fused_all`.

        Raises:
            TypeError: a target that is not a NumPy array (a list, a
                memoryview: wrap the caller's memory with ``np.asarray`` or
                ``tensor.numpy()``; a copy would be filled and thrown away).
            IndexError: a layer index not in the network.
            OutputIsInputError: a target mapped from the network's own file
                (a writeable ``np.memmap`` of it).
            ValueError: a target of the wrong shape, dtype or memory layout, or
                misaligned (``np.frombuffer(..., offset=1)``; the message names
                the layer, the target and its address), or two targets sharing memory (a bias
                inside a weight buffer, two layers' targets overlapping: the
                message names both); nothing is written then. Overlap is
                checked by virtual address: two different mappings of the
                same file pages (two ``np.memmap`` of one file) are not
                detected, and such targets get undefined values.
        """
        plain = {index: (plain_bits(w, dtype), plain_bits(b, dtype))
                 for index, (w, b) in _checked_targets(targets, len(self), self._path).items()}
        _refuse_overlaps(plain)
        overflow = self._live().fuse_into(plain, layout, dense_layout, dtype, flatten,
                                          threads_arg(threads))
        where = self[next(iter(targets))]._where() if len(targets) == 1 else None
        warn_overflow(overflow, dtype, where, stacklevel=2)

    @property
    def closed(self) -> bool:
        return self._weights is None

    def close(self) -> None:
        """Drop this network's reference to the mapping (see the class docs),
        and unmap the memory kept for the next :meth:`fused_all`
        (:func:`yolo_io.release_cached_memory`)."""
        self._weights = None
        for walk in list(self._walks):
            walk.cancel()
        _core.release_cached_memory()

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self._config)

    @overload
    def __getitem__(self, i: int) -> Layer: ...
    @overload
    def __getitem__(self, i: slice) -> list[Layer]: ...
    def __getitem__(self, i: int | slice) -> Layer | list[Layer]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        return Layer(self, core_config(self._config).layer(normalize_index(i, len(self))))

    def __iter__(self) -> Iterator[Layer]:
        """The layers in order. While the loop runs, each ``layer.fused()``
        hands the next layers (the same arguments, up to 16 layers and 32 MiB
        ahead) to the core's pool, which fuses them while the caller handles
        this one; a call with other arguments (a second layout, ``bn_params``)
        is computed on its own, and a loop that skips most layers stops
        looking ahead. The pages of the mapping behind the loop leave this
        process's resident set (see ``evict_behind``). Both stop when the loop
        ends, early or not, and at :meth:`close`. The results are those of
        ``fused()`` of each layer on its own; the weights of a batch share a
        block, so a kept one keeps its block (see ``Layer.fused``)."""
        core = core_config(self._config)
        step = evict_behind(self)
        walk = self._new_walk()
        try:
            for i in range(len(core)):
                step(i)
                yield Layer(self, core.layer(i), walk)
            step(None)
        finally:
            if walk is not None:
                walk.cancel()

    def __repr__(self) -> str:
        state = "closed" if self._weights is None else f"{self.header.major}.{self.header.minor}"
        return f"<Network {self._path!r} ({state}): {len(self)} layers from {self._config.path!r}>"


def core_weights(net: Network) -> _core.Weights:
    """The compiled core's weights behind a Network, for yolo_io's own
    modules (as ``core_config`` for a Config); YoloIOError once it is closed."""
    return net._live()


def fused_layers(net: Network, layout: str | None, *, dtype: str, dense_layout: str | None,
                 threads: int | None, fuse: bool, first: int = 0, last: int = -1,
                 stacklevel: int) -> dict[int, tuple[npt.NDArray[np.generic], npt.NDArray[np.generic]]]:
    """:meth:`Network.fused_all` of layers ``first..last-1`` (``last`` -1: to
    the end), for yolo_io's own modules; PrecisionWarnings ``stacklevel``
    frames above the caller."""
    return net._fused_layers(layout, dtype=dtype, dense_layout=dense_layout, threads=threads,
                             fuse=fuse, first=first, last=last, stacklevel=stacklevel + 1)


def layer_fused(layer: Layer, layout: str | None, dtype: str, flatten: str, *,
                fuse: bool) -> tuple[npt.NDArray[np.generic], npt.NDArray[np.generic]]:
    """:meth:`Layer.fused` with batch norm folded or not (``fuse``), for
    yolo_io's own modules."""
    return layer._fused(layout, dtype, flatten, fuse=fuse)


def evict_behind(net: Network | None) -> Callable[[int | None], None]:
    """For a reader that goes through ``net``'s layers in order: call the
    result with each layer it goes on to (None when it is done), and the
    pages of the mapping that the layer before it read leave this process's
    resident set (``madvise(MADV_DONTNEED)``; the page cache keeps them and
    views fault them back in), so that one pass over a large model does not
    keep it all resident. Nothing for None, a closed network or a copy."""
    previous: int | None = None

    def step(i: int | None) -> None:
        nonlocal previous
        if previous is not None and previous != i and net is not None and net._weights is not None:
            net._weights.evict(previous)
        previous = i

    return step


def _checked_targets(targets: Mapping[int, tuple[npt.NDArray[np.generic], npt.NDArray[np.generic]]],
                     layers: int, network_file: str,
                     ) -> dict[int, tuple[npt.NDArray[np.generic], npt.NDArray[np.generic]]]:
    """fuse_into's targets by layer index, each a NumPy array of the
    caller's memory and none a mapping of the network's own file."""
    try:
        source = os.stat(network_file)
        source_id: tuple[int, int] | None = (source.st_dev, source.st_ino)
    except OSError:
        source_id = None
    checked = {}
    for key, pair in targets.items():
        try:
            index = operator.index(key)
        except TypeError:
            raise TypeError(f"fuse_into: the key {key!r} is not a layer index") from None
        if not 0 <= index < layers:
            raise IndexError(f"fuse_into: layer {index} is not in the network (0..{layers - 1})")
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise TypeError(f"fuse_into: the targets of layer {index} are not a (weights, bias) pair")
        for name, a in zip(("weights", "bias"), pair, strict=True):
            if not isinstance(a, np.ndarray):
                raise TypeError(
                    f"fuse_into: the {name} target of layer {index} is a {type(a).__name__}, not "
                    "a NumPy array: the fused values are written into the caller's memory, so "
                    "a target must be an array over it (np.asarray(buffer), tensor.numpy()); a "
                    "copy would be filled and thrown away")
            base: object = a
            while isinstance(base, np.ndarray):
                filename = getattr(base, "filename", None)
                if source_id is not None and isinstance(base, np.memmap) and filename:
                    try:
                        mapped = os.stat(filename)
                    except OSError:
                        mapped = None
                    if mapped is not None and (mapped.st_dev, mapped.st_ino) == source_id:
                        raise OutputIsInputError(
                            f"fuse_into: the {name} target of layer {index} is mapped from "
                            f"{filename}, the network's own file {network_file}: writing it would "
                            "change the weights being read", output=str(filename),
                            input=network_file)
                base = base.base
        checked[index] = (pair[0], pair[1])
    return checked


def _refuse_overlaps(targets: Mapping[int, tuple[npt.NDArray[np.generic], npt.NDArray[np.generic]]]) -> None:
    """ValueError naming two targets whose memory overlaps: a fused layer
    written into memory another target also receives would leave one of them
    wrong (threads write them in any order). Checked on the byte ranges of
    every target before anything is written."""
    ranges: list[tuple[int, int, str]] = []
    for i, pair in targets.items():
        for name, a in zip(("weights", "bias"), pair, strict=True):
            if isinstance(a, np.ndarray) and a.size:
                low = high = a.__array_interface__["data"][0]
                for n, stride in zip(a.shape, a.strides, strict=True):
                    low, high = low + min(0, (n - 1) * stride), high + max(0, (n - 1) * stride)
                ranges.append((low, high + a.itemsize, f"layer {i} {name}"))
    ranges.sort()
    for (low, high, name), (next_low, next_high, next_name) in itertools.pairwise(ranges):
        if next_low < high:
            first, second = sorted((name, next_name))
            raise ValueError(
                f"the targets of {first} and {second} overlap in memory (bytes "
                f"{next_low - low}..{min(high, next_high) - low} of the {high - low}-byte "
                f"{name} buffer); every target needs memory of its own")


def load(
    weights: PathArg,
    cfg: PathArg | Config | None = None,
    *,
    partial: bool = False,
    copy: bool = False,
) -> Network:
    """Map a Darknet ``.weights`` file and check it against its ``.cfg``, or
    map a raw safetensors export of :func:`yolo_io.save_safetensors`.

    Costs O(layers): the cfg is parsed, the header read, and the file size
    compared with what the cfg needs; no weight byte is read until a layer's
    ``params`` are used (and then through the page cache, not a copy).

    Args:
        weights: path (str, bytes or os.PathLike; a file name in any
            encoding) of the ``.weights`` file, or of a ``.safetensors`` file
            (recognised from its first bytes): a raw yolo_io export, whose
            metadata holds the cfg and the darknet header and whose tensors
            are the darknet arrays in file order. Its ``params`` are views
            into its data region, and :func:`yolo_io.save` writes the
            original ``.weights`` back, byte for byte.
        cfg: a path, cfg text, or a Config from :func:`parse_cfg` (a str is
            cfg text only when it contains a newline and is not the name of
            an existing file, as for :func:`parse_cfg`). Required
            for a ``.weights`` file; for a safetensors export, it replaces the
            stored cfg (and must plan exactly its tensors).
        partial: accept a file that ends exactly on a layer boundary, such as
            ``yolov4.conv.137`` written by ``darknet partial``.
        copy: read the whole file into private memory now instead of mapping
            it (the cost of ``np.fromfile``). By default the file is mapped,
            and a file truncated or rewritten in place while the Network is
            alive changes what its views show; a read past a truncated end
            kills the process with SIGBUS, as it would for ``np.memmap``.
            With ``copy=True`` the Network is a snapshot that later changes
            to the file cannot touch. (``save``, ``load_into`` and
            ``save_safetensors`` read a mapped source with ``pread`` and raise
            :class:`FormatError` if it has shrunk.)

    Returns:
        The Network: ``len()``, ``net[i]`` and iteration give Layer objects.

    Raises:
        WeightsSizeError: the file is shorter or longer than the cfg needs; the
            message names both files, the sizes and the first layer that does
            not fit.
        FormatError: not a weights file (text, an HTML page, an archive); a
            safetensors file that is invalid (the message names the tensor),
            not a raw yolo_io export (another naming, fused), or whose tensors
            differ from its cfg's plan.
        TypeError: ``cfg`` is missing for a ``.weights`` file.
        CfgError: the cfg is invalid (or is a weights file).
        SwappedArgumentsError: ``weights`` is a cfg and ``cfg`` a weights file;
            the message shows the call the right way round.
        FileNotFoundError: a file does not exist.

    Example:
        >>> net = yolo_io.load("yolov4.weights", "yolov4.cfg")
        >>> net[0].params["weights"].shape
        (32, 3, 3, 3)
    """
    path = fs_path(weights, "weights")
    kind = _core.sniff_file(path)
    if kind == "safetensors" or (kind in ("other", "weights") and cfg is None
                                 and path.endswith(".safetensors")):
        # A damaged .safetensors file does not sniff as one (its first bytes
        # can even look like a weights header): without a cfg, read it as
        # what its name says, for the FormatError that says what is wrong.
        return _load_safetensors(path, cfg, copy)
    if cfg is None:
        raise TypeError(f"load() of the .weights file {path} needs its cfg: "
                        "load(weights, cfg) (only a raw safetensors export brings its own)")
    try:
        config = parse(cfg, stacklevel=2)
    except CfgError as err:
        _raise_if_swapped(path, cfg, err)
        raise
    try:
        core = _core.Weights(core_config(config), path, bool(partial), bool(copy))
    except WeightsSizeError as err:
        for explain in _size_error_explainers:
            explain(err, config, path, cfg)
        raise
    return Network(config, core)


def _load_safetensors(path: str, cfg: PathArg | Config | None,
                      copy: bool = False) -> Network:
    """A Network on a raw yolo_io safetensors export (every check in the core)."""
    file = _core.SafetensorsFile(path, copy)
    if cfg is None:
        config = parse_bytes(file.raw_cfg(), f"{path} (its cfg)", stacklevel=3)
    else:
        config = parse(cfg, stacklevel=3)
    return Network(config, _core.weights_from_safetensors(core_config(config), file))


#: What explains a WeightsSizeError of :func:`load` with the likely fix
#: (appended to its message): set by ``yolo_io._diagnosis`` when the package
#: is imported, so that this lower layer does not import diagnosis.
SizeErrorExplainer = Callable[[WeightsSizeError, Config, str, object], None]
_size_error_explainers: list[SizeErrorExplainer] = []


def explain_size_errors_with(explainer: SizeErrorExplainer) -> None:
    """Registers ``explainer(err, config, path, cfg)``, which :func:`load`
    calls on a :class:`WeightsSizeError` before raising it."""
    if explainer not in _size_error_explainers:
        _size_error_explainers.append(explainer)


def file_kinds(weights: str, cfg: str) -> tuple[str, str] | None:
    """What the first 4 KiB of each of two regular files look like ("cfg",
    "weights", "safetensors" or "other"), or None when either is not a
    regular file or cannot be read: the test for swapped arguments is
    ``file_kinds(weights, cfg) == ("cfg", "weights")``."""
    if not (os.path.isfile(weights) and os.path.isfile(cfg)):
        return None
    try:
        return _core.sniff_file(weights), _core.sniff_file(cfg)
    except OSError:
        return None


def _raise_if_swapped(weights: object, cfg: object, err: CfgError) -> None:
    """Raises SwappedArgumentsError when the cfg that failed to parse is a
    weights file and ``weights`` a cfg (the core reads 4 KiB of each)."""
    if not (is_path(weights) and is_path(cfg)):
        return
    real_weights, real_cfg = fs_path(cfg), fs_path(weights)
    if file_kinds(real_cfg, real_weights) == ("cfg", "weights"):
        import json  # only here: `import yolo_io` stays quick

        call = f"yolo_io.load({json.dumps(real_weights)}, {json.dumps(real_cfg)})"
        raise SwappedArgumentsError(
            f"the arguments of load() look swapped: {real_weights} is a Darknet .weights file "
            f"and {real_cfg} a .cfg; the weights come first: {call}") from err

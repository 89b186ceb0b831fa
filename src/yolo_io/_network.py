"""Typed wrappers around the compiled core: Config, Network and their layers."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple, final, overload

import numpy as np
import numpy.typing as npt

from . import _core
from ._errors import (
    CfgError,
    CfgWarning,
    PrecisionWarning,
    SwappedArgumentsError,
    YoloIOError,
)

__all__ = ["CfgLayer", "Config", "Header", "Layer", "Network", "load", "parse_cfg"]

Shape = tuple[int, int, int]

_MAX_WARNING_LINES = 20


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


class CfgLayer:
    """One layer of a parsed cfg: what darknet builds from one ``[section]``.

    Everything here comes from the cfg; nothing reads a weights file.
    """

    __slots__ = ("_cfg", "_info")

    def __init__(self, cfg: _core.Config, info: _core.LayerInfo) -> None:
        self._cfg = cfg
        self._info = info

    @property
    def index(self) -> int:
        """Darknet's 0-based layer index (``[net]`` excluded)."""
        return self._info.index

    @property
    def type(self) -> str:
        """Canonical darknet type name: ``"convolutional"``, ``"route"``, ..."""
        return self._info.type

    @property
    def section(self) -> str:
        """The section header as written, e.g. ``"[conv]"``."""
        return self._info.section

    @property
    def line(self) -> int:
        """1-based cfg line of this layer's ``[section]``."""
        return self._info.line

    @property
    def options(self) -> Mapping[str, str]:
        """The options as written (values with spaces deleted, as darknet reads
        them); for a repeated key, the first copy, which is the one darknet uses."""
        return MappingProxyType({k: v for k, v, _ in self._cfg.layer_options(self.index)})

    def option_line(self, key: str) -> int:
        """The cfg line of option ``key``. Raises KeyError when it is absent."""
        for k, _, line in self._cfg.layer_options(self.index):
            if k == key:
                return line
        raise KeyError(key)

    @property
    def inputs(self) -> tuple[int, ...]:
        """Absolute indices of the layers this one reads; ``()`` is the network
        input. Route: its ``layers``; shortcut: the previous layer then ``from``;
        sam/scale_channels: the previous layer and ``from``; others: the previous layer."""
        return self._info.inputs

    @property
    def input_shape(self) -> Shape:
        """(C, H, W) of the input, as darknet computes it. Flat inputs (after a
        connected layer) are (N, 1, 1)."""
        return self._info.input_shape

    @property
    def output_shape(self) -> Shape:
        """(C, H, W) of the output, as darknet computes it."""
        return self._info.output_shape

    @property
    def activation(self) -> str | None:
        """The activation darknet applies, or None for layers without one. An
        unknown name becomes ``"relu"``, as in darknet (with a CfgWarning)."""
        return self._info.activation

    @property
    def param_shapes(self) -> Mapping[str, tuple[int, ...]]:
        """Names and shapes of the arrays this layer stores, in file order."""
        return MappingProxyType({name: shape for name, shape, _, _ in self._info.param_specs})

    @property
    def param_count(self) -> int:
        """Number of float32 values this layer reads from a ``.weights`` file."""
        return self._info.nfloats

    @property
    def share_index(self) -> int | None:
        """For a convolution with ``share_index``: the layer whose arrays it
        reuses (it stores nothing itself)."""
        return self._info.share_index

    @property
    def dontload(self) -> bool:
        """``dontload=1``: darknet reads nothing for this layer."""
        return self._info.dontload

    def __repr__(self) -> str:
        c, h, w = self.output_shape
        return f"<{type(self).__name__} {self.index} {self.type} -> {c}x{h}x{w} (line {self.line})>"


class Config(Sequence[CfgLayer]):
    """A parsed ``.cfg``: the ``[net]`` section and one CfgLayer per later section.

    Create it with :func:`parse_cfg`; pass it to :func:`load` to avoid
    parsing the same cfg twice.
    """

    __slots__ = ("_cfg",)

    def __init__(self, core: _core.Config) -> None:
        self._cfg = core

    @property
    def path(self) -> str:
        """The cfg file, or ``"<string>"`` for text passed directly."""
        return self._cfg.path

    @property
    def input_shape(self) -> Shape:
        """(C, H, W) from ``[net]``'s channels, height and width; a network
        with only ``inputs=N`` (text models) gives (N, 1, 1)."""
        c, h, w = self._cfg.input_shape
        if c * h * w == 0:
            return (self._cfg.input_size, 1, 1)
        return (c, h, w)

    @property
    def net_options(self) -> Mapping[str, str]:
        """The ``[net]`` options as written."""
        return MappingProxyType({k: v for k, v, _ in self._cfg.net_options})

    @property
    def warnings(self) -> tuple[str, ...]:
        """What darknet would print and ignore: unused options, unknown
        activations, ...; each message starts with its line."""
        return tuple(f"{self.path}:{line}: {msg}" for line, msg in self._cfg.diagnostics)

    @property
    def param_count(self) -> int:
        """Float32 values of all layers together."""
        return self._cfg.total_floats

    def expected_size(self, version: tuple[int, int] | tuple[int, int, int] = (0, 2, 5),
                      *, layers: int | None = None) -> int:
        """Bytes of a ``.weights`` file for this cfg.

        Args:
            version: the header's (major, minor[, revision]); versions below 0.2
                have a 16-byte header, later ones 20 bytes.
            layers: only the first ``layers`` layers (a ``darknet partial`` file).
        """
        header = _core.header_size_for(version[0], version[1])
        return self._cfg.expected_bytes(header, -1 if layers is None else layers)

    @property
    def expected_sizes(self) -> Mapping[str, int]:
        """``{"0.1": bytes, "0.2": bytes}``: the size for each header width."""
        return MappingProxyType({"0.1": self.expected_size((0, 1)), "0.2": self.expected_size((0, 2))})

    def __len__(self) -> int:
        return len(self._cfg)

    @overload
    def __getitem__(self, i: int) -> CfgLayer: ...
    @overload
    def __getitem__(self, i: slice) -> list[CfgLayer]: ...
    def __getitem__(self, i: int | slice) -> CfgLayer | list[CfgLayer]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        return CfgLayer(self._cfg, self._cfg.layer(_normalize_index(i, len(self))))

    def __iter__(self) -> Iterator[CfgLayer]:
        for i in range(len(self)):
            yield CfgLayer(self._cfg, self._cfg.layer(i))

    def __repr__(self) -> str:
        c, h, w = self.input_shape
        return f"<Config {self.path!r}: {len(self)} layers, input {c}x{h}x{w}>"


def _as_bfloat16(bits: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    try:
        import ml_dtypes
    except ImportError:
        return bits
    return bits.view(ml_dtypes.bfloat16)


def _threads(threads: int | None) -> int:
    if threads is None:
        return os.cpu_count() or 1
    if threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads}")
    return int(threads)


def _plain_bits(a: npt.NDArray[np.generic], dtype: str) -> npt.NDArray[np.generic]:
    """ml_dtypes.bfloat16 targets are passed to the core as their uint16 bits."""
    if dtype == "bfloat16" and a.dtype.itemsize == 2 and a.dtype != np.float16:
        return a.view(np.uint16)
    return a


def _normalize_index(i: int, n: int) -> int:
    if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
        raise TypeError(f"layer indices must be integers, not {type(i).__name__}")
    k = int(i)
    if k < 0:
        k += n
    if not 0 <= k < n:
        raise IndexError(f"layer index {i} out of range for {n} layers")
    return k


def _warn(cfg: _core.Config, stacklevel: int) -> None:
    diags = cfg.diagnostics
    if not diags:
        return
    lines = [f"{cfg.path}:{line}: {msg}" for line, msg in diags[:_MAX_WARNING_LINES]]
    if len(diags) > _MAX_WARNING_LINES:
        lines.append(f"... and {len(diags) - _MAX_WARNING_LINES} more (see Config.warnings)")
    warnings.warn(CfgWarning("\n".join(lines)), stacklevel=stacklevel + 1)


def _parse(cfg: str | os.PathLike[str] | Config, stacklevel: int) -> Config:
    if isinstance(cfg, Config):
        return cfg
    if isinstance(cfg, os.PathLike):
        core = _core.parse_cfg_file(os.fspath(cfg))
    elif isinstance(cfg, str):
        if "\n" in cfg or cfg.removeprefix("\ufeff").lstrip().startswith("["):
            # surrogateescape: text read with errors="surrogateescape" parses as its bytes
            core = _core.parse_cfg_text(cfg.encode("utf-8", "surrogateescape"))
        else:
            core = _core.parse_cfg_file(cfg)
    elif isinstance(cfg, bytes):
        raise TypeError("cfg must be a path, cfg text (str) or a Config, not bytes; "
                        "decode it or pass a path")
    else:
        raise TypeError(f"cfg must be a path, cfg text or a Config, not {type(cfg).__name__}")
    _warn(core, stacklevel + 1)
    return Config(core)


def parse_cfg(cfg: str | os.PathLike[str] | Config) -> Config:
    """Parse a Darknet ``.cfg`` with darknet's exact grammar, without weights.

    Args:
        cfg: a path, the cfg text itself (a str containing a newline or
            starting with ``[``, after an optional byte-order mark), or an
            already parsed Config (returned as is).

    Returns:
        The Config: layers, shapes, and :meth:`Config.expected_size`.

    Raises:
        CfgError: a section darknet does not know, a missing required option,
            a wrong index, shapes that do not fit (the message names the line);
            a Darknet ``.weights`` file instead of a cfg.
        FileNotFoundError: no such cfg file.

    Warns:
        CfgWarning: options darknet ignores, unknown activations, a UTF-8
            byte-order mark at the start (skipped).

    Example:
        >>> cfg = yolo_io.parse_cfg("yolov4.cfg")
        >>> cfg.expected_size()
        257717640
    """
    return _parse(cfg, stacklevel=2)


class Layer(CfgLayer):
    """A layer of a loaded Network: the cfg facts plus its data in the file."""

    __slots__ = ("_net",)

    def __init__(self, net: Network, info: _core.LayerInfo) -> None:
        super().__init__(net._config._cfg, info)
        self._net = net

    @property
    def params(self) -> Mapping[str, npt.NDArray[np.float32]]:
        """The layer's arrays: read-only, zero-copy views into the mapped file.

        Darknet's names and layout; a convolution has ``biases``, (with
        batch_normalize) ``scales``, ``rolling_mean``, ``rolling_variance``, and
        ``weights`` of shape (filters, channels/groups, size, size). A view
        keeps the mapping alive after the Network is closed or dropped; copy it
        (``a.copy()``) to get a writeable array. Empty for layers that store
        nothing and for layers past the end of a partial file.
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

    def fused(
        self, layout: str | None = None, dtype: str = "float32", *, flatten: str = "auto"
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

        Returns:
            Two new, writeable arrays (one allocation each, no further copy),
            independent of the file.

        Raises:
            ValueError: not a conv/connected layer, an unknown layout or dtype,
                HWCM on a conv that is not depthwise.
            IndexError: the layer is past the end of a partial file.

        Warns:
            PrecisionWarning: values that overflow float16/bfloat16 to inf.

        Example:
            >>> w, b = net[0].fused(layout="HWIO")      # Keras Conv2D kernel, bias
        """
        return self._fused(layout, dtype, flatten, fuse=True)

    def _fused(
        self, layout: str | None, dtype: str, flatten: str, *, fuse: bool
    ) -> tuple[npt.NDArray[np.generic], npt.NDArray[np.generic]]:
        if layout is None:
            layout = "OI" if self.type == "connected" else "OIHW"
        w, b, overflow = self._net._live().fused(self.index, layout, dtype, flatten, fuse)
        if overflow:
            warnings.warn(
                PrecisionWarning(
                    f"{overflow} values of layer {self.index} ({self.type}, "
                    f"{self._net.config.path} line {self.line}) overflow {dtype} and became inf"
                ),
                stacklevel=3,
            )
        if dtype == "bfloat16":
            w, b = _as_bfloat16(w), _as_bfloat16(b)
        return w, b

    def bn_params(
        self, layout: str | None = None, *, eps: float = 1e-3
    ) -> dict[str, npt.NDArray[np.float32]]:
        """Unfused weights plus batch-norm arrays for a framework whose BN adds
        its own epsilon (Keras: 1e-3, PyTorch: 1e-5), adjusted so that it
        reproduces darknet's ``gamma * (x - mean) / sqrt(var + 1e-5) + beta``.

        ``rolling_variance`` becomes ``var + 1e-5 - eps``. Where that would be
        negative, the variance is set to 0 and ``scales`` (gamma) is rescaled by
        ``sqrt(eps) / sqrt(var + 1e-5)`` instead, which is still exact, and a
        PrecisionWarning names the channels.

        Returns:
            New float32 arrays: ``weights`` (in ``layout``, as for
            :meth:`fused`), ``biases`` (beta), ``scales``, ``rolling_mean``,
            ``rolling_variance``.

        Raises:
            ValueError: the layer has no batch norm.
        """
        p = self._source_params()
        if "scales" not in p:
            raise ValueError(f"layer {self.index} ({self.type}, line {self.line}) has no batch norm")
        w, beta = self._fused(layout, "float32", "auto", fuse=False)
        gamma, var = self._bn_for_eps(eps, stacklevel=3)
        return {
            "weights": w.astype(np.float32, copy=False),
            "biases": beta.astype(np.float32, copy=False),
            "scales": gamma,
            "rolling_mean": p["rolling_mean"].copy(),
            "rolling_variance": var,
        }

    def _source_params(self) -> Mapping[str, npt.NDArray[np.float32]]:
        """params of the layer whose arrays this one uses (share_index)."""
        share = self.share_index
        return self._net[share].params if share is not None else self.params

    def _bn_for_eps(self, eps: float, stacklevel: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """New (gamma, running_var) for a BN that adds `eps` (see bn_params)."""
        p = self._source_params()
        if eps == 1e-5:  # darknet's own: the stored arrays, bit for bit
            return p["scales"].copy(), p["rolling_variance"].copy()
        var = p["rolling_variance"].astype(np.float64) + 1e-5
        gamma = p["scales"].astype(np.float64)
        adjusted = var - eps
        bad = adjusted < 0
        if bad.any():
            gamma[bad] *= np.sqrt(eps) / np.sqrt(var[bad])
            adjusted[bad] = 0.0
            channels = np.flatnonzero(bad)
            warnings.warn(
                PrecisionWarning(
                    f"layer {self.index} ({self.type}, line {self.line}): rolling_variance + 1e-5 "
                    f"< eps={eps} in {channels.size} channels ({channels[:8].tolist()}): their "
                    "variance is 0 and their scales are rescaled instead"
                ),
                stacklevel=stacklevel + 1,
            )
        return gamma.astype(np.float32), adjusted.astype(np.float32)


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

    __slots__ = ("_config", "_path", "_weights")

    def __init__(self, config: Config, weights: _core.Weights) -> None:
        self._config = config
        self._weights: _core.Weights | None = weights
        self._path = weights.path

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
        """The ``.weights`` file."""
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
        ``params`` view)."""
        return self._live().raw

    def fused_all(
        self,
        layout: str = "OIHW",
        *,
        dtype: str = "float32",
        dense_layout: str | None = None,
        flatten: str = "auto",
        threads: int | None = None,
    ) -> dict[int, tuple[npt.NDArray[np.generic], npt.NDArray[np.generic]]]:
        """Every convolutional and connected layer's :meth:`Layer.fused` arrays
        at once: one 64-byte-aligned arena, filled in parallel over layers by
        ``threads`` threads (default: all cores) with the GIL released.

        Args:
            layout: the convolutions' layout (``"OIHW"``, ``"HWIO"``, ``"OHWI"``).
            dense_layout: the connected layers' layout; default ``"IO"`` with an
                NHWC conv layout (HWIO, OHWI), else ``"OI"``.
            dtype, flatten: as for :meth:`Layer.fused`.

        Returns:
            ``{layer index: (weights, bias)}``; the arrays are writeable views
            into the arena, which lives as long as any of them.
        """
        dense = dense_layout or ("IO" if layout in ("HWIO", "OHWI") else "OI")
        arrays, overflow = self._live().fused_all(layout, dense, dtype, flatten, _threads(threads))
        if overflow:
            warnings.warn(PrecisionWarning(f"{overflow} values overflow {dtype} and became inf"),
                          stacklevel=2)
        if dtype == "bfloat16":
            return {i: (_as_bfloat16(w), _as_bfloat16(b)) for i, (w, b) in arrays.items()}
        return arrays

    def _fused_all_arrays(
        self, layout: str, dense_layout: str, threads: int | None, *, fuse: bool
    ) -> dict[int, tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]]:
        arrays, _ = self._live().fused_all(layout, dense_layout, "float32", "auto", _threads(threads), fuse)
        return arrays  # type: ignore[return-value]  # float32 asked for

    def state_dict(
        self,
        *,
        fuse: bool = False,
        layout: str = "OIHW",
        naming: str = "yolo_io",
        dense_layout: str | None = None,
        bn_eps: float | None = None,
        threads: int | None = None,
    ) -> dict[str, npt.NDArray[np.generic]]:
        """The network's arrays under a framework's parameter names, ready for
        ``load_state_dict`` (through :func:`yolo_io.torch.state_dict` for torch).

        Args:
            fuse: fold batch norms into the conv/connected weights (darknet's
                arithmetic, as :meth:`Layer.fused`); the keys are then those of
                a model without batch norm (``"ultralytics"``: of a model after
                its ``fuse()``).
            layout: the convolutions' layout; torch wants ``"OIHW"``.
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
        from ._state_dict import build

        return build(self, fuse=fuse, layout=layout, naming=naming, dense_layout=dense_layout,
                     bn_eps=bn_eps, threads=threads)

    def fuse_into(
        self,
        targets: Mapping[int, tuple[npt.NDArray[np.generic], npt.NDArray[np.generic]]],
        layout: str = "OIHW",
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
            targets: ``{layer index: (weights, bias)}`` of writeable, C-contiguous
                arrays of exactly the shape and dtype :meth:`Layer.fused` would
                return (bfloat16: uint16 or ``ml_dtypes.bfloat16``).

        Raises:
            ValueError: a target of the wrong shape, dtype or memory layout (the
                message names the layer); nothing is written then.
        """
        dense = dense_layout or ("IO" if layout in ("HWIO", "OHWI") else "OI")
        plain = {int(i): (_plain_bits(w, dtype), _plain_bits(b, dtype)) for i, (w, b) in targets.items()}
        overflow = self._live().fuse_into(plain, layout, dense, dtype, flatten, _threads(threads))
        if overflow:
            warnings.warn(PrecisionWarning(f"{overflow} values overflow {dtype} and became inf"),
                          stacklevel=2)

    @property
    def closed(self) -> bool:
        return self._weights is None

    def close(self) -> None:
        """Drop this network's reference to the mapping (see the class docs)."""
        self._weights = None

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
        return Layer(self, self._config._cfg.layer(_normalize_index(i, len(self))))

    def __iter__(self) -> Iterator[Layer]:
        core = self._config._cfg
        for i in range(len(core)):
            yield Layer(self, core.layer(i))

    def __repr__(self) -> str:
        state = "closed" if self._weights is None else f"{self.header.major}.{self.header.minor}"
        return f"<Network {self._path!r} ({state}): {len(self)} layers from {self._config.path!r}>"


def load(
    weights: str | os.PathLike[str],
    cfg: str | os.PathLike[str] | Config,
    *,
    partial: bool = False,
) -> Network:
    """Map a Darknet ``.weights`` file and check it against its ``.cfg``.

    Costs O(layers): the cfg is parsed, the header read, and the file size
    compared with what the cfg needs; no weight byte is read until a layer's
    ``params`` are used (and then through the page cache, not a copy).

    Args:
        weights: path of the ``.weights`` file.
        cfg: a path, cfg text, or a Config from :func:`parse_cfg`.
        partial: accept a file that ends exactly on a layer boundary, such as
            ``yolov4.conv.137`` written by ``darknet partial``.

    Returns:
        The Network: ``len()``, ``net[i]`` and iteration give Layer objects.

    Raises:
        WeightsSizeError: the file is shorter or longer than the cfg needs; the
            message names both files, the sizes and the first layer that does
            not fit.
        FormatError: not a weights file (text, an HTML page, an archive).
        CfgError: the cfg is invalid (or is a weights file).
        SwappedArgumentsError: ``weights`` is a cfg and ``cfg`` a weights file;
            the message shows the call the right way round.
        FileNotFoundError: a file does not exist.

    Example:
        >>> net = yolo_io.load("yolov4.weights", "yolov4.cfg")
        >>> net[0].params["weights"].shape
        (32, 3, 3, 3)
    """
    try:
        config = _parse(cfg, stacklevel=2)
    except CfgError as err:
        _raise_if_swapped(weights, cfg, err)
        raise
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"weights must be a path, not {type(weights).__name__}")
    core = _core.Weights(config._cfg, os.fspath(weights), bool(partial))
    return Network(config, core)


def _raise_if_swapped(weights: object, cfg: object, err: CfgError) -> None:
    """Raises SwappedArgumentsError when the cfg that failed to parse is a
    weights file and ``weights`` a cfg (the core reads 4 KiB of each)."""
    if not (isinstance(weights, (str, os.PathLike)) and isinstance(cfg, (str, os.PathLike))):
        return
    real_weights, real_cfg = os.fspath(cfg), os.fspath(weights)
    try:
        kinds = _core.sniff_file(real_weights), _core.sniff_file(real_cfg)
    except OSError:
        return  # cfg text, or a file that cannot be read: not a swap
    if kinds == ("weights", "cfg"):
        call = f"yolo_io.load({json.dumps(real_weights)}, {json.dumps(real_cfg)})"
        raise SwappedArgumentsError(
            f"the arguments of load() look swapped: {real_weights} is a Darknet .weights file "
            f"and {real_cfg} a .cfg; the weights come first: {call}") from err

"""The parsed ``.cfg``: Config and its CfgLayer objects, and parse_cfg()."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple, overload

import numpy as np

from .. import _core
from .._base.errors import CfgWarning
from .._base.paths import PathArg, fs_path, is_path
from .kinds import KINDS, KindFacts

if TYPE_CHECKING:
    from .attrs import LayerAttrs, NetAttrs

__all__ = ["CfgLayer", "Config", "ParamSpec", "parse_cfg"]

Shape = tuple[int, int, int]

_MAX_WARNING_LINES = 20


class ParamSpec(NamedTuple):
    """One array a layer stores in a ``.weights`` file, in file order.

    ``offset`` and ``size`` are in float32 values from the start of the
    layer's data; ``shape`` is darknet's (e.g. OIHW for a convolution).
    """

    name: str
    shape: tuple[int, ...]
    offset: int
    size: int


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
    def kind(self) -> KindFacts:
        """The facts of this layer's type from the core's kind table: is it a
        head (``.head``), training only (``.training_only``), what does it
        fuse as (``.fusion``), ... (see :class:`~yolo_io.KindFacts`)."""
        return KINDS[self._info.type]

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
        """(C, H, W) of the input, as darknet computes it (its ``params.c/h/w``):
        the previous layer's output. Flat inputs (after a connected layer) are
        (N, 1, 1). A layer that reads other layers (route, shortcut, sam,
        scale_channels) computes on :attr:`input_shapes` instead."""
        return self._info.input_shape

    @property
    def input_shapes(self) -> tuple[Shape, ...]:
        """(C, H, W) of each input, in the order of :attr:`inputs` (the network
        input for layer 0): for a route, the shape of every layer it
        concatenates; for a shortcut, the previous layer's then each ``from``."""
        return self._info.input_shapes

    @property
    def attrs(self) -> LayerAttrs:
        """The typed hyperparameters darknet builds from this section, defaults
        applied: a frozen record per kind (:class:`ConvolutionalAttrs`,
        :class:`PoolAttrs`, :class:`RouteAttrs`, :class:`YoloAttrs`, ...; see
        ``yolo_io.attrs``), field names after darknet's ``layer`` struct."""
        from . import attrs  # the records, imported when first asked for (~25 ms)

        return attrs.make(self._info.attrs_class, self._cfg.layer_attrs(self.index))

    @property
    def fusion(self) -> str | None:
        """What :meth:`Layer.fused` computes for this kind of layer: ``"conv"``
        (convolutional), ``"dense"`` (connected), or None (nothing to fuse)."""
        return self._info.fusion

    @property
    def default_layout(self) -> str | None:
        """The layout :meth:`Layer.fused` uses when none is given: ``"OIHW"``
        for convolutions, ``"OI"`` for connected layers, None otherwise."""
        return self._info.default_layout

    @property
    def location(self) -> str:
        """``"layer {index} ({section}, {cfg path} line {line})"``, for messages."""
        return f"layer {self.index} ({self.section}, {self._cfg.path} line {self.line})"

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
    def param_specs(self) -> tuple[ParamSpec, ...]:
        """Every array this layer stores: name, shape, offset and count, in
        file order."""
        return tuple(ParamSpec(*spec) for spec in self._info.param_specs)

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

    # A Config never changes: a copy is the same object, and a pickle its
    # source, parsed again on the other side.
    def __copy__(self) -> Config:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Config:
        return self

    def __reduce__(self) -> tuple[Callable[[bytes, str], Config], tuple[bytes, str]]:
        return _unpickle, (self.source, self.path)

    @property
    def path(self) -> str:
        """The cfg file, or ``"<string>"`` for text passed directly."""
        return self._cfg.path

    @property
    def source(self) -> bytes:
        """The cfg's bytes as given (the file's, or the text's in UTF-8); a raw
        safetensors export stores them."""
        return self._cfg.source

    @property
    def input_shape(self) -> Shape:
        """(C, H, W) from ``[net]``'s channels, height and width; a network
        with only ``inputs=N`` (text models) gives (N, 1, 1)."""
        c, h, w = self._cfg.input_shape
        if c * h * w == 0:
            return (self._cfg.input_size, 1, 1)
        return (c, h, w)

    @property
    def net(self) -> NetAttrs:
        """The ``[net]`` options inference needs, typed, as darknet reads them
        (width, height, channels, inputs, letter_box)."""
        from .attrs import NetAttrs

        return NetAttrs(**dict(self._cfg.net_attrs))

    @property
    def net_options(self) -> Mapping[str, str]:
        """The ``[net]`` options as written (text: read typed values from
        :attr:`net` or a layer's ``attrs``)."""
        return MappingProxyType({k: v for k, v, _ in self._cfg.net_options})

    @property
    def warnings(self) -> tuple[str, ...]:
        """What darknet would print and ignore: unused options, unknown
        activations, ...; each message starts with its line."""
        return tuple(_located(self.path, line, msg) for line, msg in self._cfg.diagnostics)

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
            layers: only the first ``layers`` layers (a ``darknet partial``
                file), 0 to ``len(config)``.

        Raises:
            TypeError: ``layers`` is not an integer.
            ValueError: ``layers`` is outside 0 to ``len(config)``; a version
                the readers and writers refuse (a negative major or minor, a
                part outside int32).
        """
        revision = version[2] if len(version) > 2 else 0
        problem = _core.header_version_problem(version[0], version[1], revision)
        if problem is not None:
            raise ValueError(f"a .weights header {problem}; no reader or writer takes it")
        header = _core.header_size_for(version[0], version[1])
        if layers is None:
            return self._cfg.expected_bytes(header, -1)
        if not isinstance(layers, (int, np.integer)) or isinstance(layers, bool):
            raise TypeError(f"layers must be an integer, not {type(layers).__name__}")
        if not 0 <= layers <= len(self):
            raise ValueError(f"layers={layers} is outside 0..{len(self)}: {self.path} has "
                             f"{len(self)} layers")
        return self._cfg.expected_bytes(header, int(layers))

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
        return CfgLayer(self._cfg, self._cfg.layer(normalize_index(i, len(self))))

    def __iter__(self) -> Iterator[CfgLayer]:
        for i in range(len(self)):
            yield CfgLayer(self._cfg, self._cfg.layer(i))

    def __repr__(self) -> str:
        c, h, w = self.input_shape
        return f"<Config {self.path!r}: {len(self)} layers, input {c}x{h}x{w}>"



def atoi(text: str) -> int:
    """C's ``atoi()``, as darknet reads an int option (``option_find_int``)
    or a ``.data`` value from its whitespace-free text: a sign, ASCII digits;
    0 without (the core's, for text the core does not type: later copies of
    a key, .data files)."""
    return _core.atoi(text)


def normalize_index(i: int, n: int) -> int:
    if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
        raise TypeError(f"layer indices must be integers, not {type(i).__name__}")
    k = int(i)
    if k < 0:
        k += n
    if not 0 <= k < n:
        raise IndexError(f"layer index {i} out of range for {n} layers")
    return k


def _located(path: str, line: int, message: str) -> str:
    """"path:line: message", or "path: message" for a message of no one line."""
    return f"{path}:{line}: {message}" if line > 0 else f"{path}: {message}"


def _warn(cfg: _core.Config, stacklevel: int) -> None:
    diags = cfg.diagnostics
    if not diags:
        return
    lines = [_located(cfg.path, line, msg) for line, msg in diags[:_MAX_WARNING_LINES]]
    if len(diags) > _MAX_WARNING_LINES:
        lines.append(f"... and {len(diags) - _MAX_WARNING_LINES} more (see Config.warnings)")
    warnings.warn(CfgWarning("\n".join(lines)), stacklevel=stacklevel + 1)


def core_config(config: Config) -> _core.Config:
    """The compiled core's object behind a Config (for yolo_io's own modules)."""
    return config._cfg


def cfg_text(cfg: object) -> bytes | None:
    """The bytes of a cfg given as text, else None (a path, a Config).

    The rule: a str is cfg text when it contains a newline and is not the
    name of an existing file; any other str (``"[net].cfg"`` too), bytes and
    os.PathLike is a path."""
    if isinstance(cfg, str) and "\n" in cfg and not os.path.lexists(cfg):
        # surrogateescape: text read with errors="surrogateescape" parses as its bytes
        return cfg.encode("utf-8", "surrogateescape")
    return None


def parse(cfg: PathArg | Config, stacklevel: int) -> Config:
    """:func:`parse_cfg`, with warnings attributed ``stacklevel`` frames up."""
    if isinstance(cfg, Config):
        return cfg
    if isinstance(cfg, bytes) and b"\n" in cfg and not os.path.lexists(cfg):
        # bytes are always a file name; a name holding a newline that names no file is
        # most likely cfg text given as bytes
        raise TypeError("cfg text must be a str, not bytes (bytes are a file name); decode "
                        "it or pass a path")
    if not is_path(cfg):
        raise TypeError(f"cfg must be a path, cfg text or a Config, not {type(cfg).__name__}")
    text = cfg_text(cfg)
    core = _core.parse_cfg_file(fs_path(cfg)) if text is None else _core.parse_cfg_text(text)
    _warn(core, stacklevel + 1)
    return Config(core)


def _unpickle(source: bytes, path: str) -> Config:
    return Config(_core.parse_cfg_text(source, path))


def parse_bytes(text: bytes, path: str, stacklevel: int) -> Config:
    """Cfg bytes (e.g. from a safetensors export's metadata) parsed under the
    name ``path``, with warnings attributed ``stacklevel`` frames up."""
    core = _core.parse_cfg_text(text, path)
    _warn(core, stacklevel + 1)
    return Config(core)


def parse_cfg(cfg: PathArg | Config) -> Config:
    """Parse a Darknet ``.cfg`` with darknet's exact grammar, without weights.

    Args:
        cfg: a path (str, bytes or os.PathLike; a file name in any
            encoding), the cfg text itself, or an already parsed Config
            (returned as is). A str is cfg text only when it contains a
            newline and is not the name of an existing file: ``"[net].cfg"``
            is a file name, ``"[net]\\nwidth=416\\n..."`` text.

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
    return parse(cfg, stacklevel=2)

"""yolo_io.save(): write a Darknet ``.weights`` file, atomically and byte-exact."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import _core
from .._base.errors import ConversionError
from .._base.paths import PathArg
from .._base.progress import Progress, Reporter, bytes_written
from .._model.config import Config, core_config, parse
from .._model.network import Header, Network, core_weights, evict_behind
from .._model.state_dict import as_array, from_state_dict
from .atomic import (
    WriterStream,
    atomic_file,
    network_inputs,
    refuse_inputs,
    refuse_mapped_arrays,
    resolve_target,
)

__all__ = ["WeightsPlan", "plan_weights", "save", "save_npz"]

HeaderArg = Header | tuple[int, int, int] | tuple[int, int, int, int] | None
Params = Mapping[str, Any]


def save(
    path: PathArg,
    source: Network | Mapping[Any, Any],
    cfg: PathArg | Config | None = None,
    *,
    header: HeaderArg = None,
    seen: int | None = None,
    upto: int | None = None,
    progress: Progress = None,
) -> Path:
    """Write a Darknet ``.weights`` file from a network or from arrays.

    Args:
        path: the file to write. It is written under a temporary name in the
            same folder, flushed to disk and renamed over ``path``: an
            interrupted or failed save leaves ``path`` as it was. An input
            (the cfg, the file the network was loaded from) is refused with
            OutputIsInputError, even as a file of the same kind. The
            temporary is ``.yolo_io-XXXXXXXXXXXXXXXX.tmp`` (fixed length, so
            any name that fits the folder can be written); it is removed on
            any error, but a process killed mid-save, or a folder renamed or
            removed during the save, leaves it behind.
        source: a :class:`Network` (its file's bytes are copied by the core
            in 1 MiB parts, so memory does not grow with the model); a mapping of layer index to a dict of darknet's
            parameter names to arrays (e.g. ``{i: dict(net[i].params)}`` with
            some replaced; every layer that stores data must be there); or a
            state dict in a naming :meth:`Network.state_dict` produces,
            recognised from its keys, with NumPy arrays or torch tensors.
        cfg: the cfg the arrays are for (a path, text or Config); a Network
            brings its own, and a different cfg must have the same parameter
            plan.
        header: the header to write: a :class:`Header`, or ``(major, minor,
            revision[, seen])``. Default: the source network's header, else
            version 0.2.5 with ``seen`` 0. Versions below 0.2 write a 32-bit
            ``seen`` (16-byte header); a legacy header (major or minor above
            1000) writes connected weights transposed, as darknet reads them.
        seen: the header's images-seen counter, overriding ``header``'s.
        upto: write only the first ``upto`` layers, byte for byte what
            AlexeyAB darknet's ``darknet partial cfg weights out upto`` writes:
            unless ``header``/``seen`` say otherwise, the header is darknet's
            own version 0.2.5 with ``seen`` 0, whatever the source's header
            (pass ``header=net.header`` to keep the source's).
        progress: a bar on a terminal (None, the default), always (True) or
            never (False), or a callback ``(done, total, what)`` with the
            bytes written so far and the file's size: after each layer, or
            every few MiB when the core copies a Network's bytes. Ctrl-C
            stops a save between parts and leaves the target as it was.

    Returns:
        The path written.

    Raises:
        ConversionError: an array is missing, extra, of another shape, or not
            floating point; the message names the layer, its cfg line and the
            expected and found shapes. Nothing is written then.
        OutputIsInputError: ``path`` is the cfg, or the weights (or
            safetensors) file ``source`` was loaded from, by inode and
            through links. Nothing is written then.
        TypeError: a ``header`` part or ``seen`` that is not an integer.
        ValueError: a header version darknet cannot read back (a negative
            major or minor, a part outside int32; the core's rule, which
            :func:`load` applies too).
        OSError: the folder is not writable, the disk is full, ``path`` is a
            directory; ``path`` is left as it was.
    """
    plan = plan_weights(path, source, cfg, header=header, seen=seen, upto=upto)
    with atomic_file(plan.target) as writer, \
            Reporter(progress, plan.size, "save", what="writing", caller="yolo_io.save",
                     legacy=bytes_written) as report:
        plan.write(writer, report)
        report.finish()
    return Path(plan.target)


@dataclass
class WeightsPlan:
    """What :func:`save` writes, checked against the cfg before any file is
    opened: the target, the header's bytes, and either the source network's
    own bytes (``arrays`` None) or the arrays of each layer."""

    target: str
    header_bytes: bytes
    config: Config
    layers: int
    transpose: bool
    net: Network | None
    arrays: Mapping[int, Params] | None

    @property
    def size(self) -> int:
        """The bytes of the file: its header and the layers' data."""
        data = self.config.expected_size(layers=self.layers) - self.config.expected_size(layers=0)
        return len(self.header_bytes) + data

    def write(self, writer: _core.WeightsWriter,
              progress: Callable[[int], object] | None = None) -> None:
        """The file's bytes, into the core's atomic ``writer``."""
        writer.write(self.header_bytes)
        if self.arrays is None:
            assert self.net is not None
            writer.write_layers(core_weights(self.net), self.layers, progress)
            return
        core = core_config(self.config)
        step = evict_behind(self.net)
        for i in range(self.layers):
            layer_params = self.arrays.get(i)
            if layer_params:
                step(i)
                writer.write(_layer_buffer(core.layer(i), layer_params, self.transpose))
                if progress is not None:
                    progress(writer.written)
        step(None)


def plan_weights(path: PathArg, source: Network | Mapping[Any, Any],
                 cfg: PathArg | Config | None = None, *, header: HeaderArg = None,
                 seen: int | None = None, upto: int | None = None) -> WeightsPlan:
    """Every check of :func:`save` (same arguments and errors), before a byte
    is written: the plan of the file, for :meth:`WeightsPlan.write`."""
    target = resolve_target(path)
    net = source if isinstance(source, Network) else None
    config = _config_for(source, cfg)
    inputs = [("the cfg", config.path)]
    if net is not None:
        inputs += network_inputs(net)
    refuse_inputs(target, inputs)
    if net is None:
        refuse_mapped_arrays(target, source)
    n = len(config) if upto is None else _check_upto(upto, len(config))
    if net is not None and net.covered_layers < n:
        raise ConversionError(f"{net.path} holds the first {net.covered_layers} layers of "
                              f"{config.path}, not {n}: pass upto={net.covered_layers}")
    if upto is not None and header is None:
        # What AlexeyAB darknet's `partial` writes: its own version, 0.2.5, and
        # a seen of 0 (it recomputes seen from an iteration count that a
        # partial load leaves at 0), whatever the source file's header was.
        header = (0, 2, 5, 0)
    head = _header(header, seen, net.header if net is not None else None)
    major, minor, revision, seen_value, _, transpose = head
    header_bytes = _core.header_bytes(major, minor, revision, seen_value)
    if net is not None and transpose == net.header.transpose:
        arrays = None  # the file's own bytes, streamed by the core
    else:
        arrays = _arrays(net if net is not None else source, config, n)
    return WeightsPlan(target, header_bytes, config, n, transpose, net, arrays)


def _check_upto(upto: int, n: int) -> int:
    if isinstance(upto, bool) or not isinstance(upto, (int, np.integer)) or not 0 <= upto <= n:
        raise ValueError(f"upto must be a layer count in 0..{n}, got {upto!r}")
    return int(upto)


def _config_for(source: object, cfg: PathArg | Config | None) -> Config:
    if isinstance(source, Network):
        if cfg is None:
            return source.config
        config = parse(cfg, stacklevel=3)
        if _plan(config) != _plan(source.config):
            raise ConversionError(f"{config.path} plans other arrays than {source.config.path}, "
                                  f"the cfg of the network being saved")
        return config
    if not isinstance(source, Mapping):
        raise TypeError(f"source must be a Network or a mapping of arrays, not "
                        f"{type(source).__name__}")
    if cfg is None:
        raise TypeError("save() of arrays needs the cfg they are for: save(path, arrays, cfg)")
    return parse(cfg, stacklevel=3)


def _plan(config: Config) -> list[tuple[tuple[str, tuple[int, ...]], ...]]:
    return [tuple((s.name, s.shape) for s in layer.param_specs) for layer in config]


def _header(header: HeaderArg, seen: int | None, current: Header | None) -> Header:
    if header is None:
        h = current if current is not None else Header(0, 2, 5, 0, 20, False)
        major, minor, revision, old_seen = h.major, h.minor, h.revision, h.seen
    elif isinstance(header, Header):
        major, minor, revision, old_seen = (_integer(f"the header's {n}", getattr(header, n))
                                            for n in ("major", "minor", "revision", "seen"))
    else:
        values = tuple(header)
        if len(values) not in (3, 4):
            raise ValueError(f"header must be (major, minor, revision[, seen]), got {header!r}")
        names = ("major", "minor", "revision", "seen")
        major, minor, revision = (_integer(f"the header's {n}", v)
                                  for n, v in zip(names, values[:3], strict=False))
        old_seen = (_integer("the header's seen", values[3]) if len(values) == 4
                    else (current.seen if current else 0))
    value = old_seen if seen is None else _integer("seen", seen)
    if not 0 <= value < 2**64:
        raise ValueError(f"seen must be in 0..2**64-1, got {value}")
    for name, v in (("major", major), ("minor", minor), ("revision", revision)):
        if not -2**63 <= v < 2**63:  # the core's int64 (its rule then says int32)
            raise ValueError(f"the header's {name} ({v}) does not fit the header's int32")
    _core.header_bytes(major, minor, revision, 0)  # the core's rule: ValueError
    size = _core.header_size_for(major, minor)
    return Header(major, minor, revision, value, size, major > 1000 or minor > 1000)


def _integer(what: str, value: object) -> int:
    """``value`` as an int: an int or NumPy integer, not a bool or a float
    (0.5 was truncated to 0 without a word)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an integer, not {type(value).__name__} {value!r}")
    return int(value)


def _arrays(source: object, config: Config, n: int) -> dict[int, Params]:
    """Layer index -> {darknet name: array}, checked against the plan of the
    first ``n`` layers before anything is written."""
    if isinstance(source, Network):
        return {layer.index: layer.params for layer in source if layer.index < n}
    assert isinstance(source, Mapping)
    from_state = bool(source) and all(isinstance(k, str) for k in source)
    if from_state:
        layers: dict[int, Params] = dict(from_state_dict(config, source))
    else:
        layers = {}
        for key, value in source.items():
            if isinstance(key, bool) or not isinstance(key, (int, np.integer)):
                raise ConversionError(f"the arrays must be keyed by layer index (int) or be a "
                                      f"state dict (str keys), not {type(key).__name__} {key!r}")
            if not 0 <= int(key) < len(config):
                raise ConversionError(f"layer index {key} is outside {config.path}'s "
                                      f"{len(config)} layers")
            if not isinstance(value, Mapping):
                raise ConversionError(f"layer {key}: expected a dict of darknet's parameter "
                                      f"names to arrays, not {type(value).__name__}")
            layers[int(key)] = value
    out: dict[int, Params] = {}
    for layer in config:
        given = layers.get(layer.index, {})
        specs = layer.param_specs
        if layer.index >= n:
            continue
        expected = {s.name for s in specs}
        extra = sorted(set(given) - expected)
        if extra:
            have = ", ".join(sorted(expected)) if expected else "nothing"
            raise ConversionError(f"{layer.location}: unexpected array {extra[0]!r} (the layer "
                                  f"stores {have})")
        checked: dict[str, npt.NDArray[Any]] = {}
        for s in specs:
            if s.name not in given:
                hint = ""
                if from_state and s.name in ("scales", "rolling_mean", "rolling_variance"):
                    hint = (" (a fused state dict? save() writes darknet's unfused arrays; "
                            "save_fused() writes a darknet model with batch norm folded)")
                raise ConversionError(f"{layer.location}: array {s.name!r} {s.shape} is "
                                      f"missing{hint}")
            a = as_array(given[s.name], f"{layer.location}: array {s.name!r}")
            if a.dtype.kind != "f":
                raise ConversionError(f"{layer.location}: array {s.name!r} has dtype {a.dtype}; "
                                      f"only floating-point arrays are written (as float32)")
            if a.shape != s.shape:
                raise ConversionError(f"{layer.location}: array {s.name!r} has shape {a.shape}, "
                                      f"the cfg expects {s.shape}")
            checked[s.name] = a
        out[layer.index] = checked
    return out


def _layer_buffer(info: _core.LayerInfo, params: Params, transpose: bool) -> npt.NDArray[np.float32]:
    """One layer's data in file order: each array placed by its file strides."""
    buf = np.empty(info.nfloats, np.float32)
    for (name, shape, offset, _), strides in zip(info.param_specs, info.file_strides(transpose),
                                                 strict=True):
        view = np.lib.stride_tricks.as_strided(buf[offset:], shape=shape, strides=strides,
                                               writeable=True)
        np.copyto(view, params[name], casting="same_kind")
    return buf


def save_npz(
    path: PathArg,
    net: Network,
    *,
    fuse: bool = False,
    layout: str | None = None,
    naming: str = "yolo_io",
    dtype: npt.DTypeLike = np.float32,
) -> Path:
    """Write ``net.state_dict(fuse=, layout=, naming=)`` to an ``.npz`` file,
    float arrays in ``dtype`` (float32 or float16), atomically as :func:`save`
    writes (a temporary in the same folder, fsync, rename; the replaced file's
    mode kept). ``np.load`` reads it. A ``path`` that is one of the network's
    files (by inode) raises OutputIsInputError."""
    target = Path(resolve_target(path))
    refuse_inputs(target, network_inputs(net))
    kind = np.dtype(dtype)
    if kind not in (np.dtype(np.float32), np.dtype(np.float16)):
        raise ValueError(f"dtype must be float32 or float16, not {kind}")
    state = net.state_dict(fuse=fuse, layout=layout, naming=naming)
    arrays = {k: v.astype(kind) if v.dtype.kind == "f" else v for k, v in state.items()}
    with atomic_file(str(target)) as writer:
        np.savez(WriterStream(writer), **arrays)  # type: ignore[arg-type]
    return target

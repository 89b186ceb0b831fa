"""yolo_io.save_fused(): a cfg + weights pair with batch norm folded into the
convolutions, for runtimes that want no batch-norm layers."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import _core
from .._base.errors import CfgWarning, ConversionError, YoloIOError
from .._base.paths import PathArg
from .._model.config import CfgLayer, Config, atoi
from .._model.network import Header, Network, load
from .atomic import atomic_file, network_inputs, refuse_inputs, resolve_target
from .weights import plan_weights

__all__ = ["save_fused"]

HeaderArg = Header | tuple[int, int, int] | tuple[int, int, int, int] | None

# The options that switch a conv's batch norm on (cbn forces it, conv.cpp).
_BN_KEYS = ("batch_normalize", "cbn")


def save_fused(
    weights_path: PathArg,
    cfg_path: PathArg,
    net: Network,
    *,
    header: HeaderArg = None,
    cfg_text: str | bytes | None = None,
) -> tuple[Path, Path]:
    """Write ``net`` as a cfg + weights pair with its batch norms folded in.

    Every convolutional or connected layer whose batch norm darknet applies
    (its loaded :attr:`Layer.params` hold ``scales``) gets the arrays of
    :meth:`Layer.fused` (``biases``, then ``weights`` in darknet's OIHW / OI
    layout: what darknet stores for a layer without batch norm), and its
    ``batch_normalize=...`` line in the cfg becomes ``batch_normalize=0``
    (a ``cbn=...`` line that switches batch norm on becomes ``cbn=0``). The
    line keeps its line ending (LF, CRLF); every other byte of the cfg,
    comments and blank lines included, is copied unchanged. Other layers keep
    their arrays. A conv with ``share_index`` whose source is folded and that
    itself has batch norm (it applies the source's) gets its line changed too.

    How exact: the fused values are darknet's ``fuse_conv_batchnorm`` formula
    (epsilon 1e-5) computed in double precision and rounded once to float32,
    so each value is within half a float32 ulp of the exact result. The fused
    network's outputs differ from the original's by float32 rounding only
    (in practice a relative difference of ~1e-6 to 1e-5), not bit for bit.

    Args:
        weights_path: the ``.weights`` file to write.
        cfg_path: the ``.cfg`` file to write. It must differ from
            ``weights_path``; neither may be one of the network's files.
        net: an open, complete (not partial) :class:`Network`.
        header: the header of the new file, as for :func:`yolo_io.save`
            (a :class:`Header` or ``(major, minor, revision[, seen])``).
            Default: the network's own header.
        cfg_text: the cfg text (str or bytes) the network was loaded from.
            Needed only when it was loaded from text (its ``config.path`` is
            ``"<string>"``); by default the cfg file ``net.config.path`` is
            read, or, for a network loaded from a raw safetensors export
            without a cfg, the cfg the export holds. Either way it must parse to the network's cfg (same
            sections, options and line numbers), else ConversionError. Its
            line endings are kept: pass bytes, or text read with
            ``newline=""``, to keep CRLF.

    Returns:
        ``(weights_path, cfg_path)`` as Paths.

    Both files are written by the core's atomic writer, as :func:`save`
    writes, under temporary names in their folders
    (``.yolo_io-XXXXXXXXXXXXXXXX.tmp``: fixed length, so any name that fits
    can be written; a folder renamed meanwhile keeps them); the new pair is
    loaded back with :func:`yolo_io.load` and checked, and only then is each
    fsynced and renamed over its target, cfg first, keeping the mode of the
    file it replaces, and its folder fsynced: a failure before that
    leaves both targets as they were, and neither target is ever partly
    written. The two renames are not one transaction: if the second fails
    (rare: the folder vanished), the new cfg sits beside the old weights.

    Raises:
        YoloIOError: ``net`` is closed.
        ConversionError: ``net`` is partial; the cfg file (or ``cfg_text``)
            is not the cfg the network was loaded from; a ``share_index``
            conv without batch norm reads the arrays of a conv that is folded
            (it would read the folded ones); the new pair does not load back
            as expected. Nothing is written then.
        OutputIsInputError: ``weights_path`` or ``cfg_path`` is one of the
            network's files (its weights file or raw safetensors export, its
            cfg), by inode and through links, or the two are one file.
        ValueError: the network was loaded from cfg text and no ``cfg_text``
            was given; both targets are the same file. (ConversionError and
            OutputIsInputError are ValueErrors too.)
        TypeError: ``net`` is not a Network.
        OSError: a file cannot be read or written; the targets are left as
            they were.

    Example:
        >>> net = yolo_io.load("yolov4.weights", "yolov4.cfg")
        >>> yolo_io.save_fused("yolov4-fused.weights", "yolov4-fused.cfg", net)
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a yolo_io.Network, not {type(net).__name__}")
    if net.closed:
        raise YoloIOError(f"network is closed: {net.path}; save_fused() reads its arrays")
    if net.partial:
        raise ConversionError(f"{net.path} holds the first {net.covered_layers} of the "
                              f"{len(net)} layers of {net.config.path}: save_fused() needs a "
                              f"complete network")
    weights_target, cfg_target = resolve_target(weights_path), resolve_target(cfg_path)
    _check_targets(weights_target, cfg_target, net)
    original = _original_text(net, cfg_text)
    fused, switched, edits = _plan_edits(net)
    edits.update(_repeated_keys(original, net, switched))
    new_text = _edit_lines(original, edits)
    new_config = _check_new_config(net, new_text, fused, switched)
    arrays = _arrays(net, fused)
    head = net.header if header is None else header

    plan = plan_weights(weights_target, arrays, new_config, header=head)
    # The core's atomic writer for both: each is fsynced, keeps the mode of
    # the file it replaces and is renamed over it (cfg first), then its
    # folder is fsynced; any error before the renames removes both.
    with atomic_file(weights_target) as weights, atomic_file(cfg_target) as cfg:
        cfg.write(new_text)
        plan.write(weights)
        _check_written(os.fspath(weights.temporary), os.fspath(cfg.temporary), arrays, fused)
    return Path(weights_target), Path(cfg_target)


def _check_targets(weights: str, cfg: str, net: Network) -> None:
    if os.path.abspath(weights) == os.path.abspath(cfg):
        raise ValueError(f"save_fused() writes two files: weights_path and cfg_path are both "
                         f"{weights}")
    refuse_inputs(weights, [("cfg_path", cfg)])
    hint = "; the arguments are (weights_path, cfg_path, net)"
    inputs = [(what + hint, path) for what, path in network_inputs(net)]
    refuse_inputs(cfg, inputs)
    refuse_inputs(weights, inputs)


def _original_text(net: Network, cfg_text: str | bytes | None) -> bytes:
    """The bytes of the cfg the network was parsed from, checked to be it."""
    if cfg_text is not None:
        if isinstance(cfg_text, str):
            data = cfg_text.encode("utf-8", "surrogateescape")
        elif isinstance(cfg_text, bytes):
            data = cfg_text
        else:
            raise TypeError(f"cfg_text must be str or bytes, not {type(cfg_text).__name__}")
        source = "cfg_text"
    elif net.config.path == f"{net.path} (its cfg)":
        # A raw safetensors export brings its cfg: the bytes the network was
        # parsed from, kept by its Config.
        data = net.config.source
        source = net.config.path
    elif net.config.path == "<string>":
        raise ValueError("the network was loaded from cfg text, not a file: save_fused() "
                         "rewrites the cfg's lines, so pass that text as cfg_text=..., or "
                         "load the network from a cfg file")
    else:
        data = Path(net.config.path).read_bytes()
        source = net.config.path
    try:
        again = Config(_core.parse_cfg_text(data))
    except YoloIOError as err:
        raise ConversionError(f"{source} does not parse as the cfg of {net.path} "
                              f"(changed since it was loaded?): {err}") from err
    if _signature(again) != _signature(net.config):
        raise ConversionError(f"{source} is not the cfg {net.path} was loaded with "
                              f"(changed since it was loaded?)")
    return data


def _signature(config: Config) -> object:
    """What must match for two parses to be the same cfg, line numbers included."""
    return (tuple(config.net_options.items()),
            [(layer.section, layer.line, tuple(layer.options.items()),
              tuple((k, layer.option_line(k)) for k in layer.options), layer.param_specs)
             for layer in config])


def _bn_on(layer: CfgLayer) -> bool:
    return bool(getattr(layer.attrs, "batch_normalize", False))


def _plan_edits(net: Network) -> tuple[set[int], set[int], dict[int, bytes]]:
    """The layers to fold (those owning arrays), the layers whose batch norm is
    switched off (those and the convs sharing their arrays), {cfg line: new text}."""
    fused: set[int] = set()
    switched: set[int] = set()
    edits: dict[int, bytes] = {}

    def switch_off(layer: CfgLayer) -> None:
        switched.add(layer.index)
        # The core's typed value says batch norm is on (batch_normalize= or
        # cbn= not 0): each of the keys given becomes 0, without reading text.
        found = _bn_on(layer)
        for key in _BN_KEYS:
            if found and key in layer.options:
                edits[layer.option_line(key)] = f"{key}=0".encode()
        if not found:  # pragma: no cover - the core planned BN arrays without these options
            raise ConversionError(f"{layer.location}: has batch-norm arrays but no "
                                  f"batch_normalize or cbn option to switch off")

    for layer in net:
        if layer.fusion is not None and "scales" in layer.params:
            fused.add(layer.index)
            switch_off(layer)
    for layer in net:
        root = layer.share_index
        while root is not None and net.config[root].share_index is not None:
            root = net.config[root].share_index
        if root is None or root not in fused:
            continue
        if not _bn_on(layer):
            raise ConversionError(
                f"{layer.location}: shares the arrays of layer {root} (share_index) without "
                f"batch norm; folding layer {root}'s batch norm would change this layer's "
                f"weights and biases, which no cfg can express")
        switch_off(layer)
    return fused, switched, edits


def _repeated_keys(data: bytes, net: Network, switched: set[int]) -> dict[int, bytes]:
    """Later copies of a switched-off layer's batch-norm keys: darknet reads
    the first copy (which _plan_edits() changes), but other cfg parsers
    (darknet2pytorch's, ultralytics') read the last, so every copy becomes 0."""
    lines = data.split(b"\n")
    starts = [layer.line for layer in net.config] + [len(lines) + 1]
    out: dict[int, bytes] = {}
    for k, layer in enumerate(net.config):
        if layer.index not in switched:
            continue
        for n in range(layer.line + 1, starts[k + 1]):
            text = re.sub(rb"\s", b"", lines[n - 1])
            key, eq, value = text.partition(b"=")
            name = key.decode("utf-8", "replace")
            if eq and name in _BN_KEYS and atoi(value.decode("utf-8", "replace")) != 0:
                out[n] = f"{name}=0".encode()
    return out


def _edit_lines(data: bytes, edits: Mapping[int, bytes]) -> bytes:
    """``data`` with each edited line (1-based, lines end at LF as darknet
    reads them) replaced, keeping its line ending (any CRs before the LF)."""
    parts = data.split(b"\n")
    for line, text in edits.items():
        raw = parts[line - 1]
        body = raw.rstrip(b"\r")
        parts[line - 1] = text + raw[len(body):]
    return b"\n".join(parts)


def _check_new_config(net: Network, text: bytes, fused: set[int], switched: set[int]) -> Config:
    """The new cfg, parsed, checked: batch norm off where it was switched off,
    the fused arrays planned, and nothing else changed."""
    try:
        config = Config(_core.parse_cfg_text(text))
    except YoloIOError as err:  # pragma: no cover - only batch_normalize lines changed
        raise ConversionError(f"the fused cfg does not parse: {err}") from err
    if len(config) != len(net):  # pragma: no cover
        raise ConversionError("the fused cfg has other layers than the network")
    for old, new in zip(net.config, config, strict=True):
        specs = old.param_specs
        if old.index in fused:
            shapes = dict(old.param_shapes)
            want = [("biases", shapes["biases"]), ("weights", shapes["weights"])]
        else:
            want = [(s.name, s.shape) for s in specs]
        got = [(s.name, s.shape) for s in new.param_specs]
        bn = _bn_on(new)
        if (got != want or new.output_shape != old.output_shape or new.kind != old.kind
                or bn != (_bn_on(old) and old.index not in switched)):  # pragma: no cover
            raise ConversionError(f"{old.location}: the fused cfg plans {got} (output "
                                  f"{new.output_shape}, batch norm {bn}), expected {want} "
                                  f"(output {old.output_shape})")
    return config


def _arrays(net: Network, fused: set[int]) -> dict[int, dict[str, npt.NDArray[Any]]]:
    out: dict[int, dict[str, npt.NDArray[Any]]] = {}
    for layer in net:
        if layer.index in fused:
            w, b = layer.fused()
            out[layer.index] = {"biases": b, "weights": w}
        else:
            params = layer.params
            if params:
                out[layer.index] = dict(params)
    return out


def _check_written(weights: str, cfg: str, arrays: Mapping[int, Mapping[str, npt.NDArray[Any]]],
                   fused: set[int]) -> None:
    """Load the written pair back; the folded layers' arrays must be those written."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CfgWarning)  # the original's, already shown at load
        check = load(weights, cfg)
    with check:
        for i in sorted(fused):
            params = check[i].params
            for name, want in arrays[i].items():
                if not np.array_equal(params[name], want):  # pragma: no cover
                    raise ConversionError(f"{check[i].location}: {name!r} reads back other "
                                          f"values than were written")

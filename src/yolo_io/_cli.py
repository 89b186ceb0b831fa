"""The ``yolo-io`` command (also ``python -m yolo_io``).

Commands: ``inspect``, ``check``, ``doctor``, ``partial``, ``convert``,
``export``, ``verify``, ``demo``; ``yolo-io COMMAND --help`` describes each.
Exit codes:

====  =======================================================================
0     success: the files are consistent (``check``), no errors (``doctor``),
      the ONNX model matches OpenCV within tolerance (``verify``)
1     the model has a problem: the diagnosis or the error message says which;
      ``verify``: a layer or output above tolerance, or OpenCV cannot check it
2     usage error: unknown command or option, missing argument, an output
      that is one of the inputs (the same file by inode)
3     a file cannot be read or written (missing, permission, a directory)
4     an optional dependency is missing (matplotlib for ``doctor --plot``; onnx,
      onnxruntime, OpenCV < 5 for ``export`` and ``verify``)
70    internal error (a bug in yolo_io): run again with ``--debug`` and report it
130   interrupted (Ctrl-C)
====  =======================================================================

Errors are one line on stderr (``yolo-io: error: ...``); ``--debug`` shows
the traceback instead. Results go to stdout, as text or, with ``--json``, as
one JSON document; with ``--json``, an error also prints
``{"error": message, "exit_code": code}`` to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from . import __version__
from ._attrs import (
    ConnectedAttrs,
    ConvolutionalAttrs,
    LayerAttrs,
    PoolAttrs,
    RegionAttrs,
    RouteAttrs,
    ShortcutAttrs,
    UpsampleAttrs,
    YoloAttrs,
)
from ._config import CfgLayer, Config, parse_cfg
from ._errors import YoloIOError
from ._network import Network, load
from ._paths import shown

__all__ = ["main"]

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, EXIT_IO, EXIT_DEPENDENCY = 0, 1, 2, 3, 4
EXIT_INTERNAL, EXIT_INTERRUPTED = 70, 130

PROG = "yolo-io"
_MAX_ERROR = 1000  # characters of an error line


class _Failure(Exception):
    """A one-line error with its exit code."""

    def __init__(self, message: str, code: int = EXIT_PROBLEM) -> None:
        super().__init__(message)
        self.code = code


class _UsageError(Exception):
    """argparse's complaint about the command line, raised for :func:`main` to
    report (on stdout too with ``--json``) instead of exiting on the spot."""

    def __init__(self, message: str, parser: argparse.ArgumentParser) -> None:
        super().__init__(message)
        self.parser = parser


class _ArgumentParser(argparse.ArgumentParser):
    """The parser of ``yolo-io`` and (by inheritance) of its commands."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message, self)


# The library's messages name Python keywords; shown by this command, they
# name its flags (longest spelling first).
_CLI_WORDS = (
    ("load it with partial=True (yolo_io.load(..., partial=True))", "load it with --partial"),
    ("yolo_io.load(..., partial=True)", "--partial"),
    ("partial=True", "--partial"),
    ("score_threshold", "--score-threshold"),
    ("iou_threshold", "--iou-threshold"),
    ("max_detections", "--max-detections"),
    ("seen must be", "--seen must be"),
    ("layout must be", "--layout must be"),
)


def _cli_words(text: str) -> str:
    """``text`` with the library's keyword spellings replaced by this
    command's flags ("pass partial=True" becomes "pass --partial")."""
    for python, flag in _CLI_WORDS:
        text = text.replace(python, flag)
    return text


def _cli_words_in(doc: Any) -> Any:
    """:func:`_cli_words` applied to every string of a JSON document."""
    if isinstance(doc, str):
        return _cli_words(doc)
    if isinstance(doc, list):
        return [_cli_words_in(v) for v in doc]
    if isinstance(doc, dict):
        return {k: _cli_words_in(v) for k, v in doc.items()}
    return doc


# -- inspect --------------------------------------------------------------------


def _shape(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


def _details(layer: CfgLayer, attrs: LayerAttrs) -> str:
    """The main hyperparameters of a layer, compactly."""
    if isinstance(attrs, ConvolutionalAttrs):
        stride = (str(attrs.stride_x) if attrs.stride_x == attrs.stride_y
                  else f"{attrs.stride_y},{attrs.stride_x}")
        text = f"{attrs.filters} {attrs.size}x{attrs.size}/{stride}"
        text += f" g{attrs.groups}" if attrs.groups > 1 else ""
        text += f" d{attrs.dilation}" if attrs.dilation > 1 else ""
        text += " bn" if attrs.batch_normalize else ""
        text += f" share={attrs.share_index}" if attrs.share_index is not None else ""
        return text
    if isinstance(attrs, PoolAttrs):
        return f"{attrs.size}x{attrs.size}/{attrs.stride_x}"
    if isinstance(attrs, RouteAttrs):
        text = "layers=" + ",".join(map(str, attrs.input_layers))
        return text + (f" group {attrs.group_id}/{attrs.groups}" if attrs.groups > 1 else "")
    if isinstance(attrs, ShortcutAttrs):
        return "from=" + ",".join(map(str, attrs.input_layers[1:]))
    if isinstance(attrs, UpsampleAttrs):
        return f"x{attrs.stride}"
    if isinstance(attrs, YoloAttrs):
        return f"classes={attrs.classes} mask={','.join(map(str, attrs.mask))}"
    if isinstance(attrs, RegionAttrs):
        return f"classes={attrs.classes} num={attrs.num}"
    if isinstance(attrs, ConnectedAttrs):
        return f"{attrs.outputs}" + (" bn" if attrs.batch_normalize else "")
    # Any other kind: its first few plain fields (the activation has its column).
    plain = [f"{f.name}={_plain(getattr(attrs, f.name))}" for f in dataclasses.fields(attrs)
             if f.name != "activation"
             and isinstance(getattr(attrs, f.name), (bool, int, float, str))]
    return " ".join(plain[:3])


def _plain(value: object) -> str:
    return str(int(value)) if isinstance(value, bool) else f"{value:g}" if isinstance(
        value, float) else str(value)


def _layer_row(layer: CfgLayer, net: Network | None) -> dict[str, Any]:
    attrs = layer.attrs
    row: dict[str, Any] = {
        "index": layer.index, "type": layer.type, "section": layer.section, "line": layer.line,
        "inputs": list(layer.inputs), "input_shape": list(layer.input_shape),
        "output_shape": list(layer.output_shape), "activation": layer.activation,
        "details": _details(layer, attrs), "attrs": dataclasses.asdict(attrs),
        "params": {name: list(shape) for name, shape in layer.param_shapes.items()},
        "param_count": layer.param_count, "bytes": 4 * layer.param_count,
    }
    row["input_shapes"] = [list(s) for s in layer.input_shapes] or [row["input_shape"]]
    if net is not None:
        row["offset"] = net[layer.index].offset
        row["loaded"] = net[layer.index].loaded
    return row


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int],
           out: TextIO) -> None:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    out.write("\n".join([fmt(headers), *(fmt(r) for r in rows)]) + "\n")


def _check_paths(command: str, cfg: str, weights: str | None, *, swap: bool = True) -> None:
    """Refuses swapped arguments, with the command line the right way round.
    (A file name in any encoding is fine: argv's bytes that are not UTF-8
    arrive as surrogate escapes, which every yolo_io function takes.)"""
    if not swap or weights is None:
        return
    from ._network import file_kinds

    if file_kinds(weights, cfg) == ("cfg", "weights"):
        raise _Failure(f"the arguments look swapped: {cfg} is a Darknet .weights file and "
                       f"{weights} a .cfg; the cfg comes first: {PROG} {command} "
                       f"{shlex.quote(weights)} {shlex.quote(cfg)}")


def _load_or_fail(weights: str, cfg: Config | str, partial: bool) -> Network:
    try:
        return load(weights, cfg, partial=partial)
    except YoloIOError as err:
        first = str(err).split("\n", 1)[0]
        cfg_path = cfg.path if isinstance(cfg, Config) else cfg
        raise _Failure(f"{first} (for a diagnosis: {PROG} check {shlex.quote(cfg_path)} "
                       f"{shlex.quote(weights)})") from err


def _cmd_inspect(args: argparse.Namespace) -> int:
    _check_paths("inspect", args.cfg, args.weights)
    if args.weights is None:
        from ._network import file_kinds

        kind = (file_kinds(args.cfg, args.cfg) or ("", ""))[0]
        if kind in ("weights", "safetensors"):
            what = "Darknet .weights" if kind == "weights" else ".safetensors"
            raise _Failure(f"{args.cfg} is a {what} file, not a cfg; the cfg comes first: "
                           f"{PROG} inspect CFG [WEIGHTS], e.g. {PROG} inspect model.cfg "
                           f"{shlex.quote(args.cfg)}", EXIT_USAGE)
    config = parse_cfg(Path(args.cfg))
    net = _load_or_fail(args.weights, config, args.partial) if args.weights else None
    rows = [_layer_row(layer, net) for layer in config]
    totals = {"layers": len(config), "param_count": config.param_count,
              "bytes": 4 * config.param_count, "expected_size": config.expected_size()}
    header: dict[str, Any] | None = None
    if net is not None:
        h = net.header
        header = {"version": [h.major, h.minor, h.revision], "seen": h.seen, "size": h.size,
                  "transpose": h.transpose}
        totals["expected_size"] = config.expected_size((h.major, h.minor))
        totals["covered_layers"] = net.covered_layers
    if args.json:
        json.dump({"cfg": config.path, "weights": args.weights, "header": header,
                   "input_shape": list(config.input_shape), "layers": rows, "totals": totals},
                  sys.stdout, indent=1)
        sys.stdout.write("\n")
        return EXIT_OK
    out = sys.stdout
    out.write(f"{config.path}: {len(config)} layers, input {_shape(config.input_shape)}\n")
    if net is not None:
        h = net.header
        out.write(f"{args.weights}: version {h.major}.{h.minor}.{h.revision}, seen {h.seen}, "
                  f"{h.size}-byte header"
                  + (", legacy transposed connected weights" if h.transpose else "")
                  + (f", partial: {net.covered_layers} layers" if net.partial else "")
                  + "\n")
    headers = ["#", "type", "line", "input", "output", "act", "details", "params", "bytes"]
    if net is not None:
        headers.append("offset")
    table = []
    for r in rows:
        cells = [str(r["index"]), r["type"], str(r["line"]),
                 "+".join(_shape(s) for s in r["input_shapes"]),
                 _shape(r["output_shape"]), r["activation"] or "", r["details"],
                 f"{r['param_count']:,}" if r["param_count"] else "",
                 f"{r['bytes']:,}" if r["param_count"] else ""]
        if net is not None:
            cells.append(f"{r['offset']:,}" if r["param_count"] else "")
        table.append(cells)
    _table(headers, table, {0, 2, 7, 8, 9}, out)
    out.write(f"total: {totals['layers']} layers, {totals['param_count']:,} parameters, "
              f"{totals['bytes']:,} bytes of data; a .weights file of "
              f"{totals['expected_size']:,} bytes\n")
    return EXIT_OK


# -- check ----------------------------------------------------------------------


def _cmd_check(args: argparse.Namespace) -> int:
    from ._diagnose import diagnose

    _check_paths("check", args.cfg, args.weights, swap=False)  # a finding of the diagnosis
    for path in (args.data, args.names):
        if path is not None:
            _check_paths("check", path, None)
    report = diagnose(args.weights, args.cfg, data=args.data, names=args.names,
                      partial=args.partial)
    if args.json:
        json.dump(_cli_words_in(report.to_dict()), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(_cli_words(_check_text(report)) + "\n")
    return EXIT_OK if report.ok else EXIT_PROBLEM


def _check_text(report: Any) -> str:
    if report.ok:
        lines = [f"ok: {report.weights} fits {report.cfg}"]
        lines += [str(f) for f in report.findings]
        return "\n".join(lines)
    return str(report)


# -- doctor ---------------------------------------------------------------------


def _cmd_doctor(args: argparse.Namespace) -> int:
    from ._doctor import doctor, plot

    _check_paths("doctor", args.cfg, args.weights)
    _check_outputs(args, args.plot)
    net = _load_or_fail(args.weights, args.cfg, args.partial)
    if args.plot is not None:  # --plot "" too: plot() refuses an empty name
        _require("matplotlib", "plot")
    progress = False if args.no_progress else None
    findings = doctor(net, progress=progress)
    arrays = sum(len(layer.param_specs) for layer in net if layer.loaded)
    floats = sum(layer.param_count for layer in net if layer.loaded)
    plotted = None
    if args.plot is not None:
        plotted = plot(net, args.plot, findings)
    errors = sum(f.severity == "error" for f in findings)
    if args.json:
        json.dump({"weights": net.path, "cfg": net.config.path, "ok": errors == 0,
                   "arrays": arrays, "values": floats, "plot": str(plotted) if plotted else None,
                   "findings": [f.to_dict() for f in findings]}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for f in findings:
            sys.stdout.write(f"{f}\n")
        verdict = (f"{errors} error(s), {len(findings) - errors} warning(s)" if findings
                   else "no problems found")
        sys.stdout.write(f"doctor: {arrays} arrays, {floats:,} values in {net.path}: "
                         f"{verdict}\n")
        if plotted:
            sys.stdout.write(f"plot: {plotted}\n")
    return EXIT_PROBLEM if errors else EXIT_OK


def _require(module: str, extra: str) -> None:
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as err:
        raise _Failure(f"{module} cannot be imported ({err}): pip install 'yolo_io[{extra}]'",
                       EXIT_DEPENDENCY) from err


# -- partial and convert ---------------------------------------------------------


@contextlib.contextmanager
def _saving_bar(total: int, desc: str) -> Iterator[Callable[[int], object] | None]:
    """The ``progress`` callback of a save, drawing a bar on a terminal (None
    elsewhere); the bar is closed on leaving."""
    from ._progress import progress_bar

    bar = progress_bar(total, None, desc)
    if bar is None:
        yield None
        return
    done = [0]

    def update(written: int) -> None:
        bar.update(written - done[0])
        done[0] = written

    try:
        yield update
    finally:
        bar.close()


def _check_outputs(args: argparse.Namespace, *outputs: str | os.PathLike[str] | None) -> None:
    """Refuses an output that is one of the inputs (it would be replaced): the
    same file by inode (through symbolic and hard links), as every writer of
    the library checks it (refuse_inputs)."""
    from ._errors import OutputIsInputError
    from ._save import refuse_inputs

    for out in outputs:
        if out is None:
            continue
        try:
            refuse_inputs(out, [("the input CFG", args.cfg), ("the input WEIGHTS", args.weights)])
        except OutputIsInputError as err:
            raise _Failure(str(err), EXIT_USAGE) from err


def _cmd_partial(args: argparse.Namespace) -> int:
    from ._save import save

    _check_paths("partial", args.cfg, args.weights)
    _check_outputs(args, args.output)
    net = _load_or_fail(args.weights, args.cfg, args.partial)
    if not 0 <= args.layers <= len(net):
        raise _Failure(f"N must be a layer count in 0..{len(net)} for {net.config.path}, got "
                       f"{args.layers}", EXIT_USAGE)
    with _saving_bar(net.config.expected_size(net.header[:2], layers=args.layers),
                     "partial") as update:
        out = save(args.output, net, upto=args.layers, progress=update)
    kept = f"layers 0..{args.layers - 1}" if args.layers else "no layer"
    sys.stdout.write(f"wrote {out}: darknet partial's header (version 0.2.5, seen 0) and {kept} "
                     f"of {net.path}, {out.stat().st_size:,} bytes; load it with "
                     f"--partial\n")
    return EXIT_OK


_CONVERT_SUFFIXES = (".weights", ".safetensors", ".npz")


def _cmd_convert(args: argparse.Namespace) -> int:
    try:
        return _convert(args)
    except ValueError as err:  # an option the output cannot take (seen too large, ...)
        if isinstance(err, YoloIOError):  # ConversionError: the model's problem
            raise
        raise _Failure(str(err), EXIT_USAGE) from err


def _convert(args: argparse.Namespace) -> int:
    import numpy as np

    from ._save import save, save_npz

    _check_paths("convert", args.cfg, args.weights)
    if args.cfg_output and not args.fuse:
        raise _Failure("--cfg-output is where --fuse writes its cfg; it needs --fuse", EXIT_USAGE)
    if args.seen is not None and args.seen < 0:
        raise _Failure(f"--seen must be >= 0, got {args.seen}", EXIT_USAGE)
    suffix = Path(args.output).suffix.lower()
    # --fuse to .weights also writes a cfg: --cfg-output, else OUT with .cfg,
    # which is checked against the inputs like any output.
    cfg_out = (Path(args.cfg_output or Path(args.output).with_suffix(".cfg"))
               if suffix == ".weights" and args.fuse else None)
    _check_outputs(args, args.output, cfg_out or args.cfg_output)
    if suffix not in _CONVERT_SUFFIXES:
        raise _Failure(f"-o {args.output}: the format comes from the suffix, one of "
                       f"{', '.join(_CONVERT_SUFFIXES)}", EXIT_USAGE)
    net = _load_or_fail(args.weights, args.cfg, args.partial)
    if suffix == ".weights" and args.fuse:
        from ._save_fused import save_fused

        if args.layout or args.naming or args.dtype != "float32":
            raise _Failure("--layout, --naming and --dtype do not apply to a darknet model",
                           EXIT_USAGE)
        assert cfg_out is not None
        header = None if args.version is None else _version(args.version)
        weights_out, cfg_written = save_fused(args.output, cfg_out, net, header=header)
        sys.stdout.write(f"wrote {cfg_written} (batch norm folded) and {weights_out} "
                         f"({weights_out.stat().st_size:,} bytes)\n")
        return EXIT_OK
    if suffix == ".weights":
        if args.layout or args.naming or args.dtype != "float32":
            raise _Failure("--layout, --naming and --dtype apply to .safetensors and .npz "
                           "output; a .weights file is darknet's own layout", EXIT_USAGE)
        header = None if args.version is None else _version(args.version)
        with _saving_bar(net.raw.size, "convert") as update:
            out = save(args.output, net, header=header, seen=args.seen, progress=update)
    elif suffix == ".safetensors":
        from ._safetensors import save_safetensors

        with _saving_bar(net.raw.size, "convert") as update:
            out = save_safetensors(args.output, net, fuse=args.fuse, layout=args.layout,
                                   dtype=args.dtype, naming=args.naming, progress=update)
    else:
        if args.dtype == "bfloat16":
            raise _Failure("--dtype bfloat16 applies to .safetensors output; .npz has no "
                           "bfloat16", EXIT_USAGE)
        out = save_npz(args.output, net, fuse=args.fuse, layout=args.layout,
                       naming=args.naming or "yolo_io", dtype=np.dtype(args.dtype))
    sys.stdout.write(f"wrote {out} ({out.stat().st_size:,} bytes)\n")
    return EXIT_OK


def _version(text: str) -> tuple[int, int, int]:
    parts = text.split(".")
    if len(parts) != 3 or not all(p and p.isascii() and p.isdigit() for p in parts):
        raise _Failure(f"--version must be MAJOR.MINOR.REVISION, e.g. 0.2.5, not {text!r}",
                       EXIT_USAGE)
    return int(parts[0]), int(parts[1]), int(parts[2])


# -- export and verify -------------------------------------------------------------


def _stage(text: str) -> None:
    """A progress line on stderr, only on a terminal."""
    try:
        tty = sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty:
        sys.stderr.write(f"{PROG}: {text}...\n")
        sys.stderr.flush()


def _cmd_export(args: argparse.Namespace) -> int:
    _check_paths("export", args.cfg, args.weights)
    _check_outputs(args, args.output)
    nms = {"--score-threshold": args.score_threshold, "--iou-threshold": args.iou_threshold,
           "--max-detections": args.max_detections}
    given = [name for name, value in nms.items() if value is not None]
    if given and args.outputs != "nms":
        raise _Failure(f"{', '.join(given)} apply to --outputs nms", EXIT_USAGE)
    _require("onnx", "onnx")
    from .onnx import export, head_output_names

    net = _load_or_fail(args.weights, args.cfg, False)
    options: dict[str, Any] = {}
    if args.score_threshold is not None:
        options["score_threshold"] = args.score_threshold
    if args.iou_threshold is not None:
        options["iou_threshold"] = args.iou_threshold
    if args.max_detections is not None:
        options["max_detections"] = args.max_detections
    _stage(f"exporting {net.config.path} to ONNX")
    started = time.time()
    try:
        out = Path(export(net, args.output, opset=args.opset, outputs=args.outputs,
                          dtype=args.dtype, dynamic_batch=not args.static_batch,
                          mish=args.mish, intermediates=args.intermediates, **options))
    except ValueError as err:  # an option the export cannot take (opset, mish, NMS settings)
        if isinstance(err, YoloIOError):  # ConversionError: the model's problem
            raise
        raise _Failure(str(err), EXIT_USAGE) from err
    heads = head_output_names(net)
    names = (heads if args.outputs == "raw" or heads == ["output"] else
             ["boxes", "objectness", "scores"] + (["selected"] if args.outputs == "nms" else []))
    if args.intermediates:
        names.append("layer_{i} for every layer")
    data = out.with_name(out.name + ".data")
    try:
        external = data.is_file() and data.stat().st_mtime >= started - 1
    except OSError:  # OUT's name leaves no room for ".data" (ENAMETOOLONG): none written
        external = False
    sys.stdout.write(f"wrote {out} ({out.stat().st_size:,} bytes"
                     + (f"; weights in {data}, {data.stat().st_size:,} bytes" if external
                        else "")
                     + f"): opset {args.opset}, {args.dtype} weights, outputs "
                     f"{', '.join(names)}\n")
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    from ._verify import verify

    _check_paths("verify", args.cfg, args.weights)
    for name, value in (("--atol", args.atol), ("--rtol", args.rtol)):
        if value is not None and not value >= 0:
            raise _Failure(f"{name} must be >= 0, got {value:g}", EXIT_USAGE)
    net = _load_or_fail(args.weights, args.cfg, False)
    try:
        result = verify(net, onnx_path=args.onnx, image=args.image, dtype=args.dtype,
                        atol=args.atol, rtol=args.rtol, progress=_stage)
    except ImportError as err:
        raise _Failure(str(err), EXIT_DEPENDENCY) from err
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(result.summary(all_layers=args.all_layers) + "\n")
    return EXIT_OK if result.ok and (result.complete or not args.strict) else EXIT_PROBLEM


# -- demo -----------------------------------------------------------------------

DEMO_CFG = """\
# A small YOLO-style detector written for `yolo-io demo`: two heads,
# 2 classes, a 96x96 input. Written by the yolo_io project.
[net]
width=96
height=96
channels=3

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=32
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=64
size=3
stride=2
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters={filters}
activation=linear

[yolo]
mask=3,4,5
anchors=10,14, 23,27, 37,58, 81,82, 135,169, 344,319
classes={classes}
num=6

[route]
layers=-3

[upsample]
stride=2

[route]
layers=-1,-6

[convolutional]
size=1
stride=1
pad=1
filters={filters}
activation=linear

[yolo]
mask=0,1,2
anchors=10,14, 23,27, 37,58, 81,82, 135,169, 344,319
classes={classes}
num=6
"""


def demo_cfg(classes: int = 2) -> str:
    """The demo's cfg text for ``classes`` classes."""
    return DEMO_CFG.format(classes=classes, filters=3 * (classes + 5))


def _cmd_demo(args: argparse.Namespace) -> int:
    import numpy as np

    from ._save import WriterStream, atomic_file
    from .testing import write_weights

    names = ("demo.cfg", "demo.weights", "demo-3classes.weights", "demo-fused-hwio.npz")
    if args.dir:
        folder = Path(args.dir)
        taken = [n for n in names if (folder / n).exists()]
        if taken:
            raise _Failure(f"{folder} already has {', '.join(taken)}: the demo does not "
                           f"overwrite files; choose another --dir", EXIT_IO)
        folder.mkdir(parents=True, exist_ok=True)
    else:
        folder = Path(tempfile.mkdtemp(prefix="yolo_io-demo-"))
    out = sys.stdout
    try:
        cfg, weights = folder / "demo.cfg", folder / "demo.weights"
        with atomic_file(str(cfg)) as writer:  # the one atomic writer, as every file
            writer.write(demo_cfg(2).encode())
        write_weights(weights, cfg, seed=0, realistic=True)
        out.write(f"yolo-io demo: wrote {cfg} (a 2-class YOLO-style model written by yolo_io) "
                  f"and {weights} ({weights.stat().st_size:,} bytes of random weights from "
                  f"yolo_io.testing)\n\n$ {PROG} inspect {cfg} {weights}\n")
        out.flush()
        _run(["inspect", str(cfg), str(weights)])
        out.write(f"\n$ {PROG} check {cfg} {weights}\n")
        out.flush()
        _run(["check", str(cfg), str(weights)])
        three = folder / "demo-3classes.weights"
        write_weights(three, demo_cfg(3), seed=1, realistic=True)
        out.write(f"\nNow weights trained for 3 classes ({three.name}) against the 2-class cfg:"
                  f"\n$ {PROG} check {cfg} {three}\n")
        out.flush()
        code = _run(["check", str(cfg), str(three)])
        out.write(f"(exit code {code}: the pair does not fit, and the lines to change are named)"
                  f"\n\nFused export: batch norm folded into each convolution, HWIO layout\n")
        with load(weights, cfg) as net:
            fused = net.fused_all(layout="HWIO")
            arrays = {f"layer{i}.{k}": a for i, (w, b) in fused.items()
                      for k, a in (("weight", w), ("bias", b))}
            npz = folder / "demo-fused-hwio.npz"
            with atomic_file(str(npz)) as writer:
                np.savez(WriterStream(writer), **arrays)  # type: ignore[arg-type]
            for i, (w, b) in fused.items():
                out.write(f"  layer {i}: weight {_shape(w.shape)}, bias {_shape(b.shape)}\n")
        out.write(f"wrote {npz} ({npz.stat().st_size:,} bytes, {len(arrays)} arrays)\n")
        if args.dir:
            out.write(f"\nThe files are in {folder}; try `{PROG} doctor {cfg} {weights}`.\n")
        else:
            out.write(f"\n{folder} is temporary and now removed; `{PROG} demo --dir DIR` "
                      f"keeps the files.\n")
    finally:
        if not args.dir:
            shutil.rmtree(folder, ignore_errors=True)
    return EXIT_OK


def _run(argv: list[str]) -> int:
    """Runs a command of this CLI in this process."""
    args = _parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    sys.stdout.flush()
    return func(args)


# -- the parser and main ----------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    from ._verify import TOLERANCES

    common = _ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error")
    # The CFG WEIGHTS pair most commands take, and the option that accepts a
    # partial (backbone) weights file.
    pair = _ArgumentParser(add_help=False)
    pair.add_argument("cfg", metavar="CFG", help="the .cfg file")
    pair.add_argument("weights", metavar="WEIGHTS", help="its .weights file")
    backbone = _ArgumentParser(add_help=False)
    backbone.add_argument("--partial", action="store_true",
                          help="accept a partial (backbone) weights file as the input")
    parser = _ArgumentParser(
        prog=PROG, parents=[common],
        description="Inspect, check and diagnose Darknet (YOLO) .cfg + .weights pairs.",
        epilog="Exit codes: 0 ok; 1 the model has a problem; 2 usage error; 3 a file cannot be "
               "read or written; 4 an optional dependency is missing; 70 internal error; "
               "130 interrupted.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    p = sub.add_parser("inspect", parents=[common, backbone],
                       help="one row per layer, with totals",
                       description="One row per layer: index, type, cfg line, input and output "
                                   "shapes, activation, main hyperparameters, parameters, bytes "
                                   "and (with WEIGHTS) file offset.")
    p.add_argument("cfg", metavar="CFG", help="the .cfg file")
    p.add_argument("weights", metavar="WEIGHTS", nargs="?",
                   help="its .weights file (optional: adds the header and file offsets)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("check", parents=[common, pair, backbone],
                       help="is this pair consistent? if not, why",
                       description="Exit 0 when the weights fit the cfg; otherwise print the "
                                   "diagnosis (what is wrong and which cfg lines to change) and "
                                   "exit 1.")
    p.add_argument("--data", metavar="FILE", help="darknet's .data file (classes=, names=)")
    p.add_argument("--names", metavar="FILE", help="a .names file, one class per line")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("doctor", parents=[common, pair, backbone],
                       help="find broken values in the weights",
                       description="Find NaN or Inf, zero or negative rolling variances, dead "
                                   "(all-zero) filters and extreme batch-norm scales, each with "
                                   "its layer. A progress bar shows on a terminal.")
    p.add_argument("--plot", metavar="PNG",
                   help="draw per-layer weight magnitudes and batch-norm statistics "
                        "(needs matplotlib: pip install 'yolo_io[plot]')")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_doctor)

    p = sub.add_parser("partial", parents=[common, pair, backbone],
                       help="the first N layers, as darknet partial writes them",
                       description="Write the first N layers of WEIGHTS byte for byte as "
                                   "AlexeyAB's `darknet partial CFG WEIGHTS OUT N` does (a "
                                   "backbone to train from, e.g. yolov4.conv.137): header "
                                   "version 0.2.5, seen 0.")
    p.add_argument("layers", metavar="N", type=int, help="how many layers to keep")
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="the file to write")
    p.set_defaults(func=_cmd_partial)

    p = sub.add_parser("convert", parents=[common, pair, backbone],
                       help="write .weights, .safetensors or .npz",
                       description="Write the model in the format of OUT's suffix: .weights "
                                   "(another header version or seen; byte-exact otherwise; with "
                                   "--fuse a darknet model with batch norm folded, cfg and "
                                   "weights), .safetensors (a raw darknet export, or a state "
                                   "dict with --naming/--fuse/--layout/--dtype) or .npz (a "
                                   "state dict). Files are written atomically.")
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="the file to write")
    p.add_argument("--fuse", action="store_true",
                   help="fold batch norm into the convolutions (.weights: also writes the cfg "
                        "with batch_normalize=0, OUT with the suffix .cfg or --cfg-output)")
    p.add_argument("--cfg-output", metavar="CFG_OUT",
                   help="where --fuse writes the cfg of a .weights output")
    p.add_argument("--layout", metavar="LAYOUT",
                   help="OIHW, HWIO or OHWI (default: the layer kind's, OIHW)")
    p.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"),
                   help="of the arrays (.safetensors, .npz; bfloat16: .safetensors only)")
    p.add_argument("--naming", choices=("yolo_io", "darknet2pytorch", "ultralytics"),
                   help="parameter names (.safetensors: default a raw darknet export that "
                        "yolo_io.load() reads without a cfg; .npz: default yolo_io)")
    p.add_argument("--version", metavar="M.m.r",
                   help="header version of a .weights output (default: the input's)")
    p.add_argument("--seen", type=int, help="images-seen counter of a .weights output")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("export", parents=[common, pair], help="write an ONNX model",
                       description="Write the network as an ONNX model (needs the onnx "
                                   "package: pip install 'yolo_io[onnx]'). Its input `input` "
                                   "is N x C x H x W float32, RGB in [0, 1], resized (or "
                                   "letterboxed) as darknet does. The file is written "
                                   "atomically.")
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, 13 or later (default 17)")
    p.add_argument("--outputs", choices=("raw", "decoded", "nms"), default="raw",
                   help="raw: each head's input (head_{i}), or `output` for a classifier; "
                        "decoded: boxes, objectness, scores; nms: those plus `selected` "
                        "(default raw)")
    p.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                   help="of the stored weights; float16 halves the file, computation stays "
                        "float32 (default float32)")
    p.add_argument("--static-batch", action="store_true",
                   help="a batch of 1 instead of a symbolic batch dimension")
    p.add_argument("--mish", choices=("auto", "decomposed", "native"), default="auto",
                   help="decomposed: x*tanh(softplus(x)) (any runtime); native: the Mish op "
                        "(opset 18+); auto: native from opset 18")
    p.add_argument("--intermediates", action="store_true",
                   help="also output every layer as layer_{i} (what `verify` compares)")
    p.add_argument("--score-threshold", type=float, metavar="S",
                   help="with --outputs nms: minimum score (default 0.25)")
    p.add_argument("--iou-threshold", type=float, metavar="T",
                   help="with --outputs nms: IoU above which boxes are suppressed "
                        "(default 0.45)")
    p.add_argument("--max-detections", type=int, metavar="N",
                   help="with --outputs nms: boxes kept per class and image (default 100)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("verify", parents=[common, pair],
                       help="the ONNX export against OpenCV's Darknet importer",
                       description="Run one image through OpenCV's Darknet importer and "
                                   "onnxruntime on the ONNX export, compare every layer both "
                                   "expose and each output, and name the first layer that "
                                   "diverges. Exit 0 within tolerance, 1 above it. Needs onnx, "
                                   "onnxruntime and opencv-python-headless<5 (pip install "
                                   "'yolo_io[verify]'); the default image needs scikit-image.")
    p.add_argument("--onnx", metavar="MODEL",
                   help="check this model (default: export one on the fly, with every layer "
                        "as an output); layer by layer if it has layer_{i} outputs "
                        "(export --intermediates), else its outputs only")
    p.add_argument("--image", metavar="PATH",
                   help="the image to feed (default: scikit-image's astronaut)")
    p.add_argument("--dtype", choices=("float32", "float16"),
                   help="the export's weights dtype, which sets the tolerance (default: "
                        "float32, or --onnx's own)")
    (atol32, rtol32), (atol16, rtol16) = TOLERANCES["float32"], TOLERANCES["float16"]
    p.add_argument("--atol", type=float, metavar="A",
                   help=f"absolute tolerance (default {atol32:g} float32, {atol16:g} float16)")
    p.add_argument("--rtol", type=float, metavar="R",
                   help=f"tolerance relative to a tensor's largest value (default {rtol32:g} "
                        f"float32, {rtol16:g} float16); within tolerance: max abs <= A or "
                        f"max rel <= R")
    p.add_argument("--all-layers", action="store_true",
                   help="list every compared layer, not only the worst")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 unless every layer and an output could be compared (a cfg "
                        "OpenCV gets wrong from some layer on is otherwise verified up to it)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("demo", parents=[common], help="see the tool work, no downloads",
                       description="Write a small YOLO-style model (a cfg written by yolo_io, "
                                   "random weights from yolo_io.testing) and run inspect, check "
                                   "and a fused export on it.")
    p.add_argument("--dir", metavar="DIR",
                   help="write the files here and keep them (default: a temporary folder, "
                        "removed at the end)")
    p.set_defaults(func=_cmd_demo)
    return parser


def _message(err: BaseException) -> tuple[str, int]:
    if isinstance(err, _Failure):
        return _cli_words(str(err)), err.code
    if isinstance(err, OSError):
        where = err.filename if err.filename is not None else ""
        text = err.strerror or str(err)
        return (f"{where}: {text}" if where else text), EXIT_IO
    if isinstance(err, YoloIOError):
        return _cli_words(str(err).split("\n", 1)[0]), EXIT_PROBLEM
    return (f"internal error: {type(err).__name__}: {err} (run again with --debug and report "
            f"it)"), EXIT_INTERNAL


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    for text in shown(str(message)).splitlines():
        sys.stderr.write(f"{PROG}: warning: {text}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``yolo-io`` with ``argv`` (default: the command line); returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = _parser().parse_args(argv)
    except _UsageError as err:  # argparse's own report, and a JSON document if asked for
        err.parser.print_usage(sys.stderr)
        sys.stderr.write(f"{err.parser.prog}: error: {shown(str(err))}\n")
        options = argv[:argv.index("--")] if "--" in argv else argv
        names = [a.partition("=")[0] for a in options]  # --json=1 is a usage error too
        if any(len(a) > 2 and "--json".startswith(a) for a in names):
            json.dump({"error": shown(str(err)), "exit_code": EXIT_USAGE}, sys.stdout)
            sys.stdout.write("\n")
        return EXIT_USAGE
    debug = getattr(args, "debug", False)
    # A file name that is not UTF-8 is printed as its bytes, as ls prints it.
    errors = getattr(sys.stdout, "errors", None)
    if errors is not None:
        with contextlib.suppress(AttributeError, ValueError):
            sys.stdout.reconfigure(errors="surrogateescape")  # type: ignore[union-attr]
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return int(args.func(args))
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`yolo-io inspect ... | head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as err:
        if debug:
            raise
        text, code = _message(err)
        text = " ".join(shown(text).split())
        if len(text) > _MAX_ERROR:
            text = text[:_MAX_ERROR] + f"... ({len(text) - _MAX_ERROR} more characters)"
        sys.stderr.write(f"{PROG}: error: {text}\n")
        if getattr(args, "json", False):  # a JSON reader gets a document too
            json.dump({"error": text, "exit_code": code}, sys.stdout)
            sys.stdout.write("\n")
        return code
    finally:
        if errors is not None:
            with contextlib.suppress(AttributeError, ValueError, OSError):
                sys.stdout.reconfigure(errors=errors)  # type: ignore[union-attr]

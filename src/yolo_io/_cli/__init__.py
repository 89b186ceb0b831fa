"""The ``yolo-io`` command (also ``python -m yolo_io``).

Commands: ``inspect``, ``check``, ``doctor``, ``partial``, ``convert``,
``export``, ``verify``, ``detect``, ``check-data``, ``demo``; ``yolo-io
COMMAND --help`` describes each.
Exit codes:

====  =======================================================================
0     success: the files are consistent (``check``), no errors (``doctor``),
      the ONNX model matches OpenCV within tolerance (``verify``), the
      dataset is ready to train (``check-data``)
1     the model has a problem: the diagnosis or the error message says which;
      ``verify``: a layer or output above tolerance, or OpenCV cannot check it;
      ``check-data``: a finding is an error
2     usage error: unknown command or option, missing argument, an output
      that is one of the inputs (the same file by inode)
3     a file cannot be read or written (missing, permission, a directory);
      ``detect``: an image could not be read (the others were done);
      ``check-data``: the .data file is missing or is not a .data file
4     an optional dependency is missing (matplotlib for ``doctor --plot``; onnx,
      onnxruntime, OpenCV < 5 for ``export`` and ``verify``; a backend or
      Pillow for ``detect``; matplotlib for ``check-data --plot``, Pillow for
      ``check-data --images``)
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
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from .._base.errors import YoloIOError
from .._base.paths import shown
from .._base.version import __version__
from .common import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_IO,
    EXIT_OK,
    EXIT_PROBLEM,
    EXIT_USAGE,
    PROG,
    ArgumentParser,
    Failure,
    UsageError,
    cli_words,
)

__all__ = ["main"]

_MAX_ERROR = 1000  # characters of an error line


def _run(argv: list[str]) -> int:
    """Runs a command of this CLI in this process."""
    args = _parser(_command_in(argv)).parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    sys.stdout.flush()
    return func(args)


# Each command's module is imported when the command runs: a command pays
# only for its own imports (static imports, for the layer checks).
def _run_inspect(args: argparse.Namespace) -> int:
    from .inspect import run

    return run(args)


def _run_check(args: argparse.Namespace) -> int:
    from .check import run

    return run(args)


def _run_doctor(args: argparse.Namespace) -> int:
    from .doctor import run

    return run(args)


def _run_partial(args: argparse.Namespace) -> int:
    from .partial import run

    return run(args)


def _run_convert(args: argparse.Namespace) -> int:
    from .convert import run

    return run(args)


def _run_export(args: argparse.Namespace) -> int:
    from .export import run

    return run(args)


def _run_verify(args: argparse.Namespace) -> int:
    from .verify import run

    return run(args)


def _run_detect(args: argparse.Namespace) -> int:
    from .detect import run

    return run(args)


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run(args)


def _run_check_data(args: argparse.Namespace) -> int:
    from .check_data import run

    return run(args)


# The commands, in the order of the help (each added in _parser).
_COMMANDS = ("inspect", "check", "doctor", "partial", "convert", "export", "verify", "detect",
             "demo", "check-data")


def _command_in(argv: Sequence[str]) -> str | None:
    """The command ``argv`` runs: its first word that is not an option (the
    top-level options take no value), if that is a command's name."""
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg if arg in _COMMANDS else None
    return None


def _parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser. With ``only``, the other commands are
    listed (their name and help, so the top-level help is the same) but their
    own parsers are left empty: building them all took ~9 ms of every call."""
    common = ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error")
    # The CFG WEIGHTS pair most commands take, and the option that accepts a
    # partial (backbone) weights file.
    pair = ArgumentParser(add_help=False)
    pair.add_argument("cfg", metavar="CFG", help="the .cfg file")
    pair.add_argument("weights", metavar="WEIGHTS", help="its .weights file")
    backbone = ArgumentParser(add_help=False)
    backbone.add_argument("--partial", action="store_true",
                          help="accept a partial (backbone) weights file as the input")
    parser = ArgumentParser(
        prog=PROG, parents=[common],
        description="Inspect, check and diagnose Darknet (YOLO) .cfg + .weights pairs.",
        epilog="Exit codes: 0 ok; 1 the model has a problem; 2 usage error; 3 a file cannot be "
               "read or written; 4 an optional dependency is missing; 70 internal error; "
               "130 interrupted.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    p = _add(sub, only, "inspect", parents=[common, backbone],
             help="one row per layer, with totals",
             description="One row per layer: index, type, cfg line, input and output "
                         "shapes, activation, main hyperparameters, parameters, bytes "
                         "and (with WEIGHTS) file offset.")
    if p is not None:
        p.add_argument("cfg", metavar="CFG", help="the .cfg file")
        p.add_argument("weights", metavar="WEIGHTS", nargs="?",
                       help="its .weights file (optional: adds the header and file offsets)")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=_run_inspect)

    p = _add(sub, only, "check", parents=[common, pair, backbone],
             help="is this pair consistent? if not, why",
             description="Exit 0 when the weights fit the cfg; otherwise print the "
                         "diagnosis (what is wrong and which cfg lines to change) and "
                         "exit 1.")
    if p is not None:
        p.add_argument("--data", metavar="FILE", help="darknet's .data file (classes=, names=)")
        p.add_argument("--names", metavar="FILE", help="a .names file, one class per line")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=_run_check)

    p = _add(sub, only, "doctor", parents=[common, pair, backbone],
             help="find broken values in the weights",
             description="Find NaN or Inf, zero or negative rolling variances, dead "
                         "(all-zero) filters and extreme batch-norm scales, each with "
                         "its layer. A progress bar shows on a terminal.")
    if p is not None:
        p.add_argument("--plot", metavar="PNG",
                       help="draw per-layer weight magnitudes and batch-norm statistics "
                            "(needs matplotlib: pip install 'yolo_io[plot]')")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=_run_doctor)

    p = _add(sub, only, "partial", parents=[common, pair, backbone],
             help="the first N layers, as darknet partial writes them",
             description="Write the first N layers of WEIGHTS byte for byte as "
                         "AlexeyAB's `darknet partial CFG WEIGHTS OUT N` does (a "
                         "backbone to train from, e.g. yolov4.conv.137): header "
                         "version 0.2.5, seen 0.")
    if p is not None:
        p.add_argument("layers", metavar="N", type=int, help="how many layers to keep")
        p.add_argument("-o", "--output", metavar="OUT", required=True, help="the file to write")
        p.set_defaults(func=_run_partial)

    p = _add(sub, only, "convert", parents=[common, pair, backbone],
             help="write .weights, .safetensors or .npz",
             description="Write the model in the format of OUT's suffix: .weights "
                         "(another header version or seen; byte-exact otherwise; with "
                         "--fuse a darknet model with batch norm folded, cfg and "
                         "weights), .safetensors (a raw darknet export, or a state "
                         "dict with --naming/--fuse/--layout/--dtype) or .npz (a "
                         "state dict). Files are written atomically.")
    if p is not None:
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
        p.set_defaults(func=_run_convert)

    p = _add(sub, only, "export", parents=[common, pair],
             help="write an ONNX model, a TensorFlow SavedModel or a TFLite file",
             description="Write the network as an ONNX model (needs the onnx "
                         "package: pip install 'yolo_io[onnx]'), a TensorFlow "
                         "SavedModel or a TFLite file (Keras on TensorFlow: pip "
                         "install 'yolo_io[tensorflow]'). The ONNX input `input` "
                         "is N x C x H x W float32, RGB in [0, 1], resized (or "
                         "letterboxed) as darknet does; TensorFlow's is N x H x W x C. "
                         "Files are written atomically.")
    if p is not None:
        p.add_argument("-o", "--output", metavar="OUT", required=True,
                       help="the .onnx or .tflite file, or the SavedModel folder, to write")
        p.add_argument("--format", choices=("onnx", "saved_model", "tflite"),
                       help="default from OUT: .onnx is onnx, .tflite is tflite, a name without "
                            "a suffix (or an existing SavedModel folder) is saved_model")
        p.add_argument("--opset", type=int, help="ONNX opset, 13 or later (default 17)")
        p.add_argument("--outputs", choices=("raw", "decoded", "nms"), default="raw",
                       help="raw: each head's input (head_{i}), or `output` for a classifier; "
                            "decoded: boxes, objectness, scores; nms: those plus `selected` "
                            "(default raw)")
        p.add_argument("--dtype", choices=("float32", "float16"),
                       help="of the stored weights; float16 halves the file, computation stays "
                            "float32 (default float32)")
        p.add_argument("--static-batch", action="store_true",
                       help="a batch of 1 instead of a symbolic batch dimension")
        p.add_argument("--mish", choices=("auto", "decomposed", "native"),
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
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=_run_export)

    p = _add(sub, only, "verify", parents=[common, pair],
             help="the ONNX export against OpenCV's Darknet importer",
             description="Run one image through OpenCV's Darknet importer and "
                         "onnxruntime on the ONNX export, compare every layer both "
                         "expose and each output, and name the first layer that "
                         "diverges. Exit 0 within tolerance, 1 above it. Needs onnx, "
                         "onnxruntime and opencv-python-headless<5 (pip install "
                         "'yolo_io[verify]'); the default image needs scikit-image.")
    if p is not None:
        p.add_argument("--onnx", metavar="MODEL",
                       help="check this model (default: export one on the fly, with every layer "
                            "as an output); layer by layer if it has layer_{i} outputs "
                            "(export --intermediates), else its outputs only")
        p.add_argument("--image", metavar="PATH",
                       help="the image to feed (default: scikit-image's astronaut)")
        p.add_argument("--dtype", choices=("float32", "float16"),
                       help="the export's weights dtype, which sets the tolerance (default: "
                            "float32, or --onnx's own)")
        from .._export.tolerances import TOLERANCES

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
        p.set_defaults(func=_run_verify)

    p = _add(sub, only, "detect", parents=[common, pair],
             help="detect objects in images, as darknet's detector test does",
             description="Run the network on each image and print its detections "
                         "as darknet's `detector test -ext_output` does (class: "
                         "probability, box in pixels), with the same preprocessing, "
                         "decoding, threshold and NMS; with --out, write each image "
                         "with its boxes drawn (Pillow). Images per second at the "
                         "end (stderr); a progress bar on a terminal. Needs "
                         "onnxruntime, PyTorch or OpenCV (pip install "
                         "'yolo_io[detect]'). Exit 3 if an image could not be read "
                         "(the others are still done).")
    if p is not None:
        p.add_argument("images", metavar="IMAGE_OR_DIR", nargs="+",
                       help="image files, folders of images, or darknet list files (.txt: one "
                            "image path per line, relative to the current folder)")
        names = p.add_mutually_exclusive_group()
        names.add_argument("--names", metavar="FILE", help="a .names file, one class per line")
        names.add_argument("--data", metavar="FILE",
                           help="darknet's .data file (its names= file, from the current folder)")
        p.add_argument("--thresh", type=float, default=0.25, metavar="T",
                       help="keep a class whose probability is above T (default 0.25)")
        p.add_argument("--nms", type=float, default=0.45, metavar="N",
                       help="NMS overlap threshold (default 0.45, as darknet; 0: no NMS)")
        p.add_argument("--letter-box", action="store_true",
                       help="letterbox the images (default: the cfg's [net] letter_box)")
        p.add_argument("--backend", choices=("onnxruntime", "torch", "opencv"),
                       help="what runs the network (default: the first installed of onnxruntime, "
                            "torch, opencv)")
        p.add_argument("--out", metavar="DIR",
                       help="write each image with its boxes drawn to DIR/<its name> (atomically; "
                            "DIR is created)")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=_run_detect)

    p = _add(sub, only, "demo", parents=[common], help="see the tool work, no downloads",
             description="Write a small YOLO-style model (a cfg written by yolo_io, "
                         "random weights from yolo_io.testing) and run inspect, check "
                         "and a fused export on it.")
    if p is not None:
        p.add_argument("--dir", metavar="DIR",
                       help="write the files here and keep them (default: a temporary folder, "
                            "removed at the end)")
        p.set_defaults(func=_run_demo, run=_run)

    p = _add(sub, only, "check-data", parents=[common],
             help="the dataset darknet will train on, before it trains",
             description="Check a darknet .data file and what it names, as `darknet "
                         "detector train` reads them: the keys, the backup folder, "
                         "the .names count, the cfg's training options (--cfg), the "
                         "image lists and each image's label file. Each finding has "
                         "its file, line and fix. Exit 0 when nothing is an error.")
    if p is not None:
        p.add_argument("data", metavar="DATA", help="darknet's .data file")
        p.add_argument("--cfg", metavar="CFG", help="the .cfg to train (adds its checks)")
        p.add_argument("--root", metavar="DIR",
                       help="the folder darknet will run in, from which relative paths are "
                            "resolved (default: the current folder)")
        p.add_argument("--images", action="store_true",
                       help="also read each image's header (needs Pillow)")
        p.add_argument("--plot", metavar="PNG",
                       help="draw the boxes per class (needs matplotlib: pip install "
                            "'yolo_io[plot]')")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=_run_check_data)

    return parser


def _add(sub: Any, only: str | None, name: str, *, help: str,
         **kwargs: Any) -> argparse.ArgumentParser | None:
    """``sub.add_parser(name, ...)``, or None when ``only`` names another
    command: then ``name`` is listed with its help and nothing more."""
    if only is not None and name != only:
        sub.add_parser(name, help=help, add_help=False)
        return None
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help, **kwargs)
    return parser


def _message(err: BaseException) -> tuple[str, int]:
    if isinstance(err, Failure):
        return cli_words(str(err)), err.code
    if isinstance(err, OSError):
        where = err.filename if err.filename is not None else ""
        text = err.strerror or str(err)
        return (f"{where}: {text}" if where else text), EXIT_IO
    if isinstance(err, YoloIOError):
        return cli_words(str(err).split("\n", 1)[0]), EXIT_PROBLEM
    return (f"internal error: {type(err).__name__}: {err} (run again with --debug and report "
            f"it)"), EXIT_INTERNAL


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    for text in shown(str(message)).splitlines():
        sys.stderr.write(f"{PROG}: warning: {text}\n")


def _print_json_error(text: str, code: int) -> None:
    import json  # on errors only: every command pays for its imports

    json.dump({"error": text, "exit_code": code}, sys.stdout)
    sys.stdout.write("\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``yolo-io`` with ``argv`` (default: the command line); returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = _parser(_command_in(argv)).parse_args(argv)
    except UsageError as err:  # argparse's own report, and a JSON document if asked for
        err.parser.print_usage(sys.stderr)
        sys.stderr.write(f"{err.parser.prog}: error: {shown(str(err))}\n")
        options = argv[:argv.index("--")] if "--" in argv else argv
        names = [a.partition("=")[0] for a in options]  # --json=1 is a usage error too
        if any(len(a) > 2 and "--json".startswith(a) for a in names):
            _print_json_error(shown(str(err)), EXIT_USAGE)
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
            _print_json_error(text, code)
        return code
    finally:
        if errors is not None:
            with contextlib.suppress(AttributeError, ValueError, OSError):
                sys.stdout.reconfigure(errors=errors)  # type: ignore[union-attr]

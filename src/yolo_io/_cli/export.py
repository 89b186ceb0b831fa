"""``yolo-io export CFG WEIGHTS -o OUT``: an ONNX model, a TensorFlow
SavedModel or a TFLite file."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._base.errors import YoloIOError
from .._base.paths import shown
from .._writing.atomic import resolve_target
from .common import (
    EXIT_DEPENDENCY,
    EXIT_OK,
    EXIT_USAGE,
    Failure,
    check_outputs,
    check_paths,
    load_or_fail,
    require,
    stage,
)

if TYPE_CHECKING:
    from .._model.network import Network

# Options of the ONNX export alone, and how each shows on the command line.
_ONNX_ONLY = {"opset": "--opset", "dtype": "--dtype", "mish": "--mish",
              "static_batch": "--static-batch", "intermediates": "--intermediates"}


@contextlib.contextmanager
def native_stderr_quiet(quiet: bool) -> Iterator[None]:
    """TensorFlow's C++ libraries log to the process's stderr (file descriptor
    2) whatever TF_CPP_MIN_LOG_LEVEL says (oneDNN, absl): sent to /dev/null
    while they run, unless ``--debug``; Python's own errors come after the
    block, on the real stderr."""
    if not quiet:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def output_format(args: argparse.Namespace) -> str:
    """--format, else what OUT's name says (a usage error when it says nothing)."""
    if args.format:
        return str(args.format)
    out = Path(args.output)
    suffix = out.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".tflite":
        return "tflite"
    if not suffix or (out.is_dir() and (out / "saved_model.pb").is_file()):
        return "saved_model"
    raise Failure(f"{shown(args.output)}: a {suffix} file is no format `export` knows; name it "
                  ".onnx or .tflite, give a folder name without a suffix (a SavedModel), or "
                  "say --format", EXIT_USAGE)


def output_names(net: Network, outputs: str) -> list[str]:
    """The outputs an export of ``net`` has, for ``--outputs`` (any format)."""
    from .._lowering import head_output_names

    heads = head_output_names(net.config)
    if outputs == "raw" or heads == ["output"]:
        return heads
    return ["boxes", "objectness", "scores"] + (["selected"] if outputs == "nms" else [])


def run(args: argparse.Namespace) -> int:
    check_paths("export", args.cfg, args.weights)
    if not args.output:
        raise FileNotFoundError(errno.ENOENT, "an empty path is no file name", "")
    check_outputs(args, args.output)
    fmt = output_format(args)
    if fmt != "saved_model":  # a file: a folder name ("m.tflite/"), a device... refused now
        resolve_target(args.output)
    nms = {"--score-threshold": args.score_threshold, "--iou-threshold": args.iou_threshold,
           "--max-detections": args.max_detections}
    given = [name for name, value in nms.items() if value is not None]
    if given and args.outputs != "nms":
        raise Failure(f"{', '.join(given)} apply to --outputs nms", EXIT_USAGE)
    if fmt != "onnx":
        onnx_only = [flag for key, flag in _ONNX_ONLY.items() if getattr(args, key)]
        if args.outputs == "nms":
            onnx_only.append("--outputs nms")
        if onnx_only:
            raise Failure(f"{', '.join(onnx_only)} apply to an ONNX export, not {fmt}",
                          EXIT_USAGE)
        return _tensorflow(args, fmt)
    require("onnx", "onnx")
    from .._export.onnx import export

    net = load_or_fail(args.weights, args.cfg, False)
    options: dict[str, Any] = {}
    if args.score_threshold is not None:
        options["score_threshold"] = args.score_threshold
    if args.iou_threshold is not None:
        options["iou_threshold"] = args.iou_threshold
    if args.max_detections is not None:
        options["max_detections"] = args.max_detections
    opset: int = args.opset or 17
    dtype: Any = args.dtype or "float32"
    stage(f"exporting {net.config.path} to ONNX")
    started = time.time()
    try:
        out = Path(export(args.output, net, opset=opset, outputs=args.outputs,
                          dtype=dtype, dynamic_batch=not args.static_batch,
                          mish=args.mish or "auto", intermediates=args.intermediates, **options))
    except ValueError as err:  # an option the export cannot take (opset, mish, NMS settings)
        if isinstance(err, YoloIOError):  # ConversionError: the model's problem
            raise
        raise Failure(str(err), EXIT_USAGE) from err
    names = output_names(net, args.outputs)
    if args.intermediates:
        names.append("layer_{i} for every layer")
    data = out.with_name(out.name + ".data")
    try:
        external = data.is_file() and data.stat().st_mtime >= started - 1
    except OSError:  # OUT's name leaves no room for ".data" (ENAMETOOLONG): none written
        external = False
    if args.json:
        json.dump({"output": shown(str(out)), "format": "onnx", "bytes": out.stat().st_size,
                   "data": shown(str(data)) if external else None, "opset": opset,
                   "dtype": dtype, "outputs": names}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    sys.stdout.write(f"wrote {out} ({out.stat().st_size:,} bytes"
                     + (f"; weights in {data}, {data.stat().st_size:,} bytes" if external
                        else "")
                     + f"): opset {opset}, {dtype} weights, outputs "
                     f"{', '.join(names)}\n")
    return EXIT_OK


def _tensorflow(args: argparse.Namespace, fmt: str) -> int:
    """A SavedModel or TFLite file, through Keras on its TensorFlow backend."""
    if "keras" not in sys.modules:
        # This process runs Keras for this export alone: on TensorFlow, whatever
        # the environment's KERAS_BACKEND says (only TensorFlow writes these).
        os.environ["KERAS_BACKEND"] = "tensorflow"
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    net = load_or_fail(args.weights, args.cfg, False)
    stage(f"exporting {net.config.path} to {'a SavedModel' if fmt == 'saved_model' else fmt}")
    try:
        from .._export.tensorflow import export

        with native_stderr_quiet(not getattr(args, "debug", False)):
            # Its checks (outputs, folders) come before TensorFlow is imported.
            out = export(args.output, net, format=fmt, outputs=args.outputs)  # type: ignore[arg-type]
    except FileExistsError as err:
        raise Failure(f"{shown(args.output)}: {err.strerror}", EXIT_USAGE) from err
    except RuntimeError as err:  # Keras already running on another backend in this process
        raise Failure(str(err), EXIT_DEPENDENCY) from err
    except ImportError as err:  # TensorFlow missing
        raise Failure(f"tensorflow cannot be imported ({err}): pip install "
                      "'yolo_io[tensorflow]'", EXIT_DEPENDENCY) from err
    size = (out.stat().st_size if out.is_file() else
            sum(f.stat().st_size for f in out.rglob("*") if f.is_file()))
    names = output_names(net, args.outputs)
    if args.json:
        json.dump({"output": shown(str(out)), "format": fmt, "bytes": size, "outputs": names},
                  sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    sys.stdout.write(f"wrote {out} ({size:,} bytes): {fmt}, input N x H x W x C float32, "
                     f"outputs {', '.join(names)}\n")
    return EXIT_OK

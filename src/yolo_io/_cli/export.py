"""``yolo-io export CFG WEIGHTS -o OUT``: an ONNX model."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from .._base.errors import YoloIOError
from .common import (
    EXIT_OK,
    EXIT_USAGE,
    Failure,
    check_outputs,
    check_paths,
    load_or_fail,
    require,
    stage,
)


def run(args: argparse.Namespace) -> int:
    check_paths("export", args.cfg, args.weights)
    check_outputs(args, args.output)
    nms = {"--score-threshold": args.score_threshold, "--iou-threshold": args.iou_threshold,
           "--max-detections": args.max_detections}
    given = [name for name, value in nms.items() if value is not None]
    if given and args.outputs != "nms":
        raise Failure(f"{', '.join(given)} apply to --outputs nms", EXIT_USAGE)
    require("onnx", "onnx")
    from .._export.onnx import export, head_output_names

    net = load_or_fail(args.weights, args.cfg, False)
    options: dict[str, Any] = {}
    if args.score_threshold is not None:
        options["score_threshold"] = args.score_threshold
    if args.iou_threshold is not None:
        options["iou_threshold"] = args.iou_threshold
    if args.max_detections is not None:
        options["max_detections"] = args.max_detections
    stage(f"exporting {net.config.path} to ONNX")
    started = time.time()
    try:
        out = Path(export(args.output, net, opset=args.opset, outputs=args.outputs,
                          dtype=args.dtype, dynamic_batch=not args.static_batch,
                          mish=args.mish, intermediates=args.intermediates, **options))
    except ValueError as err:  # an option the export cannot take (opset, mish, NMS settings)
        if isinstance(err, YoloIOError):  # ConversionError: the model's problem
            raise
        raise Failure(str(err), EXIT_USAGE) from err
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

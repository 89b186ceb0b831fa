"""``yolo-io verify CFG WEIGHTS``: the ONNX export against OpenCV's darknet importer."""

from __future__ import annotations

import argparse
import json
import sys

from .common import (
    EXIT_DEPENDENCY,
    EXIT_OK,
    EXIT_PROBLEM,
    EXIT_USAGE,
    Failure,
    check_paths,
    load_or_fail,
    stage,
)


def run(args: argparse.Namespace) -> int:
    from .._export.verify import verify

    check_paths("verify", args.cfg, args.weights)
    for name, value in (("--atol", args.atol), ("--rtol", args.rtol)):
        if value is not None and not value >= 0:
            raise Failure(f"{name} must be >= 0, got {value:g}", EXIT_USAGE)
    net = load_or_fail(args.weights, args.cfg, False)
    try:
        result = verify(net, onnx_path=args.onnx, image=args.image, dtype=args.dtype,
                        atol=args.atol, rtol=args.rtol,
                        progress=_stages)
    except ImportError as err:
        raise Failure(str(err), EXIT_DEPENDENCY) from err
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(result.summary(all_layers=args.all_layers) + "\n")
    return EXIT_OK if result.ok and (result.complete or not args.strict) else EXIT_PROBLEM


def _stages(done: int, total: int, what: str) -> None:
    """verify()'s progress: a line on a terminal as each stage starts."""
    if done < total:
        stage(what)

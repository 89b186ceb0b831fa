"""``yolo-io convert CFG WEIGHTS -o OUT``: .weights, .safetensors or .npz."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._base.errors import YoloIOError
from .common import (
    EXIT_OK,
    EXIT_USAGE,
    Failure,
    check_outputs,
    check_paths,
    load_or_fail,
    saving_bar,
)

_CONVERT_SUFFIXES = (".weights", ".safetensors", ".npz")


def run(args: argparse.Namespace) -> int:
    try:
        return _convert(args)
    except ValueError as err:  # an option the output cannot take (seen too large, ...)
        if isinstance(err, YoloIOError):  # ConversionError: the model's problem
            raise
        raise Failure(str(err), EXIT_USAGE) from err


def _convert(args: argparse.Namespace) -> int:
    import numpy as np

    from .._writing.weights import save, save_npz

    check_paths("convert", args.cfg, args.weights)
    if args.cfg_output and not args.fuse:
        raise Failure("--cfg-output is where --fuse writes its cfg; it needs --fuse", EXIT_USAGE)
    if args.seen is not None and args.seen < 0:
        raise Failure(f"--seen must be >= 0, got {args.seen}", EXIT_USAGE)
    suffix = Path(args.output).suffix.lower()
    # --fuse to .weights also writes a cfg: --cfg-output, else OUT with .cfg,
    # which is checked against the inputs like any output.
    cfg_out = (Path(args.cfg_output or Path(args.output).with_suffix(".cfg"))
               if suffix == ".weights" and args.fuse else None)
    check_outputs(args, args.output, cfg_out or args.cfg_output)
    if suffix not in _CONVERT_SUFFIXES:
        raise Failure(f"-o {args.output}: the format comes from the suffix, one of "
                       f"{', '.join(_CONVERT_SUFFIXES)}", EXIT_USAGE)
    net = load_or_fail(args.weights, args.cfg, args.partial)
    if suffix == ".weights" and args.fuse:
        from .._writing.fused import save_fused

        if args.layout or args.naming or args.dtype != "float32":
            raise Failure("--layout, --naming and --dtype do not apply to a darknet model",
                           EXIT_USAGE)
        assert cfg_out is not None
        header = None if args.version is None else _version(args.version)
        weights_out, cfg_written = save_fused(args.output, cfg_out, net, header=header)
        sys.stdout.write(f"wrote {cfg_written} (batch norm folded) and {weights_out} "
                         f"({weights_out.stat().st_size:,} bytes)\n")
        return EXIT_OK
    if suffix == ".weights":
        if args.layout or args.naming or args.dtype != "float32":
            raise Failure("--layout, --naming and --dtype apply to .safetensors and .npz "
                           "output; a .weights file is darknet's own layout", EXIT_USAGE)
        header = None if args.version is None else _version(args.version)
        with saving_bar(net.raw.size, "convert") as update:
            out = save(args.output, net, header=header, seen=args.seen, progress=update)
    elif suffix == ".safetensors":
        from .._writing.safetensors import save_safetensors

        with saving_bar(net.raw.size, "convert") as update:
            out = save_safetensors(args.output, net, fuse=args.fuse, layout=args.layout,
                                   dtype=args.dtype, naming=args.naming, progress=update)
    else:
        if args.dtype == "bfloat16":
            raise Failure("--dtype bfloat16 applies to .safetensors output; .npz has no "
                           "bfloat16", EXIT_USAGE)
        out = save_npz(args.output, net, fuse=args.fuse, layout=args.layout,
                       naming=args.naming or "yolo_io", dtype=np.dtype(args.dtype))
    sys.stdout.write(f"wrote {out} ({out.stat().st_size:,} bytes)\n")
    return EXIT_OK


def _version(text: str) -> tuple[int, int, int]:
    parts = text.split(".")
    if len(parts) != 3 or not all(p and p.isascii() and p.isdigit() for p in parts):
        raise Failure(f"--version must be MAJOR.MINOR.REVISION, e.g. 0.2.5, not {text!r}",
                       EXIT_USAGE)
    return int(parts[0]), int(parts[1]), int(parts[2])

"""``yolo-io partial CFG WEIGHTS N -o OUT``: the first N layers, as darknet partial writes them."""

from __future__ import annotations

import argparse
import sys

from .common import (
    EXIT_OK,
    EXIT_USAGE,
    Failure,
    check_outputs,
    check_paths,
    load_or_fail,
    saving_bar,
)


def run(args: argparse.Namespace) -> int:
    from .._writing.weights import save

    check_paths("partial", args.cfg, args.weights)
    check_outputs(args, args.output)
    net = load_or_fail(args.weights, args.cfg, args.partial)
    if not 0 <= args.layers <= len(net):
        raise Failure(f"N must be a layer count in 0..{len(net)} for {net.config.path}, got "
                       f"{args.layers}", EXIT_USAGE)
    with saving_bar(net.config.expected_size(net.header[:2], layers=args.layers),
                     "partial") as update:
        out = save(args.output, net, upto=args.layers, progress=update)
    kept = f"layers 0..{args.layers - 1}" if args.layers else "no layer"
    sys.stdout.write(f"wrote {out}: darknet partial's header (version 0.2.5, seen 0) and {kept} "
                     f"of {net.path}, {out.stat().st_size:,} bytes; load it with "
                     f"--partial\n")
    return EXIT_OK

"""``yolo-io doctor CFG WEIGHTS``: broken values in the weights."""

from __future__ import annotations

import argparse
import json
import sys

from .common import (
    EXIT_OK,
    EXIT_PROBLEM,
    check_outputs,
    check_paths,
    load_or_fail,
    require,
)


def run(args: argparse.Namespace) -> int:
    from .._diagnosis.doctor import doctor, plot

    check_paths("doctor", args.cfg, args.weights)
    check_outputs(args, args.plot)
    net = load_or_fail(args.weights, args.cfg, args.partial)
    if args.plot is not None:  # --plot "" too: plot() refuses an empty name
        require("matplotlib", "plot")
    progress = False if args.no_progress else None
    checkup = doctor(net, progress=progress)
    plotted = None
    if args.plot is not None:
        plotted = plot(net, args.plot, checkup)
    if args.json:
        doc = checkup.to_dict()
        findings = doc.pop("findings")
        json.dump({**doc, "plot": str(plotted) if plotted else None, "findings": findings},
                  sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(f"{checkup}\n")
        if plotted:
            sys.stdout.write(f"plot: {plotted}\n")
    return EXIT_OK if checkup.ok else EXIT_PROBLEM

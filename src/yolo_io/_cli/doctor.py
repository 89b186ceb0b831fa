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

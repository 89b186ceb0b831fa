"""``yolo-io check-data OBJ.DATA``: everything ``darknet detector train``
will need, checked before it starts."""

from __future__ import annotations

import argparse
import json
import sys

from .._base.errors import FormatError, OutputIsInputError
from .common import (
    EXIT_DEPENDENCY,
    EXIT_IO,
    EXIT_OK,
    EXIT_PROBLEM,
    EXIT_USAGE,
    Failure,
    require,
)


def run(args: argparse.Namespace) -> int:
    from .._diagnosis.data import check_data, plot
    from .._writing.atomic import refuse_inputs

    if args.plot is not None:
        try:  # the files named on the command line, before anything is read
            refuse_inputs(args.plot, [("the input .data", args.data), ("the input CFG", args.cfg)])
        except OutputIsInputError as err:
            raise Failure(str(err), EXIT_USAGE) from err
        require("matplotlib", "plot")
    if args.images:
        try:
            import PIL.Image  # noqa: F401
        except ImportError as err:
            raise Failure(f"--images reads image headers with Pillow, which cannot be imported "
                          f"({err}): pip install Pillow", EXIT_DEPENDENCY) from err
    try:
        report = check_data(args.data, cfg=args.cfg, root=args.root, images=args.images,
                            progress=False if args.no_progress else None)
    except FormatError as err:  # not a .data file: as unreadable as a missing one
        raise Failure(str(err), EXIT_IO) from err
    plotted = None
    if args.plot is not None:
        try:
            plotted = plot(report, args.plot)
        except OutputIsInputError as err:
            raise Failure(str(err), EXIT_USAGE) from err
    if args.json:
        doc = report.to_dict()
        findings = doc.pop("findings")
        json.dump({**doc, "plot": str(plotted) if plotted else None, "findings": findings},
                  sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(f"{report}\n")
        if plotted:
            sys.stdout.write(f"plot: {plotted}\n")
    return EXIT_OK if report.ok else EXIT_PROBLEM

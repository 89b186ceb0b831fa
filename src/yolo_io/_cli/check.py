"""``yolo-io check CFG WEIGHTS``: is the pair consistent, and if not, why."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import (
    EXIT_OK,
    EXIT_PROBLEM,
    check_paths,
    cli_words,
    cli_words_in,
)


def run(args: argparse.Namespace) -> int:
    from .._diagnosis.diagnose import diagnose

    check_paths("check", args.cfg, args.weights, swap=False)  # a finding of the diagnosis
    for path in (args.data, args.names):
        if path is not None:
            check_paths("check", path, None)
    report = diagnose(args.weights, args.cfg, data=args.data, names=args.names,
                      partial=args.partial)
    if args.json:
        import json

        json.dump(cli_words_in(report.to_dict()), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(cli_words(_check_text(report)) + "\n")
    return EXIT_OK if report.ok else EXIT_PROBLEM


def _check_text(report: Any) -> str:
    if report.ok:
        lines = [f"ok: {report.weights} fits {report.cfg}"]
        lines += [str(f) for f in report.findings]
        return "\n".join(lines)
    return str(report)

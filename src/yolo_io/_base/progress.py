"""The progress bar of long work (doctor, save, convert): tqdm on stderr, only
on a terminal; without tqdm (an optional dependency, extra ``cli``), none."""

from __future__ import annotations

import os
import sys
from typing import Protocol, TextIO

__all__ = ["Bar", "progress_bar"]


class Bar(Protocol):
    """The part of a tqdm bar yolo_io uses."""

    def update(self, n: int) -> object: ...
    def close(self) -> None: ...


def progress_bar(total: int, progress: bool | None, desc: str) -> Bar | None:
    """A tqdm bar over ``total`` bytes on stderr, or None: not wanted
    (``progress`` False, or None and stderr is not a terminal), or no tqdm."""
    stream = sys.stderr
    if stream is None:  # pythonw
        return None
    if progress is None:
        try:
            progress = bool(stream.isatty())
        except (AttributeError, ValueError):  # no isatty, or a closed stream
            progress = False
    if not progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    bar: Bar = tqdm(total=total, unit="B", unit_scale=True, desc=desc, file=stream,
                     **_unsized_terminal(stream))
    return bar


def _unsized_terminal(stream: TextIO) -> dict[str, int]:
    """``ncols`` and ``nrows`` for a terminal that reports a size of 0 x 0 (a
    new pseudo-terminal nobody sized, some serial consoles), in which tqdm
    would draw nothing; else nothing: tqdm measures the terminal itself."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):  # not a terminal, no fileno, closed
        return {}
    return {"ncols": 80, "nrows": 24} if size.columns <= 0 or size.lines <= 0 else {}

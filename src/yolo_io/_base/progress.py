"""Progress of long work (save, save_safetensors, doctor, verify): the one
``progress=`` type, :data:`Progress`, and the bar it draws by default: tqdm on
stderr, only on a terminal; without tqdm (an optional dependency, extra
``cli``), none."""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable
from typing import Protocol, TextIO, cast

from .deprecation import warn_deprecated

__all__ = ["Bar", "Progress", "ProgressCallback", "Reporter", "progress_bar"]

#: A progress callback: called as the work is done with ``(done, total,
#: what)``, ``done`` and ``total`` in the call's unit (bytes for the writers
#: and the doctor, stages for verify) and ``what`` a short text of what it is
#: doing (``"writing"``, ``"exporting to ONNX"``, ...).
ProgressCallback = Callable[[int, int, str], object]
#: The ``progress=`` argument of every long call: None (the default) draws a
#: bar on stderr when it is a terminal and tqdm is installed, True draws one
#: wherever stderr goes, False draws nothing, and a :data:`ProgressCallback`
#: is called instead.
Progress = bool | ProgressCallback | None


class Bar(Protocol):
    """The part of a tqdm bar yolo_io uses."""

    total: int | float | None

    def update(self, n: int) -> object: ...
    def close(self) -> None: ...


def progress_bar(total: int, progress: bool | None, desc: str, unit: str = "B") -> Bar | None:
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
    bar: Bar = tqdm(total=total, unit=unit, unit_scale=unit == "B", desc=desc, file=stream,
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


def _takes(fn: Callable[..., object], n: int) -> bool:
    """Whether ``fn`` can be called with ``n`` positional arguments (True
    when Python cannot tell, e.g. for some builtins)."""
    try:
        inspect.signature(fn).bind(*range(n))
    except TypeError:
        return False
    except ValueError:  # no signature
        return True
    return True


def bytes_written(old: Callable[[object], object], done: int, what: str) -> object:
    """How a writer calls an old one-argument progress callback (deprecated):
    with the bytes written so far."""
    return old(done)


class Reporter:
    """Reports the progress of one call as its ``progress=`` asks: a bar, a
    callback, or nothing. ``legacy``: how an old one-argument callback of
    this call (deprecated) is called, given ``(done, what)``."""

    def __init__(self, progress: Progress, total: int, desc: str, *, unit: str = "B",
                 what: str = "", caller: str = "",
                 legacy: Callable[[Callable[[object], object], int, str], object] | None = None,
                 stacklevel: int = 4) -> None:
        self.total = total
        self.what = what
        self._bar: Bar | None = None
        self._callback: ProgressCallback | None = None
        self._legacy = False
        self._done = 0
        if progress is None or (not callable(progress) and progress in (True, False)):
            # (0 and 1, and NumPy's bools, as the bools they stand for)
            self._bar = progress_bar(total, None if progress is None else bool(progress), desc,
                                     unit)
        elif not callable(progress):
            raise TypeError(f"progress must be None, True, False or a callable (done, total, "
                            f"what), not {type(progress).__name__}")
        elif _takes(progress, 3):
            self._callback = progress
        elif legacy is not None and _takes(progress, 1):
            old = cast(Callable[[object], object], progress)
            warn_deprecated(f"{caller}(progress=f) with a one-argument f",
                            "pass f(done, total, what)", stacklevel=stacklevel)
            self._callback = lambda done, _total, what: legacy(old, done, what)
            self._legacy = True
        else:
            raise TypeError(f"a progress callback is called with (done, total, what); "
                            f"{progress!r} does not take them")

    def __call__(self, done: int, what: str = "") -> None:
        """``done`` of :attr:`total` so far (it only grows); ``what``: the
        work under way (default: this reporter's)."""
        if self._callback is not None:
            self._callback(done, self.total, what or self.what)
        elif self._bar is not None:
            self._bar.update(done - self._done)
        self._done = done

    def finish(self, what: str = "done") -> None:
        """The work is done: a bar is completed and a callback called with
        ``(total, total, what)``, unless it saw ``total`` already (an old
        one-argument callback is not called: it had no such call)."""
        if self._done != self.total and not self._legacy:
            self(self.total, what)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Reporter:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

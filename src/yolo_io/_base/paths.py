"""File names as yolo_io takes them: a ``str``, ``bytes`` or any
``os.PathLike``, in any encoding.

Every public function that takes a path passes it through :func:`fs_path`
first: a ``str`` whose bytes that are not valid UTF-8 are surrogate escapes, as
``os.fsdecode()`` gives, which ``os``, ``pathlib`` and the compiled core (which
encodes it back with ``os.fsencode()``) all take. Messages show a path with
:func:`shown`.
"""

from __future__ import annotations

import os
from typing import TypeAlias

__all__ = ["PathArg", "fs_path", "is_path", "shown"]

#: What a path argument may be (the type of every public path parameter).
PathArg: TypeAlias = str | bytes | os.PathLike[str] | os.PathLike[bytes]


def is_path(value: object) -> bool:
    """Whether ``value`` is something :func:`fs_path` takes."""
    return isinstance(value, (str, bytes, os.PathLike))


def fs_path(value: object, what: str = "path") -> str:
    """``value`` (str, bytes or os.PathLike) as a str: bytes decoded as
    ``os.fsdecode()`` does, so a file name in any encoding round-trips.

    Raises:
        TypeError: ``value`` is not a path (the message names ``what``).
    """
    try:
        path = os.fsdecode(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{what} must be a path (str, bytes or os.PathLike), not "
                        f"{type(value).__name__}") from None
    return path


def shown(text: str) -> str:
    """``text`` (a path, or a message quoting one) printable in any encoding:
    the bytes of a file name that are not UTF-8 as ``\\xNN``."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that no file name gave
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")

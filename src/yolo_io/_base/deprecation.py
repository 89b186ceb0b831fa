"""Old spellings of the public API, kept working for one release with a
DeprecationWarning (CHANGELOG.md, "Deprecated", lists them)."""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, cast

__all__ = ["keyword_only", "renamed", "warn_deprecated"]

F = TypeVar("F", bound=Callable[..., Any])


def warn_deprecated(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warns that ``old`` is deprecated in favour of ``new``, at the caller of
    the public function (``stacklevel`` frames up from here)."""
    warnings.warn(f"{old} is deprecated and will be removed in the next release: {new}",
                  DeprecationWarning, stacklevel=stacklevel)


def keyword_only(*names: str) -> Callable[[F], F]:
    """The options ``names`` of the decorated function are keyword-only;
    passed by position after the positional parameters (the old spelling),
    they still work, with a DeprecationWarning. ``inspect.signature`` shows
    the new signature."""

    def decorate(fn: F) -> F:
        params = inspect.signature(fn).parameters.values()
        positional = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
        assert all(n in inspect.signature(fn).parameters for n in names), names

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            extra = args[positional:]
            if extra:
                if len(extra) > len(names):
                    raise TypeError(f"{fn.__qualname__}() takes at most "
                                    f"{positional + len(names)} positional arguments, got "
                                    f"{len(args)}")
                moved = names[:len(extra)]
                clash = [n for n in moved if n in kwargs]
                if clash:
                    raise TypeError(f"{fn.__qualname__}() got multiple values for {clash[0]!r}")
                warn_deprecated(f"passing {', '.join(moved)} of {fn.__qualname__}() by position",
                                f"pass {', '.join(f'{n}=...' for n in moved)}")
                kwargs.update(zip(moved, extra, strict=True))
                args = args[:positional]
            return fn(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


def renamed(**old_to_new: str) -> Callable[[F], F]:
    """Keyword arguments renamed: the old name still works, with a
    DeprecationWarning (``renamed(eps="bn_eps")``)."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{fn.__qualname__}() got both {old}= and {new}=")
                    warn_deprecated(f"{fn.__qualname__}({old}=...)", f"pass {new}=...")
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return cast(F, wrapper)

    return decorate

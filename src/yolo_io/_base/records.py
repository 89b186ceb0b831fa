"""Frozen dataclasses whose methods are written once (``Record``).

``@dataclass(frozen=True)`` compiles ``__init__``, ``__repr__``, ``__eq__``,
``__hash__``, ``__setattr__`` and ``__delattr__`` for each class it decorates:
about a millisecond per class on Python < 3.13, which compiles each method
separately. The layer-kind facts, the 34 attrs records and the diagnosis'
findings took ~20 ms of ``import yolo_io`` and of ``yolo-io check`` that way.
A class here subclasses :class:`Record` and is decorated with this module's
:func:`dataclass`: its fields are recorded as before (``dataclasses.fields``,
``asdict`` and ``replace`` work, type checkers see a frozen dataclass), and
the methods are :class:`Record`'s, which behave as the generated ones (the
same results and errors). Call :func:`record_params` at the end of a module
that defines records.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

__all__ = ["Record", "dataclass", "record_params"]


class Record:
    """What ``@dataclass(frozen=True)`` generates, written once: ``__init__``
    (fields with a default or a default factory may be left out), ``__repr__``,
    ``__eq__`` and ``__hash__`` over the fields, and the frozen
    ``__setattr__``/``__delattr__``."""

    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        names = _field_names(cls)
        if len(args) > len(names):
            least = len(names) - len(_defaults(cls))
            takes = (f"from {least + 1} to {len(names) + 1}" if least < len(names)
                     else f"{len(names) + 1}")
            raise TypeError(f"{cls.__qualname__}.__init__() takes {takes} positional "
                            f"arguments but {len(args) + 1} were given")
        values = dict(zip(names, args, strict=False))  # the rest by keyword
        for key, value in kwargs.items():
            if key in values:
                raise TypeError(f"{cls.__qualname__}.__init__() got multiple values for "
                                f"argument {key!r}")
            if key not in names:
                raise TypeError(f"{cls.__qualname__}.__init__() got an unexpected keyword "
                                f"argument {key!r}")
            values[key] = value
        if len(values) < len(names):
            defaults = _defaults(cls)
            missing = [repr(n) for n in names if n not in values and n not in defaults]
            if missing:
                raise TypeError(f"{cls.__qualname__}.__init__() missing {len(missing)} required "
                                f"positional argument{'s' * (len(missing) > 1)}: "
                                f"{_listed(missing)}")
            for name, default in defaults.items():
                if name not in values:
                    values[name] = default()
        setter = object.__setattr__
        for name in names:
            setter(self, name, values[name])

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def _values(self) -> tuple[Any, ...]:
        values: tuple[Any, ...] = _values_getter(type(self))(self)
        return values

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in _field_names(type(self)))
        return f"{type(self).__qualname__}({inner})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values())


def _listed(names: list[str]) -> str:
    """As CPython lists missing arguments: 'a', 'a' and 'b', 'a', 'b', and 'c'."""
    if len(names) < 3:
        return " and ".join(names)
    return ", ".join(names[:-1]) + ", and " + names[-1]


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


_DEFAULTS: dict[type, dict[str, Callable[[], Any]]] = {}


def _defaults(cls: type) -> dict[str, Callable[[], Any]]:
    """Each field with a default: a function giving its value."""
    defaults = _DEFAULTS.get(cls)
    if defaults is None:
        defaults = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                defaults[f.name] = _constant(f.default)
            elif f.default_factory is not dataclasses.MISSING:
                defaults[f.name] = f.default_factory
        _DEFAULTS[cls] = defaults
    return defaults


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


_GETTERS: dict[type, Any] = {}


def _values_getter(cls: type) -> Any:
    """A function of a record giving the tuple of its fields' values (C speed)."""
    getter = _GETTERS.get(cls)
    if getter is None:
        names = _field_names(cls)
        if len(names) > 1:
            getter = operator.attrgetter(*names)
        elif names:
            one = operator.attrgetter(names[0])
            getter = lambda record: (one(record),)
        else:
            getter = lambda record: ()
        _GETTERS[cls] = getter
    return getter


if TYPE_CHECKING:
    from dataclasses import dataclass
else:
    def dataclass(*, frozen: bool) -> Any:
        """``@dataclass(frozen=True)`` for a :class:`Record`: the fields
        recorded, no method generated (frozen by :class:`Record`); the
        parameters it behaves as are recorded by :func:`record_params`."""
        assert frozen
        return dataclasses.dataclass(init=False, repr=False, eq=False, frozen=False)


def record_params(namespace: Mapping[str, Any]) -> None:
    """Each record's ``__dataclass_params__`` in ``namespace`` (a module's
    globals) says what it behaves as (init, repr, eq, frozen), as when
    dataclass generated its methods: a user's frozen dataclass may subclass
    a record, and introspection sees what it did before."""
    for value in list(namespace.values()):
        if isinstance(value, type) and issubclass(value, Record) and value is not Record:
            params = value.__dataclass_params__  # type: ignore[attr-defined]
            try:
                params.init = params.repr = params.eq = params.frozen = True
            except AttributeError:  # pragma: no cover - another Python's private class
                return

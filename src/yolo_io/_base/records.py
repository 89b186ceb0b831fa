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
import reprlib
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

__all__ = ["Record", "dataclass", "record_params"]


class _Factory:
    """How a signature shows a default factory, as dataclass's does."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


class _Signature:
    """``Record.__signature__``: the fields as ``__init__``'s parameters, as
    ``inspect.signature`` and ``help()`` show a dataclass (computed on first
    use, per class)."""

    def __get__(self, instance: object, owner: type) -> Any:
        if instance is not None or owner is Record:
            return None  # a record is not callable; Record itself takes anything
        import inspect

        params = [inspect.Parameter(
            f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=f.type,
            default=(f.default if f.default is not dataclasses.MISSING else
                     _FACTORY if f.default_factory is not dataclasses.MISSING else
                     inspect.Parameter.empty)) for f in dataclasses.fields(owner)]
        return inspect.Signature(params, return_annotation=None)


class Record:
    """What ``@dataclass(frozen=True)`` generates, written once: ``__init__``
    (fields with a default or a default factory may be left out), ``__repr__``,
    ``__eq__`` and ``__hash__`` over the fields, and the frozen
    ``__setattr__``/``__delattr__``, with the same results and errors."""

    __slots__ = ()
    __signature__ = _Signature()

    def __init__(self, /, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        names = _field_names(cls)
        given = names[:len(args)]
        for key in kwargs:  # CPython checks the keywords first
            if key in given or key == "self":
                raise TypeError(f"{cls.__qualname__}.__init__() got multiple values for "
                                f"argument {key!r}")
            if key not in names:
                raise TypeError(f"{cls.__qualname__}.__init__() got an unexpected keyword "
                                f"argument {key!r}")
        defaults = _defaults(cls)
        if len(args) > len(names):
            least = len(names) - len(defaults)
            takes = (f"from {least + 1} to {len(names) + 1}" if least < len(names)
                     else f"{len(names) + 1}")
            raise TypeError(f"{cls.__qualname__}.__init__() takes {takes} positional "
                            f"argument{'s' * (len(names) > 0)} but {len(args) + 1} were given")
        values = dict(zip(names, args, strict=False))
        values.update(kwargs)
        if len(values) < len(names):
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

    # As a frozen dataclass's: a field of any record, or any name on a record
    # class itself (a plain subclass may set names of its own).
    def __setattr__(self, name: str, value: Any) -> None:
        cls = type(self)
        if "__dataclass_fields__" in cls.__dict__ or name in _field_names(cls):
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        cls = type(self)
        if "__dataclass_fields__" in cls.__dict__ or name in _field_names(cls):
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        object.__delattr__(self, name)

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in _field_names(type(self)))
        return f"{type(self).__qualname__}({inner})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            values = _values_getter(type(self))
            if _FIELD_BY_FIELD:
                return all(a == b for a, b in zip(values(self), values(other), strict=True))
            return bool(values(self) == values(other))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(_values_getter(type(self))(self))


# Python 3.13's dataclasses compare field by field (a NaN field is unequal to
# itself); earlier ones compare tuples (the same object is equal to itself).
_FIELD_BY_FIELD = sys.version_info >= (3, 13)


def _listed(names: list[str]) -> str:
    """As CPython lists missing arguments: 'a', 'a' and 'b', 'a', 'b', and 'c'."""
    if len(names) < 3:
        return " and ".join(names)
    return ", ".join(names[:-1]) + ", and " + names[-1]


# Per class, in the class's own namespace (so a subclass has its own, and
# nothing outlives its class).
def _field_names(cls: type) -> tuple[str, ...]:
    names: tuple[str, ...] | None = cls.__dict__.get("_record_names")
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(cls))
        type.__setattr__(cls, "_record_names", names)
    return names


def _defaults(cls: type) -> dict[str, Callable[[], Any]]:
    """Each field with a default: a function giving its value."""
    defaults: dict[str, Callable[[], Any]] | None = cls.__dict__.get("_record_defaults")
    if defaults is None:
        defaults = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                defaults[f.name] = _constant(f.default)
            elif f.default_factory is not dataclasses.MISSING:
                defaults[f.name] = f.default_factory
        type.__setattr__(cls, "_record_defaults", defaults)
    return defaults


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def _values_getter(cls: type) -> Any:
    """A function of a record giving the tuple of its fields' values (C speed)."""
    getter = cls.__dict__.get("_record_getter")
    if getter is None:
        names = _field_names(cls)
        if len(names) > 1:
            getter = operator.attrgetter(*names)
        elif names:
            one = operator.attrgetter(names[0])
            getter = lambda record: (one(record),)
        else:
            getter = lambda record: ()
        type.__setattr__(cls, "_record_getter", getter)
    return getter


if TYPE_CHECKING:
    from dataclasses import dataclass
else:
    def dataclass(*, frozen: bool) -> Any:
        """``@dataclass(frozen=True)`` for a :class:`Record`: the fields
        recorded, no method generated (frozen by :class:`Record`); the
        parameters it behaves as are recorded by :func:`record_params`. A
        field Record's ``__init__`` cannot honour is refused."""
        assert frozen
        plain = dataclasses.dataclass(init=False, repr=False, eq=False, frozen=False)

        def decorate(cls: type) -> type:
            cls = plain(cls)
            _check_fields(cls)
            return cls

        return decorate


def _check_fields(cls: type) -> None:
    if hasattr(cls, "__post_init__"):  # its own or inherited
        raise TypeError(f"{cls.__qualname__}: a Record has no __post_init__")
    seen_default = None
    for f in dataclasses.fields(cls):
        if not (f.init and f.repr and f.compare and f.hash is None and not f.kw_only):
            raise TypeError(f"{cls.__qualname__}.{f.name}: a Record field takes no init=, "
                            f"repr=, compare=, hash= or kw_only=")
        has_default = (f.default is not dataclasses.MISSING
                       or f.default_factory is not dataclasses.MISSING)
        if has_default:
            seen_default = f.name
        elif seen_default is not None:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")


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

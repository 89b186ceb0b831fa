"""``yolo_io._base.records``: a Record behaves as the frozen dataclass it
stands for (the attrs records, the kind facts and the diagnosis' findings
are Records, for the import time; see the module)."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest

from yolo_io import Diagnosis, Finding, KindFacts
from yolo_io._base.records import Record, dataclass, record_params
from yolo_io._diagnosis.diagnose import CfgEdit, LayerRef


@dataclasses.dataclass(frozen=True)
class Plain:
    a: int
    b: str
    c: float = 0.5
    d: tuple[int, ...] = dataclasses.field(default_factory=tuple)


@dataclass(frozen=True)
class Rec(Record):
    a: int
    b: str
    c: float = 0.5
    d: tuple[int, ...] = dataclasses.field(default_factory=tuple)


record_params({"Rec": Rec})


def _outcome(cls: type, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """What a call gives, with the class's own name taken out."""
    try:
        made = cls(*args, **kwargs)
    except TypeError as err:
        return "TypeError", str(err).replace(cls.__qualname__, "C")
    return "made", (repr(made).replace(cls.__qualname__, "C"), dataclasses.astuple(made))


@pytest.mark.parametrize(("args", "kwargs"), [
    ((1, "x"), {}), ((1, "x", 2.0), {}), ((1, "x", 2.0, (3,)), {}), ((), {"a": 1, "b": "x"}),
    ((1,), {"b": "x", "d": (4,)}), ((1,), {}), ((), {}), ((), {"b": "x"}),
    ((1, "x", 2.0, (3,), 5), {}), ((1,), {"a": 2, "b": "x"}), ((1, "x"), {"e": 1}),
    ((), {"c": 1.0}), ((1, "x", 2.0, (3,), 5), {"a": 1}), ((1, "x", 2.0, (3,), 5), {"z": 1}),
    ((1,), {"self": 2}), ((), {"self": 2}), ((1, "x", 2.0, (3,), 5), {"d": ()}),
    ((), {"z": 1}),
])
def test_a_record_is_made_and_refused_as_the_dataclass(args: tuple[Any, ...],
                                                        kwargs: dict[str, Any]) -> None:
    assert _outcome(Rec, *args, **kwargs) == _outcome(Plain, *args, **kwargs)


@dataclasses.dataclass(frozen=True)
class PlainEmpty:
    pass


@dataclass(frozen=True)
class RecEmpty(Record):
    pass


record_params({"RecEmpty": RecEmpty})


def test_a_record_without_fields_is_refused_as_the_dataclass() -> None:
    assert _outcome(RecEmpty, 1) == _outcome(PlainEmpty, 1)  # "takes 1 positional argument"
    assert _outcome(RecEmpty) == _outcome(PlainEmpty)


def test_a_record_has_the_dataclass_signature() -> None:
    import inspect

    assert str(inspect.signature(Rec)) == str(inspect.signature(Plain))
    assert str(inspect.signature(Finding)) == (
        "(kind: 'str', severity: 'Severity', message: 'str', fix: 'str | None' = None, "
        "layer: 'LayerRef | None' = None, edits: 'tuple[CfgEdit, ...]' = ()) -> None")


def test_a_plain_subclass_sets_its_own_names_as_the_dataclass_lets_it() -> None:
    class SubRec(Rec):
        def __init__(self, a: int) -> None:
            super().__init__(a, "x")
            self.note = "mine"

    class SubPlain(Plain):
        def __init__(self, a: int) -> None:
            super().__init__(a, "x")
            self.note = "mine"

    for sub in (SubRec(1), SubPlain(1)):
        assert sub.note == "mine"
        del sub.note
        with pytest.raises(dataclasses.FrozenInstanceError):
            sub.a = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Rec(1, "x").note = "x"


def test_a_record_repr_stops_at_itself() -> None:
    edits: list[Any] = []
    f = Finding("k", "error", "m", edits=edits)  # type: ignore[arg-type]
    edits.append(f)
    assert repr(f).endswith("edits=[...])")


def test_the_decorator_refuses_what_record_cannot_honour() -> None:
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
        @dataclass(frozen=True)
        class Late(Record):
            a: int = 0
            b: int  # type: ignore[misc]
    with pytest.raises(TypeError, match="takes no init="):
        @dataclass(frozen=True)
        class NoInit(Record):
            a: int = dataclasses.field(init=False, default=0)
    with pytest.raises(TypeError, match="no __post_init__"):
        @dataclass(frozen=True)
        class Post(Record):
            a: int

            def __post_init__(self) -> None:
                pass


def test_a_records_class_is_not_kept_alive_by_its_caches() -> None:
    import gc
    import weakref

    class Sub(Rec):
        pass

    Sub(1, "x") == Sub(1, "x")  # noqa: B015 - fills the caches
    gone = weakref.ref(Sub)
    del Sub
    gc.collect()
    assert gone() is None


def test_a_record_behaves_as_the_frozen_dataclass() -> None:
    r, p = Rec(1, "x"), Plain(1, "x")
    assert r.d == () and r.d is p.d  # the factory, called (tuple() is one object)
    assert r == Rec(1, "x") and r != Rec(1, "y") and r != p
    assert hash(r) == hash(Rec(1, "x")) == hash(p)
    assert len({r, Rec(1, "x"), Rec(2, "x")}) == 2
    for record in (r, p):
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'a'"):
            record.a = 2  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field 'a'"):
            del record.a
    assert dataclasses.replace(r, c=3.0) == Rec(1, "x", 3.0)
    assert dataclasses.asdict(r) == dataclasses.asdict(p)
    assert [f.name for f in dataclasses.fields(r)] == ["a", "b", "c", "d"]
    assert Rec.__match_args__ == Plain.__match_args__
    assert pickle.loads(pickle.dumps(r)) == r and copy.deepcopy(r) == r
    params = Rec.__dataclass_params__  # type: ignore[attr-defined]
    assert params.init and params.repr and params.eq and params.frozen

    @dataclasses.dataclass(frozen=True)  # a user's frozen dataclass may extend one
    class Mine(Rec):
        e: int = 7

    assert Mine(1, "x").e == 7 and Mine(1, "x") == Mine(1, "x")


def test_the_findings_and_kind_facts_are_such_records() -> None:
    f = Finding("class-count", "error", "m")
    assert (f.fix, f.layer, f.edits) == (None, None, ())
    assert f == Finding("class-count", "error", "m", None, None, ())
    edit = CfgEdit("a.cfg", 3, 1, "classes=80", "classes=2")
    g = Finding("class-count", "error", "m", fix="x", layer=LayerRef(1, "yolo", 3), edits=(edit,))
    assert g.to_dict() == {"kind": "class-count", "severity": "error", "message": "m",
                           "fix": "x", "layer": {"index": 1, "type": "yolo", "line": 3},
                           "edits": ({"path": "a.cfg", "line": 3, "layer": 1,
                                      "old": "classes=80", "new": "classes=2"},)}
    assert repr(edit) == ("CfgEdit(path='a.cfg', line=3, layer=1, old='classes=80', "
                          "new='classes=2')")
    d = Diagnosis("w", "c")
    assert d.findings == () and d.ok and Diagnosis("w", "c", (g,)).errors == (g,)
    with pytest.raises(TypeError, match=r"missing 1 required positional argument: 'cfg'"):
        Diagnosis("w")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"takes 13 positional arguments but 14 were given"):
        KindFacts(*range(13))  # every field required: as the dataclass says it
    for cls in (Finding, Diagnosis, CfgEdit, LayerRef, KindFacts):
        assert dataclasses.is_dataclass(cls) and issubclass(cls, Record)
        assert cls.__dataclass_params__.frozen  # type: ignore[union-attr]

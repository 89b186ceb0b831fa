"""The hand-written _core.pyi names only what the compiled module has, with its
signatures (parameter names and defaults) and its properties."""

from __future__ import annotations

import ast
import re
import types
from pathlib import Path

import yolo_io
from yolo_io import _core

STUB = Path(yolo_io.__file__).with_name("_core.pyi")


def test_stub_matches_the_module() -> None:
    tree = ast.parse(STUB.read_text())
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            cls = getattr(_core, node.name)
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    assert hasattr(cls, item.name), f"{node.name}.{item.name}"
        elif isinstance(node, ast.FunctionDef):
            assert callable(getattr(_core, node.name)), node.name
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            value = getattr(_core, node.target.id)
            assert type(value).__name__ == ast.unparse(node.annotation), node.target.id
    constants = {n.target.id for n in tree.body
                 if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    public = {n for n in dir(_core) if not n.startswith("_")}
    stubbed = constants | {n.name for n in tree.body
                           if isinstance(n, (ast.ClassDef, ast.FunctionDef))
                           and not n.name.startswith("_")}
    assert public == stubbed


IGNORED = {"__doc__", "__module__", "_pybind11_conduit_v1_"}


def stub_params(fn: ast.FunctionDef) -> tuple[list[str], list[str]]:
    """(parameter names, the names that have defaults) of a stub function."""
    a = fn.args
    assert a.vararg is None and a.kwarg is None, fn.name
    positional = [p.arg for p in a.posonlyargs + a.args]
    with_default = positional[len(positional) - len(a.defaults):] if a.defaults else []
    with_default += [p.arg for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d]
    return positional + [p.arg for p in a.kwonlyargs], with_default


def compiled_params(obj: object, name: str) -> tuple[list[str], list[str]]:
    """The same from pybind11's signature line, "name(self: T, i: int, x: str = 'a') -> R"."""
    doc = getattr(obj, "__doc__", None) or ""
    assert "Overloaded function" not in doc, f"{name} is overloaded: give it one signature"
    first = doc.splitlines()[0] if doc else ""
    match = re.fullmatch(rf"{re.escape(name)}\((.*)\) -> .*", first)
    assert match, f"{name}: no pybind11 signature in {first!r}"
    fn = ast.parse(f"def {name}({match.group(1)}): pass").body[0]
    assert isinstance(fn, ast.FunctionDef)
    return stub_params(fn)


def is_property(node: ast.FunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list)


def test_stub_signatures_and_properties_match_the_module() -> None:
    tree = ast.parse(STUB.read_text())
    wrong: list[str] = []  # every mismatch at once
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            compiled = compiled_params(getattr(_core, node.name), node.name)
            if stub_params(node) != compiled:
                wrong.append(f"{node.name}: {compiled}")
        if not isinstance(node, ast.ClassDef):
            continue
        cls = getattr(_core, node.name)
        members = {k: v for k, v in vars(cls).items()
                   if k not in IGNORED and not isinstance(v, types.WrapperDescriptorType)}
        stubbed = {n.name: n for n in node.body if isinstance(n, ast.FunctionDef)}
        wrong += [f"{node.name}.{k}: not in the stub" for k in members.keys() - stubbed.keys()]
        wrong += [f"{node.name}.{k}: not compiled" for k in stubbed.keys() - members.keys()]
        for name, item in stubbed.items():
            if name not in members:
                continue
            if is_property(item) != isinstance(members[name], property):
                wrong.append(f"{node.name}.{name}: a property in only one of stub and module")
            elif not is_property(item) and stub_params(item) != compiled_params(members[name], name):
                wrong.append(f"{node.name}.{name}: {compiled_params(members[name], name)}")
    assert wrong == []


# Test hooks: tests/test_kernels.py runs the portable and AVX2 kernels,
# tests/test_pool.py watches the thread pool and makes its starts fail,
# tests/test_memory.py and test_shrunk_file.py watch the arena cache and the
# fusion's parts and shrink a file between planning and reading.
TEST_HOOKS = {"_simd_active", "_set_simd", "_pool_stats", "_pool_reset_max", "_pool_fail_next",
              "_arena_cached_bytes", "_fusion_parts", "_shrink_before_fusion_reads",
              "_ahead", "_taken"}


def test_every_core_accessor_is_used_by_the_package() -> None:
    """_core has no dead accessors: each of its functions, methods and
    properties is named by the Python package (or is a test hook)."""
    package = Path(yolo_io.__file__).parent
    used: set[str] = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):
                used.add(node.attr)
    exported = {n for n in dir(_core) if not n.startswith("__") and n not in TEST_HOOKS}
    for name in sorted(exported):
        obj = getattr(_core, name)
        if isinstance(obj, type):
            members = {k for k in vars(obj) if k not in IGNORED | TEST_HOOKS
                       and not k.startswith("__")}
            assert members - used == set(), name
        elif not isinstance(obj, types.ModuleType):
            assert name in used, name

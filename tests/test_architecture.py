"""The architecture of src/yolo_io (issue 23, item 1): packages by layer, each
importing only from the layers below it ([tool.importlinter] in
pyproject.toml, checked with import-linter's own contract), no import circle
between any two modules (function-level and TYPE_CHECKING imports included),
and no private name of one package used by another."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest
import tomllib

import yolo_io

grimp = pytest.importorskip("grimp")
layers = pytest.importorskip("importlinter.contracts.layers")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(yolo_io.__file__).parent
# What `from .. import _core` (or `from . import _core`) reads as to grimp,
# which sees no compiled module: an import of the package itself.
CORE_IMPORTS = {"from . import _core", "from .. import _core"}


def contract_options() -> dict[str, object]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["id"] == "layers"]
    # import-linter's fields parse text, as its own TOML reader passes them.
    return {k: str(v) if isinstance(v, bool) else v for k, v in contract.items()
            if k not in ("id", "name", "type")}


def build_graph() -> grimp.ImportGraph:
    return grimp.build_graph("yolo_io", include_external_packages=False, cache_dir=None)


def check_layers(graph: grimp.ImportGraph) -> layers.ContractCheck:
    contract = layers.LayersContract(name="layers", session_options={"root_packages": ["yolo_io"]},
                                     contract_options=contract_options())
    return contract.check(graph, verbose=False)


def cycles(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def import_edges(graph: grimp.ImportGraph) -> dict[str, set[str]]:
    """Every module's direct imports, an import of the package itself read as
    what it is, ``_core`` (checked: any other import of it is a failure)."""
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        targets = set(graph.find_modules_directly_imported_by(module))
        if "yolo_io" in targets and module != "yolo_io":
            lines = {d["line_contents"] for d in graph.get_import_details(
                importer=module, imported="yolo_io")}
            assert lines <= CORE_IMPORTS, (module, lines - CORE_IMPORTS)
            targets = (targets - {"yolo_io"}) | {"yolo_io._core"}
        edges[module] = targets - {module}
    return edges


def test_the_layers_contract_is_kept() -> None:
    check = check_layers(build_graph())
    assert check.kept, check.metadata


@pytest.mark.parametrize(("importer", "imported"), [
    ("yolo_io._model.config", "yolo_io._writing.atomic"),
    ("yolo_io._base.errors", "yolo_io._model.network"),
    ("yolo_io._writing.weights", "yolo_io._diagnosis.diagnose"),
    ("yolo_io._diagnosis.doctor", "yolo_io._frameworks.pairing"),
    ("yolo_io._frameworks.torch", "yolo_io._export.onnx"),
    ("yolo_io._export.verify", "yolo_io._cli.common"),
    ("yolo_io.torch", "yolo_io.onnx"),  # the public modules are independent
])
def test_the_contract_fails_when_a_lower_layer_imports_a_higher_one(importer: str,
                                                                     imported: str) -> None:
    graph = build_graph()
    graph.add_import(importer=importer, imported=imported, line_number=1,
                     line_contents=f"import {imported}")
    assert not check_layers(graph).kept


def test_a_new_module_must_be_given_its_layer() -> None:
    graph = build_graph()
    graph.add_module("yolo_io._unplaced")
    assert not check_layers(graph).kept


def test_no_module_is_in_an_import_circle() -> None:
    """Function-level and TYPE_CHECKING imports count: an import circle in
    either is a design circle (network <-> state_dict was one of each)."""
    edges = import_edges(build_graph())
    assert "yolo_io._model.network" in edges and "yolo_io._core" in edges["yolo_io._model.network"]
    assert cycles(edges) == []


def test_the_circle_check_finds_a_circle() -> None:
    edges = import_edges(build_graph())
    edges["yolo_io._model.fusion"].add("yolo_io._model.network")  # network imports fusion
    (circle,) = cycles(edges)
    assert {"yolo_io._model.fusion", "yolo_io._model.network"} <= set(circle)


def _package_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else ""


def _private_definitions() -> dict[str, set[str]]:
    """Private names (one leading underscore) each package defines: module
    functions, classes and constants, methods and ``self._x`` attributes."""
    defined: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        names = defined.setdefault(_package_of(path), set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
    return {pkg: {n for n in names if n.startswith("_") and not n.startswith("__")}
            for pkg, names in defined.items()}


def private_uses(source: str, rel: str, private: dict[str, set[str]]) -> list[str]:
    """The private names of other packages of yolo_io that ``source`` (the
    module at ``rel`` in the package) imports or reads: ``from .x import
    _name`` (relative or absolute), ``obj._name`` and ``getattr(obj,
    "_name")``, where ``_name`` is private to another package (even if this
    package has a private name spelled alike); ``self._x`` and ``cls._x`` are
    the object's own."""
    own = rel.split("/")[0] if "/" in rel else ""
    others = set().union(*(names for pkg, names in private.items() if pkg != own))
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = (node.module or "").split(".")
                target = parts[0] if node.level > 1 or not own else own
            else:
                parts = (node.module or "").split(".")
                if parts[0] != "yolo_io":
                    continue
                target = parts[1] if len(parts) > 1 else ""
            for alias in node.names:
                if (alias.name.startswith("_") and alias.name != "_core"
                        and not alias.name.startswith("__") and target != own):
                    found.append(f"{rel}:{node.lineno}: {alias.name}")
        elif (isinstance(node, ast.Attribute) and node.attr in others
              and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))) or (isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("getattr", "setattr")
              and len(node.args) > 1 and isinstance(node.args[1], ast.Constant)
              and node.args[1].value in others):
            found.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_private_name_of_one_package_is_used_by_another() -> None:
    """``from .x import _name`` across packages, or ``obj._name`` where
    ``_name`` is private to another package of yolo_io (``net._live()`` from
    the writers was one): each package offers what others need by a public
    name (``core_weights``, ``core_config``, ``fused_layers``)."""
    private = _private_definitions()
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += private_uses(path.read_text(), path.relative_to(PACKAGE).as_posix(), private)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("source", [
    "from .._model.network import _raise_if_swapped\n",
    "from yolo_io._model.network import _raise_if_swapped\n",
    "def f(net):\n    return net._live()\n",
    "_live = None\n\ndef f(net):\n    return net._live()\n",  # a name alike here
    "def f(config):\n    return getattr(config, '_cfg')\n",
])
def test_the_private_name_check_finds_a_reach_in(source: str) -> None:
    assert private_uses(source, "_writing/x.py", _private_definitions())


def test_no_module_imports_yolo_io_by_a_string() -> None:
    """``importlib.import_module("yolo_io._cli")`` or ``__import__`` would
    hide an import from the layers and the circle checks: yolo_io imports
    itself statically (a module name given at run time, as the CLI's check
    of an optional dependency, must not be one of its own)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and (
                    getattr(node.func, "attr", "") == "import_module"
                    or getattr(node.func, "id", "") in ("__import__", "import_module"))):
                continue
            arg = node.args[0] if node.args else None
            if not isinstance(arg, ast.Constant) or str(arg.value).startswith(("yolo_io", ".")):
                found.append(f"{path.relative_to(PACKAGE)}: {ast.unparse(node)}")
    # The one import by name: the CLI's check that an optional dependency
    # (matplotlib, onnx) is installed, with a constant of the caller.
    assert found == ["_cli/common.py: importlib.import_module(module)"]
    required = [node.args[0] for path in PACKAGE.rglob("*.py")
                for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "require"]
    assert required and all(isinstance(a, ast.Constant) and not str(a.value).startswith(
        ("yolo_io", ".")) for a in required), [ast.unparse(a) for a in required]

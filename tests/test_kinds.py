"""Kind facts come from the core's table (issue 23, item 2): Python reads a
layer's kind (head, training only, fusion, ...) from ``layer.kind``, keeps its
per-kind behaviour in ``*_BY_KIND`` registries that cover every kind of the
table, and never compares a layer type name."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import yolo_io
from yolo_io import _core
from yolo_io._model.kinds import KINDS, KindFacts, Refused

PACKAGE = Path(yolo_io.__file__).parent
# The registries of per-kind behaviour, by module: each must have an entry
# (handled, or Refused with the reason) for every kind of the table.
REGISTRIES = {
    "yolo_io._export.onnx": "EMIT_BY_KIND",
    "yolo_io._export.verify": "OPENCV_TYPES_BY_KIND",
    "yolo_io._frameworks.pairing": "PAIRING_ROLE_BY_KIND",
}
# Module-level collections of names that are not darknet layer types though
# some are spelled alike: darknet2pytorch's literal section names.
NOT_KIND_NAMES = {("_model/state_dict.py", "_D2P_SECTIONS")}


def test_the_table_is_the_cores() -> None:
    assert tuple(KINDS) == yolo_io.LAYER_TYPES == tuple(_core.layer_types())
    assert all(isinstance(k, KindFacts) for k in KINDS.values())
    assert [k for k, f in KINDS.items() if f.head] == ["yolo", "Gaussian_yolo", "region",
                                                        "detection"]
    assert [k for k, f in KINDS.items() if f.training_only] == ["cost", "contrastive"]
    assert [k for k, f in KINDS.items() if f.grid_head] == ["yolo", "Gaussian_yolo", "region"]
    assert {k: f.fusion for k, f in KINDS.items() if f.fusion} == {"convolutional": "conv",
                                                                   "connected": "dense"}
    for name, facts in KINDS.items():  # each names its section and its attrs record
        assert f"[{name}]" in facts.sections or name in ("convolutional",) or facts.sections
        assert hasattr(yolo_io, facts.attrs), facts.attrs


def test_a_layer_knows_its_kind(tiny_cfg: Path) -> None:
    config = yolo_io.parse_cfg(tiny_cfg)
    for layer in config:
        assert layer.kind is KINDS[layer.type]
        assert layer.kind.fusion == layer.fusion
        assert layer.kind.default_layout == layer.default_layout
        assert layer.kind.attrs == type(layer.attrs).__name__


@pytest.mark.parametrize(("module", "name"), sorted(REGISTRIES.items()))
def test_every_registry_handles_or_refuses_every_kind(module: str, name: str) -> None:
    registry = getattr(importlib.import_module(module), name)
    missing = set(KINDS) - set(registry)
    unknown = set(registry) - set(KINDS)
    assert not missing, f"{module}.{name} has no entry for {sorted(missing)}"
    assert not unknown, f"{module}.{name} has entries for no kind: {sorted(unknown)}"
    for kind, entry in registry.items():
        if isinstance(entry, Refused):
            assert entry.reason, kind


def test_the_registries_are_all_listed() -> None:
    """A new ``*_BY_KIND`` registry joins REGISTRIES, and so this test."""
    found = set()
    for info in pkgutil.walk_packages(yolo_io.__path__, "yolo_io."):
        if info.name == "yolo_io.__main__":
            continue  # runs the command
        module = importlib.import_module(info.name)
        found |= {(info.name, n) for n in vars(module) if n.endswith("_BY_KIND")}
    assert found == set(REGISTRIES.items())


def test_the_onnx_export_names_why_a_kind_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    import yolo_io.onnx

    cfg = ("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=4\nsize=3\npad=1\n"
           "activation=leaky\n[crop]\ncrop_width=4\ncrop_height=4\n")
    from yolo_io.testing import write_weights

    net = yolo_io.load(write_weights(tmp_path / "c.weights", cfg), cfg)
    with pytest.raises(yolo_io.ConversionError, match=r"layer 1 .*crops at random"):
        yolo_io.onnx.export(net, tmp_path / "c.onnx")


def _kind_names_in(node: ast.AST) -> list[str]:
    values = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
    return [v.value for v in values
            if isinstance(v, ast.Constant) and isinstance(v.value, str) and v.value in KINDS]


def _is_type_name(node: ast.AST) -> bool:
    """``<anything>.type`` (a layer's type name) or a variable named so."""
    return ((isinstance(node, ast.Attribute) and node.attr == "type")
            or (isinstance(node, ast.Name) and node.id in ("type_name", "layer_type")))


def _compares_a_type_name(node: ast.Compare) -> bool:
    sides = [node.left, *node.comparators]
    if not any(_is_type_name(s) for s in sides):
        return False
    others = [s for s in sides if not _is_type_name(s)]
    if not others:  # new.type != old.type
        return True
    # `inputs[0].type != "tensor(float)"` compares no layer type: a string
    # that names no kind is fine; a kind name, a collection or another
    # layer's type is a comparison of type names.
    return any(_kind_names_in(s) or not (isinstance(s, ast.Constant)
                                         and isinstance(s.value, str)) for s in others)


def find_type_name_comparisons(source: str, rel: str) -> list[str]:
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and _compares_a_type_name(node):
            found.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    for node in tree.body:  # module-level collections of type names
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            name = getattr(target, "id", "")
            if name.endswith("_BY_KIND") or (rel, name) in NOT_KIND_NAMES:
                continue
            value = node.value
            if isinstance(value, ast.Call) and value.args:
                value = value.args[0]
            if value is not None and len(_kind_names_in(value)) > 1:
                found.append(f"{rel}:{node.lineno}: {name}")
    return found


def test_no_python_code_compares_a_layer_type_name() -> None:
    """``layer.type == "yolo"``, ``kind in ("reorg", "reorg3d")`` or a
    module-level set of type names (outside the registries) is how kind
    facts leaked out of the table: ask ``layer.kind`` or a registry."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += find_type_name_comparisons(path.read_text(),
                                            path.relative_to(PACKAGE).as_posix())
    assert not found, "\n".join(found)


@pytest.mark.parametrize(("source", "found"), [
    ('if layer.type == "yolo":\n    pass\n', ["m.py:1: layer.type == 'yolo'"]),
    ('ok = config[i].type in ("cost", "contrastive")\n',
     ["m.py:1: config[i].type in ('cost', 'contrastive')"]),
    ("same = new.type != old.type\n", ["m.py:1: new.type != old.type"]),
    ('if layer_type in HEADS:\n    pass\n', ["m.py:1: layer_type in HEADS"]),
    ('HEADS = frozenset({"region", "yolo"})\n', ["m.py:1: HEADS"]),
    ('if inputs[0].type != "tensor(float)":\n    pass\n', []),
    ('if name == "logistic":\n    pass\n', []),  # an activation's name
    ('EMIT_BY_KIND = {"yolo": 1, "region": 2}\n', []),
])
def test_the_type_name_check(source: str, found: list[str]) -> None:
    assert find_type_name_comparisons(source, "m.py") == found

"""Kind facts come from the core's table (issue 23, item 2): Python reads a
layer's kind (head, training only, fusion, ...) from ``layer.kind``, keeps its
per-kind behaviour in ``*_BY_KIND`` registries that cover every kind of the
table, and never compares a layer type name."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import yolo_io
from yolo_io import _core
from yolo_io._model.kinds import KINDS, KindFacts, Refused

PACKAGE = Path(yolo_io.__file__).parent
# The registries of per-kind behaviour, by module: each must have an entry
# (handled, or Refused with the reason) for every kind of the table.
REGISTRIES = {
    "yolo_io._lowering.darknet": "LOWER_BY_KIND",
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
    for facts in KINDS.values():  # each names its sections and its attrs record
        assert facts.sections and all(s.startswith("[") and s.endswith("]")
                                      for s in facts.sections)
        assert hasattr(yolo_io.attrs, facts.attrs), facts.attrs


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


def module_tables(suffix: str) -> set[tuple[str, str]]:
    """(module, name) of every module-level table of src/yolo_io whose name
    ends in ``suffix``, read from the source (a module that imports an
    optional framework, torch_model.py, is found without it)."""
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for node in ast.parse(path.read_text()).body:
            targets = (node.targets if isinstance(node, ast.Assign) else
                       [node.target] if isinstance(node, ast.AnnAssign) else [])
            found |= {(module, t.id) for t in targets
                      if isinstance(t, ast.Name) and t.id.endswith(suffix)}
    return found


def test_the_registries_are_all_listed() -> None:
    """A new ``*_BY_KIND`` registry joins REGISTRIES, and so this test."""
    assert module_tables("_BY_KIND") == set(REGISTRIES.items())


def test_the_onnx_export_names_why_a_kind_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    import yolo_io.onnx

    cfg = ("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=4\nsize=3\npad=1\n"
           "activation=leaky\n[crop]\ncrop_width=4\ncrop_height=4\n")
    from yolo_io.testing import write_weights

    net = yolo_io.load(write_weights(tmp_path / "c.weights", cfg), cfg)
    with pytest.raises(yolo_io.ConversionError, match=r"layer 1 .*: a crop layer; yolo_io cannot build a model of it"):
        yolo_io.onnx.export(tmp_path / "c.onnx", net)


# Each backend's table of emitters: one for every lowered operation.
BACKENDS = {
    "yolo_io._export.onnx": "EMIT_BY_OP",
    "yolo_io._frameworks.torch_model": "EMIT_BY_OP",
    "yolo_io._frameworks.keras_build": "EMIT_BY_OP",
}


@pytest.mark.parametrize(("module", "name"), sorted(BACKENDS.items()))
def test_every_backend_emits_every_operation(module: str, name: str) -> None:
    from yolo_io._lowering.ops import OPS

    if module.endswith("torch_model"):  # it imports torch
        pytest.importorskip("torch")
    table = getattr(importlib.import_module(module), name)
    assert set(table) == set(OPS), sorted(o.__name__ for o in set(OPS) ^ set(table))


def test_the_backends_are_all_listed() -> None:
    assert module_tables("_BY_OP") == set(BACKENDS.items())


def _is_type_attr(node: ast.AST) -> bool:
    """``<anything>.type``: a layer's type name."""
    return isinstance(node, ast.Attribute) and node.attr == "type"


SECTIONS = {section for facts in KINDS.values() for section in facts.sections}
RECORDS = {facts.attrs for facts in KINDS.values()}


def _kind_names_in(node: ast.AST) -> list[str]:
    values = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
    return [v.value for v in values
            if isinstance(v, ast.Constant) and isinstance(v.value, str) and v.value in KINDS]


def _keyed_by_kind(node: ast.Dict, at_least: int = 2) -> bool:
    """Most keys, and at least ``at_least``, are type names (a row of
    fields with an "activation" key is not)."""
    kinds = sum(bool(k is not None and _kind_names_in(k)) for k in node.keys)
    return kinds >= at_least and 2 * kinds > len(node.keys)


def _constants(node: ast.AST) -> set[str]:
    values = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
    return {v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)}


def find_type_name_comparisons(source: str, rel: str) -> list[str]:
    """Where ``source`` compares a layer's type name: ``x.type``, a name
    bound to one (``kind = layer.type``), ``x.kind.name``, against anything
    but a string that names no kind, by ``==``/``in``/``match``/a string
    method; a section header or an attrs record's name compared; or a dict
    or collection of type names outside a ``*_BY_KIND`` registry."""
    tree = ast.parse(source)
    aliases = {"type_name", "layer_type"} | {
        target.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
        and _is_type_attr(node.value) for target in node.targets if isinstance(target, ast.Name)}

    def is_type_name(node: ast.AST) -> bool:
        return (_is_type_attr(node) or (isinstance(node, ast.Name) and node.id in aliases)
                or (isinstance(node, ast.Attribute) and node.attr == "name"
                    and isinstance(node.value, ast.Attribute) and node.value.attr == "kind"))

    registries = {id(node.value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None
                  and getattr(node.targets[0] if isinstance(node, ast.Assign) else node.target,
                              "id", "").endswith("_BY_KIND")}
    found = []

    def flag(node: ast.AST, what: str | None = None) -> None:
        found.append(f"{rel}:{getattr(node, 'lineno', 0)}: {what or ast.unparse(node)}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(is_type_name(side) for side in sides):
                others = [side for side in sides if not is_type_name(side)]
                # `inputs[0].type != "tensor(float)"` compares no layer type.
                if not others or any(_kind_names_in(side) or not (
                        isinstance(side, ast.Constant) and isinstance(side.value, str))
                        for side in others):
                    flag(node)
            elif any(_constants(side) & (SECTIONS | RECORDS) for side in sides):
                flag(node)  # x.section == "[yolo]", type(a).__name__ == "YoloAttrs"
        elif isinstance(node, ast.Match) and is_type_name(node.subject):
            flag(node, f"match {ast.unparse(node.subject)}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and is_type_name(node.func.value)):
            flag(node)  # layer.type.startswith("yolo")
        elif isinstance(node, ast.Dict) and id(node) not in registries and _keyed_by_kind(node):
            flag(node, "a dict keyed by type names")
    for node in tree.body:  # module-level collections of type names
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            name = getattr(target, "id", "")
            if name.endswith("_BY_KIND") or (rel, name) in NOT_KIND_NAMES:
                continue
            value = node.value
            if (isinstance(value, ast.Call) and getattr(value.func, "id", "") in (
                    "frozenset", "set", "tuple", "list") and value.args):
                value = value.args[0]
            if value is not None and (_kind_names_in(value) or (
                    isinstance(value, ast.Dict) and _keyed_by_kind(value, at_least=1))):
                flag(node, name)
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
    ('HEADS = ("yolo",)\n', ["m.py:1: HEADS"]),
    ('kind = layer.type\nif kind == "route":\n    pass\n', ["m.py:2: kind == 'route'"]),
    ('ok = layer.type.startswith("yolo")\n', ["m.py:1: layer.type.startswith('yolo')"]),
    ('match layer.type:\n    case "yolo":\n        pass\n', ["m.py:1: match layer.type"]),
    ('x = {"yolo": 1, "region": 2}.get(layer.type)\n', ["m.py:1: a dict keyed by type names"]),
    ('MAP = {"yolo": "permute"}\n', ["m.py:1: MAP"]),
    ('row = {"index": 1, "activation": "leaky", "line": 3}\n', []),
    ('ok = layer.kind.name in ("yolo", "region")\n',
     ["m.py:1: layer.kind.name in ('yolo', 'region')"]),
    ('ok = layer.section == "[yolo]"\n', ["m.py:1: layer.section == '[yolo]'"]),
    ('ok = type(layer.attrs).__name__ == "YoloAttrs"\n',
     ["m.py:1: type(layer.attrs).__name__ == 'YoloAttrs'"]),
    ('if inputs[0].type != "tensor(float)":\n    pass\n', []),
    ('if name == "logistic":\n    pass\n', []),  # an activation's name
    ('EMIT_BY_KIND = {"yolo": 1, "region": 2}\n', []),
])
def test_the_type_name_check(source: str, found: list[str]) -> None:
    assert find_type_name_comparisons(source, "m.py") == found

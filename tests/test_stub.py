"""The hand-written _core.pyi names only what the compiled module has."""

from __future__ import annotations

import ast
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
    public = {n for n in dir(_core) if not n.startswith("_")}
    stubbed = {n.name for n in tree.body
               if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and not n.name.startswith("_")}
    assert public == stubbed

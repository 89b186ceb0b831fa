"""Every Python example of README.md and docs/*.md runs as written (issue 23,
item 5): a page's ```python blocks run in order, in one namespace, in an empty
folder. A page that uses AlexeyAB's yolov4-tiny finds yolov4-tiny.cfg (from the
corpus) and a stand-in yolov4-tiny.weights there, as its text says. A block
that needs an optional package which is not installed skips, and fails under
YOLO_IO_CI (.ci/run), where every extra is installed."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import CORPUS_REASON, SHARED_CFG

from yolo_io.testing import write_weights

os.environ.setdefault("KERAS_BACKEND", "torch")  # before any example imports Keras

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
OPTIONAL = {"torch", "keras", "onnx", "onnxruntime", "cv2", "skimage", "safetensors"}


def examples(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text())


def test_the_docs_pages_exist_and_have_examples() -> None:
    names = {p.stem for p in PAGES[1:]}
    assert {"api", "architecture", "cli", "converters", "development", "errors", "fusion",
            "lifetimes", "onnx", "performance", "state-dicts", "troubleshooting",
            "writing"} <= names
    assert sum(len(examples(p)) for p in PAGES) >= 10
    readme = PAGES[0].read_text()
    assert len(readme.splitlines()) <= 200
    for page in PAGES[1:]:  # the README links every page
        assert f"](docs/{page.name})" in readme, page.name


def test_links_between_pages_resolve() -> None:
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[\w-]+)?\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name} links {target}"


@pytest.mark.parametrize("page", [p for p in PAGES if examples(p)], ids=lambda p: p.name)
def test_the_examples_of_a_page_run(page: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = examples(page)
    if any("yolov4-tiny" in block for block in blocks):
        if not SHARED_CFG.is_dir():
            pytest.skip(CORPUS_REASON)
        shutil.copy(SHARED_CFG / "yolov4-tiny.cfg", tmp_path / "yolov4-tiny.cfg")
        write_weights(tmp_path / "yolov4-tiny.weights", tmp_path / "yolov4-tiny.cfg",
                      realistic=True)
    namespace: dict[str, object] = {"__name__": f"docs.{page.stem}"}
    for number, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"{page.name} example {number}", "exec"), namespace)  # noqa: S102
        except ModuleNotFoundError as error:
            if error.name not in OPTIONAL or os.environ.get("YOLO_IO_CI"):
                raise
            pytest.skip(f"{page.name} example {number} needs {error.name}")

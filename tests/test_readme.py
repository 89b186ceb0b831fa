"""The README's first example runs as written (no downloads)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
DOCS = README.parent / "docs"


def test_first_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert block is not None
    monkeypatch.chdir(tmp_path)
    exec(compile(block.group(1), str(README), "exec"), {})  # noqa: S102 - our own README
    out = capsys.readouterr().out
    assert "Header(major=0, minor=2, revision=5" in out
    assert "0 convolutional (16, 16, 16) leaky" in out
    assert "weights (16, 3, 3, 3)" in out
    assert (tmp_path / "tiny.weights").is_file()


def test_converter_example_prints_what_the_readme_says(capsys: pytest.CaptureFixture[str]) -> None:
    section = (DOCS / "converters.md").read_text()
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    printed = re.search(r"prints\n\n```\n(.*?)```", section, re.DOTALL)
    assert code is not None and printed is not None
    exec(compile(code.group(1), str(README), "exec"), {})  # noqa: S102 - our own README
    assert capsys.readouterr().out == printed.group(1)


def test_check_example_is_what_the_cli_prints(tmp_path: Path) -> None:
    """The block of docs/troubleshooting.md is the command's real output."""
    import os
    import shutil
    import subprocess
    import sys

    from conftest import CORPUS_REASON, SHARED_CFG

    from yolo_io.testing import write_weights

    if not SHARED_CFG.is_dir():
        pytest.skip(CORPUS_REASON)
    section = (DOCS / "troubleshooting.md").read_text()
    block = re.search(r"```\n\$ (yolo-io .*?)\n(.*?)```", section, re.DOTALL)
    assert block is not None
    shutil.copy(SHARED_CFG / "yolov4.cfg", tmp_path / "yolov4.cfg")
    three = (tmp_path / "yolov4.cfg").read_text().replace("filters=255", "filters=24")
    write_weights(tmp_path / "custom.weights", three.replace("classes=80", "classes=3"),
                  sparse=True)
    args = block.group(1).split()[1:]
    proc = subprocess.run([sys.executable, "-m", "yolo_io", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"}, check=False)
    assert proc.returncode == 1
    assert proc.stdout == block.group(2)


def test_performance_tables_are_one_report_run() -> None:
    """The tables of docs/performance.md are exactly what benchmarks/report.py makes
    of the run kept in docs/benchmarks.json (so they come from one run), and
    the chart the README shows is there."""
    import importlib.util
    import json

    root = README.parent
    spec = importlib.util.spec_from_file_location("bench_report", root / "benchmarks" / "report.py")
    if spec is None or spec.loader is None or not (root / "docs" / "benchmarks.json").is_file():
        pytest.skip("benchmarks/report.py or docs/benchmarks.json is not in this checkout")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    text = (DOCS / "performance.md").read_text()
    block = re.search(r"<!-- report.py docs/benchmarks.json: begin -->\n(.*?)"
                      r"<!-- report.py docs/benchmarks.json: end -->", text, re.DOTALL)
    assert block is not None
    data = json.loads((root / "docs" / "benchmarks.json").read_text())
    assert block.group(1) == report.markdown(data).rstrip("\n") + "\n"
    assert "](benchmarks.png)" in text and (root / "docs" / "benchmarks.png").is_file()


def test_every_file_the_readme_and_agents_name_exists() -> None:
    """A source file named in README.md, AGENTS.md or docs/*.md (`model.cpp`,
    ...) is in the repository, under that name somewhere."""
    root = README.parent
    files = {p.name for p in root.rglob("*")
             if not any(part.startswith(".") or part == "build"
                        for part in p.relative_to(root).parts)}
    for doc in (README, root / "AGENTS.md", *DOCS.glob("*.md")):
        named = set(re.findall(r"`([\w.-]+\.(?:cpp|hpp|py|pyi|json|png|toml|sh))`", doc.read_text()))
        assert named or doc.parent == DOCS or doc == README, doc
        assert not sorted(named - files), f"{doc.name} names files that do not exist"


def test_readme_claims_the_code_keeps() -> None:
    """Sentences once untrue (issue 22, item 26): the sniffed bytes are
    kSniffBytes, a max-pool pads with -inf through ConstantPad2d."""
    text = "\n".join(p.read_text() for p in (README, *DOCS.glob("*.md")))
    sniff = (README.parent / "csrc" / "yolo_io" / "sniff.hpp").read_text()
    assert "kSniffBytes = 4096;" in sniff and "sniffs the first 4 KiB" in text
    assert "first 64 bytes" not in text
    pools = [line for line in text.splitlines() if "MaxPool2d" in line or "-inf" in line]
    assert pools and not any("ZeroPad2d" in line for line in pools)  # zeros, not -inf
    assert "about 15 s" not in text
    assert "of every layer," not in text  # fused() raises on layers without weights

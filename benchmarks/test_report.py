"""benchmarks/report.py on a small pytest-benchmark JSON (runs in the smoke run)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

REPORT = Path(__file__).parent / "report.py"
DATA = {
    "machine_info": {"cpu": {"brand_raw": "Test CPU", "count": 2}, "system": "Linux",
                     "release": "6.1", "python_implementation": "CPython",
                     "python_version": "3.11.7"},
    "datetime": "2026-11-30T12:00:00",
    "benchmarks": [
        {"extra_info": {"report": [
            {"operation": "load_into", "regime": "first use: fresh process", "ours": "ours",
             "baseline": "theirs", "ours_ms": 19.0, "baseline_ms": 44.0, "ratio": 0.41},
            {"operation": "load", "regime": "steady state: one process", "ours": "load",
             "baseline": "np.memmap", "ours_ms": 0.125, "baseline_ms": 0.034, "ratio": 3.68}]}},
        {"extra_info": {"rss_growth_mb": 1.0}},
        {"extra_info": {"report": [
            {"operation": "export", "regime": "fresh process, peak or current RSS",
             "rss_mb": 4.2, "bound_mb": 448.0},
            {"operation": "iterator", "regime": "fresh process, peak or current RSS",
             "rss_mb": 5115.0, "bound_mb": None}]}},
        {"extra_info": {"report": [
            {"target": "fused_all OIHW / np.fromfile, cold", "measured": 0.77, "bound": "<= 0.5x",
             "met": False, "why": "fresh memory"},
            {"target": "HWIO x1 / HWIO x2", "measured": 1.6, "bound": ">= 1.5x", "met": True,
             "why": ""}]}},
    ],
}


def run(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPORT), *map(str, args)], check=False,
                          capture_output=True,
                          text=True, timeout=120)


def test_tables_from_a_run(tmp_path: Path) -> None:
    source = tmp_path / "bench.json"
    source.write_text(json.dumps(DATA))
    out = tmp_path / "bench.md"
    assert run(source, "--markdown", out).returncode == 0
    text = out.read_text()
    assert "Machine: Test CPU, 2 cores, Linux 6.1, CPython 3.11.7; run of 2026-11-30T12:00:00." \
        in text
    assert "*first use: fresh process*\n\n| operation | time | baseline | ratio |\n|---|---|---|---|\n" \
        "| load_into | 19.0 ms | theirs: 44.0 ms | 0.41x |\n" in text
    assert "| load | 125 us | np.memmap: 34 us | 3.68x |" in text
    assert "| export | 4.2 MB | < 448 MB |" in text
    assert "| iterator | 5115.0 MB | reported |" in text
    assert "| fused_all OIHW / np.fromfile, cold | 0.77x | <= 0.5x | **not met**: fresh memory |" \
        in text
    assert "| HWIO x1 / HWIO x2 | 1.60x | >= 1.5x | yes |" in text


def test_chart_is_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (the plot extra)")
    source = tmp_path / "bench.json"
    source.write_text(json.dumps(DATA))
    png = tmp_path / "bench.png"
    assert run(source, "--chart", png).returncode == 0
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    assert width == 1200 and height > 100


def test_bad_input_is_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    result = run(bad)
    assert result.returncode == 2 and "is not pytest-benchmark JSON" in result.stderr
    assert run(tmp_path / "missing.json").returncode == 2

"""Package-level facts: version, public names, yolo_io.testing."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np

import yolo_io
from yolo_io.testing import write_weights


def test_version_is_single_sourced() -> None:
    assert yolo_io.__version__ == importlib.metadata.version("yolo_io")


def test_public_names() -> None:
    for name in yolo_io.__all__:
        assert hasattr(yolo_io, name), name


def test_write_weights_is_deterministic_and_valid(tmp_path: Path, tiny_cfg: Path) -> None:
    a = write_weights(tmp_path / "a.weights", tiny_cfg, seed=1).read_bytes()
    b = write_weights(tmp_path / "b.weights", tiny_cfg, seed=1).read_bytes()
    c = write_weights(tmp_path / "c.weights", tiny_cfg, seed=2).read_bytes()
    assert a == b != c
    net = yolo_io.load(tmp_path / "a.weights", tiny_cfg)
    for layer in net:
        for name, arr in layer.params.items():
            assert np.isfinite(arr).all()
            if name.endswith("rolling_variance"):
                assert (arr > 0).all()


def test_write_weights_partial_and_header(tmp_path: Path, tiny_cfg: Path) -> None:
    cfg = yolo_io.parse_cfg(tiny_cfg)
    p = write_weights(tmp_path / "p.weights", cfg, layers=2, version=(0, 1, 0), seen=9)
    assert p.stat().st_size == cfg.expected_size((0, 1), layers=2)
    net = yolo_io.load(p, cfg, partial=True)
    assert net.header.seen == 9 and net.covered_layers == 3  # layer 2 (route) stores nothing

"""Synthetic weights for the real cfgs beside the checkout, written once per session."""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

import yolo_io
from yolo_io.testing import write_weights

SHARED_CFG = Path(__file__).resolve().parents[2] / "shared" / "cfg"


def model(tmp_path_factory: pytest.TempPathFactory, name: str) -> tuple[Path, Path]:
    cfg = SHARED_CFG / f"{name}.cfg"
    if not cfg.is_file():
        pytest.skip(f"{cfg} is not there (the real-cfg corpus lives beside the checkout in CI)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", yolo_io.CfgWarning)
        path = write_weights(tmp_path_factory.mktemp(name) / f"{name}.weights", cfg, seed=0)
    return path, cfg


@pytest.fixture(scope="session")
def yolov4(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return model(tmp_path_factory, "yolov4")


@pytest.fixture(scope="session")
def yolov4_p6(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return model(tmp_path_factory, "yolov4-p6")


def median_seconds(fn: Callable[[], object], rounds: int) -> float:
    """Median wall time of `rounds` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_times(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Wall times of each function, measured in interleaved rounds (one call of
    each per round, after one warm-up round), so that a noisy neighbour slows
    every contender alike instead of one block of rounds."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(rounds + 1):
        for name, fn in fns.items():
            start = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - start
            del result  # freed before the next contender allocates
            if r:
                times[name].append(elapsed)
    return times


def paired_ratio(times: dict[str, list[float]], num: str, den: str) -> float:
    """The median over rounds of num's time / den's time in the same round:
    what the machine did to both in that round cancels."""
    return statistics.median(a / b for a, b in zip(times[num], times[den], strict=True))

"""Synthetic weights for the real cfgs beside the checkout, written once per session."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

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


def interleaved_times(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Wall times of each function, measured in interleaved rounds (one call of
    each per round, after one warm-up round), so that a noisy neighbour slows
    every contender alike instead of one block of rounds; the order reverses
    every round (see :func:`round_order`)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(rounds + 1):
        for name in round_order(list(fns), r):
            fn = fns[name]
            start = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - start
            del result  # freed before the next contender allocates
            if r:
                times[name].append(elapsed)
    return times


def round_order(names: list[str], r: int) -> list[str]:
    """The order of round ``r``: ``names``, reversed in odd rounds. Whoever
    runs first after a pause, or after another's exit, meets the memory that
    one left: on these VMs a page freed for ~2 s is handed back to the host
    (free page reporting, ``page_reporting_order`` 9), and the next process
    to fault it in waits for the host (one 4.6 GB walk took 11 s, 21.6 s of
    it in the kernel, and 0.6 s right after another process freed the same
    amount). With two contenders and an even number of rounds each goes
    first, and follows the other, equally often; with more, the order at
    least varies."""
    return names[::-1] if r % 2 else names


def paired_ratio(times: dict[str, list[float]], num: str, den: str) -> float:
    """The median over rounds of num's time / den's time in the same round:
    what the machine did to both in that round cancels."""
    return statistics.median(a / b for a, b in zip(times[num], times[den], strict=True))


# For programs run by fresh_process_number(): the current RSS (status("VmRSS:"))
# or its peak (status("VmHWM:")) in bytes, and reset_peak(), which sets the
# peak to the current RSS so that a peak measures one operation.
RSS_HELPERS = """
def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key))


def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
"""

FRESH_ENV = {**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"}

# Untimed, the last thing a first-use sample does before its clock starts
# (``warm_host_memory(nbytes, settle)``): it touches every page of ``nbytes``
# of fresh memory (a NumPy array, which NumPy advises for huge pages) and
# frees it, so that the fresh memory the timed code gets next is memory the
# host backs. These VMs hand a page that stays free for about 2 s back to
# the host (free page reporting), and the next process to touch it waits for
# the host: touching 6 GiB took 19.6 s in one process and 0.7-0.9 s in the
# two after it; 4 GiB, 0.38-0.49 s, and 4.9-8.1 s after a 3 s pause (02:10
# UTC 2026-12-07). Without this, a sample's time says more about what ran
# before it, and how long ago, than about its code. With ``settle`` it first
# sleeps that long, so that the host takes back what the sample before freed
# before the warm-up, not while the clock runs: the 4.6 GiB walk keeping its
# results took 0.65-1.97 s warmed without a pause (02:22 UTC) and 0.54-0.98 s
# after 3 s (02:33 UTC). It never takes more than MemFree less 512 MiB, so
# the file's cached pages stay, and fails (MemoryError) when that is less
# than half of what it was asked to warm, rather than label a sample warmed
# that was not; it imports nothing the program has not (time, NumPy), so the
# timed code's imports are its own. The kernel still zeroes every page the
# timed code touches, as for any fresh process.
# Regimes that warm say so ("host memory warmed").
WARM_HOST_MEMORY = """
def warm_host_memory(nbytes, settle):
    import time
    import numpy as np
    time.sleep(settle)
    try:
        with open("/proc/meminfo") as f:
            free = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemFree:"))
    except (OSError, StopIteration, ValueError):
        free = None
    if free is not None and free - (512 << 20) < nbytes:
        if free - (512 << 20) < nbytes // 2:
            raise MemoryError(f"warm_host_memory: {free} bytes free, {nbytes} to warm")
        nbytes = free - (512 << 20)
    touched = np.empty(nbytes, np.uint8)
    touched[::4096] = 1
    del touched
"""


def warmed(nbytes: int, settle: float = 0.0) -> str:
    """Code that defines ``warm_host_memory`` (:data:`WARM_HOST_MEMORY`) and
    warms ``nbytes`` with it after ``settle`` seconds: put it just before a
    sample's clock starts."""
    return WARM_HOST_MEMORY + f"warm_host_memory({int(nbytes)}, {float(settle)!r})\n"


def scratch_folder(tmp_path: Path) -> Path:
    """tmpfs (/dev/shm) when it has room, else ``tmp_path``: on a disk,
    write-back makes single samples of a large write bimodal (55 or 600 ms for
    the same call); in memory the samples measure the code."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and shutil.disk_usage(shm).free > 2 << 30 else tmp_path


def fresh_process_number(code: str, *args: object, out: Path) -> float:
    """Runs ``code`` in a new Python process with ``args`` as ``sys.argv[1:]``
    after deleting ``out`` and an untimed ``os.sync()`` (the previous sample's
    dirty pages go to disk now, not during this one). Returns the last number
    ``code`` printed: the seconds it timed, or another measure."""
    out.unlink(missing_ok=True)
    os.sync()
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True, env=FRESH_ENV, check=True, timeout=600)
    return float(proc.stdout.split()[-1])


def fresh_process_rounds(programs: Mapping[str, str], rounds: int, *args: object,
                         out: Path) -> dict[str, list[float]]:
    """:func:`fresh_process_number` of every program (each printing the
    seconds it timed) once per round, with ``args`` and then ``out`` as its
    arguments; rounds interleaved (pair them with :func:`paired_ratio`);
    ``out`` is deleted at the end. The order reverses every round
    (:func:`round_order`)."""
    times: dict[str, list[float]] = {name: [] for name in programs}
    try:
        for r in range(rounds):
            for name in round_order(list(programs), r):
                times[name].append(fresh_process_number(programs[name], *args, out, out=out))
    finally:
        out.unlink(missing_ok=True)
    return times


def first_use_times(benchmark: Any, programs: Mapping[str, str], weights: Path, cfg: Path,
                    tmp_path: Path, *, suffix: str, rounds: int,
                    before: Callable[[Path, Path], object] | None = None,
                    folder: Path | None = None,
                    then: Mapping[str, str] | None = None) -> dict[str, list[float]] | None:
    """The first-use regime shared by the write benchmarks: the weights copied
    to ``folder`` (default :func:`scratch_folder`), then :func:`fresh_process_rounds` of
    ``programs`` (one round when timings are off) with that copy, ``cfg`` and
    an output file ``yolo_io-bench-<pid><suffix>`` beside it as arguments;
    ``before(source, out)`` runs first, untimed. Both files are removed after.
    ``then``: more programs, with names of their own, whose rounds follow
    (not interleaved with the first: a regime that warms the host's memory
    would warm the sample after it too). None when timings are off."""
    folder = scratch_folder(tmp_path) if folder is None else folder
    source = folder / f"yolo_io-bench-{os.getpid()}.weights"
    out = folder / f"yolo_io-bench-{os.getpid()}{suffix}"
    shutil.copyfile(weights, source)
    try:
        if before is not None:
            before(source, out)
        n = 1 if benchmark.disabled else rounds

        def phases() -> dict[str, list[float]]:
            times = fresh_process_rounds(programs, n, source, cfg, out=out)
            if then:
                times.update(fresh_process_rounds(then, n, source, cfg, out=out))
            return times

        times: dict[str, list[float]] = benchmark.pedantic(phases, rounds=1, iterations=1)
    finally:
        out.unlink(missing_ok=True)
        source.unlink()
    return None if benchmark.disabled else times


def medians_ms(times: Mapping[str, list[float]]) -> list[str]:
    """``"name: N ms"``, the median of each program's times."""
    return [f"{name}: {statistics.median(t) * 1e3:.0f} ms" for name, t in times.items()]


# -- rows for benchmarks/report.py ----------------------------------------------


def record(benchmark: Any, operation: str, regime: str, times: Mapping[str, list[float]],
           ours: str, baseline: str) -> float:
    """Adds a row for ``benchmarks/report.py`` to ``benchmark.extra_info["report"]``:
    the operation, its regime in words ("first use: ..." or "steady state:
    ..."), the medians of ``ours`` and ``baseline`` (ms), and their paired
    ratio, which it returns."""
    ratio = paired_ratio(times, ours, baseline)
    benchmark.extra_info.setdefault("report", []).append({
        "operation": operation, "regime": regime, "ours": ours, "baseline": baseline,
        "ours_ms": statistics.median(times[ours]) * 1e3,
        "baseline_ms": statistics.median(times[baseline]) * 1e3, "ratio": ratio})
    return ratio


def record_target(benchmark: Any, target: str, measured: float, bound: float, *,
                  at_least: bool = False, why: str = "", unit: str = "x") -> bool:
    """Adds a performance target for ``benchmarks/report.py``, met or not:
    ``measured`` (a ratio, or a figure in ``unit``) against ``bound`` (at most, or ``at_least``), and
    ``why`` a target is not met on these machines. Returns whether it is met.
    A target the machines do not meet reliably is recorded here and shown in
    the report's *Targets* table as not met, instead of an xfail marker that
    could never fail; a target they meet is also asserted by its test."""
    met = measured >= bound if at_least else measured <= bound
    benchmark.extra_info.setdefault("report", []).append({
        "target": target, "measured": measured,
        "bound": f"{'>=' if at_least else '<='} {bound}{'' if unit == 'x' else ' '}{unit}",
        "met": met, "why": why, "unit": unit})
    return met


def record_memory(benchmark: Any, operation: str, grown: float, bound: float | None) -> None:
    """Adds a memory row for ``benchmarks/report.py``: RSS growth and its bound
    (bytes; None when only reported)."""
    benchmark.extra_info.setdefault("report", []).append({
        "operation": operation, "regime": "fresh process, peak or current RSS",
        "rss_mb": grown / (1 << 20), "bound_mb": None if bound is None else bound / (1 << 20)})

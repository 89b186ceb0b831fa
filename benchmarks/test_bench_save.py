"""yolo_io.save() of yolov4 (258 MB), first use in a fresh process.

Regime: every sample is a new process that loads the network (a new mapping;
the source file is in the page cache, as right after a download or a
training run) and saves it once; only the save is timed. Baselines, each in a
fresh process of its own in the same interleaved round: ``ndarray.tofile`` of
the same bytes already in memory, and the same followed by ``os.fsync`` (what
an atomic save must also do before its rename). Figures are medians over
rounds of the paired ratio save / baseline.

Target (issue 10): save takes at most 1.5x tofile of the same bytes.

    python -m pytest benchmarks/test_bench_save.py --benchmark-only -s
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROUNDS = 7
ENV = {**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"}

SAVE = """
import sys, time, yolo_io
net = yolo_io.load(sys.argv[1], sys.argv[2])
t = time.perf_counter(); yolo_io.save(sys.argv[3], net); print(time.perf_counter() - t)
"""
TOFILE = """
import os, sys, time, numpy as np
data = np.fromfile(sys.argv[1], dtype=np.uint8)
t = time.perf_counter(); data.tofile(sys.argv[3]); print(time.perf_counter() - t)
"""
TOFILE_FSYNC = """
import os, sys, time, numpy as np
data = np.fromfile(sys.argv[1], dtype=np.uint8)
t = time.perf_counter()
with open(sys.argv[3], "wb") as f:
    data.tofile(f); f.flush(); os.fsync(f.fileno())
print(time.perf_counter() - t)
"""
PROGRAMS = {"save": SAVE, "tofile": TOFILE, "tofile+fsync": TOFILE_FSYNC}


def _sample(code: str, weights: Path, cfg: Path, out: Path) -> float:
    out.unlink(missing_ok=True)
    # Untimed: the previous sample's dirty pages go to disk now, not during
    # this sample (tofile returns before its data is on disk).
    os.sync()
    proc = subprocess.run([sys.executable, "-c", code, str(weights), str(cfg), str(out)],
                          capture_output=True, text=True, env=ENV, check=True, timeout=300)
    return float(proc.stdout.split()[-1])


@pytest.mark.benchmark(group="save-yolov4")
def test_save_yolov4_first_use(benchmark: pytest.FixtureDef, yolov4: tuple[Path, Path],
                               tmp_path: Path) -> None:
    weights, cfg = yolov4
    # On a disk, write-back makes single samples bimodal (55 or 600 ms for the
    # same call); both files on tmpfs (memory) measure the save itself.
    shm = Path("/dev/shm")
    folder = shm if shm.is_dir() and shutil.disk_usage(shm).free > 2 << 30 else tmp_path
    source = folder / f"yolo_io-bench-{os.getpid()}.weights"
    shutil.copyfile(weights, source)
    weights = source
    out = folder / f"yolo_io-bench-{os.getpid()}.out"
    rounds = 1 if benchmark.disabled else ROUNDS

    def run_rounds() -> dict[str, list[float]]:
        times: dict[str, list[float]] = {k: [] for k in PROGRAMS}
        for _ in range(rounds):
            for name, code in PROGRAMS.items():
                times[name].append(_sample(code, weights, cfg, out))
        return times

    try:
        times = benchmark.pedantic(run_rounds, rounds=1, iterations=1)
        assert out.stat().st_size == weights.stat().st_size
    finally:
        out.unlink(missing_ok=True)
        source.unlink()
    if benchmark.disabled:
        return
    ratio = {b: statistics.median(s / t for s, t in zip(times["save"], times[b], strict=True))
             for b in ("tofile", "tofile+fsync")}
    report = [f"{k}: {statistics.median(v) * 1e3:.0f} ms" for k, v in times.items()]
    report += [f"save / {b}: {r:.2f}x" for b, r in ratio.items()]
    benchmark.extra_info.update({f"ratio_{b}": r for b, r in ratio.items()})
    print("\nfirst use, yolov4: " + "; ".join(report))
    assert ratio["tofile"] <= 1.5, report

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

from pathlib import Path

import pytest
from conftest import (
    first_use_times,
    fresh_process_number,
    medians_ms,
    record,
)

ROUNDS = 7

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


@pytest.mark.benchmark(group="save-yolov4")
def test_save_yolov4_first_use(benchmark: pytest.FixtureDef, yolov4: tuple[Path, Path],
                               tmp_path: Path) -> None:
    weights, cfg = yolov4
    check = """
import sys, yolo_io
yolo_io.save(sys.argv[3], yolo_io.load(sys.argv[1], sys.argv[2]))
from pathlib import Path
assert Path(sys.argv[3]).read_bytes() == Path(sys.argv[1]).read_bytes()
print(0)
"""
    times = first_use_times(
        benchmark, PROGRAMS, weights, cfg, tmp_path, suffix=".out", rounds=ROUNDS,
        # first, untimed: the save is byte-exact
        before=lambda source, out: fresh_process_number(check, source, cfg, out, out=out))
    if times is None:
        return
    ratio = {b: record(benchmark, "save() of yolov4 (a byte-exact .weights)",
                       "first use: fresh process, tmpfs (baseline: arrays already in memory)",
                       times, "save", b) for b in ("tofile", "tofile+fsync")}
    report = medians_ms(times)
    report += [f"save / {b}: {r:.2f}x" for b, r in ratio.items()]
    benchmark.extra_info.update({f"ratio_{b}": r for b, r in ratio.items()})
    print("\nfirst use, yolov4: " + "; ".join(report))
    assert ratio["tofile"] <= 1.5, report

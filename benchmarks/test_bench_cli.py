"""The ``yolo-io`` command answers at interactive speed on a large model.

Target (issue 9): ``yolo-io inspect`` and ``yolo-io check`` of yolov4-p6 with
its weights (510,868,180 bytes) each take less than 100 ms more than
``python -c "import yolo_io"`` in the same run. Regime: first use, every sample
is a fresh process (interpreter start, import with bytecode cached, parse,
map); the weights file
was just written, so its pages are cached, but neither command reads past the
header. Rounds are interleaved, and the figure is the median over rounds of
(command - import) in the same round.

    python -m pytest benchmarks/test_bench_cli.py --benchmark-only -s
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import interleaved_times

ROUNDS = 9
BUDGET_S = 0.100
# Bytecode cached, as after an install (pip compiles it; an editable install
# writes it at the first import): PYTHONDONTWRITEBYTECODE, set on some
# machines, would make every sample compile yolo_io's modules from source
# while numpy's come precompiled. Each command runs once untimed first.
ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
       "SKBUILD_EDITABLE_VERBOSE": "0"}


def _command(*args: object) -> list[str]:
    return [sys.executable, *map(str, args)]


def _run(argv: list[str]) -> None:
    """Runs ``argv`` to its end. The wait blocks in waitpid: a timeout would
    make subprocess poll with sleeps that double up to 50 ms, so that a
    120 ms process was seen ending at 163.5 ms and a 110 ms one at 113.5 ms
    (the quantum then carried the differences); a watchdog kills a hung one."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    timed_out = threading.Event()

    def watch() -> None:
        timed_out.set()
        proc.kill()

    watchdog = threading.Timer(120, watch)
    watchdog.daemon = True
    try:
        watchdog.start()
        code = proc.wait()
    except BaseException:  # interrupted: the child goes too, as with subprocess.run
        proc.kill()
        proc.wait()
        raise
    finally:
        watchdog.cancel()
    if timed_out.is_set():
        raise subprocess.TimeoutExpired(argv, 120)
    if code != 0:
        raise subprocess.CalledProcessError(code, argv)


@pytest.mark.benchmark(group="cli-yolov4-p6")
def test_cli_answers_within_100ms_of_import(benchmark: pytest.FixtureDef,
                                            yolov4_p6: tuple[Path, Path]) -> None:
    weights, cfg = yolov4_p6
    commands = {
        "import": _command("-c", "import yolo_io"),
        "inspect": _command("-m", "yolo_io", "inspect", cfg, weights),
        "check": _command("-m", "yolo_io", "check", cfg, weights),
    }
    rounds = 1 if benchmark.disabled else ROUNDS  # disabled: a smoke test, each runs
    for argv in commands.values():
        _run(argv)  # bytecode written
    times = benchmark.pedantic(
        lambda: interleaved_times({k: (lambda a=a: _run(a)) for k, a in commands.items()},
                                  rounds), rounds=1, iterations=1)
    if benchmark.disabled:
        return
    base = statistics.median(times["import"])
    report = [f"python -c 'import yolo_io': {base * 1e3:.0f} ms (median of {ROUNDS})"]
    for name in ("inspect", "check"):
        extra = statistics.median(t - b for t, b in zip(times[name], times["import"], strict=True))
        benchmark.extra_info[f"{name}_extra_ms"] = extra * 1e3
        report.append(f"yolo-io {name} yolov4-p6: {statistics.median(times[name]) * 1e3:.0f} ms, "
                      f"{extra * 1e3:+.0f} ms over the import (target < {BUDGET_S * 1e3:.0f})")
        assert extra < BUDGET_S, report
    print("\n" + "\n".join(report))


@pytest.mark.benchmark(group="import")
def test_import_and_a_small_check_are_quick(benchmark: pytest.FixtureDef,
                                            tmp_path: Path) -> None:
    """Issue 26: ``import yolo_io`` at most 40 ms more than ``import numpy``,
    and ``yolo-io check`` of yolov3-tiny at most 50 ms more than ``python -c
    "import numpy"``. Regime: first use, every sample a fresh interpreter;
    rounds interleaved; medians of 9 rounds of each, differences of the
    medians as the issue states them (paired differences are printed too)."""
    from conftest import SHARED_CFG, record, record_target

    import yolo_io
    from yolo_io.testing import write_weights

    cfg = SHARED_CFG / "yolov3-tiny.cfg"
    weights = write_weights(tmp_path / "yolov3-tiny.weights", cfg, seed=0)
    commands = {
        "import numpy": _command("-c", "import numpy"),
        "import yolo_io": _command("-c", "import yolo_io"),
        "yolo-io check yolov3-tiny": _command("-m", "yolo_io", "check", cfg, weights),
    }
    rounds = 1 if benchmark.disabled else ROUNDS
    for argv in commands.values():
        _run(argv)  # bytecode written
    times = benchmark.pedantic(
        lambda: interleaved_times({k: (lambda a=a: _run(a)) for k, a in commands.items()},
                                  rounds), rounds=1, iterations=1)
    assert yolo_io.__version__
    if benchmark.disabled:
        return
    base = statistics.median(times["import numpy"])
    met = []
    lines = [f"python -c 'import numpy': {base * 1e3:.0f} ms (median of {ROUNDS})"]
    for name, budget in (("import yolo_io", 0.040), ("yolo-io check yolov3-tiny", 0.050)):
        extra = statistics.median(times[name]) - base
        paired = statistics.median(t - b for t, b in zip(times[name], times["import numpy"],
                                                         strict=True))
        record(benchmark, name, "first use: fresh interpreter per sample, bytecode cached", times, name,
               "import numpy")
        met.append(record_target(benchmark, f"{name}, over import numpy",
                                 extra * 1e3, budget * 1e3, unit="ms"))
        lines.append(f"{name}: {statistics.median(times[name]) * 1e3:.0f} ms, "
                     f"{extra * 1e3:+.0f} ms over import numpy (paired {paired * 1e3:+.0f}; "
                     f"target <= {budget * 1e3:.0f})")
    print("\n" + "\n".join(lines))
    assert all(met), lines

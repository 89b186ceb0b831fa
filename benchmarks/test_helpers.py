"""The benchmarks' own helpers (conftest.py), checked in the smoke run too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import RSS_HELPERS, round_order, warmed

MB = 1 << 20


def run(code: str) -> list[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120).stdout.split()


@pytest.mark.parametrize("huge_pages", [True, False])
def test_warm_up_touches_every_page_and_gives_it_back(huge_pages: bool) -> None:
    """The code of ``warmed()`` touches every 4 KiB page of what it warms
    (the peak RSS grows by that much even without huge pages, here turned
    off with prctl), in private memory (no shared memory), and frees it
    before the clock starts (the RSS is back)."""
    off = "" if huge_pages else (
        "import ctypes\nassert ctypes.CDLL(None).prctl(41, 1, 0, 0, 0) == 0  # PR_SET_THP_DISABLE\n")
    code = (RSS_HELPERS + "import time\nimport numpy\n" + off + "reset_peak()\n"
            "before = status('VmRSS:')\nshm = status('RssShmem:')\n" + warmed(256 * MB)
            + "print(status('VmHWM:') - before, status('VmRSS:') - before, "
            + "status('RssShmem:') - shm)\n")
    peak, after, shared = map(int, run(code))
    assert peak >= 250 * MB
    assert after < 16 * MB
    assert shared < 1 * MB


def test_warm_up_settles_first_then_warms_private_memory_and_imports_nothing() -> None:
    """``settle`` seconds pass before the array is made; the array is in
    private memory (read while it is kept alive here); and the warm-up leaves
    no module imported that the timed code would otherwise import itself
    (``mmap`` for ``np.memmap``, say)."""
    code = (RSS_HELPERS + "import sys, time\nimport numpy\nbefore = set(sys.modules)\n"
            "calls, kept = [], []\nreal_sleep, real_empty = time.sleep, numpy.empty\n"
            "def sleep(s):\n    calls.append('sleep')\n    real_sleep(s)\n"
            "def empty(*args, **kwargs):\n    calls.append('empty')\n"
            "    kept.append(real_empty(*args, **kwargs))\n    return kept[-1]\n"
            "time.sleep, numpy.empty = sleep, empty\n"
            "anon, shm = status('RssAnon:'), status('RssShmem:')\n"
            "t = time.perf_counter()\n" + warmed(256 * MB, 0.3)
            + "took = time.perf_counter() - t\ntime.sleep, numpy.empty = real_sleep, real_empty\n"
            "print(','.join(calls), took, status('RssAnon:') - anon, status('RssShmem:') - shm, "
            "len(set(sys.modules) - before))\n")
    calls, took, anon, shared, new = run(code)
    assert calls == "sleep,empty"
    assert float(took) >= 0.3
    assert int(anon) >= 250 * MB
    assert int(shared) < 1 * MB
    assert int(new) == 0


FAKE_MEMINFO = ("import builtins, io\nreal_open = builtins.open\n"
                "def fake_open(path, *args, **kwargs):\n"
                "    if path == '/proc/meminfo':\n"
                "        return io.StringIO('MemTotal: 99999999 kB\\nMemFree: 655360 kB\\n')\n"
                "    return real_open(path, *args, **kwargs)\n"
                "builtins.open = fake_open\n")


def test_warm_up_never_takes_more_than_is_free() -> None:
    """Asked for more than is free (a MemFree of 640 MiB, faked), it warms
    what is free less 512 MiB; asked for more than twice that, it fails
    instead of calling a sample warmed that was not."""
    code = (RSS_HELPERS + "import numpy\nreset_peak()\nbefore = status('VmRSS:')\n"
            + FAKE_MEMINFO + warmed(200 * MB) + "builtins.open = real_open\n"
            + "print(status('VmHWM:') - before)\n")
    grown = int(run(code)[0])
    assert 120 * MB <= grown < 140 * MB
    failed = subprocess.run([sys.executable, "-c", "import numpy\n" + FAKE_MEMINFO
                             + warmed(300 * MB)], capture_output=True, text=True, timeout=120,
                            check=False)
    assert failed.returncode != 0
    assert "MemoryError: warm_host_memory: 671088640 bytes free, 314572800 to warm" in failed.stderr


def line_before_the_clock(program: str) -> str:
    lines = program.splitlines()
    return lines[lines.index("t = time.perf_counter()") - 1]


def test_the_warm_up_is_the_last_thing_before_the_clock() -> None:
    """In yolov4's first-use programs (but the lazy ones) and the kept walk's,
    the line before the clock starts is the warm-up; without it, or for the
    lazy operations, there is no warm-up at all; every program compiles."""
    from test_bench_large import KEEP, KEEP_BY_INDEX, KEEP_SETTLE, KEEP_WALK, KEEP_WARM
    from test_bench_operations import LAZY, OPERATIONS, first_use_programs

    for warm in (True, False):
        programs = first_use_programs(OPERATIONS, Path("."), warm=warm)
        assert set(programs) == set(OPERATIONS)
        for name, text in programs.items():
            compile(text, name, "exec")
            warmed_here = warm and name not in LAZY
            assert line_before_the_clock(text).startswith("warm_host_memory(") == warmed_here
            assert ("warm_host_memory(" in text) == warmed_here
    assert {"np.memmap", "yolo_io.load (lazy)"} <= set(LAZY)
    for warm in ("", warmed(KEEP_WARM, KEEP_SETTLE)):
        for kept in (KEEP_WALK, KEEP_BY_INDEX):
            text = KEEP.format(warm=warm, kept=kept)
            compile(text, "<walk>", "exec")
            assert line_before_the_clock(text).startswith("warm_host_memory(") == bool(warm)


def test_round_order_alternates() -> None:
    assert round_order(["a", "b", "c"], 0) == ["a", "b", "c"]
    assert round_order(["a", "b", "c"], 1) == ["c", "b", "a"]
    assert round_order(["a", "b"], 2) == ["a", "b"]

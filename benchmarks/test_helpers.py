"""The benchmarks' own helpers (conftest.py), checked in the smoke run too."""

from __future__ import annotations

import subprocess
import sys

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


def test_warm_up_settles_first_and_imports_nothing() -> None:
    """``settle`` seconds pass before the warm-up, and it leaves no module
    imported that the timed code would otherwise import itself (``mmap``
    for ``np.memmap``, say)."""
    code = ("import sys, time\nimport numpy\nbefore = set(sys.modules)\n"
            "t = time.perf_counter()\n" + warmed(1 * MB, 0.3)
            + "print(time.perf_counter() - t, len(set(sys.modules) - before))\n")
    took, new = run(code)
    assert float(took) >= 0.3
    assert int(new) == 0


def test_warm_up_never_takes_more_than_is_free() -> None:
    """Asked for more than is free, it warms what is free less 512 MiB
    (here a MemFree of 640 MiB, faked) instead of failing or evicting the
    page cache."""
    fake = ("import builtins, io\nreal_open = builtins.open\n"
            "def fake_open(path, *args, **kwargs):\n"
            "    if path == '/proc/meminfo':\n"
            "        return io.StringIO('MemTotal: 99999999 kB\\nMemFree: 655360 kB\\n')\n"
            "    return real_open(path, *args, **kwargs)\n")
    code = (RSS_HELPERS + "import numpy\nreset_peak()\nbefore = status('VmRSS:')\n" + fake
            + "builtins.open = fake_open\n" + warmed(1 << 40) + "builtins.open = real_open\n"
            + "print(status('VmHWM:') - before)\n")
    grown = int(run(code)[0])
    assert 120 * MB <= grown < 140 * MB


def test_the_walk_programs_compile() -> None:
    from test_bench_large import KEEP, KEEP_BY_INDEX, KEEP_SETTLE, KEEP_WALK, KEEP_WARM

    for warm in ("", warmed(KEEP_WARM, KEEP_SETTLE)):
        for kept in (KEEP_WALK, KEEP_BY_INDEX):
            compile(KEEP.format(warm=warm, kept=kept), "<walk>", "exec")


def test_round_order_alternates() -> None:
    assert round_order(["a", "b", "c"], 0) == ["a", "b", "c"]
    assert round_order(["a", "b", "c"], 1) == ["c", "b", "a"]
    assert round_order(["a", "b"], 2) == ["a", "b"]

"""The core's thread pool (parallel.cpp): one per process, started once and
capped, shared by concurrent callers, safe when a worker cannot be started,
re-created in a forked child, and no obstacle to the process's exit.

The pool is watched through test hooks: ``_core._pool_stats()`` (workers
started in this process, the most active at once since ``_pool_reset_max()``,
the cap, those alive and active) and ``_core._pool_fail_next(n)`` (the next n
worker starts throw ``std::bad_alloc``). Tests that need a fresh pool run in
a subprocess."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import corpus_model
from test_memory import run as run_measured

import yolo_io
from yolo_io import _core


@pytest.fixture(scope="module")
def yolov4(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return corpus_model(tmp_path_factory, "yolov4", seed=4)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """yolov4-tiny: layers of up to 2.4 M weights, cut into several parts."""
    return corpus_model(tmp_path_factory, "yolov4-tiny", seed=4)


def load(model: tuple[Path, Path]) -> yolo_io.Network:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", yolo_io.CfgWarning)
        return yolo_io.load(*model)


def digest(arrays: tuple[np.ndarray, np.ndarray]) -> str:
    h = hashlib.blake2b()
    for a in arrays:
        h.update(np.ascontiguousarray(a).view(np.uint8))
    return h.hexdigest()


def digests_all(net: yolo_io.Network, threads: int | None) -> dict[int, str]:
    return {i: digest(wb) for i, wb in net.fused_all(threads=threads).items()}


def big_layers(net: yolo_io.Network) -> list[int]:
    """The convolutions with more than one part of work (256 Ki weights)."""
    return [layer.index for layer in net
            if layer.type == "convolutional" and layer.params["weights"].size > 1 << 18]


# A child Python that prints the pool's stats as JSON; the model is argv[1:3].
CHILD_PRELUDE = """\
import json, sys, warnings
import yolo_io
from yolo_io import _core
warnings.simplefilter("ignore", yolo_io.CfgWarning)
net = yolo_io.load(sys.argv[1], sys.argv[2])
"""


def run_child(code: str, model: tuple[Path, Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CHILD_PRELUDE + code, str(model[0]), str(model[1])],
                          capture_output=True, text=True, timeout=600, check=False)


def test_a_walk_starts_its_workers_once(yolov4: tuple[Path, Path]) -> None:
    """A walk over yolov4 with layer.fused(): the first call starts the
    workers (as many as the cap allows), no later call starts another."""
    child = run_child("""
assert _core._pool_stats()["started"] == 0
layers = [layer for layer in net if layer.type == "convolutional"]
layers[0].fused()
first = _core._pool_stats()
for layer in layers[1:]:
    layer.fused()
print(json.dumps([first, _core._pool_stats()]))
""", yolov4)
    assert child.returncode == 0, child.stderr
    first, after = json.loads(child.stdout)
    assert after["started"] == first["started"] == first["alive"]
    if (os.cpu_count() or 1) > 1:  # threads=None: all cores, the caller and cap workers
        assert first["started"] == min(first["cap"], (os.cpu_count() or 1) - 1) >= 1


def test_concurrent_callers_share_the_capped_pool(tiny: tuple[Path, Path]) -> None:
    """8 Python threads calling fused_all() and layer.fused() at once: never
    more workers than the cap, no worker started past it, and the bits of a
    single-threaded run."""
    net = load(tiny)
    big = big_layers(net)
    assert len(big) >= 3
    expected_all = digests_all(net, threads=1)
    expected_layer = {i: digest(net[i].fused(threads=1)) for i in big}
    cap = _core._pool_stats()["cap"]
    _core._pool_reset_max()
    barrier = threading.Barrier(8)
    wrong: list[str] = []

    def caller(k: int) -> None:
        barrier.wait()
        for rnd in range(3):
            if (k + rnd) % 2:
                if digests_all(net, threads=None if k % 3 else 1000) != expected_all:
                    wrong.append(f"caller {k} round {rnd}: fused_all")
            else:
                for i in big:
                    if digest(net[i].fused(threads=8)) != expected_layer[i]:
                        wrong.append(f"caller {k} round {rnd}: layer {i}")

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = _core._pool_stats()
    assert wrong == []
    assert stats["cap"] == cap >= 1
    assert 0 <= stats["max_active"] <= cap
    assert stats["started"] <= cap and stats["alive"] <= cap
    assert stats["active"] == 0


def test_worker_starts_that_fail_leave_the_work_to_the_caller(tiny: tuple[Path, Path]) -> None:
    """Every worker start throws std::bad_alloc: the caller does all the work,
    with the right bits; once starts succeed again, the pool grows."""
    child = run_child("""
import hashlib
import numpy as np
def digests(threads):
    out = {}
    for i, arrays in net.fused_all(threads=threads).items():
        h = hashlib.blake2b()
        for a in arrays:
            h.update(np.ascontiguousarray(a).view(np.uint8))
        out[i] = h.hexdigest()
    return out
big = [l.index for l in net if l.type == "convolutional" and l.params["weights"].size > 1 << 18]
expected = digests(1)
expected_layer = [net[i].fused(threads=1)[0].tobytes() for i in big]
cap = _core._pool_stats()["cap"]
_core._pool_fail_next(1000)
for _ in range(3):  # every call tries again, and fails
    assert digests(1 + cap) == expected
    assert [net[i].fused(threads=1 + cap)[0].tobytes() for i in big] == expected_layer
failed = _core._pool_stats()
_core._pool_fail_next(0)
assert digests(1 + cap) == expected
print(json.dumps([failed, _core._pool_stats()]))
""", tiny)
    assert child.returncode == 0, child.stderr
    failed, grown = json.loads(child.stdout)
    assert failed["started"] == failed["alive"] == failed["max_active"] == 0
    assert grown["started"] == grown["alive"] == grown["cap"]


# GCC 12's AddressSanitizer runtime does not hold its allocator's locks
# across fork(): a child forked while another thread allocates can wait on
# them forever (seen in .ci/sanitize: the child stuck in ASan's
# SizeClassAllocator64::GetFromAllocator). glibc's malloc takes its locks
# around fork(), so only the sanitizer build forks between calls.
UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")


def wait_for_child(pid: int, timeout: float = 120.0) -> int:
    """The child's exit code; a child still running after `timeout` seconds
    is killed and fails the test (a hang is not left to CI's clock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"the forked child ran for more than {timeout} s")


def test_a_forked_child_gets_a_new_pool(tiny: tuple[Path, Path]) -> None:
    """Forks while other threads are in calls (between calls under ASan):
    the child's pool is new and empty (the parent's workers do not exist
    there), and a call in the child starts its own and gives the right bits."""
    net = load(tiny)
    big = big_layers(net)
    expected = {i: digest(net[i].fused(threads=1)) for i in big}
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            net.fused_all(threads=2)
            net[big[0]].fused(threads=2)

    def start() -> list[threading.Thread]:
        stop.clear()
        started = [threading.Thread(target=busy) for _ in range(3)]
        for t in started:
            t.start()
        return started

    def finish(started: list[threading.Thread]) -> None:
        stop.set()
        for t in started:
            t.join()

    threads = start()
    statuses = []
    try:
        for _ in range(10):
            if UNDER_ASAN:
                time.sleep(0.05)
                finish(threads)
                # and the pool's workers parked (they watch ~5 ms for a next
                # call, freeing the last one's job): ASan's allocator has no
                # fork handler, so a child forked during a free() hangs.
                time.sleep(0.1)
            with warnings.catch_warnings():  # Python 3.12+: fork() with threads
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    fresh = _core._pool_stats()
                    ok = all(digest(net[i].fused(threads=2)) == expected[i] for i in big)
                    after = _core._pool_stats()
                    if (fresh["started"] == fresh["alive"] == 0 and ok
                            and after["started"] == after["alive"] == min(1, after["cap"])):
                        code = 0
                finally:
                    os._exit(code)
            statuses.append(wait_for_child(pid))
            if UNDER_ASAN:
                threads = start()
    finally:
        finish(threads)
    assert statuses == [0] * 10


@pytest.mark.parametrize("wait", [0.0, 0.2])
def test_the_process_exits_with_workers_alive(tiny: tuple[Path, Path], wait: float) -> None:
    """Exiting right after a call (workers watching for the next) or later
    (workers parked): exit status 0, nothing on stderr."""
    child = run_child(f"""
import time
arrays = net.fused_all(threads=2)
assert _core._pool_stats()["alive"] >= 1
time.sleep({wait})
""", tiny)
    assert (child.returncode, child.stderr) == (0, "")


DAEMON_CALLS = {
    "fused_all": "r = net.fused_all(threads=2, layout='HWIO', dtype='float16'); del r",
    "a walk": "[layer.fused(threads=2) for layer in net if layer.fusion]",
    "fuse_into": "net.fuse_into(targets, threads=2)",
}


@pytest.mark.parametrize("call", DAEMON_CALLS)
def test_the_process_exits_with_daemon_threads_in_calls(yolov4: tuple[Path, Path], call: str) -> None:
    """The interpreter exits while daemon threads are inside the core: CPython
    ends each with pthread_exit when it takes the GIL back, and that unwind
    must pass the bindings' GIL release (pybind11's noexcept one made it
    std::terminate: exit status 134, "terminate called without an active
    exception", in 13 of 15 runs)."""
    code = f"""
import threading, time
import numpy as np
targets = {{i: (np.empty(w.shape, w.dtype), np.empty(b.shape, b.dtype))
           for i, (w, b) in net.fused_all().items()}}
def loop():
    while True:
        {DAEMON_CALLS[call]}
for _ in range(2):
    threading.Thread(target=loop, daemon=True).start()
time.sleep(0.5)
"""
    for _ in range(3):
        child = run_child(code, yolov4)
        assert (child.returncode, child.stderr) == (0, ""), child.stderr[-2000:]


def test_a_core_call_in_an_atexit_callback_still_runs(yolov4: tuple[Path, Path]) -> None:
    """Threads coming back from the core at exit sleep until the process ends,
    but not the exiting thread itself: a callback that atexit runs after the
    module's own (registered before yolo_io was imported) gets its result."""
    code = f"""
import atexit, sys
def late():
    print(len(net.fused_all(threads=2)))
atexit.register(late)
import yolo_io
net = yolo_io.load({str(yolov4[0])!r}, {str(yolov4[1])!r})
"""
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=120, check=False)
    assert (child.returncode, child.stderr, child.stdout.strip()) == (0, "", "110")


def test_a_thread_that_an_atexit_callback_starts_gets_its_result(
        yolov4: tuple[Path, Path]) -> None:
    """Only calls begun before the exit park: a thread started and joined by
    a callback that atexit runs after the module's own got no result back,
    and the process never exited."""
    code = f"""
import atexit, sys, threading
def late():
    out = []
    worker = threading.Thread(target=lambda: out.append(len(net.fused_all(threads=2))))
    worker.start()
    worker.join()
    print(out[0])
atexit.register(late)
import yolo_io
net = yolo_io.load({str(yolov4[0])!r}, {str(yolov4[1])!r})
"""
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=120, check=False)
    assert (child.returncode, child.stderr, child.stdout.strip()) == (0, "", "110")


def test_a_huge_threads_value_asks_only_for_what_the_pool_has(tiny: tuple[Path, Path]) -> None:
    """threads= is capped at the pool's cap + 1 before anything is sized by
    it: the bulk call kept a report, a buffer pointer and its capacity per
    requested thread (24 bytes each: threads=2**31 - 1 took 24 GB and the
    OOM killer; 2**24, 384 MB). Peak resident growth in a child process."""
    code = """
import numpy as np
first = next(layer.index for layer in net if layer.fusion)
expected = [net[first].fused(threads=1), net.fused_all(threads=1)]
got = []
out["grown"] = peak_growth(lambda: got.extend(
    [net[first].fused(threads=1 << 24), net.fused_all(threads=1 << 24)]))
same = all(np.array_equal(a, b) for a, b in zip(expected[0], got[0]))
out["same"] = same and all(np.array_equal(x, y) for i in expected[1]
                           for x, y in zip(expected[1][i], got[1][i]))
out["stats"] = _core._pool_stats()
"""
    out = run_measured(tiny, code)
    assert out["same"], out
    assert out["stats"]["started"] <= out["stats"]["cap"], out
    # fused_all's result itself is 24 MB (yolov4-tiny).
    assert out["grown"] < 100 * (1 << 20), out

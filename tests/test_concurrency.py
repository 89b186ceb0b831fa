"""Concurrency (issue 14): threads read and fuse from one Network at once,
and one closes it meanwhile.

The core releases the GIL while it fuses and copies, so these threads run in
C++ at the same time. Every result must equal the single-threaded one. Closing
drops the Network's reference to the mapping: a call that starts after it
raises "network is closed", one that was running finishes on the mapping it
holds, and arrays taken before stay valid. The sanitizer suite (AGENTS.md,
.ci/sanitize) runs this file under AddressSanitizer too.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import yolo_io
from yolo_io.testing import write_weights

# Big enough that a layer is fused in parts by several threads (>= 1 MB).
CFG = "[net]\nwidth=32\nheight=32\nchannels=64\n" + "".join(
    f"[convolutional]\nbatch_normalize=1\nfilters={f}\nsize=3\nstride=1\npad=1\n"
    f"activation=leaky\n" for f in (256, 128, 256, 64)) + \
    "[connected]\noutput=10\nactivation=linear\n"

THREADS = 8


def reference(net: yolo_io.Network) -> dict[str, object]:
    """Every result the threads compute, computed by this thread alone."""
    fusable = [layer for layer in net if layer.fusion]
    return {
        "params": [{k: np.array(v) for k, v in layer.params.items()} for layer in net],
        "OIHW": [layer.fused("OIHW" if layer.type == "convolutional" else None, threads=1)
                 for layer in fusable],
        "HWIO": [layer.fused("HWIO" if layer.type == "convolutional" else None, threads=1)
                 for layer in fusable],
        "fused_all": {k: (np.array(w), np.array(b))
                      for k, (w, b) in net.fused_all("OIHW", threads=1).items()},
    }


def same_pair(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
    return bool(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]))


def worker(net: yolo_io.Network, ref: dict[str, object], seed: int, rounds: int,
           out: dict[str, object], start: threading.Barrier, going: threading.Event) -> None:
    """Reads, fuses and checks in a random order until `rounds` are done or
    the network is closed; records what it checked, kept arrays and errors."""
    rng = np.random.default_rng(seed)
    checked = 0
    kept: list[tuple[np.ndarray, np.ndarray]] = []
    try:
        start.wait()
        for _ in range(rounds):
            op = int(rng.integers(4))
            layers = list(net)
            fusable = [layer for layer in layers if layer.fusion]
            if op == 0:
                i = int(rng.integers(len(layers)))
                params = ref["params"]
                assert isinstance(params, list)
                for k, v in layers[i].params.items():
                    assert np.array_equal(v, params[i][k]), (i, k)
                    kept.append((v, params[i][k]))  # a view, read again at the end
            elif op in (1, 2):
                layout = "OIHW" if op == 1 else "HWIO"
                j = int(rng.integers(len(fusable)))
                layer = fusable[j]
                got = layer.fused(layout if layer.type == "convolutional" else None,
                                  threads=int(rng.integers(1, 4)))
                expected = ref[layout]
                assert isinstance(expected, list)
                assert same_pair(got, expected[j]), (layout, j)
            else:
                expected_all = ref["fused_all"]
                assert isinstance(expected_all, dict)
                got_all = net.fused_all("OIHW", threads=2)
                assert got_all.keys() == expected_all.keys()
                assert all(same_pair(got_all[k], expected_all[k]) for k in got_all)
            checked += 1
            going.set()  # this thread is under way
    except yolo_io.YoloIOError as err:
        out["closed_error"] = str(err)
    except BaseException as err:  # noqa: BLE001 - reported by the test, not lost in a thread
        out["error"] = err
    out["checked"] = checked
    out["kept"] = kept


@pytest.mark.parametrize("close", [False, True], ids=["open", "closed-meanwhile"])
def test_threads_read_and_fuse_one_network(tmp_path: Path, close: bool) -> None:
    weights = write_weights(tmp_path / "c.weights", CFG, seed=3)
    net = yolo_io.load(weights, CFG)
    ref = reference(net)
    outs: list[dict[str, object]] = [{} for _ in range(THREADS)]
    start = threading.Barrier(THREADS + 1)
    # Open: 60 rounds each. Closed: until the close stops them.
    rounds = 10**9 if close else 60
    going = [threading.Event() for _ in range(THREADS)]
    threads = [threading.Thread(target=worker,
                                args=(net, ref, seed, rounds, outs[seed], start, going[seed]))
               for seed in range(THREADS)]
    for t in threads:
        t.start()
    start.wait()
    if close:
        # Close once every thread has checked a result and while all of them
        # are still going (they stop only at the close).
        for event in going:
            assert event.wait(timeout=120)
        net.close()
    for t in threads:
        t.join(timeout=300)
        assert not t.is_alive()
    for out in outs:
        assert "error" not in out, out.get("error")
        if close:  # every thread ran into the close
            assert "network is closed" in str(out["closed_error"]), out
        else:
            assert "closed_error" not in out and out["checked"] == 60
    assert sum(int(str(out["checked"])) for out in outs) > 0
    # Views taken before the close still read the file's bytes.
    for out in outs:
        kept = out["kept"]
        assert isinstance(kept, list)
        for view, expected in kept:
            assert np.array_equal(view, expected)
    if close:
        assert net.closed
        with pytest.raises(yolo_io.YoloIOError, match="network is closed"):
            net.fused_all()

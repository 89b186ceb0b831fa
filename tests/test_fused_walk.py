"""The layer iterator's lookahead (issue 26): while a loop over ``net``
handles layer *i*, the core's pool fuses the next layers (``FusedWalk`` in
fused.hpp). What the caller sees must not change: the same arrays as
``fused()`` of each layer on its own, whatever the arguments and however the
loop ends, and the same error at the same layer."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import corpus_model

import yolo_io
from yolo_io import _core


@pytest.fixture(scope="module")
def tiny4(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """yolov4-tiny: 21 layers with weights, of 0.5 KB to 9 MB."""
    return corpus_model(tmp_path_factory, "yolov4-tiny", seed=5)


def load(model: tuple[Path, Path], **kwargs: object) -> yolo_io.Network:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", yolo_io.CfgWarning)
        return yolo_io.load(*model, **kwargs)  # type: ignore[arg-type]


def one_at_a_time(net: yolo_io.Network, **kwargs: object) -> dict[int, tuple[np.ndarray, ...]]:
    """fused() of each layer fetched by index: no walk, no lookahead."""
    return {i: net[i].fused(**kwargs) for i in range(len(net))  # type: ignore[arg-type]
            if net[i].fusion is not None}


def assert_same(a: dict[int, tuple[np.ndarray, ...]],
                b: dict[int, tuple[np.ndarray, ...]]) -> None:
    assert a.keys() == b.keys()
    for i, arrays in a.items():
        for x, y in zip(arrays, b[i], strict=True):
            assert x.dtype == y.dtype and x.shape == y.shape, i
            np.testing.assert_array_equal(x.view(np.uint8), y.view(np.uint8), err_msg=str(i))


@pytest.mark.parametrize("kwargs", [
    {}, {"layout": "HWIO"}, {"layout": "OIHW", "dtype": "float16"},
    {"dtype": "bfloat16"}, {"flatten": "CHW", "threads": 3},
], ids=str)
def test_a_walk_gives_what_each_layer_gives_alone(tiny4: tuple[Path, Path],
                                                  kwargs: dict[str, object]) -> None:
    net = load(tiny4)
    expected = one_at_a_time(net, **kwargs)
    walk = None
    got = {}
    for layer in net:
        if layer.fusion is not None:
            got[layer.index] = layer.fused(**kwargs)  # type: ignore[arg-type]
            walk = layer._walk
    assert_same(got, expected)
    assert walk is not None
    if (kwargs.get("threads") or 2) > 1 and _core._pool_stats()["cap"] > 0:
        assert walk._taken > 0  # the lookahead did work
    assert walk._ahead == 0  # and nothing is left fused ahead once the loop is done


def test_arguments_changing_during_a_walk(tiny4: tuple[Path, Path]) -> None:
    net = load(tiny4)
    layouts = ["OIHW", "HWIO", "OHWI"]
    expected = {k: one_at_a_time(net, layout=k) for k in layouts}
    for n, layer in enumerate(net.fusable_layers()):
        layout = layouts[n % 3] if n % 4 else layouts[0]
        w, b = layer.fused(layout=layout if layer.fusion == "conv" else None)
        want = expected[layout if layer.fusion == "conv" else "OIHW"][layer.index]
        np.testing.assert_array_equal(w, want[0])
        np.testing.assert_array_equal(b, want[1])


def test_leaving_a_walk_early_stops_the_lookahead(tiny4: tuple[Path, Path]) -> None:
    net = load(tiny4)
    expected = one_at_a_time(net)
    for layer in net:
        if layer.fusion is not None:
            layer.fused()
            if layer.index > 3:
                kept = layer
                break
    walk = kept._walk
    assert walk is not None
    assert walk._ahead == 0  # the generator's finally ran at the break
    # a layer kept from the walk still fuses, without its lookahead
    taken = walk._taken
    later = [lay for lay in net.fusable_layers() if lay.index > kept.index]
    for w_b in (kept.fused(), kept.fused()):
        np.testing.assert_array_equal(w_b[0], expected[kept.index][0])
    assert walk._taken == taken
    assert later


def test_an_abandoned_iterator_is_stopped_when_collected(tiny4: tuple[Path, Path]) -> None:
    net = load(tiny4)
    it = iter(net)
    layer = next(layer for layer in it if layer.fusion is not None)
    layer.fused()
    walk = layer._walk
    assert walk is not None
    del it
    gc.collect()
    assert walk._ahead == 0


def test_close_stops_every_walk(tiny4: tuple[Path, Path]) -> None:
    net = load(tiny4)
    layers = iter(net.fusable_layers())
    first = next(layers)
    first.fused()
    walk = first._walk
    assert walk is not None
    net.close()
    assert walk._ahead == 0
    with pytest.raises(yolo_io.YoloIOError, match="closed"):
        next(layers).fused()


def test_one_thread_fuses_nothing_ahead(tiny4: tuple[Path, Path]) -> None:
    net = load(tiny4)
    expected = one_at_a_time(net)
    got = {}
    walk = None
    for layer in net:
        if layer.fusion is not None:
            got[layer.index] = layer.fused(threads=1)
            walk = layer._walk
            assert walk is not None and walk._ahead == 0
    assert walk is not None and walk._taken == 0
    assert_same(got, expected)


def test_a_partial_file_fails_at_the_same_layer_in_a_walk(tiny4: tuple[Path, Path],
                                                          tmp_path: Path) -> None:
    from yolo_io.testing import write_weights

    cfg = tiny4[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", yolo_io.CfgWarning)
        part = write_weights(tmp_path / "part.weights", cfg, layers=10, seed=5)
    net = load((part, cfg), partial=True)
    alone = {}
    for i in range(len(net)):
        if net[i].fusion is not None:
            try:
                net[i].fused()
                alone[i] = "ok"
            except (yolo_io.YoloIOError, IndexError) as err:
                alone[i] = f"{type(err).__name__}: {err}"
    walked = {}
    for layer in net:
        if layer.fusion is not None:
            try:
                layer.fused()
                walked[layer.index] = "ok"
            except (yolo_io.YoloIOError, IndexError) as err:
                walked[layer.index] = f"{type(err).__name__}: {err}"
    assert walked == alone
    assert "ok" in walked.values() and any(v != "ok" for v in walked.values())


def test_calls_with_other_arguments_leave_the_lookahead(tiny4: tuple[Path, Path]) -> None:
    """fused() and bn_params() (or a second layout) for each layer: the
    second call is computed on its own, and the walk's lookahead is still
    taken by the first (before, each call dropped and refilled it)."""
    net = load(tiny4)
    expected = one_at_a_time(net)
    expected_hwio = one_at_a_time(net, layout="HWIO")
    walk = None
    for layer in net:
        if layer.fusion == "conv":
            np.testing.assert_array_equal(layer.fused()[0], expected[layer.index][0])
            np.testing.assert_array_equal(layer.fused("HWIO")[0], expected_hwio[layer.index][0])
            if "scales" in layer.params:
                layer.bn_params()
            walk = layer._walk
    assert walk is not None
    if _core._pool_stats()["cap"] > 0:
        conv = sum(1 for i in expected if net[i].fusion == "conv")
        assert walk._taken >= conv - 2


def test_a_walk_that_skips_most_layers_stops_looking_ahead(tiny4: tuple[Path, Path]) -> None:
    net = load(tiny4)
    expected = one_at_a_time(net)
    walk = None
    for n, layer in enumerate(net.fusable_layers()):
        walk = layer._walk
        if n % 5 == 0:
            np.testing.assert_array_equal(layer.fused()[0], expected[layer.index][0])
    assert walk is not None and walk._ahead == 0


FORK_CHILD = r'''
import os, sys, warnings
import numpy as np
import yolo_io
warnings.simplefilter("ignore", yolo_io.CfgWarning)
net = yolo_io.load(sys.argv[1], sys.argv[2])
expected = {i: net[i].fused() for i in range(len(net)) if net[i].fusion is not None}
for trial in range(6):
    it = iter(net)
    for layer in it:
        if layer.fusion is not None and layer.index >= 3 + trial:
            layer.fused()
            break
    pid = os.fork()
    if pid == 0:  # the child goes on with the walk its parent started
        ok = all(np.array_equal(layer.fused()[0], expected[layer.index][0])
                 for layer in it if layer.fusion is not None)
        os._exit(0 if ok else 3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    del it
print("ok")
'''


def test_a_forked_child_goes_on_with_its_parents_walk(tiny4: tuple[Path, Path]) -> None:
    """The review of issue 26 found children hanging in PostedWork::finish():
    an item a parent's worker had taken never finishes in the child. Each
    case runs in its own process, with a timeout. Not under AddressSanitizer
    (.ci/sanitize): its allocator (GCC 12's) has no fork handler, so a child
    forked while a worker is inside malloc waits forever at its first
    allocation (1 child in ~10 there; none in 72 forks with glibc's malloc)."""
    import os
    import subprocess
    import sys

    if "libasan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("fork() while a thread allocates deadlocks AddressSanitizer's allocator")

    proc = subprocess.run([sys.executable, "-c", FORK_CHILD, str(tiny4[0]), str(tiny4[1])],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr

"""Network.fused_all() and Network.fuse_into(): the bulk, threaded path gives
exactly what Layer.fused() gives, into an arena or into caller buffers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import yolo_io
from yolo_io.testing import write_weights

CFG = """\
[net]
width=6
height=6
channels=3
[convolutional]
batch_normalize=1
filters=8
size=3
pad=1
[convolutional]
filters=8
groups=8
size=3
pad=1
batch_normalize=1
[maxpool]
size=2
stride=2
[convolutional]
filters=5
size=1
[connected]
output=7
batch_normalize=1
[connected]
output=3
"""


@pytest.fixture
def net(tmp_path: Path) -> yolo_io.Network:
    return yolo_io.load(write_weights(tmp_path / "b.weights", CFG, seed=2), CFG)


@pytest.mark.parametrize("layout", ["OIHW", "HWIO", "OHWI"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("threads", [1, 2, 5])
def test_fused_all_equals_per_layer(net: yolo_io.Network, layout: str, dtype: str, threads: int) -> None:
    arrays = net.fused_all(layout, dtype=dtype, threads=threads)
    assert sorted(arrays) == [0, 1, 3, 4, 5]
    dense = "IO" if layout in ("HWIO", "OHWI") else "OI"
    for i, (w, b) in arrays.items():
        ref_w, ref_b = net[i].fused(layout if net[i].type == "convolutional" else dense, dtype=dtype)
        assert w.dtype == ref_w.dtype and w.shape == ref_w.shape
        np.testing.assert_array_equal(w.view(np.uint8), ref_w.view(np.uint8))
        np.testing.assert_array_equal(b.view(np.uint8), ref_b.view(np.uint8))
        assert w.ctypes.data % 64 == 0 and b.ctypes.data % 64 == 0
        assert w.flags.writeable and not np.shares_memory(w, net.raw)


def test_arena_outlives_the_network(net: yolo_io.Network) -> None:
    arrays = net.fused_all()
    expected = net[0].fused()[0]
    net.close()
    del net
    np.testing.assert_array_equal(arrays[0][0], expected)


def test_freed_arena_is_reused_and_can_be_released(tmp_path: Path) -> None:
    """The last freed arena backs the next fused_all() of a similar size; live
    results are never reused; release_cached_memory() unmaps the cached one."""
    cfg = ("[net]\nwidth=4\nheight=4\nchannels=256\n[convolutional]\nbatch_normalize=1\n"
           "filters=512\nsize=3\npad=1\n")  # 4.7 MB: an arena advised for huge pages
    net = yolo_io.load(write_weights(tmp_path / "r.weights", cfg, seed=3), cfg)
    expected_oihw, expected_hwio = net[0].fused("OIHW")[0], net[0].fused("HWIO")[0]
    yolo_io.release_cached_memory()
    first = net.fused_all("OIHW")
    address = first[0][0].ctypes.data
    assert address % 4096 == 0  # and 2 MB aligned on Linux 6.7+
    assert yolo_io.release_cached_memory() == 0  # in use: nothing cached
    second = net.fused_all("HWIO")  # the first is alive: fresh memory
    assert second[0][0].ctypes.data != address
    del first
    third = net.fused_all("HWIO")  # the freed first arena, overwritten completely
    assert third[0][0].ctypes.data == address
    np.testing.assert_array_equal(third[0][0], expected_hwio)
    np.testing.assert_array_equal(second[0][0], expected_hwio)
    del second, third
    assert yolo_io.release_cached_memory() >= expected_oihw.nbytes
    assert yolo_io.release_cached_memory() == 0
    np.testing.assert_array_equal(net.fused_all("OIHW")[0][0], expected_oihw)


def test_large_layer_fused_by_threads(tmp_path: Path) -> None:
    """layer.fused() of a layer of a megabyte or more: its parts shared by the
    threads asked for, the same bits with 1, 2 or 7; new arrays each call."""
    cfg = ("[net]\nwidth=4\nheight=4\nchannels=256\n[convolutional]\nbatch_normalize=1\n"
           "filters=512\nsize=3\npad=1\n")
    net = yolo_io.load(write_weights(tmp_path / "t.weights", cfg, seed=5), cfg)
    p = net[0].params
    for layout in ("OIHW", "HWIO"):
        one = net[0].fused(layout, threads=1)
        for threads in (2, 7):
            w, b = net[0].fused(layout, threads=threads)
            assert w.flags.writeable and w.flags.c_contiguous
            assert w.ctypes.data != one[0].ctypes.data
            np.testing.assert_array_equal(w, one[0])
            np.testing.assert_array_equal(b, one[1])
    scale = (p["scales"] / np.sqrt(p["rolling_variance"] + np.float32(1e-5))).astype(np.float64)
    expected = p["weights"].astype(np.float64) * scale[:, None, None, None]
    np.testing.assert_allclose(net[0].fused("OIHW", threads=2)[0], expected, rtol=1e-6)
    with pytest.raises(ValueError, match="threads must be at least 1"):
        net[0].fused(threads=0)


def test_fuse_into_caller_buffers(net: yolo_io.Network) -> None:
    targets = {i: (np.full(w.shape, np.nan, np.float32), np.full(b.shape, np.nan, np.float32))
               for i, (w, b) in net.fused_all("HWIO").items()}
    net.fuse_into(targets, "HWIO", threads=2)
    for i, (w, b) in targets.items():
        ref_w, ref_b = net[i].fused("HWIO" if net[i].type == "convolutional" else "IO")
        np.testing.assert_array_equal(w, ref_w)
        np.testing.assert_array_equal(b, ref_b)


def test_fuse_into_refuses_bad_targets(net: yolo_io.Network) -> None:
    good = np.zeros((8, 3, 3, 3), np.float32), np.zeros(8, np.float32)
    with pytest.raises(ValueError, match=r"layer 0 weights: the target's shape differs from \(8,3,3,3,\)"):
        net.fuse_into({0: (np.zeros((8, 3, 3), np.float32), good[1])})
    with pytest.raises(ValueError, match="layer 0 weights: the target has dtype float64"):
        net.fuse_into({0: (np.zeros((8, 3, 3, 3)), good[1])})
    ro = good[0].copy()
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="C-contiguous and writeable"):
        net.fuse_into({0: (ro, good[1])})
    with pytest.raises(ValueError, match="C-contiguous and writeable"):
        net.fuse_into({0: (np.zeros((3, 3, 3, 8), np.float32).transpose(3, 2, 0, 1), good[1])})
    with pytest.raises(ValueError, match="no weights to fuse"):
        net.fuse_into({2: good})
    with pytest.raises(ValueError, match="threads must be at least 1"):
        net.fused_all(threads=0)
    with pytest.raises(IndexError):
        net.fuse_into({99: good})
    assert not good[0].any()  # nothing written on error


def test_fuse_into_refuses_targets_that_are_not_the_callers_arrays(
        net: yolo_io.Network, tmp_path: Path) -> None:
    """A target that is not an array would be converted into a temporary,
    filled and thrown away; one mapped from the network's own file would
    change the weights being read (issue 27's review)."""
    good = np.zeros((8, 3, 3, 3), np.float32), np.zeros(8, np.float32)
    with pytest.raises(TypeError, match="the bias target of layer 0 is a list, not a NumPy array"):
        net.fuse_into({0: (good[0], [np.float32(0)] * 8)})  # type: ignore[dict-item]
    buffer = bytearray(8 * 4 * 2)
    with pytest.raises(TypeError, match="the bias target of layer 0 is a memoryview"):
        net.fuse_into({0: (good[0], memoryview(buffer).cast("f")[:8])})  # type: ignore[dict-item]
    with pytest.raises(IndexError, match="layer 1000000000000000000000000000000 is not in the network"):
        net.fuse_into({10**30: good})
    with pytest.raises(TypeError, match="not a layer index"):
        net.fuse_into({"0": good})  # type: ignore[dict-item]
    assert not good[0].any()
    copy = tmp_path / "copy.weights"
    copy.write_bytes(Path(net.path).read_bytes())
    own = np.memmap(net.path, dtype=np.uint8, mode="r+")
    other = np.memmap(copy, dtype=np.uint8, mode="r+")
    before = bytes(own[:64])
    for mapped, refused in ((own, True), (other, False)):
        weights = mapped[:8 * 27 * 4].view(np.float32).reshape(8, 3, 3, 3)
        if refused:
            with pytest.raises(yolo_io.OutputIsInputError, match="the network's own file"):
                net.fuse_into({0: (np.asarray(weights), good[1])})
        else:
            net.fuse_into({0: (weights, good[1])})
            np.testing.assert_array_equal(weights, net[0].fused()[0])
    assert bytes(own[:64]) == before


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("which", [0, 1], ids=["weights", "bias"])
def test_fuse_into_refuses_misaligned_targets(net: yolo_io.Network, dtype: str,
                                              which: int) -> None:
    """The kernels store through float* and uint16_t*: a target one byte off
    (np.frombuffer(..., offset=1)) was accepted and written through a
    misaligned pointer, undefined behaviour (issue 27, item 4)."""
    np_dtype = {"float32": np.float32, "float16": np.float16, "bfloat16": np.uint16}[dtype]
    shapes = ((8, 3, 3, 3), (8,))
    targets = [np.zeros(shape, np_dtype) for shape in shapes]
    n = int(np.prod(shapes[which])) * np.dtype(np_dtype).itemsize
    odd = np.frombuffer(bytearray(n + 1), np_dtype, offset=1).reshape(shapes[which])
    assert odd.flags.writeable and odd.flags.c_contiguous and not odd.flags.aligned
    targets[which] = odd
    name = ("weights", "biases")[which]
    align = 4 if dtype == "float32" else 2
    with pytest.raises(ValueError, match=(
            rf"^layer 0 {name} \(targets\[0\]\[{which}\]\): the target's data at "
            rf"0x{odd.ctypes.data:x} is not aligned to {align} bytes, as {dtype} needs")):
        net.fuse_into({0: (targets[0], targets[1])}, "OIHW", dtype=dtype)
    assert not any(t.any() for t in targets)  # nothing written
    aligned = odd.copy()  # the fix the message suggests
    targets[which] = aligned
    net.fuse_into({0: (targets[0], targets[1])}, "OIHW", dtype=dtype)
    expected = net[0].fused("OIHW", dtype=dtype)[which]
    np.testing.assert_array_equal(aligned.view(np.uint8), expected.view(np.uint8))


def test_fuse_into_refuses_overlapping_targets(net: yolo_io.Network) -> None:
    """A bias inside its own weight buffer, or two layers' targets sharing
    memory, were accepted and one of them written wrong (issue 22, item 7)."""
    buf = np.zeros(8 * 27 + 8, np.float32)
    weights, bias = buf[:216].reshape(8, 3, 3, 3), buf[208:216]
    with pytest.raises(ValueError, match=r"the targets of layer 0 bias and layer 0 weights "
                       r"overlap in memory .*every target needs memory of its own"):
        net.fuse_into({0: (weights, bias)})
    other = np.zeros((8, 1, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"layer 0 bias and layer 1 weights overlap"):
        net.fuse_into({0: (weights, other.reshape(-1)[:8]), 1: (other, np.zeros(8, np.float32))})
    same = np.zeros(8, np.float32)
    with pytest.raises(ValueError, match=r"layer 0 bias and layer 1 bias overlap"):
        net.fuse_into({0: (weights, same), 1: (other, same)})
    assert not buf.any() and not other.any() and not same.any()  # nothing written
    net.fuse_into({0: (buf[:216].reshape(8, 3, 3, 3), buf[216:])})  # adjacent is fine
    np.testing.assert_array_equal(buf[:216].reshape(8, 3, 3, 3), net[0].fused()[0])
    np.testing.assert_array_equal(buf[216:], net[0].fused()[1])


def test_partial_network_fuses_what_it_has(tmp_path: Path) -> None:
    path = write_weights(tmp_path / "p.weights", CFG, layers=2)
    net = yolo_io.load(path, CFG, partial=True)
    assert sorted(net.fused_all()) == [0, 1]


SPLIT_CFG = """\
[net]
width=4
height=4
channels=300
[convolutional]
batch_normalize=1
filters=1000
size=3
pad=1
[convolutional]
batch_normalize=1
filters=37
size=3
pad=1
[convolutional]
filters=37
size=1
"""
# Layer 0 (1000 x 2700 weights) and layer 1 (37 x 9000) are bigger than one
# part (2^18 weights): the threads cut them into ranges of channels (OIHW,
# OHWI: 9 and 3 parts, the last ones not multiples of 16) or of 512-tap
# stripes (HWIO: 6 and 3 parts, the last ones not multiples of 8 taps).


def nan_like(a: np.ndarray) -> np.ndarray:
    out = np.empty_like(a)
    out.view(np.uint8)[...] = 0xFF
    return out


@pytest.mark.parametrize("layout", ["OIHW", "HWIO", "OHWI"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("threads", [1, 3])
def test_layers_split_among_threads_are_written_whole(tmp_path: Path, layout: str, dtype: str,
                                                      threads: int) -> None:
    """Every element of a layer the threads share is written with the bits of
    the single-layer path: targets start as all-ones NaNs, so a part left out
    shows, and a misplaced one differs."""
    net = yolo_io.load(write_weights(tmp_path / "s.weights", SPLIT_CFG, seed=5), SPLIT_CFG)
    expected = {i: net[i].fused(layout, dtype=dtype) for i in range(3)}
    targets = {i: (nan_like(w), nan_like(b)) for i, (w, b) in expected.items()}
    net.fuse_into(targets, layout, dtype=dtype, threads=threads)
    bulk = net.fused_all(layout, dtype=dtype, threads=threads)
    for i, (w, b) in expected.items():
        for got in (targets[i], bulk[i]):
            np.testing.assert_array_equal(got[0].view(np.uint8), w.view(np.uint8))
            np.testing.assert_array_equal(got[1].view(np.uint8), b.view(np.uint8))

"""The AVX2 and the portable fusion kernels: the same bits as the NumPy
reference, for every edge of their blocking (16-row blocks, 8-column blocks,
512-column stripes), for outputs large enough to be streamed (>= 4 MB) and for
misaligned caller buffers."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import conv_cfg
from reference import fuse, layout, to_bfloat16_bits

import yolo_io
from yolo_io import _core
from yolo_io.testing import header_bytes, write_weights


@pytest.fixture(params=["avx2", "portable"])
def kernel(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "avx2" and not _core._simd_active():
        pytest.skip("this CPU has no AVX2: only the portable kernels run here")
    previous = _core._set_simd(request.param == "avx2")
    try:
        yield request.param
    finally:
        _core._set_simd(previous)


def conv_net(tmp_path: Path, c: int, filters: int, size: int, bn: int, groups: int = 1) -> yolo_io.Network:
    cfg = conv_cfg(c, filters, size, groups, bn, hw=8)
    return yolo_io.load(write_weights(tmp_path / "k.weights", cfg, seed=c * 1000 + filters), cfg)


SHAPES = [  # (channels, filters, size): around the 16 x 8 blocks and the 512-column stripe
    (1, 1, 1), (3, 15, 3), (8, 16, 1), (9, 17, 3), (64, 33, 3), (57, 48, 1), (520, 16, 1), (7, 130, 3),
]


@pytest.mark.parametrize(("c", "filters", "size"), SHAPES)
@pytest.mark.parametrize("bn", [0, 1])
@pytest.mark.parametrize("lay", ["OIHW", "HWIO"])
def test_kernels_match_reference(tmp_path: Path, kernel: str, c: int, filters: int, size: int, bn: int,
                                 lay: str) -> None:
    layer = conv_net(tmp_path, c, filters, size, bn)[0]
    p = layer.params
    ref_w, ref_b = fuse(p["weights"], p["biases"], p.get("scales"), p.get("rolling_mean"), p.get("rolling_variance"))
    w, b = layer.fused(layout=lay)
    np.testing.assert_array_equal(w.view(np.uint32), np.ascontiguousarray(layout(ref_w, lay)).view(np.uint32))
    np.testing.assert_array_equal(b, ref_b)


@pytest.mark.parametrize("lay", ["OIHW", "HWIO"])
def test_streamed_outputs_match_reference(tmp_path: Path, kernel: str, lay: str) -> None:
    net = conv_net(tmp_path, 520, 272, 3, 1)  # 1.27 M floats: 5 MB, written with streaming stores
    layer = net[0]
    p = layer.params
    ref_w, _ = fuse(p["weights"], p["biases"], p["scales"], p["rolling_mean"], p["rolling_variance"])
    expected = np.ascontiguousarray(layout(ref_w, lay)).view(np.uint32)
    np.testing.assert_array_equal(layer.fused(layout=lay)[0].view(np.uint32), expected)
    np.testing.assert_array_equal(net.fused_all(lay, threads=2)[0][0].view(np.uint32), expected)
    # A caller buffer 4 bytes off any 64-byte boundary: the kernels must not assume alignment.
    raw = np.zeros(expected.size * 4 + 64 + 4, np.uint8)
    start = (-raw.ctypes.data) % 64 + 4
    target = raw[start:start + expected.size * 4].view(np.float32).reshape(expected.shape)
    net.fuse_into({0: (target, np.zeros(272, np.float32))}, lay)
    np.testing.assert_array_equal(target.view(np.uint32), expected)


@pytest.mark.parametrize("lay", ["OIHW", "HWIO"])
def test_without_batchnorm_any_bits_are_copied_exactly(tmp_path: Path, kernel: str, lay: str) -> None:
    """No arithmetic without BN: NaN payloads and signalling NaNs survive."""
    c, filters = 40, 24
    cfg = f"[net]\nwidth=4\nheight=4\nchannels={c}\n[convolutional]\nfilters={filters}\nsize=3\npad=1\nactivation=linear\n"
    bits = np.random.default_rng(7).integers(0, 2**32, filters * c * 9, dtype=np.uint32)
    bits[::5] = 0x7F800001  # a signalling NaN
    path = tmp_path / "nan.weights"
    path.write_bytes(header_bytes() + np.zeros(filters, np.float32).tobytes() + bits.tobytes())
    w, _ = yolo_io.load(path, cfg)[0].fused(layout=lay)
    expected = layout(bits.reshape(filters, c, 3, 3), lay)
    np.testing.assert_array_equal(w.view(np.uint32), expected)


@pytest.mark.parametrize("lay", ["OIHW", "HWIO"])
def test_half_conversion_of_any_bits(tmp_path: Path, kernel: str, lay: str) -> None:
    """float16 and bfloat16, 8 values at a time (F16C and integer rounding) or
    one by one: the same bits as NumPy's float16 and the bfloat16 reference for
    random bit patterns and every edge (ties, the largest finite halves, the
    overflow threshold, subnormals, infinities, NaNs), and the same overflow
    count in the warning."""
    filters, c = 37, 121  # 4477 values: 8-lane blocks, tails, and a 512-tap stripe plus a part
    bits = np.random.default_rng(11).integers(0, 2**32, filters * c * 9, dtype=np.uint32)
    edges = np.array([0x477FEFFF, 0x477FF000, 0x477FE000, 0x47800000, 0x38800000, 0x387FFFFF,
                      0x33000000, 0x33000001, 0x32FFFFFF, 0x7F800000, 0xFF800000, 0x7FC00000,
                      0x7F800001, 0xFFFFFFFF, 0x7F7FFFFF, 0x3F808000, 0x3F818000, 0x00000001,
                      0x80000000, 0x3C001000, 0x3C003000, 0x3C002FFF], np.uint32)
    for start in range(0, bits.size - edges.size, 997):  # edges in every lane position
        bits[start:start + edges.size] = edges
    cfg = f"[net]\nwidth=4\nheight=4\nchannels={c}\n[convolutional]\nfilters={filters}\nsize=3\npad=1\nactivation=linear\n"
    path = tmp_path / "h.weights"
    path.write_bytes(header_bytes() + np.zeros(filters, np.float32).tobytes() + bits.tobytes())
    net = yolo_io.load(path, cfg)
    values = layout(bits.reshape(filters, c, 3, 3).view(np.float32), lay)
    with np.errstate(over="ignore", invalid="ignore"):
        expected16 = np.ascontiguousarray(values).astype(np.float16)
    nan = np.isnan(expected16)
    finite = np.isfinite(values)
    for dtype in ("float16", "bfloat16"):
        if dtype == "float16":
            overflow = int((finite & (np.abs(values) >= 65520)).sum())
        else:
            overflow = int((finite & ((to_bfloat16_bits(values) & 0x7FFF) == 0x7F80)).sum())
        assert overflow > 20
        with pytest.warns(yolo_io.PrecisionWarning, match=rf"^{overflow} values .*overflow {dtype}"):
            single = net[0].fused(lay, dtype=dtype)[0]
        with pytest.warns(yolo_io.PrecisionWarning, match=rf"^{overflow} values overflow {dtype}"):
            bulk = net.fused_all(lay, dtype=dtype, threads=2)[0][0]
        for got in (single, bulk):
            got16 = got.view(np.uint16)
            if dtype == "float16":
                assert (np.isnan(got.view(np.float16)) == nan).all()
                np.testing.assert_array_equal(got16[~nan], expected16.view(np.uint16)[~nan])
            else:
                np.testing.assert_array_equal(got16, to_bfloat16_bits(values))


CROSS = {  # architecture: (compiler, emulator)
    "aarch64": ("aarch64-linux-gnu-g++", "qemu-aarch64"),
}


@pytest.mark.parametrize("arch", sorted(CROSS))
def test_other_architectures_simd_kernels_match_the_portable_ones(tmp_path: Path, arch: str) -> None:
    """AArch64's NEON kernels (CI runs on x86-64): tests/cross/ builds the
    kernels without Python with a cross compiler and runs them under an
    emulator against the portable ones, bit for bit."""
    compiler, emulator = CROSS[arch]
    native = platform.machine() in (arch, "arm64")
    if native:
        compiler, emulator = shutil.which("c++") or "c++", ""
    elif shutil.which(compiler) is None or shutil.which(emulator) is None:
        missing = f"no {compiler} or {emulator} (apt-get install g++-aarch64-linux-gnu qemu-user)"
        if os.environ.get("YOLO_IO_CI"):  # .ci/run: a missing tool is a failure there
            pytest.fail(missing)
        pytest.skip(missing)
    exe = build_kernels_vs_portable(compiler, tmp_path, "-static")
    run = subprocess.run([emulator, str(exe)] if emulator else [str(exe)], check=False,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"exit {run.returncode}: {run.stdout[-3000:]}{run.stderr[-3000:]}"


def build_kernels_vs_portable(compiler: str, folder: Path, *flags: str) -> Path:
    """tests/cross/kernels_vs_portable.cpp with the kernels, without Python,
    with the project's warnings as errors."""
    root = Path(__file__).resolve().parents[1]
    exe = folder / "kernels_vs_portable"
    build = subprocess.run(
        [compiler, "-std=c++17", "-O2", *flags, "-Wall", "-Wextra", "-Wconversion", "-pedantic",
         "-Werror", f"-I{root / 'csrc'}", str(root / "tests" / "cross" / "kernels_vs_portable.cpp"),
         str(root / "csrc" / "yolo_io" / "kernels.cpp"), str(root / "csrc" / "yolo_io" / "fuse.cpp"),
         "-o", str(exe)],
        check=False, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    return exe


def test_the_portable_kernels_build_alone(tmp_path: Path) -> None:
    """A target without SIMD paths (another architecture, MSVC) builds the
    portable kernels only: YOLO_IO_PORTABLE_ONLY builds that here, without
    warnings, and its SIMD switch stays off."""
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        pytest.skip(f"no C++ compiler ({compiler})")
    exe = build_kernels_vs_portable(compiler, tmp_path, "-DYOLO_IO_PORTABLE_ONLY")
    run = subprocess.run([str(exe)], check=False, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stdout[-3000:]  # 2: the SIMD paths are not in use

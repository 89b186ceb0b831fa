"""layer.fused() and layer.bn_params(): C++ kernels against the NumPy reference
(tests/reference.py), property-tested with hypothesis."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CFG, conv_cfg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import conv2d, fuse, layout, to_bfloat16_bits

import yolo_io
from yolo_io.testing import header_bytes, write_weights

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


conv_case = st.tuples(
    st.integers(1, 3),           # groups multiplier of channels
    st.integers(1, 4),           # channels per group
    st.integers(1, 4),           # filters per group
    st.sampled_from([1, 3, 5]),  # size
    st.integers(0, 1),           # batch_normalize
    st.integers(0, 2**16),       # seed
)


@SETTINGS
@given(conv_case, st.sampled_from(["OIHW", "HWIO", "OHWI"]))
def test_conv_fused_bitwise_equals_reference(tmp_path: Path, case: tuple[int, ...], lay: str) -> None:
    groups, cg, fg, size, bn, seed = case
    cfg = conv_cfg(groups * cg, groups * fg, size, groups, bn)
    path = write_weights(tmp_path / "c.weights", cfg, seed=seed)
    layer = yolo_io.load(path, cfg)[0]
    p = layer.params
    ref_w, ref_b = fuse(p["weights"], p["biases"], p.get("scales"), p.get("rolling_mean"), p.get("rolling_variance"))
    w, b = layer.fused(layout=lay)
    assert w.dtype == np.float32 and w.flags.writeable and w.flags.c_contiguous
    np.testing.assert_array_equal(w, layout(ref_w, lay))
    np.testing.assert_array_equal(b, ref_b)


@SETTINGS
@given(conv_case, st.sampled_from(["float16", "bfloat16"]))
def test_conv_fused_half_precision_rounds_to_nearest_even(tmp_path: Path, case: tuple[int, ...], dtype: str) -> None:
    groups, cg, fg, size, bn, seed = case
    cfg = conv_cfg(groups * cg, groups * fg, size, groups, bn)
    layer = yolo_io.load(write_weights(tmp_path / "c.weights", cfg, seed=seed), cfg)[0]
    ref_w, ref_b = layer.fused()
    w, b = layer.fused(layout="OIHW", dtype=dtype)
    if dtype == "float16":
        np.testing.assert_array_equal(w.view(np.uint16), ref_w.astype(np.float16).view(np.uint16))
        np.testing.assert_array_equal(b.view(np.uint16), ref_b.astype(np.float16).view(np.uint16))
    else:
        np.testing.assert_array_equal(w.view(np.uint16), to_bfloat16_bits(ref_w))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, 2**32 - 1), min_size=4, max_size=4))
def test_float16_conversion_of_any_bit_pattern(tmp_path: Path, bits: list[int]) -> None:
    values = np.array(bits, dtype=np.uint32).view(np.float32)
    cfg = "[net]\nwidth=1\nheight=1\nchannels=4\n[convolutional]\nfilters=1\nsize=1\nactivation=linear\n"
    path = tmp_path / "b.weights"
    path.write_bytes(header_bytes() + np.float32(0).tobytes() + values.tobytes())
    layer = yolo_io.load(path, cfg)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", yolo_io.PrecisionWarning)
        w16, _ = layer.fused(dtype="float16")
        wbf, _ = layer.fused(dtype="bfloat16")
    with np.errstate(over="ignore"):
        expected = values.astype(np.float16)
    got = w16.ravel()
    nan = np.isnan(expected)
    assert (np.isnan(got) == nan).all()
    np.testing.assert_array_equal(got[~nan].view(np.uint16), expected[~nan].view(np.uint16))
    np.testing.assert_array_equal(wbf.ravel().view(np.uint16), to_bfloat16_bits(values))


@SETTINGS
@given(conv_case)
def test_fused_forward_equals_conv_then_batchnorm(tmp_path: Path, case: tuple[int, ...]) -> None:
    groups, cg, fg, size, _, seed = case
    cfg = conv_cfg(groups * cg, groups * fg, size, groups, 1)
    layer = yolo_io.load(write_weights(tmp_path / "c.weights", cfg, seed=seed), cfg)[0]
    p = layer.params
    x = np.random.default_rng(seed).standard_normal((groups * cg, 7, 7))
    raw = conv2d(x, p["weights"].astype(np.float64), groups, size // 2)
    shape = (-1, 1, 1)
    expected = (p["scales"].reshape(shape) * (raw - p["rolling_mean"].reshape(shape))
                / np.sqrt(p["rolling_variance"].reshape(shape) + 1e-5) + p["biases"].reshape(shape))
    w, b = layer.fused()
    got = conv2d(x, w.astype(np.float64), groups, size // 2) + b.reshape(shape)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_depthwise_hwcm_is_a_reshape_of_hwio(tmp_path: Path) -> None:
    cfg = conv_cfg(4, 8, 3, 4, 1)  # depthwise, multiplier 2
    layer = yolo_io.load(write_weights(tmp_path / "d.weights", cfg), cfg)[0]
    hwio, _ = layer.fused(layout="HWIO")
    hwcm, _ = layer.fused(layout="HWCM")
    assert hwio.shape == (3, 3, 1, 8) and hwcm.shape == (3, 3, 4, 2)
    np.testing.assert_array_equal(hwcm, hwio.reshape(3, 3, 4, 2))
    dense = conv_cfg(4, 8, 3, 1, 1)
    with pytest.raises(ValueError, match="not a depthwise convolution"):
        yolo_io.load(write_weights(tmp_path / "n.weights", dense), dense)[0].fused(layout="HWCM")


CONNECTED = ("[net]\nwidth=3\nheight=2\nchannels=4\n[convolutional]\nfilters=5\nsize=1\n"
             "[connected]\noutput=6\nbatch_normalize=1\nactivation=linear\n")


def test_connected_fused_and_nhwc_input_order(tmp_path: Path) -> None:
    net = yolo_io.load(write_weights(tmp_path / "f.weights", CONNECTED, seed=4), CONNECTED)
    layer = net[1]
    p = layer.params
    ref_w, ref_b = fuse(p["weights"], p["biases"], p["scales"], p["rolling_mean"], p["rolling_variance"])
    w_oi, b = layer.fused()
    np.testing.assert_array_equal(w_oi, ref_w)
    np.testing.assert_array_equal(b, ref_b)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)  # the conv's CHW output
    darknet = w_oi.astype(np.float64) @ x.ravel()
    w_io, _ = layer.fused(layout="IO")  # Keras Dense after Flatten of an NHWC tensor
    keras = x.transpose(1, 2, 0).ravel() @ w_io.astype(np.float64)
    np.testing.assert_allclose(keras, darknet, rtol=1e-6)
    w_io_chw, _ = layer.fused(layout="IO", flatten="CHW")
    np.testing.assert_array_equal(w_io_chw, ref_w.T)
    w_oi_hwc, _ = layer.fused(layout="OI", flatten="HWC")
    np.testing.assert_allclose(w_oi_hwc.astype(np.float64) @ x.transpose(1, 2, 0).ravel(), darknet, rtol=1e-6)


def test_legacy_transposed_connected_is_normalised(tmp_path: Path) -> None:
    import struct

    cfg = "[net]\nwidth=1\nheight=1\nchannels=3\n[connected]\noutput=2\nactivation=linear\n"
    stored = np.arange(6, dtype="<f4").reshape(3, 2)
    lr, m, d = struct.unpack("<3i", struct.pack("<3f", 0.001, 0.9, 0.0005))
    path = tmp_path / "legacy.weights"
    path.write_bytes(struct.pack("<iiiI", lr, m, d, 0) + np.zeros(2, "<f4").tobytes() + stored.tobytes())
    w, _ = yolo_io.load(path, cfg)[0].fused()
    np.testing.assert_array_equal(w, stored.T)


@pytest.mark.parametrize("eps", [1e-3, 1e-5, 0.0])
def test_bn_params_reproduce_darknet_with_another_epsilon(tmp_path: Path, eps: float) -> None:
    cfg = conv_cfg(2, 4, 1, 1, 1)
    layer = yolo_io.load(write_weights(tmp_path / "b.weights", cfg, seed=9), cfg)[0]
    p = layer.params
    q = layer.bn_params(bn_eps=eps)
    z = np.random.default_rng(1).standard_normal(4)
    darknet = p["scales"] * (z - p["rolling_mean"]) / np.sqrt(p["rolling_variance"] + 1e-5) + p["biases"]
    other = q["scales"] * (z - q["rolling_mean"]) / np.sqrt(q["rolling_variance"].astype(np.float64) + eps) + q["biases"]
    np.testing.assert_allclose(other, darknet, rtol=1e-5)
    np.testing.assert_array_equal(q["weights"], p["weights"])


def test_bn_params_with_tiny_variance_rescales_gamma_and_warns(tmp_path: Path) -> None:
    cfg = "[net]\nwidth=1\nheight=1\nchannels=1\n[convolutional]\nfilters=2\nsize=1\nbatch_normalize=1\n"
    data = np.array([0.5, -0.5, 2.0, 3.0, 0.1, 0.2, 1e-6, 4.0, 1.0, 1.0], dtype="<f4")
    path = tmp_path / "v.weights"
    path.write_bytes(header_bytes() + data.tobytes())
    layer = yolo_io.load(path, cfg)[0]
    with pytest.warns(yolo_io.PrecisionWarning, match=r"in 1 channels \(\[0\]\)"):
        q = layer.bn_params(bn_eps=1e-3)
    p = layer.params
    z = np.array([0.7, -1.3])
    darknet = p["scales"] * (z - p["rolling_mean"]) / np.sqrt(p["rolling_variance"] + 1e-5) + p["biases"]
    keras = q["scales"] * (z - q["rolling_mean"]) / np.sqrt(q["rolling_variance"].astype(np.float64) + 1e-3) + q["biases"]
    np.testing.assert_allclose(keras, darknet, rtol=1e-5)
    assert q["rolling_variance"][0] == 0


def test_float16_overflow_warns_naming_the_layer(tmp_path: Path) -> None:
    cfg = "[net]\nwidth=1\nheight=1\nchannels=2\n[convolutional]\nfilters=1\nsize=1\nactivation=linear\n"
    path = tmp_path / "o.weights"
    path.write_bytes(header_bytes() + np.array([0.0, 1e6, 1.0], dtype="<f4").tobytes())
    with pytest.warns(yolo_io.PrecisionWarning, match=r"1 values of layer 0 \(convolutional, <string> line 5\) overflow float16"):
        w, _ = yolo_io.load(path, cfg)[0].fused(dtype="float16")
    assert np.isinf(w.ravel()[0]) and w.ravel()[1] == 1.0


def test_fused_errors_and_ownership(tmp_path: Path, tiny_cfg: Path, tiny_weights: Path) -> None:
    net = yolo_io.load(tiny_weights, tiny_cfg)
    with pytest.raises(ValueError, match=r"layer 2 \(route.*no weights to fuse"):
        net[2].fused()
    with pytest.raises(ValueError, match="layout must be"):
        net[0].fused(layout="NCHW")
    with pytest.raises(ValueError, match="dtype must be"):
        net[0].fused(dtype="float64")
    with pytest.raises(ValueError, match="flatten must be"):
        net[0].fused(flatten="WHC")
    with pytest.raises(ValueError, match="no batch norm"):
        net[3].bn_params()
    w, _ = net[0].fused()
    assert w.flags.owndata is False and w.flags.writeable
    assert not np.shares_memory(w, net.raw)
    w[...] = 0  # independent of the file
    assert np.count_nonzero(net[0].fused()[0])
    net.close()
    with pytest.raises(yolo_io.YoloIOError, match="closed"):
        net[0].fused()


def test_share_index_and_partial(tmp_path: Path) -> None:
    cfg = ("[net]\nwidth=4\nheight=4\nchannels=3\n[convolutional]\nfilters=3\nsize=3\npad=1\nbatch_normalize=1\n"
           "[convolutional]\nfilters=3\nsize=3\npad=1\nbatch_normalize=1\nshare_index=0\n"
           "[convolutional]\nfilters=2\nsize=1\n")
    net = yolo_io.load(write_weights(tmp_path / "s.weights", cfg), cfg)
    for a, b in zip(net[0].fused(), net[1].fused(), strict=True):
        np.testing.assert_array_equal(a, b)
    part = yolo_io.load(write_weights(tmp_path / "p.weights", cfg, layers=1), cfg, partial=True)
    assert part[1].fused()[0].shape == (3, 3, 3, 3)  # shares layer 0, which is in the file
    with pytest.raises(IndexError, match="past the end of this partial file"):
        part[2].fused()


def test_fusable_layers_are_those_whose_fused_works(tmp_path: Path) -> None:
    """net.fusable_layers(): every layer whose fused() works, and only those
    (a partial file's missing layers left out)."""
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    for layers in (None, 1):
        weights = write_weights(tmp_path / f"w{layers}.weights", cfg, seed=1, layers=layers)
        with yolo_io.load(weights, cfg, partial=layers is not None) as net:
            fusable = {layer.index for layer in net.fusable_layers()}
            assert fusable
            for layer in net:
                if layer.index in fusable:
                    w, b = layer.fused()
                    assert w.shape[0] == b.shape[0]
                else:
                    with pytest.raises((ValueError, IndexError)):
                        layer.fused()
            assert set(net.fused_all()) == fusable


# 1024 inputs (a 16x8x8 image), 520 outputs: about half a million weights,
# several of the fusion's parts, and a last part of fewer than 16 channels.
BIG_CONNECTED = ("[net]\nwidth=8\nheight=8\nchannels=16\n"
                 "[connected]\noutput=520\nbatch_normalize=1\nactivation=linear\n")


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize(("lay", "flatten"), [("OI", "CHW"), ("OI", "HWC"), ("IO", "CHW"),
                                              ("IO", "HWC")])
def test_connected_layers_run_the_conv_kernels_in_parts(tmp_path: Path, lay: str, flatten: str,
                                                        dtype: str) -> None:
    # Issue 27, item 7: a connected layer is fused as the 1x1 convolution it
    # is (OI as OIHW, IO as HWIO, HWC columns as OHWI/HWIO of the image),
    # split among threads like one, with the same bits as darknet's
    # arithmetic on either kernel path.
    from yolo_io import _core

    net = yolo_io.load(write_weights(tmp_path / "c.weights", BIG_CONNECTED, seed=3), BIG_CONNECTED)
    layer = net[0]
    p = layer.params
    ref, ref_b = fuse(p["weights"], p["biases"], p["scales"], p["rolling_mean"],
                      p["rolling_variance"])
    if flatten == "HWC":
        ref = ref.reshape(520, 16, 8, 8).transpose(0, 2, 3, 1).reshape(520, -1)
    ref = np.ascontiguousarray(ref if lay == "OI" else ref.T)

    def expected(a: np.ndarray) -> np.ndarray:
        if dtype == "float32":
            return a
        if dtype == "float16":
            return a.astype(np.float16)
        return to_bfloat16_bits(a)

    def bits(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a).view(np.uint8)

    before = _core._fusion_parts()
    w, b = layer.fused(lay, dtype=dtype, flatten=flatten, threads=2)
    assert _core._fusion_parts() - before > 2, "the connected layer was not split into parts"
    np.testing.assert_array_equal(bits(w), bits(expected(ref)))
    np.testing.assert_array_equal(bits(b), bits(expected(ref_b)))
    simd = _core._set_simd(False)
    try:
        portable = layer.fused(lay, dtype=dtype, flatten=flatten, threads=2)
    finally:
        _core._set_simd(simd)
    np.testing.assert_array_equal(bits(portable[0]), bits(w))
    both = net.fused_all(dtype=dtype, dense_layout=lay, flatten=flatten, threads=2)[0]
    np.testing.assert_array_equal(bits(both[0]), bits(w))

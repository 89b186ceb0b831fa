"""Property and robustness tests (hypothesis): whatever the input, either a
result or a typed error; for any valid cfg, the plan tiles the file exactly."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import yolo_io
from yolo_io.testing import header_bytes, write_weights

SECTIONS = ["[net]", "[convolutional]", "[conv]", "[route]", "[shortcut]", "[maxpool]", "[upsample]",
            "[yolo]", "[connected]", "[avgpool]", "[reorg]", "[reorg3d]", "[sam]", "[scale_channels]",
            "[local]", "[batchnorm]", "[rnn]", "[lstm]", "[gru]", "[crnn]", "[conv_lstm]", "[implicit]",
            "[dropout]", "[softmax]", "[cost]", "[crop]", "[deconvolutional]", "[region]", "[detection]",
            "[bogus]", "["]
KEYS = ["filters", "size", "stride", "pad", "padding", "groups", "batch_normalize", "layers", "from",
        "output", "hidden", "classes", "num", "mask", "stride_x", "stride_y", "width", "height",
        "channels", "inputs", "share_index", "weights_type", "weights_normalization", "antialiasing",
        "maxpool_depth", "out_channels", "reverse", "group_id", "activation", "side", "coords",
        "flipped", "xnor", "peephole", "bottleneck", "atoms", "crop_width", "crop_height"]
VALUES = st.one_of(
    st.integers(-3, 9).map(str),
    st.sampled_from(["2147483647", "-2147483648", "99999999999", "0x10", "1e3", "-1,-2", "0,1,2",
                     "leaky", "per_channel", "softmax", "", "#", "-1#,x"]),
)
LINES = st.one_of(
    st.sampled_from(SECTIONS),
    st.tuples(st.sampled_from(KEYS), VALUES).map(lambda kv: f"{kv[0]}={kv[1]}"),
    st.text(max_size=12),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(LINES, max_size=40))
def test_any_cfg_text_parses_or_raises_cfg_error(lines: list[str]) -> None:
    text = "[net]\nwidth=8\nheight=8\nchannels=3\n" + "\n".join(lines)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", yolo_io.CfgWarning)
        try:
            cfg = yolo_io.parse_cfg(text)
        except yolo_io.CfgError as e:
            assert e.line >= 0 and str(e)  # noqa: PT017 - either outcome is allowed
            return
    for layer in cfg:
        assert layer.param_count >= 0
        assert sum(int(np.prod(s)) for s in layer.param_shapes.values()) == layer.param_count
        assert all(0 <= i < layer.index for i in layer.inputs)


conv_layer = st.fixed_dictionaries({
    "filters": st.integers(1, 6), "size": st.integers(1, 3), "stride": st.integers(1, 2),
    "pad": st.integers(0, 1), "groups": st.sampled_from([1, 2]), "batch_normalize": st.integers(0, 1),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(conv_layer, min_size=1, max_size=5), st.sampled_from([(0, 1, 0), (0, 2, 5)]))
def test_plan_tiles_the_file_exactly(tmp_path: Path, layers: list[dict[str, int]],
                                     version: tuple[int, int, int]) -> None:
    text = "[net]\nwidth=9\nheight=9\nchannels=4\n"
    for opts in layers:
        text += "[convolutional]\n" + "".join(f"{k}={v}\n" for k, v in opts.items())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", yolo_io.CfgWarning)
        try:
            cfg = yolo_io.parse_cfg(text)
        except yolo_io.CfgError:
            return  # e.g. a kernel larger than its input
    path = write_weights(tmp_path / "w.weights", cfg, version=version, seed=len(layers))
    header = len(header_bytes(version))
    flat = np.fromfile(path, dtype="<f4", offset=header)
    net = yolo_io.load(path, cfg)
    pieces = [a.ravel() for layer in net for a in layer.params.values()]
    np.testing.assert_array_equal(np.concatenate(pieces), flat)
    for layer, opts in zip(net, layers, strict=True):
        c_in = layer.input_shape[0]
        assert layer.param_shapes["weights"] == (opts["filters"], c_in // opts["groups"], opts["size"], opts["size"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2100))
def test_any_bytes_load_or_raise_format_error(tmp_path: Path, data: bytes) -> None:
    cfg = "[net]\nwidth=2\nheight=2\nchannels=2\n[convolutional]\nfilters=3\nsize=1\n"
    path = tmp_path / "x.weights"
    path.write_bytes(data)
    try:
        net = yolo_io.load(path, cfg)
    except yolo_io.FormatError as e:
        assert str(path) in str(e)  # noqa: PT017 - either outcome is allowed
        return
    assert len(data) == net.header.size + 4 * 9
    assert net[0].params["weights"].shape == (3, 2, 1, 1)


@pytest.mark.parametrize("short", [1, 2, 3, 5])
def test_unaligned_sizes_are_reported_in_floats_and_bytes(tmp_path: Path, tiny_cfg: Path,
                                                           tiny_weights: Path, short: int) -> None:
    data = tiny_weights.read_bytes()
    path = tmp_path / "odd.weights"
    path.write_bytes(data[:-short])
    with pytest.raises(yolo_io.WeightsSizeError,
                       match=rf"{short} bytes \({short // 4} floats( \+ {short % 4} bytes)?\) short"):
        yolo_io.load(path, tiny_cfg)

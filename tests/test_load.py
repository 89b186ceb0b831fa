"""load(): header versions, zero-copy views, lifetimes, close()."""

from __future__ import annotations

import gc
import struct
from pathlib import Path

import numpy as np
import pytest

import yolo_io
from yolo_io.testing import header_bytes, write_weights

TINY_FLOATS = 124 + 176 + 40 + 162  # see conftest.TINY_CFG


def test_tiny_plan(tiny_cfg: Path) -> None:
    cfg = yolo_io.parse_cfg(tiny_cfg)
    assert [layer.type for layer in cfg] == [
        "convolutional", "convolutional", "route", "convolutional", "shortcut",
        "maxpool", "upsample", "convolutional", "yolo"]
    assert [layer.output_shape for layer in cfg] == [
        (4, 8, 8), (8, 4, 4), (4, 4, 4), (8, 4, 4), (8, 4, 4), (8, 4, 4), (8, 8, 8),
        (18, 8, 8), (18, 8, 8)]
    assert cfg[4].inputs == (3, 1)
    assert cfg.param_count == TINY_FLOATS
    assert cfg.expected_size() == 20 + 4 * TINY_FLOATS
    assert cfg.expected_sizes == {"0.1": 16 + 4 * TINY_FLOATS, "0.2": 20 + 4 * TINY_FLOATS}


def test_golden_bytes(tmp_path: Path) -> None:
    """Pin the exact byte layout of a hand-made file, independent of our writer."""
    cfg = "[net]\nwidth=2\nheight=2\nchannels=2\n[convolutional]\nbatch_normalize=1\nfilters=2\nsize=1\n"
    floats = np.arange(1, 2 * 4 + 2 * 2 + 1, dtype="<f4")  # biases, scales, mean, var, weights
    path = tmp_path / "g.weights"
    path.write_bytes(struct.pack("<iiiQ", 0, 2, 5, 1234) + floats.tobytes())
    net = yolo_io.load(path, cfg)
    assert net.header == yolo_io.Header(0, 2, 5, 1234, 20, False)
    p = net[0].params
    assert p["biases"].tolist() == [1, 2]
    assert p["scales"].tolist() == [3, 4]
    assert p["rolling_mean"].tolist() == [5, 6]
    assert p["rolling_variance"].tolist() == [7, 8]
    assert p["weights"].tolist() == [[[[9]], [[10]]], [[[11]], [[12]]]]
    assert net[0].offset == 20 and net[0].nbytes == 48


def test_params_equal_the_file_bytes(tiny_cfg: Path, tiny_weights: Path) -> None:
    flat = np.fromfile(tiny_weights, dtype="<f4", offset=20)
    net = yolo_io.load(tiny_weights, tiny_cfg)
    seen = 0
    for layer in net:
        off = (layer.offset - 20) // 4
        for name, arr in layer.params.items():
            assert arr.dtype == np.float32
            assert arr.shape == layer.param_shapes[name]
            np.testing.assert_array_equal(arr.ravel(), flat[off : off + arr.size])
            off += arr.size
            seen += arr.size
    assert seen == flat.size


def test_views_are_readonly_zero_copy_and_outlive_the_network(tiny_cfg: Path, tiny_weights: Path) -> None:
    net = yolo_io.load(tiny_weights, tiny_cfg)
    w = net[1].params["weights"]
    assert not w.flags.writeable
    assert not w.flags.owndata
    assert np.shares_memory(w, net.raw)
    with pytest.raises(ValueError, match="read-only"):
        w[0, 0, 0, 0] = 1.0
    with pytest.raises(ValueError, match="cannot set WRITEABLE"):
        w.setflags(write=True)
    expected = w.copy()
    del net
    gc.collect()
    np.testing.assert_array_equal(w, expected)  # the mapping is still alive


def test_close_and_context_manager(tiny_cfg: Path, tiny_weights: Path) -> None:
    with yolo_io.load(tiny_weights, tiny_cfg) as net:
        b = net[0].params["biases"]
        layer = net[0]
    assert net.closed
    with pytest.raises(yolo_io.YoloIOError, match=r"network is closed: .*tiny\.weights"):
        _ = layer.params
    with pytest.raises(yolo_io.YoloIOError, match="closed"):
        _ = net.header
    with pytest.raises(yolo_io.YoloIOError, match="closed"):
        _ = net.raw
    assert layer.output_shape == (4, 8, 8)  # cfg facts stay available
    assert np.isfinite(b).all()  # views handed out stay valid
    net.close()  # idempotent


def test_copy_is_explicit_and_writeable(tiny_cfg: Path, tiny_weights: Path) -> None:
    net = yolo_io.load(tiny_weights, tiny_cfg)
    c = net[0].params["weights"].copy()
    c[...] = 0
    assert np.count_nonzero(net[0].params["weights"]) > 0


def test_indexing_and_iteration(tiny_cfg: Path, tiny_weights: Path) -> None:
    net = yolo_io.load(tiny_weights, tiny_cfg)
    assert len(net) == 9
    assert net[-1].type == "yolo" and net[-1].index == 8
    assert [layer.index for layer in net] == list(range(9))
    assert [layer.index for layer in net[2:4]] == [2, 3]
    with pytest.raises(IndexError):
        net[9]
    with pytest.raises(IndexError):
        net[-10]
    with pytest.raises(TypeError):
        net["0"]  # type: ignore[call-overload]
    assert net[2].params == {}
    assert net.input_shape == (3, 8, 8)
    assert "tiny.weights" in repr(net) and "convolutional" in repr(net[0])


@pytest.mark.parametrize(
    ("version", "header"), [((0, 1, 0), 16), ((0, 2, 0), 20), ((0, 2, 5), 20), ((1, 0, 0), 20)],
    ids=["v0.1", "v0.2.0", "v0.2.5", "v1.0"],
)
def test_header_versions(tmp_path: Path, tiny_cfg: Path, version: tuple[int, int, int], header: int) -> None:
    path = write_weights(tmp_path / "v.weights", tiny_cfg, version=version, seen=77, seed=3)
    assert path.stat().st_size == header + 4 * TINY_FLOATS
    net = yolo_io.load(path, tiny_cfg)
    assert net.header.size == header
    assert net.header.seen == 77
    assert net[0].offset == header
    flat = np.fromfile(path, dtype="<f4", offset=header)
    np.testing.assert_array_equal(net[0].params["biases"], flat[:4])


def test_genuine_v01_file_loads(tmp_path: Path, tiny_cfg: Path) -> None:
    data = np.random.default_rng(0).standard_normal(TINY_FLOATS).astype("<f4")
    path = tmp_path / "old.weights"
    path.write_bytes(struct.pack("<iiiI", 0, 1, 0, 5) + data.tobytes())
    net = yolo_io.load(path, tiny_cfg)
    assert net.header == yolo_io.Header(0, 1, 0, 5, 16, False)
    np.testing.assert_array_equal(net[0].params["biases"], data[:4])


def test_legacy_header_transposes_connected_weights(tmp_path: Path) -> None:
    cfg = "[net]\nwidth=1\nheight=1\nchannels=3\n[connected]\noutput=2\nactivation=linear\n"
    stored = np.arange(6, dtype="<f4").reshape(3, 2)  # [inputs][outputs] on disk
    biases = np.array([10, 20], dtype="<f4")
    lr, momentum, decay = struct.unpack("<3i", struct.pack("<3f", 0.001, 0.9, 0.0005))
    path = tmp_path / "legacy.weights"
    path.write_bytes(struct.pack("<iiiI", lr, momentum, decay, 0) + biases.tobytes() + stored.tobytes())
    net = yolo_io.load(path, cfg)
    assert net.header.transpose and net.header.size == 16
    w = net[0].params["weights"]
    assert w.shape == (2, 3)
    np.testing.assert_array_equal(w, stored.T)  # (outputs, inputs), still a view
    assert np.shares_memory(w, net.raw)


def test_flipped_conv_is_presented_as_oihw(tmp_path: Path) -> None:
    cfg = "[net]\nwidth=4\nheight=4\nchannels=2\n[convolutional]\nfilters=3\nsize=1\nflipped=1\n"
    stored = np.arange(6, dtype="<f4").reshape(2, 3)  # [K][n] on disk, K = c*size*size
    path = tmp_path / "f.weights"
    path.write_bytes(header_bytes() + np.zeros(3, "<f4").tobytes() + stored.tobytes())
    w = yolo_io.load(path, cfg)[0].params["weights"]
    assert w.shape == (3, 2, 1, 1)
    np.testing.assert_array_equal(w[:, :, 0, 0], stored.T)


def test_recurrent_params_are_named_by_sub_layer(tmp_path: Path) -> None:
    cfg = "[net]\ninputs=5\n[lstm]\noutput=3\n"
    path = write_weights(tmp_path / "l.weights", cfg)
    p = yolo_io.load(path, cfg)[0].params
    assert p["wf.weights"].shape == (3, 3) and p["uo.weights"].shape == (3, 5)
    assert len(p) == 16


def test_load_accepts_a_parsed_config(tiny_cfg: Path, tiny_weights: Path) -> None:
    cfg = yolo_io.parse_cfg(tiny_cfg)
    net = yolo_io.load(tiny_weights, cfg)
    assert net.config is cfg
    with pytest.raises(TypeError):
        yolo_io.load(123, cfg)  # type: ignore[arg-type]


def test_threads_read_views_concurrently(tiny_cfg: Path, tiny_weights: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    net = yolo_io.load(tiny_weights, tiny_cfg)

    def total(_: int) -> float:
        return float(sum(a.sum(dtype=np.float64) for layer in net for a in layer.params.values()))

    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(total, range(16)))
    assert len(set(results)) == 1


def test_files_over_4_gib_use_64_bit_offsets(tmp_path: Path) -> None:
    # A sparse file: no disk space is used, and only the pages read are touched.
    cfg = yolo_io.parse_cfg(
        "[net]\ninputs=40000\n[connected]\noutput=30000\n[connected]\noutput=7\n")
    size = cfg.expected_size()
    assert size > 1 << 32
    path = tmp_path / "huge.weights"
    with path.open("wb") as f:
        f.write(header_bytes())
        f.truncate(size)
    net = yolo_io.load(path, cfg)
    big, last = net[0], net[1]
    assert big.nbytes == 4 * (30000 + 30000 * 40000)
    assert last.offset == 20 + big.nbytes > 1 << 32
    w = last.params["weights"]
    assert w.shape == (7, 30000)
    assert w[-1, -1] == 0.0  # reads the last page of the file
    assert big.params["weights"].shape == (30000, 40000)

"""Bad input: every case gets its typed error with a message that diagnoses it.
Nothing crashes, no array is silently wrong."""

from __future__ import annotations

import importlib
import os
import pickle
import struct
from pathlib import Path

import pytest

import yolo_io
from yolo_io.testing import header_bytes, write_weights


def boundaries(cfg: yolo_io.Config, header: int = 20) -> list[tuple[int, int]]:
    """(layer index, byte offset) where each storing layer's data begins."""
    out, pos = [], header
    for layer in cfg:
        if layer.param_count:
            out.append((layer.index, pos))
        pos += 4 * layer.param_count
    return out


def truncated(src: Path, dst: Path, size: int) -> Path:
    with src.open("rb") as f:
        dst.write_bytes(f.read(size))
    return dst


def test_truncation_at_every_layer_boundary(tmp_path: Path, tiny_cfg: Path, tiny_weights: Path) -> None:
    cfg = yolo_io.parse_cfg(tiny_cfg)
    for index, offset in boundaries(cfg):
        path = truncated(tiny_weights, tmp_path / "t.weights", offset)
        with pytest.raises(yolo_io.WeightsSizeError) as e:
            yolo_io.load(path, cfg)
        err = e.value
        msg = str(err)
        assert str(path) in msg and str(tiny_cfg) in msg
        assert f"needs {cfg.expected_size()} bytes" in msg and f"has {offset} bytes" in msg
        assert f"looks like a partial file covering the first {index} layers" in msg
        assert "darknet partial" in msg
        assert "partial=True" in msg
        assert err.partial_layers == index and err.layer is None
        assert (err.expected, err.actual) == (cfg.expected_size(), offset)
        # ... and partial=True loads it, covering exactly those layers
        net = yolo_io.load(path, cfg, partial=True)
        assert net.partial and net.covered_layers == index
        assert all(layer.loaded == (layer.index < index) for layer in net)
        assert all(not layer.params for layer in net if layer.index >= index)
        if index:
            assert net[index - 1].type and net[0].params["biases"].shape == (4,)


def test_truncation_inside_every_layer(tmp_path: Path, tiny_cfg: Path, tiny_weights: Path) -> None:
    cfg = yolo_io.parse_cfg(tiny_cfg)
    for index, offset in boundaries(cfg):
        layer = cfg[index]
        for cut in (offset + 4, offset + 4 * layer.param_count - 4, offset + 4 * layer.param_count - 1):
            path = truncated(tiny_weights, tmp_path / "t.weights", cut)
            for partial in (False, True):
                with pytest.raises(yolo_io.WeightsSizeError) as e:
                    yolo_io.load(path, cfg, partial=partial)
                msg = str(e.value)
                assert e.value.layer == index
                assert f"layer {index} ({layer.type}, {tiny_cfg} line {layer.line})" in msg
                assert "would cross the end of the file" in msg
                missing = cfg.expected_size() - cut
                assert f"{missing} bytes ({missing // 4} floats" in msg


def test_truncation_inside_the_header(tmp_path: Path, tiny_cfg: Path, tiny_weights: Path) -> None:
    for size in range(20):
        path = truncated(tiny_weights, tmp_path / "h.weights", size)
        with pytest.raises(yolo_io.FormatError, match=r"not a Darknet \.weights file.*(fewer than|needs 20 bytes)"):
            yolo_io.load(path, tiny_cfg)


def test_trailing_bytes(tmp_path: Path, tiny_cfg: Path, tiny_weights: Path) -> None:
    for extra in (1, 4, 8, 4096):
        path = tmp_path / "long.weights"
        path.write_bytes(tiny_weights.read_bytes() + b"\0" * extra)
        with pytest.raises(yolo_io.WeightsSizeError, match=rf"{extra} bytes \(.*\) trail the last layer's data, which ends with layer 7 \(convolutional") as e:
            yolo_io.load(path, tiny_cfg, partial=True)
        assert e.value.layer is None and e.value.actual - e.value.expected == extra


def test_pytorch_exporter_32bit_seen_bug(tmp_path: Path, tiny_cfg: Path, tiny_weights: Path) -> None:
    body = tiny_weights.read_bytes()[20:]
    path = tmp_path / "bug.weights"
    path.write_bytes(struct.pack("<iiiI", 0, 2, 0, 0) + body)  # claims 0.2, 4-byte seen
    with pytest.raises(yolo_io.WeightsSizeError, match=r"exactly 4 bytes short: it was written with a 32-bit `seen`"):
        yolo_io.load(path, tiny_cfg)


def test_v01_header_with_64bit_seen(tmp_path: Path, tiny_cfg: Path, tiny_weights: Path) -> None:
    path = tmp_path / "bug2.weights"
    path.write_bytes(struct.pack("<iiiQ", 0, 1, 0, 0) + tiny_weights.read_bytes()[20:])
    with pytest.raises(yolo_io.WeightsSizeError, match="64-bit `seen`"):
        yolo_io.load(path, tiny_cfg)


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head></html>\n" * 40, "HTML"),
        (b"\xef\xbb\xbf<html>\n" * 10, "HTML"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 257717640\n", "git lfs pull"),
        (b"[net]\nwidth=416\nheight=416\nchannels=3\n" * 4, r"\.cfg file\?"),
        (b"PK\x03\x04" + b"\0" * 100, "ZIP archive"),
        (b"\x89HDF\r\n\x1a\n" + b"\0" * 100, "HDF5"),
        (b"\x1f\x8b\x08" + b"\0" * 100, "gzip"),
        (b"\x80\x02}q\x00" + b"\0" * 100, "pickle"),
        (struct.pack("<iii", -1, 2, 0) + b"\0" * 100, "negative version"),
        (b"", "fewer than the 16"),
    ],
    ids=["html", "html-bom", "git-lfs", "cfg", "zip", "hdf5", "gzip", "pickle", "negative", "empty"],
)
def test_not_a_weights_file(tmp_path: Path, tiny_cfg: Path, content: bytes, pattern: str) -> None:
    path = tmp_path / "model.weights"
    path.write_bytes(content)
    with pytest.raises(yolo_io.FormatError, match=pattern) as e:
        yolo_io.load(path, tiny_cfg)
    assert not isinstance(e.value, yolo_io.WeightsSizeError)
    assert str(path) in str(e.value)


def test_file_system_errors(tmp_path: Path, tiny_cfg: Path, tiny_weights: Path) -> None:
    with pytest.raises(FileNotFoundError) as e:
        yolo_io.load(tmp_path / "missing.weights", tiny_cfg)
    assert e.value.filename == str(tmp_path / "missing.weights")
    with pytest.raises(IsADirectoryError):
        yolo_io.load(tmp_path, tiny_cfg)
    with pytest.raises(FileNotFoundError):
        yolo_io.load(tiny_weights, tmp_path / "missing.cfg")


def test_another_models_weights(tmp_path: Path, tiny_cfg: Path) -> None:
    other = "[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=64\nsize=3\n"
    path = write_weights(tmp_path / "other.weights", other)
    with pytest.raises(yolo_io.WeightsSizeError, match="another model's weights"):
        yolo_io.load(path, tiny_cfg)


def test_loading_never_modifies_the_file(tmp_path: Path, tiny_cfg: Path, tiny_weights: Path) -> None:
    before = tiny_weights.read_bytes()
    net = yolo_io.load(tiny_weights, tiny_cfg)
    for layer in net:
        for a in layer.params.values():
            with pytest.raises(ValueError, match="read-only"):
                a[...] = 0
    assert tiny_weights.read_bytes() == before


@pytest.mark.parametrize(
    "exc",
    [
        yolo_io.CfgError("m", path="a.cfg", line=3),
        yolo_io.WeightsSizeError("m", expected=10, actual=8, layer=2, partial_layers=None),
        yolo_io.FormatError("m"),
        yolo_io.YoloIOError("m"),
    ],
)
def test_exceptions_are_importable_and_pickle(exc: Exception) -> None:
    assert getattr(importlib.import_module(type(exc).__module__), type(exc).__name__) is type(exc)
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc) and str(back) == str(exc)
    assert back.__dict__ == exc.__dict__


def test_exception_hierarchy() -> None:
    assert issubclass(yolo_io.WeightsSizeError, yolo_io.FormatError)
    assert issubclass(yolo_io.FormatError, yolo_io.YoloIOError)
    assert issubclass(yolo_io.CfgError, yolo_io.YoloIOError)
    assert issubclass(yolo_io.CfgWarning, UserWarning)


def test_raised_cfg_error_pickles_with_attributes() -> None:
    with pytest.raises(yolo_io.CfgError) as e:
        yolo_io.parse_cfg("[net]\nwidth=1\nheight=1\nchannels=1\n[bogus]\n")
    back = pickle.loads(pickle.dumps(e.value))
    assert back.line == 5 and back.path == "<string>"


def test_header_bytes_rejects_nothing_silently() -> None:
    assert len(header_bytes((0, 1, 0))) == 16
    assert len(header_bytes((0, 2, 5))) == 20
    with pytest.raises(ValueError, match="layers must be"):
        write_weights("/dev/null", "[net]\ninputs=1\n[connected]\n", layers=5)


def test_fifo_is_refused_without_blocking(tmp_path: Path, tiny_cfg: Path) -> None:
    fifo = tmp_path / "pipe.weights"
    os.mkfifo(fifo)
    with pytest.raises(yolo_io.FormatError, match=r"is a FIFO \(named pipe\), not a regular file"):
        yolo_io.load(fifo, tiny_cfg)
    # As a cfg a FIFO is read as a stream; with no writer it is empty.
    with pytest.raises(yolo_io.CfgError, match=r"no \[net\] section"):
        yolo_io.parse_cfg(fifo)


def test_expected_size_refuses_a_layer_count_outside_the_cfg(tiny_cfg: Path) -> None:
    """layers=99 and layers=-99 returned the full size (issue 22, item 22)."""
    cfg = yolo_io.parse_cfg(tiny_cfg)
    n = len(cfg)
    assert cfg.expected_size(layers=n) == cfg.expected_size()
    assert cfg.expected_size(layers=0) == 20
    for bad in (n + 1, 99, -1, -99):
        with pytest.raises(ValueError, match=rf"layers={bad} is outside 0\.\.{n}: .* has {n} layers"):
            cfg.expected_size(layers=bad)
    with pytest.raises(TypeError, match="layers must be an integer, not float"):
        cfg.expected_size(layers=2.0)  # type: ignore[arg-type]


def test_expected_size_refuses_the_versions_load_and_save_refuse(tiny_cfg: Path) -> None:
    """(-1, 2) gave a size although load and save refuse a negative major: the
    core's one header rule decides here too."""
    cfg = yolo_io.parse_cfg(tiny_cfg)
    for bad in ((-1, 2), (0, -2), (0, 2, 2**31), (2**31, 0)):
        with pytest.raises(ValueError, match=r"a \.weights header has .*version"):
            cfg.expected_size(bad)
    assert cfg.expected_size((0, 1, -5)) == cfg.expected_size((0, 1)) == cfg.expected_size() - 4

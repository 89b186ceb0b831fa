"""File names in any encoding, as bytes, str or os.PathLike, at every place a
path enters yolo_io (issue 22, item 13), and the cfg path/text rule (item 14).

A name such as ``b"m\\xff.cfg"`` is not UTF-8: Python gives it as a str with a
surrogate escape (``os.fsdecode``); pybind11 used to refuse that str with
"incompatible function arguments"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import TINY_CFG

import yolo_io
from yolo_io.testing import write_weights

pytestmark = pytest.mark.filterwarnings("ignore::yolo_io.CfgWarning")

ENV = {**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"}


def named(folder: Path, name: bytes) -> str:
    """The file ``name`` (bytes, any encoding) in ``folder``, as Python names it."""
    return os.fsdecode(os.fsencode(folder) + b"/" + name)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[str, str]:
    cfg = named(tmp_path, b"m\xff.cfg")
    with open(cfg, "w") as f:
        f.write(TINY_CFG)
    weights = write_weights(named(tmp_path, b"w\xfe.weights"), cfg, seed=1, realistic=True)
    return cfg, str(weights)


FORMS: dict[str, Callable[[str], Any]] = {
    "bytes": os.fsencode, "str": lambda p: p, "Path": Path}


def _onnx(net: yolo_io.Network, out: Any) -> Any:
    pytest.importorskip("onnx")
    import yolo_io.onnx

    return yolo_io.onnx.export(out, net)


def _plot(net: yolo_io.Network, out: Any) -> Any:
    pytest.importorskip("matplotlib")
    from yolo_io._diagnosis.doctor import plot

    return plot(net, out, yolo_io.doctor(net))


# Each writer: (call with a network and an output path, the output's name).
WRITERS: dict[str, tuple[Callable[[yolo_io.Network, Any], Any], bytes]] = {
    "save": (lambda net, out: yolo_io.save(out, net), b"o\xfd.weights"),
    "save-arrays": (lambda net, out: yolo_io.save(
        out, {i: dict(layer.params) for i, layer in enumerate(net) if layer.params},
        net.config.path.encode("utf-8", "surrogateescape")), b"o\xfd.weights"),
    "save_npz": (lambda net, out: yolo_io.save_npz(out, net), b"o\xfd.npz"),
    "save_safetensors": (lambda net, out: yolo_io.save_safetensors(out, net),
                         b"o\xfd.safetensors"),
    "save_fused": (lambda net, out: yolo_io.save_fused(out, out[:-8] + (
        b".cfg" if isinstance(out, bytes) else ".cfg"), net)[0]
        if not isinstance(out, Path) else yolo_io.save_fused(out, out.with_suffix(".cfg"), net)[0],
        b"o\xfd.weights"),
    "onnx.export": (_onnx, b"o\xfd.onnx"),
    "plot": (_plot, b"o\xfd.png"),
    "write_weights": (lambda net, out: write_weights(out, net.config), b"o\xfd.weights"),
}


@pytest.mark.parametrize("form", FORMS)
def test_readers_take_any_file_name(pair: tuple[str, str], form: str) -> None:
    cfg, weights = (FORMS[form](p) for p in pair)
    config = yolo_io.parse_cfg(cfg)
    assert config.path == pair[0] and len(config) == len(yolo_io.parse_cfg(TINY_CFG))
    with yolo_io.load(weights, cfg) as net:
        assert net.path == pair[1] and net.config.path == pair[0]
        assert yolo_io.doctor(net).ok
    report = yolo_io.diagnose(weights, cfg, names=cfg)  # the cfg's lines as class names
    assert report.weights == pair[1] and report.cfg == pair[0]
    assert "\\xff" in yolo_io._base.paths.shown(str(report))  # printable


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("writer", WRITERS)
def test_writers_take_any_file_name(pair: tuple[str, str], tmp_path: Path, form: str,
                                    writer: str) -> None:
    call, name = WRITERS[writer]
    out = named(tmp_path, name)
    with yolo_io.load(*reversed(pair)) as net:
        written = call(net, FORMS[form](out))
    assert os.fspath(written) == out and os.path.getsize(out) > 0
    if name.endswith(b".weights") and writer != "write_weights":
        with yolo_io.load(out, out[:-8] + ".cfg" if writer == "save_fused" else pair[0]) as again:
            assert len(again) == len(yolo_io.parse_cfg(pair[0]))
    if writer == "save_safetensors":
        with yolo_io.load(FORMS[form](out)) as again:  # its own cfg, named after the file
            assert again.config.path == out + " (its cfg)"


def test_verify_takes_any_file_name(pair: tuple[str, str], tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromDarknet"):
        pytest.skip("this OpenCV has no Darknet importer")
    import yolo_io.onnx

    cfg, weights = pair
    with yolo_io.load(weights, cfg) as net:
        model = yolo_io.onnx.export(os.fsencode(named(tmp_path, b"v\xfb.onnx")), net,
                                    intermediates=True)
    image = named(tmp_path, b"i\xfa.png")
    assert cv2.imencode(".png", np.full((20, 30, 3), 120, np.uint8))[1].tofile(image) is None
    result = yolo_io.onnx.verify(os.fsencode(weights), Path(cfg), onnx_path=os.fsencode(model),
                            image=os.fsencode(image))
    assert result.ok and result.onnx == os.fspath(model) and result.image.startswith(image)


def test_errors_that_name_such_a_file_are_typed_and_round_trip(tmp_path: Path) -> None:
    missing = named(tmp_path, b"nope\xff.cfg")
    with pytest.raises(FileNotFoundError) as caught:
        yolo_io.parse_cfg(os.fsencode(missing))
    assert caught.value.filename == missing
    bad = named(tmp_path, b"bad\xff.cfg")
    with open(bad, "w") as f:
        f.write("[net]\nwidth=8\nheight=8\nchannels=3\n[bogus]\n")
    with pytest.raises(yolo_io.CfgError) as cfg_error:
        yolo_io.parse_cfg(bad)
    assert cfg_error.value.path == bad and cfg_error.value.line == 5
    assert "bad\\xff.cfg:5:" in str(cfg_error.value)
    cfg = named(tmp_path, b"m\xff.cfg")
    with open(cfg, "w") as f:
        f.write(TINY_CFG)
    short = named(tmp_path, b"s\xfe.weights")
    with open(short, "wb") as f:
        f.write(write_weights(tmp_path / "w.weights", cfg).read_bytes()[:-4])
    with pytest.raises(yolo_io.WeightsSizeError, match=r"s\\xfe\.weights"):
        yolo_io.load(short, os.fsencode(cfg))
    assert not yolo_io.diagnose(short, cfg).ok
    with pytest.raises(TypeError, match="weights must be a path"):
        yolo_io.load(3, cfg)  # type: ignore[arg-type]


@pytest.mark.parametrize("command", ["inspect", "check", "doctor", "partial", "convert",
                                     "export", "missing"])
def test_cli_takes_any_file_name(pair: tuple[str, str], tmp_path: Path, command: str) -> None:
    """Each command, run on non-UTF-8 names: never exit 70; names print as their bytes
    on stdout and as \\xNN in errors."""
    cfg, weights = pair
    args: list[str] = {
        "inspect": ["inspect", cfg, weights, "--json"], "check": ["check", cfg, weights],
        "doctor": ["doctor", cfg, weights, "--no-progress"],
        "partial": ["partial", cfg, weights, "2", "-o", named(tmp_path, b"p\xfd.weights")],
        "convert": ["convert", cfg, weights, "-o", named(tmp_path, b"c\xfd.safetensors")],
        "export": ["export", cfg, weights, "-o", named(tmp_path, b"e\xfd.onnx")],
        "missing": ["check", cfg, named(tmp_path, b"n\xfd.weights"), "--json"],
    }[command]
    if command == "export":
        pytest.importorskip("onnx")
    proc = subprocess.run([sys.executable, "-m", "yolo_io", *map(os.fsencode, args)],
                          capture_output=True, timeout=120, env=ENV, check=False)
    assert proc.returncode == (3 if command == "missing" else 0), proc.stderr
    assert b"Traceback" not in proc.stderr and proc.returncode != 70
    if command == "missing":
        doc = json.loads(proc.stdout)
        assert doc["exit_code"] == 3 and "n\\xfd.weights: No such file" in doc["error"]
        assert b"n\\xfd.weights: No such file" in proc.stderr
    elif command == "inspect":
        assert json.loads(proc.stdout)["cfg"] == cfg
    else:
        shown = {"check": cfg, "doctor": weights}.get(command, args[-1])
        assert os.fsencode(shown) in proc.stdout
    if command in ("partial", "convert", "export"):
        assert os.path.getsize(args[-1]) > 0


# -- the cfg: a path or text (item 14) ------------------------------------------------


def test_an_existing_file_whose_name_starts_with_a_bracket_is_a_path(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch
                                                                     ) -> None:
    monkeypatch.chdir(tmp_path)
    Path("[net].cfg").write_text(TINY_CFG)
    weights = write_weights("w.weights", Path("[net].cfg"), seed=1)
    config = yolo_io.parse_cfg("[net].cfg")
    assert config.path == "[net].cfg"
    with yolo_io.load(str(weights), "[net].cfg") as net:
        assert net.config.path == "[net].cfg"
    assert yolo_io.diagnose(str(weights), "[net].cfg").ok
    proc = subprocess.run([sys.executable, "-m", "yolo_io", "check", "[net].cfg", "w.weights"],
                          capture_output=True, text=True, timeout=120, env=ENV, check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("ok: w.weights fits [net].cfg"), proc
    # a missing one is a missing file, not a cfg with a bad line
    with pytest.raises(FileNotFoundError):
        yolo_io.parse_cfg("[other].cfg")
    with pytest.raises(FileNotFoundError):
        yolo_io.parse_cfg("[net]")


def test_text_is_a_str_with_a_newline(tmp_path: Path) -> None:
    assert yolo_io.parse_cfg(TINY_CFG).path == "<string>"
    assert yolo_io.parse_cfg("\ufeff" + TINY_CFG).path == "<string>"
    with pytest.raises(TypeError, match="cfg text must be a str"):
        yolo_io.parse_cfg(TINY_CFG.encode())
    # a file whose name has a newline is still a file
    odd = tmp_path / "a\nb.cfg"
    odd.write_text(TINY_CFG)
    assert yolo_io.parse_cfg(str(odd)).path == str(odd)
    # bytes are always a file name, a newline in it too
    assert yolo_io.parse_cfg(os.fsencode(odd)).path == str(odd)
    weights = write_weights(tmp_path / "w.weights", odd, seed=1)
    with yolo_io.load(weights, os.fsencode(odd)) as net:
        assert net.config.path == str(odd)


def test_onnx_external_data_needs_a_utf8_name(pair: tuple[str, str], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """ONNX names its external data file in a UTF-8 string: a model over 2 GB
    with another name is refused before anything is written."""
    pytest.importorskip("onnx")
    import yolo_io.onnx

    monkeypatch.setattr(yolo_io._export.onnx, "_EXTERNAL_DATA_LIMIT", 0)
    monkeypatch.setattr(yolo_io._export.onnx, "_EXTERNAL_TENSOR_MIN", 0)
    before = sorted(os.listdir(tmp_path))
    with yolo_io.load(pair[1], pair[0]) as net:
        with pytest.raises(ValueError, match=r"o\\xfd\.onnx\.data, which the model names in UTF-8"):
            yolo_io.onnx.export(named(tmp_path, b"o\xfd.onnx"), net)
        assert sorted(os.listdir(tmp_path)) == before
        assert yolo_io.onnx.export(tmp_path / "o.onnx", net).with_name("o.onnx.data").is_file()

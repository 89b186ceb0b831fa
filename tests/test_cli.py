"""The ``yolo-io`` command, driven as a subprocess: outputs, exit codes, errors,
the progress bar under a pseudo-terminal, the plot, and the demo."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CFG, yolo_io_on_a_terminal

import yolo_io
from yolo_io.testing import write_weights

pytestmark = pytest.mark.filterwarnings("ignore::yolo_io.CfgWarning")

ENV = {**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"}


def run(*args: object, code: int | None = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "yolo_io", *map(str, args)],
                          capture_output=True, text=True, timeout=120, env=ENV,
                          check=False)
    if code is not None:
        assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("yolo-io: error: "), proc.stderr
    return lines[0]


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    return cfg, write_weights(tmp_path / "tiny.weights", cfg, seed=3, realistic=True)


# -- conventions ----------------------------------------------------------------


def test_help_lists_commands_and_exit_codes() -> None:
    out = run("--help").stdout
    for word in ("inspect", "check", "doctor", "demo", "Exit codes", "--debug"):
        assert word in out
    for command in ("inspect", "check", "doctor", "demo"):
        assert "usage: yolo-io " + command in run(command, "--help").stdout


def test_the_parser_of_one_command_helps_as_the_whole_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """main() builds only the invoked command's parser (the others are listed,
    empty): the top-level help and each command's help and usage errors are
    the same as with every command built."""
    import argparse

    from yolo_io import _cli

    monkeypatch.setenv("COLUMNS", "93")

    def command(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        assert list(action.choices) == list(_cli._COMMANDS)
        return action.choices[name]

    whole = _cli._parser()
    for name in _cli._COMMANDS:
        one = _cli._parser(name)
        assert one.format_help() == whole.format_help()
        assert command(one, name).format_help() == command(whole, name).format_help()
        assert command(one, name).format_usage() == command(whole, name).format_usage()
    assert _cli._command_in(["--debug", "check", "a", "b"]) == "check"
    assert _cli._command_in(["-h", "check-data"]) == "check-data"
    assert _cli._command_in(["chekc", "check"]) is None  # a usage error, from the whole parser
    assert _cli._command_in(["--", "check"]) is None
    assert _cli._command_in(["--version"]) is None


def test_help_is_as_wide_as_the_terminal_says() -> None:
    """The formatter's width is shutil.get_terminal_size()'s (without shutil)."""
    narrow = subprocess.run([sys.executable, "-m", "yolo_io", "check", "--help"],
                            capture_output=True, text=True, timeout=120, check=True,
                            env={**ENV, "COLUMNS": "50"}).stdout
    wide = subprocess.run([sys.executable, "-m", "yolo_io", "check", "--help"],
                          capture_output=True, text=True, timeout=120, check=True,
                          env={**ENV, "COLUMNS": "200"}).stdout
    assert max(map(len, narrow.splitlines())) <= 48 < max(map(len, wide.splitlines()))
    import shutil

    from yolo_io._cli.common import _columns

    assert _columns() == shutil.get_terminal_size().columns


def test_version() -> None:
    assert run("--version").stdout.strip() == f"yolo-io {yolo_io.__version__}"


def test_usage_errors_exit_2() -> None:
    assert "usage:" in run("frobnicate", code=2).stderr
    assert "usage:" in run("check", "only-one.cfg", code=2).stderr
    assert "usage:" in run(code=2).stderr


def test_console_script() -> None:
    script = Path(sys.executable).with_name("yolo-io")
    if not script.exists():
        pytest.skip(f"no console script beside {sys.executable}")
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, env=ENV,
                          timeout=60, check=True)
    assert proc.stdout.startswith("yolo-io ")


def test_missing_file_exits_3_with_one_line(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    cfg, _ = tiny
    for args in (("inspect", tmp_path / "no.cfg"), ("check", cfg, tmp_path / "no.weights"),
                 ("doctor", cfg, tmp_path / "no.weights")):
        line = one_line_error(run(*args, code=3))
        assert "no." in line and "No such file" in line


def test_directory_exits_3(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    cfg, _ = tiny
    one_line_error(run("check", cfg, tmp_path, code=3))


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    proc = run("inspect", tmp_path / "no.cfg", "--debug", code=None)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_bad_cfg_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(TINY_CFG.replace("[upsample]", "[upsampel]"))
    line = one_line_error(run("inspect", cfg, code=1))
    assert f"{cfg}:" in line and "upsampel" in line


# -- inspect --------------------------------------------------------------------


def test_inspect_table(tiny: tuple[Path, Path]) -> None:
    cfg, weights = tiny
    config = yolo_io.parse_cfg(cfg)
    out = run("inspect", cfg, weights).stdout.splitlines()
    assert out[0] == f"{cfg}: {len(config)} layers, input 3x8x8"
    assert out[1] == f"{weights}: version 0.2.5, seen 0, 20-byte header"
    assert out[2].split() == ["#", "type", "line", "input", "output", "act", "details",
                              "params", "bytes", "offset"]
    rows = out[3:-1]
    assert len(rows) == len(config)
    net = yolo_io.load(weights, cfg)
    first = rows[0].split()
    layer = config[0]
    assert first == ["0", "convolutional", str(layer.line), "3x8x8", "4x8x8", "leaky",
                     "4", "3x3/1", "bn", f"{layer.param_count:,}",
                     f"{4 * layer.param_count:,}", f"{net[0].offset:,}"]
    assert "layers=1 group 1/2" in rows[2]
    assert out[-1] == (f"total: {len(config)} layers, {config.param_count:,} parameters, "
                       f"{4 * config.param_count:,} bytes of data; a .weights file of "
                       f"{config.expected_size():,} bytes")


def test_inspect_json_matches_the_api(tiny: tuple[Path, Path]) -> None:
    cfg, weights = tiny
    doc = json.loads(run("inspect", cfg, weights, "--json").stdout)
    net = yolo_io.load(weights, cfg)
    assert doc["header"] == {"version": [0, 2, 5], "seen": 0, "size": 20, "transpose": False}
    assert len(doc["layers"]) == len(net)
    for row, layer in zip(doc["layers"], net, strict=True):
        assert row["index"] == layer.index and row["type"] == layer.type
        assert row["line"] == layer.line
        assert tuple(row["output_shape"]) == layer.output_shape
        assert row["param_count"] == layer.param_count and row["offset"] == layer.offset
        assert {k: tuple(v) for k, v in row["params"].items()} == dict(layer.param_shapes)
        assert row["activation"] == layer.activation
    assert doc["layers"][2]["attrs"]["group_id"] == 1
    assert doc["totals"]["expected_size"] == os.path.getsize(weights)


def test_inspect_cfg_only(tiny: tuple[Path, Path]) -> None:
    cfg, _ = tiny
    doc = json.loads(run("inspect", cfg, "--json").stdout)
    assert doc["weights"] is None and "offset" not in doc["layers"][0]
    assert "offset" not in run("inspect", cfg).stdout


def test_inspect_mismatch_points_to_check(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    cfg, _ = tiny
    other = tmp_path / "other.cfg"
    other.write_text(TINY_CFG.replace("filters=4\n", "filters=6\n", 1))
    weights = write_weights(tmp_path / "other.weights", other)
    line = one_line_error(run("inspect", cfg, weights, code=1))
    assert f"yolo-io check {cfg} {weights}" in line


def test_inspect_partial(corpus: Path, tmp_path: Path) -> None:
    weights = write_weights(tmp_path / "yolov4.conv.137", corpus / "yolov4.cfg", layers=137,
                            sparse=True)
    one_line_error(run("inspect", corpus / "yolov4.cfg", weights, code=1))
    out = run("inspect", corpus / "yolov4.cfg", weights, "--partial").stdout
    assert "partial: 137 layers" in out


# -- check ----------------------------------------------------------------------


def test_check_ok(tiny: tuple[Path, Path]) -> None:
    cfg, weights = tiny
    assert run("check", cfg, weights).stdout.startswith("ok: ")
    assert json.loads(run("check", cfg, weights, "--json").stdout)["ok"] is True


def test_check_yolov4_trained_for_3_classes(corpus: Path, tmp_path: Path) -> None:
    stock = corpus / "yolov4.cfg"
    text = stock.read_text().replace("filters=255", "filters=24").replace("classes=80",
                                                                          "classes=3")
    (tmp_path / "three.cfg").write_text(text)
    weights = write_weights(tmp_path / "custom.weights", tmp_path / "three.cfg", sparse=True)
    proc = run("check", stock, weights, code=1)
    out = proc.stdout
    assert proc.stderr == ""
    assert "error [class-count]" in out.splitlines()[1]
    for line in (961, 1049, 1137):
        assert f"{stock}:{line}: filters=255  ->  filters=24" in out
    for line in (968, 1056, 1144):
        assert f"{stock}:{line}: classes=80  ->  classes=3" in out
    doc = json.loads(run("check", stock, weights, "--json", code=1).stdout)
    assert doc["ok"] is False
    fix = doc["findings"][0]
    assert fix["kind"] == "class-count"
    assert [(e["line"], e["new"]) for e in fix["edits"]] == [
        (961, "filters=24"), (968, "classes=3"), (1049, "filters=24"), (1056, "classes=3"),
        (1137, "filters=24"), (1144, "classes=3")]


def test_check_yolov2_region(corpus: Path, tmp_path: Path) -> None:
    stock = corpus / "AlexeyAB-yolov2.cfg"
    text = stock.read_text().replace("filters=425", "filters=125").replace("classes=80",
                                                                           "classes=20")
    (tmp_path / "voc.cfg").write_text(text)
    weights = write_weights(tmp_path / "voc.weights", tmp_path / "voc.cfg", sparse=True)
    out = run("check", stock, weights, code=1).stdout
    assert "[region]" in out
    assert f"{stock}:237: filters=425  ->  filters=125" in out
    assert f"{stock}:244: classes=80  ->  classes=20" in out


def test_check_data_and_names(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    cfg, weights = tiny
    names = tmp_path / "obj.names"
    names.write_text("a\nb\n")
    data = tmp_path / "obj.data"
    data.write_text(f"classes=2\nnames={names}\n")
    out = run("check", cfg, weights, "--data", data, code=1).stdout
    assert "[data-classes]" in out and "[names-count]" in out
    names.write_text("a\n")
    data.write_text(f"classes=1\nnames={names}\n")
    run("check", cfg, weights, "--data", data, "--names", names)


def test_check_not_weights_and_swapped(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    cfg, weights = tiny
    page = tmp_path / "page.weights"
    page.write_text("<html><body>404</body></html>")
    assert "[text-file]" in run("check", cfg, page, code=1).stdout
    out = run("check", weights, cfg, code=1).stdout
    assert "[swapped-arguments]" in out and f"yolo-io check {cfg} {weights}" in out


# -- doctor ---------------------------------------------------------------------


def _poison(weights: Path, cfg: Path, layer: int, name: str, index: int, value: float) -> None:
    net = yolo_io.load(weights, cfg)
    spec = next(s for s in net[layer].param_specs if s.name == name)
    where = net[layer].offset + 4 * (spec.offset + index)
    net.close()
    with weights.open("r+b") as f:
        f.seek(where)
        f.write(struct.pack("<f", value))


def test_doctor_clean_and_broken(tiny: tuple[Path, Path]) -> None:
    cfg, weights = tiny
    out = run("doctor", cfg, weights).stdout
    assert "no problems found" in out
    _poison(weights, cfg, 3, "weights", 5, float("nan"))
    proc = run("doctor", cfg, weights, code=1)
    assert "[non-finite]" in proc.stdout and "layer 3" in proc.stdout
    doc = json.loads(run("doctor", cfg, weights, "--json", code=1).stdout)
    assert doc["ok"] is False
    assert [(f["kind"], f["layer"]["index"]) for f in doc["findings"]] == [("non-finite", 3)]


def test_doctor_progress_only_on_a_terminal(tiny: tuple[Path, Path]) -> None:
    pytest.importorskip("tqdm")
    cfg, weights = tiny
    assert run("doctor", cfg, weights).stderr == ""  # stderr is a pipe: no bar
    stdout, bar = yolo_io_on_a_terminal("doctor", cfg, weights)
    assert "doctor" in bar and "100%" in bar, bar
    assert "no problems found" in stdout
    no_bar = subprocess.Popen([sys.executable, "-m", "yolo_io", "doctor", "--no-progress",
                               str(cfg), str(weights)], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    assert no_bar.communicate(timeout=60)[1] == b""


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_doctor_plot(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    cfg, weights = tiny
    png = tmp_path / "out.png"
    out = run("doctor", cfg, weights, "--plot", png).stdout
    assert f"plot: {png}" in out
    data = png.read_bytes()
    width, height = _png_size(data)
    assert len(data) > 10_000 and width >= 600 and height >= 400


def test_doctor_plot_without_matplotlib(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    cfg, weights = tiny
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "matplotlib.py").write_text("raise ImportError('blocked for a test')\n")
    env = {**ENV, "PYTHONPATH": str(blocker)}
    proc = subprocess.run([sys.executable, "-m", "yolo_io", "doctor", str(cfg), str(weights),
                           "--plot", str(tmp_path / "x.png")], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    if proc.returncode == 0:
        pytest.fail("a blocked matplotlib still plotted")
    assert proc.returncode == 4, proc.stderr
    assert "yolo_io[plot]" in one_line_error(proc)
    assert not (tmp_path / "x.png").exists()


# -- demo -----------------------------------------------------------------------


def test_demo(tmp_path: Path) -> None:
    out = run("demo").stdout
    for text in ("$ yolo-io inspect", "$ yolo-io check", "ok: ", "[class-count]",
                 "filters=21  ->  filters=24", "classes=2  ->  classes=3", "Fused export",
                 "demo-fused-hwio.npz"):
        assert text in out, text
    folder = out.split("wrote ", 1)[1].split("/demo.cfg", 1)[0]
    assert not Path(folder).exists()  # the temporary folder is gone


def test_demo_dir_keeps_working_files(tmp_path: Path) -> None:
    run("demo", "--dir", tmp_path / "d")
    cfg, weights = tmp_path / "d" / "demo.cfg", tmp_path / "d" / "demo.weights"
    net = yolo_io.load(weights, cfg)
    fused = np.load(tmp_path / "d" / "demo-fused-hwio.npz")
    w, b = net[0].fused(layout="HWIO")
    np.testing.assert_array_equal(fused["layer0.weight"], w)
    np.testing.assert_array_equal(fused["layer0.bias"], b)



# -- every diagnosis, from the corpus plus yolo_io.testing, through the CLI --------


def _yolov4_weights(corpus: Path, tmp_path: Path, **kw: object) -> Path:
    return write_weights(tmp_path / "model.weights", corpus / "yolov4.cfg", sparse=True,
                         **kw)  # type: ignore[arg-type]


def _set_minor(path: Path, minor: int) -> Path:
    with path.open("r+b") as f:
        f.seek(4)
        f.write(struct.pack("<i", minor))
    return path


def _truncate(path: Path, size: int) -> Path:
    with path.open("r+b") as f:
        f.truncate(size)
    return path


SCENARIOS = {
    # name: (make weights, extra args, finding kind, text in the output)
    "short": (lambda c, t: _truncate(_yolov4_weights(c, t), 200_000_000), (), "size-short",
              "layer 155 (convolutional, {cfg} line 1093) would cross the end of the file"),
    "long": (lambda c, t: _truncate(_yolov4_weights(c, t), 257717640 + 1000), (), "size-long",
             "1000 bytes (250 floats) trail the last layer's data"),
    "partial": (lambda c, t: _yolov4_weights(c, t, layers=137), (), "partial-file",
                ("a partial file with the first 137 layers (the size of the official "
                 "yolov4.conv.137)")),
    "seen-32bit": (lambda c, t: _set_minor(_yolov4_weights(c, t, version=(0, 1, 0)), 2), (),
                   "header-seen-32bit", "32-bit `seen`"),
    "seen-64bit": (lambda c, t: _set_minor(_yolov4_weights(c, t), 1), (), "header-seen-64bit",
                   "written with a 64-bit `seen`"),
    "html": (lambda c, t: _text(t, "<!DOCTYPE html>\n<html><head><title>Sign in</title>"),
             (), "text-file", "an HTML/XML page"),
    "git-lfs": (lambda c, t: _text(t, "version https://git-lfs.github.com/spec/v1\n"
                                      "oid sha256:4a\nsize 257717640\n"), (), "text-file",
                "git lfs pull"),
    "cfg-as-weights": (lambda c, t: _text(t, (c / "yolov4.cfg").read_text()), (), "text-file",
                       "a .cfg file?"),
    "pt-archive": (lambda c, t: _zipped(t), (), "archive", "a ZIP archive"),
    "empty": (lambda c, t: _text(t, ""), (), "empty-file", "it is empty"),
    "published": (lambda c, t: write_weights(t / "model.weights", c / "yolov4-tiny.cfg",
                                             sparse=True), (), "published-model",
                  "the official yolov4-tiny.weights (YOLOv4-tiny, COCO, 80 classes"),
    "data-names": (lambda c, t: _yolov4_weights(c, t), ("--data", "{tmp}/obj.data"),
                   "data-classes", "obj.data:1 says classes=3"),
}


def _text(tmp_path: Path, text: str) -> Path:
    (tmp_path / "model.weights").write_text(text)
    return tmp_path / "model.weights"


def _zipped(tmp_path: Path) -> Path:
    import zipfile

    with zipfile.ZipFile(tmp_path / "model.weights", "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    return tmp_path / "model.weights"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_check_diagnoses(corpus: Path, tmp_path: Path, name: str) -> None:
    make, extra, kind, text = SCENARIOS[name]
    cfg = corpus / "yolov4.cfg"
    weights = make(corpus, tmp_path)
    (tmp_path / "obj.names").write_text("a\nb\nc\n")
    (tmp_path / "obj.data").write_text(f"classes=3\nnames={tmp_path}/obj.names\n")
    args = [a.format(tmp=tmp_path) for a in extra]
    out = run("check", cfg, weights, *args, code=1).stdout
    assert f"error [{kind}]" in out.splitlines()[1], out
    assert text.format(cfg=cfg) in out
    doc = json.loads(run("check", cfg, weights, *args, "--json", code=1).stdout)
    assert doc["findings"][0]["kind"] == kind


# -- what an adversarial review found -----------------------------------------------


def test_swapped_arguments_name_the_cli_order(tiny: tuple[Path, Path]) -> None:
    cfg, weights = tiny
    for command in ("inspect", "doctor"):
        line = one_line_error(run(command, weights, cfg, code=1))
        assert f"the cfg comes first: yolo-io {command} {cfg} {weights}" in line


def test_json_errors_are_a_document(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    cfg, _ = tiny
    proc = run("check", cfg, tmp_path / "none.weights", "--json", code=3)
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == 3 and "No such file" in doc["error"]


def test_non_utf8_file_name_is_a_file_name(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """Any encoding is fine (tests/test_paths.py has each command); a missing
    one is shown with its bytes as \\xNN."""
    cfg, _ = tiny
    name = os.fsdecode(bytes(tmp_path) + b"/w\xfe.weights")
    line = one_line_error(run("check", cfg, name, code=3))
    assert line.endswith("w\\xfe.weights: No such file or directory")


def test_long_error_lines_are_cut(tmp_path: Path) -> None:
    cfg = tmp_path / "cr.cfg"
    cfg.write_bytes(b"[net]\rwidth=8\r" + b"x" * 20_000)  # CR-only: one long line
    line = one_line_error(run("inspect", cfg, code=1))
    # Cut by the core, which quotes at most 200 bytes of a cfg line, or else
    # by the command, which cuts any message line past 1,000 characters.
    assert len(line) < 1200 and ("more bytes" in line or "more characters" in line)


def test_demo_does_not_overwrite(tmp_path: Path) -> None:
    (tmp_path / "demo.cfg").write_text("mine")
    line = one_line_error(run("demo", "--dir", tmp_path, code=3))
    assert "does not overwrite" in line and (tmp_path / "demo.cfg").read_text() == "mine"


def test_data_classes_fix_points_at_the_data_file(corpus: Path, tmp_path: Path) -> None:
    cfg = corpus / "yolov4-tiny.cfg"
    weights = write_weights(tmp_path / "w.weights", cfg, sparse=True)
    data = tmp_path / "a.data"
    data.write_text("classes=3 # three\n")
    doc = json.loads(run("check", cfg, weights, "--data", data, "--json", code=1).stdout)
    (finding,) = doc["findings"]
    assert finding["kind"] == "data-classes" and finding["edits"] == []
    assert f"set classes=80 at {data}:1" in finding["fix"]


def test_check_corpus_swapped_anchors_and_partial(corpus: Path, tmp_path: Path) -> None:
    cfg = corpus / "yolov4.cfg"
    weights = _yolov4_weights(corpus, tmp_path)
    out = run("check", weights, cfg, code=1).stdout
    assert out.splitlines()[1].startswith("error [swapped-arguments]")
    assert f"yolo-io check {cfg} {weights}" in out
    text = cfg.read_text().replace("filters=255", "filters=170")
    for mask in ("0,1,2", "3,4,5", "6,7,8"):
        text = text.replace(f"mask = {mask}", f"mask = {mask[:3]}")
    two = write_weights(tmp_path / "two.weights", text, sparse=True)
    out = run("check", cfg, two, code=1).stdout
    assert "error [anchors-per-head]" in out.splitlines()[1]
    assert f"{cfg}:966: mask = 0,1,2  ->  mask=0,1" in out
    backbone = write_weights(tmp_path / "yolov4.conv.137", cfg, layers=137, sparse=True)
    proc = run("check", cfg, backbone, "--partial")
    assert proc.stdout.startswith("ok: ") and "[partial-file]" in proc.stdout


# -- partial and convert --------------------------------------------------------------


def test_partial_command(corpus: Path, tmp_path: Path) -> None:
    cfg = corpus / "yolov4.cfg"
    weights = write_weights(tmp_path / "yolov4.weights", cfg, seed=1, seen=77)
    out = tmp_path / "yolov4.conv.137"
    text = run("partial", cfg, weights, 137, "-o", out).stdout
    assert f"wrote {out}" in text and "version 0.2.5, seen 0" in text
    assert out.stat().st_size == 170038676
    assert out.read_bytes()[20:] == weights.read_bytes()[20:170038676]
    line = one_line_error(run("partial", cfg, weights, 999, "-o", out, code=2))
    assert "0..162" in line


def test_convert_weights_and_npz(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    cfg, weights = tiny
    old = tmp_path / "old.weights"
    run("convert", cfg, weights, "-o", old, "--version", "0.1.0", "--seen", "3")
    net = yolo_io.load(old, cfg)
    assert net.header == (0, 1, 0, 3, 16, False)
    assert old.read_bytes()[16:] == weights.read_bytes()[20:]
    npz = tmp_path / "m.npz"
    run("convert", cfg, weights, "-o", npz, "--fuse", "--layout", "HWIO", "--dtype", "float16")
    got = np.load(npz)
    want = yolo_io.load(weights, cfg).state_dict(fuse=True, layout="HWIO")
    assert sorted(got.files) == sorted(want)
    for key, array in want.items():
        assert got[key].dtype == (np.float16 if array.dtype.kind == "f" else array.dtype)
        np.testing.assert_array_equal(got[key], array.astype(got[key].dtype))
    line = one_line_error(run("convert", cfg, weights, "-o", tmp_path / "m.pt", code=2))
    assert "suffix" in line


def test_convert_fused_darknet_model(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    cfg, weights = tiny
    out = tmp_path / "fused.weights"
    text = run("convert", cfg, weights, "-o", out, "--fuse").stdout
    fused_cfg = tmp_path / "fused.cfg"
    assert f"wrote {fused_cfg}" in text
    net, fused = yolo_io.load(weights, cfg), yolo_io.load(out, fused_cfg)
    for a, b in zip(net, fused, strict=True):
        if "scales" in a.params:
            w, bias = a.fused()
            np.testing.assert_array_equal(b.params["weights"], w)
            np.testing.assert_array_equal(b.params["biases"], bias)


def test_convert_safetensors(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    cfg, weights = tiny
    raw = tmp_path / "m.safetensors"
    run("convert", cfg, weights, "-o", raw)
    back = tmp_path / "back.weights"
    yolo_io.save(back, yolo_io.load(raw))  # a raw export needs no cfg
    assert back.read_bytes() == weights.read_bytes()
    named = tmp_path / "n.safetensors"
    run("convert", cfg, weights, "-o", named, "--naming", "ultralytics", "--fuse")
    line = one_line_error(run("convert", cfg, weights, "-o", tmp_path / "x.npz", "--dtype",
                              "bfloat16", code=2))
    assert ".safetensors" in line
    with pytest.raises(yolo_io.FormatError, match="not a raw"):
        yolo_io.load(named)


def test_outputs_that_are_inputs_and_bad_options(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    cfg, weights = tiny
    before = weights.read_bytes(), cfg.read_bytes()
    line = one_line_error(run("partial", cfg, weights, 2, "-o", weights, code=2))
    assert "is the input WEIGHTS" in line
    line = one_line_error(run("convert", cfg, weights, "-o", tmp_path / "f.weights", "--fuse",
                              "--cfg-output", cfg, code=2))
    assert "is the input CFG" in line
    assert (weights.read_bytes(), cfg.read_bytes()) == before
    one_line_error(run("convert", cfg, weights, "-o", tmp_path / "x.weights", "--seen", "-3",
                       code=2))
    line = one_line_error(run("convert", cfg, weights, "-o", tmp_path / "x.weights", "--version",
                              "0.1.0", "--seen", str(2**40), code=2))
    assert "32-bit `seen`" in line
    line = one_line_error(run("convert", cfg, weights, "-o", tmp_path / "x.weights", "--version",
                              "\u00b2.2.5", code=2))  # a superscript two is no ASCII digit
    assert "--version must be MAJOR.MINOR.REVISION" in line and "invalid literal" not in line
    one_line_error(run("convert", cfg, weights, "-o", tmp_path / "x.weights", "--cfg-output",
                       tmp_path / "x.cfg", code=2))


# -- usage errors with --json, and the CLI's own spellings ----------------------------------


@pytest.mark.parametrize("args", [
    ("inspect", "--json"),  # a missing argument
    ("inspect", "CFG", "--json", "--no-such-option"),  # an unknown option
    ("check", "CFG", "WEIGHTS", "--js", "--data"),  # an option without its value
    ("doctor", "CFG", "--json"),
    ("verify", "CFG", "WEIGHTS", "--json", "--atol", "small"),  # a bad value
    ("partial", "CFG", "WEIGHTS", "N", "-o", "OUT", "--json"),  # --json where none is
    ("check", "CFG", "WEIGHTS", "--json=1"),  # a value given to the flag
], ids=["missing", "unknown", "no-value", "doctor", "bad-value", "no-json-option",
        "json-value"])
def test_json_usage_errors_are_a_document(tiny: tuple[Path, Path], args: tuple[str, ...]
                                          ) -> None:
    cfg, weights = tiny
    given = {"CFG": cfg, "WEIGHTS": weights, "N": 1, "OUT": cfg.with_name("out.weights")}
    proc = run(*(given.get(a, a) for a in args), code=2)
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == 2 and doc["error"] in proc.stderr
    assert proc.stderr.startswith("usage: yolo-io ")
    assert not cfg.with_name("out.weights").exists()
    # without --json, a usage error leaves stdout empty
    plain = run(*(given.get(a, a) for a in args if a not in ("--json", "--js", "--json=1")), code=None)
    assert plain.stdout == "" or plain.returncode == 0


def test_inspect_of_a_weights_file_alone_says_the_cfg_comes_first(
        tiny: tuple[Path, Path]) -> None:
    _, weights = tiny
    line = one_line_error(run("inspect", weights, code=2))
    assert f"{weights} is a Darknet .weights file, not a cfg; the cfg comes first: " \
           f"yolo-io inspect CFG [WEIGHTS]" in line
    assert "is it a cfg?" not in line


def test_messages_name_the_cli_flags(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """The library says partial=True; shown by the CLI, the flag is --partial."""
    cfg, weights = tiny
    backbone = write_weights(tmp_path / "backbone.weights", cfg, layers=2)
    for command in ("inspect", "doctor", "convert"):
        extra = ("-o", tmp_path / "x.npz") if command == "convert" else ()
        line = one_line_error(run(command, cfg, backbone, *extra, code=1))
        assert "pass --partial" in line and "partial=True" not in line, line
    text = run("check", cfg, backbone, code=1).stdout
    assert "load it with --partial;" in text and "partial=True" not in text
    doc = json.loads(run("check", cfg, backbone, "--json", code=1).stdout)
    assert "partial=True" not in json.dumps(doc)
    assert "(loaded with --partial)" in run("check", cfg, backbone, "--partial").stdout
    out = run("partial", cfg, weights, 2, "-o", tmp_path / "p.weights").stdout
    assert out.rstrip().endswith("load it with --partial")
    line = one_line_error(run("convert", cfg, weights, "-o", tmp_path / "x.weights", "--seen",
                              2**64, code=2))
    assert "--seen must be in 0..2**64-1" in line
    line = one_line_error(run("convert", cfg, weights, "-o", tmp_path / "x.npz", "--layout",
                              "XYZ", code=2))
    assert "--layout must be 'OIHW'" in line
    # the library's own messages keep the Python spelling
    with pytest.raises(yolo_io.WeightsSizeError, match="pass partial=True"):
        yolo_io.load(backbone, cfg)


def test_messages_name_the_file_and_the_fault(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """Review of issue 22: a folder given as --data was named by its descriptor
    ("3: Is a directory"), an unreadable --names had no name, too many
    detections were "at least 1", and an empty output name was the folder
    "." (export) or nothing at all (doctor --plot "", which exited 0)."""
    cfg, weights = tiny
    line = one_line_error(run("check", cfg, weights, "--data", tmp_path, code=3))
    assert f"{tmp_path}: Is a directory" in line
    if os.path.exists("/proc/self/mem"):
        line = one_line_error(run("check", cfg, weights, "--names", "/proc/self/mem", code=3))
        assert "/proc/self/mem" in line
    pytest.importorskip("onnx")
    line = one_line_error(run("export", cfg, weights, "-o", tmp_path / "m.onnx", "--outputs",
                              "nms", "--max-detections", "99999999999999999999", code=2))
    assert "is too large" in line and "at least 1" not in line
    line = one_line_error(run("export", cfg, weights, "-o", "", code=3))
    assert "an empty path is no file name" in line
    pytest.importorskip("matplotlib")
    line = one_line_error(run("doctor", cfg, weights, "--plot", "", code=3))
    assert "an empty path is no file name" in line

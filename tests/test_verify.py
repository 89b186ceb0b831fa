"""``yolo-io verify`` and ``yolo-io export``: the ONNX export checked against
OpenCV's Darknet importer (an implementation of darknet's forward pass we did
not write), layer by layer, on realistic random weights; a tampered model is
caught at the tampered layer; OpenCV's known departures from darknet are
notes, not failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_CFG, yolo_io_on_a_terminal

import yolo_io
import yolo_io.onnx
from yolo_io._export.verify import (
    TOLERANCES,
    Verification,
    darknet_image,
    opencv_layer_names,
    verify,
)
from yolo_io._lowering.image import letterbox, resize
from yolo_io.testing import write_weights

cv2 = pytest.importorskip("cv2", reason="opencv-python-headless<5 is not installed")
if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromDarknet"):  # pragma: no cover
    pytest.skip("this OpenCV has no Darknet importer (removed in 5.x)", allow_module_level=True)
onnx = pytest.importorskip("onnx", reason="the onnx package is not installed")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")

pytestmark = pytest.mark.filterwarnings("ignore::yolo_io.CfgWarning")

ENV = {**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"}


def run(*args: object, code: int | None = 0, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "yolo_io", *map(str, args)],
                          capture_output=True, text=True, timeout=120, env=env or ENV,
                          check=False)
    if code is not None:
        assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def call(capsys: pytest.CaptureFixture[str], *args: object, code: int = 0) -> tuple[str, str]:
    """``yolo-io ARGS`` in this process (faster than a subprocess): (stdout, stderr)."""
    from yolo_io._cli import main

    try:
        got = main([str(a) for a in args])
    except SystemExit as exit_:  # argparse: --help, usage errors
        got = exit_.code
    out, err = capsys.readouterr()
    assert got == code, (got, out, err)
    return out, err


def one_line_error(proc: subprocess.CompletedProcess[str] | tuple[str, str]) -> str:
    stderr = proc[1] if isinstance(proc, tuple) else proc.stderr
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("yolo-io: error: "), stderr
    return lines[0]


def corpus_cfg(name: str) -> Path:
    path = SHARED_CFG / name
    if not path.is_file():
        pytest.skip(f"the real-cfg corpus is not at {SHARED_CFG} (it lives beside the "
                    f"checkout in CI)")
    return path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """`yolo-io demo`'s 96x96 two-head model: fast enough for the CLI tests.
    Layers: 0 conv, 1 maxpool, 2 conv, 3 maxpool, 4 conv, 5 conv, 6 yolo, 7
    route, 8 upsample, 9 route, 10 conv, 11 yolo."""
    from yolo_io._cli.demo import demo_cfg

    folder = tmp_path_factory.mktemp("demo")
    cfg = folder / "demo.cfg"
    cfg.write_text(demo_cfg(2))
    return cfg, write_weights(folder / "demo.weights", cfg, seed=4, realistic=True)


@pytest.fixture(scope="module")
def yolov3_tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    cfg = corpus_cfg("yolov3-tiny.cfg")
    folder = tmp_path_factory.mktemp("yolov3-tiny")
    return cfg, write_weights(folder / "yolov3-tiny.weights", cfg, seed=5, realistic=True)


# A small cfg of our own: a [route] with groups over two inputs (darknet takes
# group 1 of each), which OpenCV's importer mishandles.
ROUTE_GROUPS_CFG = """\
[net]
width=16
height=16
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=4
size=3
stride=1
pad=1
activation=leaky

[route]
layers=-1,-2
groups=2
group_id=1

[convolutional]
batch_normalize=1
filters=8
size=1
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
size=1
stride=1
pad=1
filters=18
activation=linear

[yolo]
mask=0,1,2
anchors=1,1, 2,2, 3,3
classes=1
num=3
"""


# -- the API on corpus cfgs --------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("name", "head"), [
    ("yolov3-tiny.cfg", "decoded"), ("yolov4-tiny.cfg", "decoded"),
    ("yolov2-tiny.cfg", "region"), ("pjreddie-darknet19.cfg", "classifier")])
def test_verify_passes_on_corpus_cfgs(tmp_path: Path, name: str, head: str) -> None:
    cfg = corpus_cfg(name)
    weights = write_weights(tmp_path / "w.weights", cfg, seed=1, realistic=True)
    result = verify(weights, cfg)
    assert isinstance(result, Verification)
    assert result.ok, result.summary()
    config = yolo_io.parse_cfg(cfg)
    assert result.compared_until == len(config) == result.layer_count
    assert [c.index for c in result.layers] == list(range(len(config)))
    assert result.first_divergence is None
    assert (result.atol, result.rtol, result.dtype) == (*TOLERANCES["float32"], "float32")
    # measured: every layer within 2e-5 of the largest value (OpenCV with the
    # batch-norm epsilon compensated); the tolerance leaves a margin of 5x
    assert max(c.max_rel for c in result.layers) < 2e-5, result.summary()
    names = {o.name for o in result.outputs}
    if head == "decoded":
        assert names == {"boxes", "objectness", "scores"}
    elif head == "region":
        assert names == {f"head_{len(config) - 1}"}
        assert any("[region]" in n for n in result.notes)
        assert result.layers[-1].head_input and result.layers[-1].type == "region"
    else:
        assert names == {"output"}
    assert all(o.ok and o.compared > 0 for o in result.outputs)
    assert any("epsilon 1e-6" in n and "+ 9e-6" in n for n in result.notes)
    doc = json.loads(json.dumps(result.to_dict()))
    assert doc["ok"] is True and doc["first_divergence"] is None


def test_verify_float16_export(yolov3_tiny: tuple[Path, Path]) -> None:
    cfg, weights = yolov3_tiny
    result = verify(weights, cfg, dtype="float16")
    assert result.ok, result.summary()
    assert (result.atol, result.rtol) == TOLERANCES["float16"]
    worst = max(c.max_rel for c in result.layers)
    # float16 weights: measured 5e-4..1.3e-3 relative; far above float32's
    assert 1e-4 < worst < TOLERANCES["float16"][1], result.summary()
    assert "dtype='float16'" in result.notes[0]


def test_verify_a_given_model_reads_its_dtype(yolov3_tiny: tuple[Path, Path],
                                              tmp_path: Path) -> None:
    cfg, weights = yolov3_tiny
    with yolo_io.load(weights, cfg) as net:
        path = yolo_io.onnx.export(tmp_path / "m.onnx", net, dtype="float16")
    result = verify(weights, cfg, onnx_path=path)
    assert result.ok and result.dtype == "float16" and result.onnx == str(path)
    assert result.layers == []  # no layer_{i} outputs: the outputs only
    assert [o.name for o in result.outputs] == ["head_16", "head_23"]
    assert any("no layer_{i} outputs" in n for n in result.notes)


def test_opencv_layer_names_follow_the_replay_rule() -> None:
    """The mapping on yolov3-tiny, and on every corpus cfg OpenCV loads: every
    layer maps (up to the first one OpenCV is known to get wrong), and the
    OpenCV list has exactly as many layers as the rule says."""
    from yolo_io._export.verify import _expected_kinds, _opencv_limit

    cfg = corpus_cfg("yolov3-tiny.cfg")
    config = yolo_io.parse_cfg(cfg)
    names = list(cv2.dnn.readNetFromDarknet(str(cfg)).getLayerNames())
    mapped, count, why = opencv_layer_names(config, names)
    assert why is None and count == len(config)
    assert [mapped[i] for i in range(6)] == ["leaky_1", "pool_1", "leaky_3", "pool_3",
                                             "leaky_5", "pool_5"]
    assert (mapped[15], mapped[16], mapped[17], mapped[20]) == (
        "conv_15", "yolo_16", "identity_17", "concat_20")
    checked = 0
    for path in sorted(SHARED_CFG.glob("*.cfg")):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                config = yolo_io.parse_cfg(path)
            names = list(cv2.dnn.readNetFromDarknet(str(path)).getLayerNames())
        except (yolo_io.YoloIOError, cv2.error):
            continue  # yolo_io or OpenCV refuses it (tests/test_opencv_oracle.py)
        stop, _ = _opencv_limit(config)
        mapped, count, why = opencv_layer_names(config, names, stop)
        assert why is None and count == stop, (path.name, why)
        if stop == len(config):
            assert len(names) == sum(len(_expected_kinds(la)) for la in config), path.name
        checked += 1
    assert checked >= 25


# -- failures are caught and named ---------------------------------------------------


def _tamper(path: Path, layer: int, factor: float = 1.05) -> None:
    from onnx import numpy_helper

    model = onnx.load(str(path))
    hits = [t for t in model.graph.initializer if t.name.startswith(f"w{layer}__")]
    assert len(hits) == 1, [t.name for t in model.graph.initializer][:10]
    array = numpy_helper.to_array(hits[0]) * np.float32(factor)
    hits[0].CopyFrom(numpy_helper.from_array(array.astype(np.float32), hits[0].name))
    onnx.save(model, str(path))


def test_tampered_model_fails_at_the_tampered_layer(demo: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    cfg, weights = demo
    model = tmp_path / "model.onnx"
    out = run("export", cfg, weights, "-o", model, "--intermediates").stdout
    assert out.startswith(f"wrote {model} (") and "layer_{i} for every layer" in out
    _tamper(model, 2)
    proc = run("verify", cfg, weights, "--onnx", model, code=1)
    assert proc.stderr == ""  # not a terminal: no progress lines
    assert "first divergence: layer 2 [convolutional] (OpenCV leaky_3)" in proc.stdout
    assert "FAILED" in proc.stdout.splitlines()[-1] and "layer 2" in proc.stdout.splitlines()[-1]
    result = verify(weights, cfg, onnx_path=model)
    assert not result.ok and result.first_divergence is not None
    assert (result.first_divergence.index, result.first_divergence.opencv) == (2, "leaky_3")
    assert all(c.ok for c in result.layers[:2])
    assert {o.name: o.ok for o in result.outputs} == {"head_6": False, "head_11": False}


def test_tampered_model_without_intermediates_fails_on_its_outputs(
        yolov3_tiny: tuple[Path, Path], tmp_path: Path) -> None:
    cfg, weights = yolov3_tiny
    with yolo_io.load(weights, cfg) as net:
        model = yolo_io.onnx.export(tmp_path / "raw.onnx", net, dynamic_batch=False)
    _tamper(model, 22)  # the second head's conv
    result = verify(weights, cfg, onnx_path=model)
    assert not result.ok and result.first_divergence is None
    assert {o.name: o.ok for o in result.outputs} == {"head_16": True, "head_23": False}
    assert "FAILED" in result.summary() and "outputs head_23" in result.summary()


def test_opencv_mishandles_route_groups_over_several_inputs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "route-groups.cfg"
    cfg.write_text(ROUTE_GROUPS_CFG)
    weights = write_weights(tmp_path / "route-groups.weights", cfg, seed=2, realistic=True)
    # OpenCV itself: it builds more layers than its weights reader counts, so
    # batch norm blobs land on the wrong layers and the network cannot run.
    # (If a future OpenCV runs it, re-check the note in yolo_io/_export/verify.py.)
    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    net.setInput(np.zeros((1, 3, 16, 16), np.float32))
    with pytest.raises(cv2.error):
        net.forward()
    result = verify(weights, cfg)
    assert result.ok, result.summary()
    assert result.compared_until == 2 and [c.index for c in result.layers] == [0, 1]
    note = next(n for n in result.notes if "route with groups over several inputs" in n)
    assert note.startswith("layer 2 [route] (line 22)") and "layers 2..6 not compared with OpenCV" in note
    assert result.outputs == [] and not result.complete
    text = call(capsys, "verify", cfg, weights)[0]
    assert "route with groups over several inputs" in text
    assert text.splitlines()[-1].startswith("PARTIAL: within tolerance where compared, but "
                                            "only 2 layers of 7")
    call(capsys, "verify", cfg, weights, "--strict", code=1)


def test_a_cfg_opencv_refuses_is_an_error(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "relu6.cfg"
    cfg.write_text("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=4\nsize=3\n"
                   "pad=1\nactivation=relu6\n")
    weights = write_weights(tmp_path / "relu6.weights", cfg, realistic=True)
    with pytest.raises(yolo_io.YoloIOError, match=r"OpenCV cannot be the oracle .*relu6"):
        verify(weights, cfg)
    out, err = call(capsys, "verify", cfg, weights, "--json", code=1)
    assert "OpenCV cannot be the oracle" in one_line_error((out, err))
    doc = json.loads(out)
    assert doc["exit_code"] == 1 and "relu6" in doc["error"]


def test_opencv_known_departures_are_notes(tmp_path: Path) -> None:
    """A dilated convolution, which OpenCV's importer runs undilated: from there
    on nothing is compared with OpenCV, and the note says why."""
    cfg = tmp_path / "dilated.cfg"
    cfg.write_text("[net]\nwidth=16\nheight=16\nchannels=3\n[convolutional]\nfilters=4\n"
                   "size=3\npad=1\nactivation=leaky\n[convolutional]\nfilters=4\nsize=3\npad=1\n"
                   "dilation=2\nactivation=linear\n[convolutional]\nfilters=4\nsize=1\n"
                   "activation=linear\n")
    weights = write_weights(tmp_path / "dilated.weights", cfg, realistic=True)
    result = verify(weights, cfg)
    assert result.ok and [c.index for c in result.layers] == [0] and not result.complete
    assert any("ignores dilation=2" in n for n in result.notes)


@pytest.mark.parametrize(("section", "note"), [
    ("[softmax]\ntemperature=2\n", "ignores temperature=2"),
    ("[softmax]\n", "a softmax over an image"),
    ("[convolutional]\nfilters=4\nsize=3\nstride_x=2\nstride_y=2\nactivation=linear\n",
     "ignores stride_x/stride_y"),
])
def test_more_opencv_departures_are_notes_not_failures(tmp_path: Path, section: str,
                                                      note: str) -> None:
    cfg = tmp_path / "departure.cfg"
    cfg.write_text("[net]\nwidth=16\nheight=16\nchannels=3\n[convolutional]\nfilters=4\n"
                   "size=3\npad=1\nactivation=leaky\n" + section)
    weights = write_weights(tmp_path / "departure.weights", cfg, realistic=True)
    result = verify(weights, cfg)
    assert result.ok, result.summary()
    assert any(note in n for n in result.notes), result.notes


def test_boxes_zeroed_or_infinite_on_one_side_fail(yolov3_tiny: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    """Box sides that are 0 or infinite in only one of the two are divergent
    (anchors multiplied by 0 in the graph), not left out."""
    from onnx import numpy_helper

    cfg, weights = yolov3_tiny
    with yolo_io.load(weights, cfg) as net:
        model = yolo_io.onnx.export(tmp_path / "m.onnx", net, outputs="decoded",
                                    intermediates=True)
    proto = onnx.load(str(model))
    for t in proto.graph.initializer:
        if t.name.startswith("anchors__"):
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) * np.float32(0), t.name))
    onnx.save(proto, str(model))
    result = verify(weights, cfg, onnx_path=model)
    assert not result.ok
    assert {o.name: o.ok for o in result.outputs}["boxes"] is False
    assert any("0 or infinite in only one" in n for n in result.notes)


def test_new_coords_head_decodes_as_opencv_does(tmp_path: Path) -> None:
    """Scaled-YOLOv4 decoding (new_coords=1, scale_x_y): the decoded outputs
    against OpenCV's [yolo] layer, box sides compared as raw values."""
    cfg = tmp_path / "new-coords.cfg"
    cfg.write_text("[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nfilters=8\n"
                   "size=3\nstride=2\npad=1\nactivation=leaky\n[convolutional]\nfilters=18\n"
                   "size=1\nactivation=logistic\n[yolo]\nmask=0,1,2\nanchors=4,4, 8,8, 16,16\n"
                   "classes=1\nnum=3\nnew_coords=1\nscale_x_y=2\n")
    weights = write_weights(tmp_path / "new-coords.weights", cfg, realistic=True)
    result = verify(weights, cfg)
    assert result.ok, result.summary()
    boxes = next(o for o in result.outputs if o.name == "boxes")
    assert boxes.compared == 16 * 16 * 3 * 4 and "raw values" in boxes.reference


# -- the image -----------------------------------------------------------------------


def _darknet_resize_loops(im: np.ndarray, w: int, h: int) -> np.ndarray:
    """darknet's resize_image (image.c), loop for loop, on an (H, W, C) image."""
    ih, iw, c = im.shape
    part = np.zeros((ih, w, c), np.float32)
    w_scale = np.float32(iw - 1) / np.float32(w - 1)
    h_scale = np.float32(ih - 1) / np.float32(h - 1)
    for r in range(ih):
        for col in range(w):
            if col == w - 1 or iw == 1:
                part[r, col] = im[r, iw - 1]
            else:
                sx = np.float32(col) * w_scale
                ix = int(sx)
                dx = sx - np.float32(ix)
                part[r, col] = (np.float32(1) - dx) * im[r, ix] + dx * im[r, ix + 1]
    out = np.zeros((h, w, c), np.float32)
    for r in range(h):
        sy = np.float32(r) * h_scale
        iy = int(sy)
        dy = sy - np.float32(iy)
        out[r] = (np.float32(1) - dy) * part[iy]
        if r == h - 1 or ih == 1:
            continue
        out[r] += dy * part[iy + 1]
    return out


@pytest.mark.parametrize(("src", "dst"), [((7, 5), (4, 9)), ((9, 13), (13, 9)), ((4, 4), (4, 4))])
def test_resize_is_darknets(src: tuple[int, int], dst: tuple[int, int]) -> None:
    im = np.random.default_rng(0).random((*src, 3), dtype=np.float32)
    np.testing.assert_allclose(resize(im, dst[1], dst[0]),
                               _darknet_resize_loops(im, dst[1], dst[0]), rtol=0, atol=1e-6)


def test_letterbox_and_darknet_image(tmp_path: Path) -> None:
    im = np.random.default_rng(0).random((10, 20, 3), dtype=np.float32)
    boxed = letterbox(im, 16, 16)  # 20x10 -> 16x8, centered on 0.5 gray
    assert boxed.shape == (16, 16, 3)
    assert np.all(boxed[:4] == 0.5) and np.all(boxed[12:] == 0.5)
    np.testing.assert_array_equal(boxed[4:12], resize(im, 16, 8))
    cfg = "[net]\nwidth=16\nheight=16\nchannels=3\nletter_box={}\n[maxpool]\nsize=2\nstride=2\n"
    png = tmp_path / "im.png"
    pixels = (np.random.default_rng(1).random((10, 20, 3)) * 255).astype(np.uint8)
    assert cv2.imwrite(str(png), pixels)
    x, desc = darknet_image(yolo_io.parse_cfg(cfg.format(1)), png)
    assert x.shape == (1, 3, 16, 16) and x.dtype == np.float32
    assert desc == f"{png} (20x10), letterboxed to 16x16"
    rgb = pixels[:, :, ::-1].astype(np.float32) / 255  # OpenCV reads BGR
    np.testing.assert_array_equal(x[0].transpose(1, 2, 0), letterbox(rgb, 16, 16))
    x, desc = darknet_image(yolo_io.parse_cfg(cfg.format(0)), png)
    np.testing.assert_array_equal(x[0].transpose(1, 2, 0), resize(rgb, 16, 16))
    assert "resized to 16x16" in desc


def test_image_and_model_errors(demo: tuple[Path, Path], tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    cfg, weights = demo
    config = yolo_io.parse_cfg(cfg)
    with pytest.raises(FileNotFoundError):
        darknet_image(config, tmp_path / "nope.png")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(OSError, match=r"not an image .* can decode"):
        darknet_image(config, junk)
    assert "can decode" in one_line_error(
        call(capsys, "verify", cfg, weights, "--image", junk, code=3))
    assert "No such file" in one_line_error(
        call(capsys, "verify", cfg, weights, "--onnx", tmp_path / "nope.onnx", code=3))
    other = tmp_path / "other.cfg"  # a 64x64 model is not one of this 96x96 cfg
    other.write_text(cfg.read_text().replace("width=96", "width=64").replace("height=96",
                                                                             "height=64"))
    with yolo_io.load(weights, other) as net:
        yolo_io.onnx.export(tmp_path / "other.onnx", net)
    with pytest.raises(yolo_io.YoloIOError, match="not a model of this cfg"):
        verify(weights, cfg, onnx_path=tmp_path / "other.onnx")


# -- the CLI -------------------------------------------------------------------------


def test_help_lists_export_and_verify(capsys: pytest.CaptureFixture[str]) -> None:
    out = call(capsys, "--help")[0]
    assert "export" in out and "verify" in out
    text = call(capsys, "export", "--help")[0]
    for option in ("--opset", "--outputs", "--dtype", "--static-batch", "--mish",
                   "--score-threshold", "--iou-threshold", "--max-detections",
                   "--intermediates"):
        assert option in text
    text = call(capsys, "verify", "--help")[0]
    for option in ("--onnx", "--image", "--dtype", "--atol", "--rtol", "--json"):
        assert option in text


def test_export_options_and_usage_errors(demo: tuple[Path, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    cfg, weights = demo
    out = tmp_path / "nms.onnx"
    text = run("export", cfg, weights, "-o", out, "--outputs", "nms", "--dtype", "float16",
               "--opset", "18", "--score-threshold", "0.3", "--max-detections", "5").stdout
    assert "opset 18, float16 weights, outputs boxes, objectness, scores, selected" in text
    model = onnx.load(str(out))
    assert [o.name for o in model.graph.output] == ["boxes", "objectness", "scores",
                                                    "selected"]
    assert model.opset_import[0].version == 18
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["yolo_io.weights_dtype"] == "float16"
    assert "--score-threshold apply to --outputs nms" in one_line_error(
        call(capsys, "export", cfg, weights, "-o", out, "--score-threshold", "0.3", code=2))
    assert "must be in [0, 1]" in one_line_error(
        call(capsys, "export", cfg, weights, "-o", out, "--outputs", "nms", "--iou-threshold",
             "2", code=2))
    assert "--max-detections must be at least 1 (boxes kept per class and image), got 0" in (
        one_line_error(call(capsys, "export", cfg, weights, "-o", out, "--outputs", "nms",
                            "--max-detections", "0", code=2)))
    assert "--score-threshold must be in [0, 1], got nan" in one_line_error(
        call(capsys, "export", cfg, weights, "-o", out, "--outputs", "nms",
             "--score-threshold", "nan", code=2))
    assert "opset 18 or later" in one_line_error(
        call(capsys, "export", cfg, weights, "-o", out, "--mish", "native", code=2))
    assert "is the input WEIGHTS" in one_line_error(
        call(capsys, "export", cfg, weights, "-o", weights, code=2))
    assert "required: -o" in call(capsys, "export", cfg, weights, code=2)[1]


def test_verify_json_with_an_infinite_tolerance(demo: tuple[Path, Path],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    cfg, weights = demo
    out, _ = call(capsys, "verify", cfg, weights, "--json", "--atol", "inf")
    doc = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert doc["atol"] is None and doc["ok"] is True and doc["complete"] is True


def test_verify_json_and_text(demo: tuple[Path, Path],
                              capsys: pytest.CaptureFixture[str]) -> None:
    cfg, weights = demo
    doc = json.loads(run("verify", cfg, weights, "--json").stdout)
    assert doc["ok"] is True and doc["onnx"] is None and doc["dtype"] == "float32"
    assert len(doc["layers"]) == 12 and doc["compared_until"] == 12
    assert {o["name"] for o in doc["outputs"]} == {"boxes", "objectness", "scores"}
    assert doc["image"] == "skimage.data.astronaut() (512x512), resized to 96x96"
    assert doc["opencv"] == cv2.__version__
    text = run("verify", cfg, weights, "--all-layers", "--atol", "0", "--rtol", "0",
               code=1).stdout
    assert "all layers:" in text and " 11  yolo (input)" in text
    assert "first divergence: layer 0 [convolutional] (OpenCV leaky_1)" in text
    assert text.splitlines()[-1].startswith("FAILED")
    assert "must be >= 0" in one_line_error(call(capsys, "verify", cfg, weights, "--atol",
                                                 "-1", code=2))
    result = verify(weights, cfg)
    assert result.ok and result.summary().splitlines()[-1].startswith(
        "ok: the ONNX model matches OpenCV within tolerance (12 layers, 3 outputs")


def test_verify_progress_only_on_a_terminal(demo: tuple[Path, Path]) -> None:
    cfg, weights = demo
    stdout, shown = yolo_io_on_a_terminal("verify", cfg, weights)
    assert "yolo-io: running OpenCV..." in shown and "exporting to ONNX" in shown
    assert "ok:" in stdout


@pytest.mark.parametrize(("module", "command"), [("onnxruntime", "verify"),
                                                  ("onnx", "export"), ("cv2", "verify")])
def test_missing_dependency_exits_4(demo: tuple[Path, Path], tmp_path: Path,
                                    module: str, command: str) -> None:
    cfg, weights = demo
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / f"{module}.py").write_text("raise ImportError('blocked for a test')\n")
    args = ["-o", tmp_path / "m.onnx"] if command == "export" else []
    proc = run(command, cfg, weights, *args, code=4, env={**ENV, "PYTHONPATH": str(blocker)})
    line = one_line_error(proc)
    assert "pip install 'yolo_io[" in line and module in line
    assert not (tmp_path / "m.onnx").exists()


def test_an_output_of_which_nothing_was_compared_says_so() -> None:
    """scores where OpenCV's are all 0: no value compared, no error of 0 and no "ok"."""
    from yolo_io._export.verify import OutputComparison

    result = Verification(cfg="m.cfg", weights="m.weights", onnx=None, image="x", dtype="float32",
                          atol=1e-3, rtol=1e-4, compared_until=3, layer_count=3)
    result.outputs = [
        OutputComparison("boxes", (1, 8, 4), "OpenCV yolo_1", 1e-5, 1e-6, True, 32),
        OutputComparison("scores", (1, 8, 2), "OpenCV yolo_1, where > 0", 0.0, 0.0, True, 0)]
    text = result.summary()
    row = next(line for line in text.splitlines() if line.lstrip().startswith("scores"))
    assert row.rstrip().endswith("not compared") and "0.00e+00" not in row
    assert text.splitlines()[-1].endswith("(0 layers, 1 output compared)")
    assert result.to_dict()["outputs"][1]["compared"] == 0
    result.outputs = result.outputs[1:]  # no output compared at all: not complete
    assert result.ok and not result.complete

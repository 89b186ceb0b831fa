"""yolo_io.detect / prepare_image / `yolo-io detect`: darknet's preprocessing,
thresholding and NMS, the backends against each other, and the command.
Against darknet's own detections: tests/test_detect_darknet.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import yolo_io
from yolo_io._inference.detect import _correct, nms
from yolo_io._inference.draw import class_color
from yolo_io._lowering.image import letterbox, resize, to_float
from yolo_io.testing import write_weights

PIL = pytest.importorskip("PIL", reason="Pillow is not installed (test extra)")
from PIL import Image

skdata = pytest.importorskip("skimage.data", reason="scikit-image is not installed (test extra)")

# A small two-head detector (yolov3-tiny's shape) on a non-square input.
DETECTOR_CFG = """[net]
width=96
height=64
channels=3
{letter}
[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[convolutional]
batch_normalize=1
filters=16
size=3
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
filters=24
activation=linear
[yolo]
mask=3,4,5
anchors=10,14,  23,27,  37,58,  81,82,  135,169,  344,319
classes=3
num=6
scale_x_y=1.05
[route]
layers=-3
[upsample]
stride=2
[route]
layers=-1,-6
[convolutional]
size=1
stride=1
pad=1
filters=24
activation=linear
[yolo]
mask=0,1,2
anchors=10,14,  23,27,  37,58,  81,82,  135,169,  344,319
classes=3
num=6
"""
NAMES = ["person", "dog", "cat"]


@pytest.fixture(scope="module")
def detector_net(tmp_path_factory: pytest.TempPathFactory) -> yolo_io.Network:
    folder = tmp_path_factory.mktemp("detector")
    cfg = folder / "det.cfg"
    cfg.write_text(DETECTOR_CFG.format(letter=""))
    return yolo_io.load(write_weights(folder / "det.weights", cfg, realistic=True, seed=4), cfg)


def chelsea() -> np.ndarray:
    return np.asarray(skdata.chelsea(), dtype=np.uint8)  # 451 x 300 RGB


def a_thresh(net: yolo_io.Network, image: np.ndarray) -> float:
    """A threshold leaving a few dozen candidates: random weights give
    probabilities bunched together, so a fixed threshold says little."""
    det = yolo_io.Detector(net, backend="onnxruntime")
    _, scores = det.backend.run(yolo_io.prepare_image(net, image))
    return float(np.sort(scores.ravel())[-60])


# -- preprocessing --------------------------------------------------------------------


def test_prepare_image_is_darknets_resize(detector_net: yolo_io.Network) -> None:
    rgb = chelsea()
    x = yolo_io.prepare_image(detector_net, rgb)
    assert x.shape == (1, 3, 64, 96) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0].transpose(1, 2, 0), resize(to_float(rgb), 96, 64))
    boxed = yolo_io.prepare_image(detector_net, rgb, letter_box=True)
    np.testing.assert_array_equal(boxed[0].transpose(1, 2, 0), letterbox(to_float(rgb), 96, 64))
    # 451x300 into 96x64: 96/451 < 64/300, so 96 x (300*96)//451 = 63 rows from row
    # (64 - 63) // 2 = 0: the last row is gray.
    assert (boxed[0, :, 63] == np.float32(0.5)).all() and not (boxed[0, :, 62] == 0.5).all()


def test_every_kind_of_image_gives_the_same_input(detector_net: yolo_io.Network,
                                                  tmp_path: Path) -> None:
    rgb = chelsea()
    want = yolo_io.prepare_image(detector_net, rgb)
    png = tmp_path / "cat.png"
    Image.fromarray(rgb).save(png)
    rgba = np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 7, np.uint8)], axis=2)
    for image in (png, str(png), os.fsencode(png), Image.fromarray(rgb), rgba,
                  Image.fromarray(rgba)):
        np.testing.assert_array_equal(yolo_io.prepare_image(detector_net, image), want)
    gray = rgb[:, :, 1]
    for image in (gray, gray[:, :, None], Image.fromarray(gray)):
        x = yolo_io.prepare_image(detector_net, image)
        np.testing.assert_array_equal(x[0, 0], x[0, 2])  # gray replicated, as stb_image does
        np.testing.assert_array_equal(x[0, 0], resize(to_float(gray[:, :, None]), 96, 64)[:, :, 0])


def test_a_gray_network_sees_stb_images_gray(tmp_path: Path) -> None:
    cfg = yolo_io.parse_cfg(DETECTOR_CFG.replace("channels=3", "channels=1").format(letter=""))
    rgb = chelsea()
    x = yolo_io.prepare_image(cfg, rgb)
    r, g, b = (rgb[..., k].astype(np.uint32) for k in range(3))
    gray = ((77 * r + 150 * g + 29 * b) >> 8).astype(np.uint8)  # stbi__compute_y
    np.testing.assert_array_equal(x[0, 0], resize(to_float(gray[:, :, None]), 96, 64)[:, :, 0])


def test_the_cfgs_letter_box_is_the_default(tmp_path: Path) -> None:
    rgb = chelsea()
    cfg = yolo_io.parse_cfg(DETECTOR_CFG.format(letter="letter_box=1"))
    np.testing.assert_array_equal(yolo_io.prepare_image(cfg, rgb)[0].transpose(1, 2, 0),
                                  letterbox(to_float(rgb), 96, 64))
    np.testing.assert_array_equal(yolo_io.prepare_image(cfg, rgb, letter_box=False)[0]
                                  .transpose(1, 2, 0), resize(to_float(rgb), 96, 64))


def test_bad_images_are_typed_errors(detector_net: yolo_io.Network, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="uint8"):
        yolo_io.prepare_image(detector_net, chelsea().astype(np.float32) / 255)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        yolo_io.prepare_image(detector_net, np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        yolo_io.prepare_image(detector_net, np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(TypeError, match="a path, a uint8 array or a PIL image"):
        yolo_io.prepare_image(detector_net, 3)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        yolo_io.prepare_image(detector_net, tmp_path / "nope.png")
    with pytest.raises(IsADirectoryError):
        yolo_io.prepare_image(detector_net, tmp_path)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8 not really")
    with pytest.raises(OSError, match="can decode") as info:
        yolo_io.prepare_image(detector_net, junk)
    assert info.value.filename == str(junk)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(OSError, match="empty"):
        yolo_io.prepare_image(detector_net, tmp_path / "empty.png")


# -- darknet's box correction and NMS ---------------------------------------------------


def test_letterbox_correction_maps_the_image_back() -> None:
    # A 200x100 image in a 64x64 network: letterboxed to 64x32, rows 16..47.
    # A box over exactly that area is the whole image.
    boxes = np.array([[0.5, 0.5, 1.0, 0.5], [0.25, 0.25 + 0.125, 0.5, 0.25]], np.float32)
    got = _correct(boxes, 200, 100, 64, 64, letter=True)
    np.testing.assert_allclose(got, [[0.5, 0.5, 1, 1], [0.25, 0.25, 0.5, 0.5]], atol=1e-7)
    np.testing.assert_array_equal(_correct(boxes, 200, 100, 64, 64, letter=False), boxes)


def _boxes(*rows: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(rows, dtype=np.float32)


def test_nms_is_darknets_greedy_per_class() -> None:
    boxes = _boxes((0.5, 0.5, 0.2, 0.2), (0.52, 0.5, 0.2, 0.2), (0.8, 0.8, 0.2, 0.2),
                   (0.56, 0.5, 0.2, 0.2))
    probs = np.array([0.9, 0.8, 0.7, 0.75], np.float32)
    # 1 overlaps 0 (IoU 0.82): gone. 3 overlaps 1 (0.67) but 0 only at 0.54: gone
    # too, by 0. 2 overlaps nothing.
    assert nms(boxes, probs, 0.45).tolist() == [0, 2]
    # 3 overlaps 0 at IoU 0.538: a higher threshold keeps it; 1 (0.818) stays gone.
    assert nms(boxes, probs, 0.6).tolist() == [0, 3, 2]
    # A suppressed box suppresses nothing: 3 overlaps 1 (IoU 0.48), which 0 suppressed
    # (0.74), but not 0 (0.33).
    boxes[1], boxes[3] = (0.47, 0.5, 0.2, 0.2), (0.40, 0.5, 0.2, 0.2)
    assert nms(boxes, probs, 0.45).tolist() == [0, 3, 2]
    # Zero probabilities (below the threshold) take no part.
    assert nms(boxes, np.zeros(4, np.float32), 0.45).tolist() == []


def test_diou_nms_kinds() -> None:
    # IoU 0.6, centres 0.1 apart in a 0.5 x 0.4 enclosing box: d/c = 0.01/0.41.
    boxes = _boxes((0.3, 0.5, 0.4, 0.4), (0.4, 0.5, 0.4, 0.4))
    probs = np.array([0.9, 0.8], np.float32)
    assert nms(boxes, probs, 0.45).tolist() == [0]                        # IoU 0.6
    assert nms(boxes, probs, 0.45, "cornersnms").tolist() == [0]          # box_iou too
    assert nms(boxes, probs, 0.45, "greedynms").tolist() == [0]           # 0.6 - 0.108
    assert nms(boxes, probs, 0.45, "diounms", beta=0.6).tolist() == [0]   # 0.6 - 0.108
    assert nms(boxes, probs, 0.45, "diounms", beta=0.3).tolist() == [0, 1]  # 0.6 - 0.328
    assert nms(boxes, probs, 0.5, "greedynms").tolist() == [0, 1]         # 0.492 < 0.5


# -- the API ------------------------------------------------------------------------------


def test_backends_agree(detector_net: yolo_io.Network) -> None:
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (test extra)")
    pytest.importorskip("torch", reason="PyTorch is not installed (oracle extra)")
    image = chelsea()
    thresh = a_thresh(detector_net, image)
    found = {backend: yolo_io.detect(detector_net, image, thresh=thresh, names=NAMES,
                                     backend=backend)[0]
             for backend in ("onnxruntime", "torch", "opencv")}
    ort = found["onnxruntime"]
    assert 5 <= len(ort) <= 60 and {d.name for d in ort} <= set(NAMES)
    assert [d.prob for d in ort] == sorted((d.prob for d in ort), reverse=True)
    for backend in ("torch", "opencv"):
        other = found[backend]
        # the same detections, up to those within float error of the threshold
        close = [d for d in ort if abs(d.prob - thresh) > 1e-4]
        for d in close:
            match = [o for o in other if o.class_id == d.class_id
                     and abs(o.prob - d.prob) < 1e-4
                     and max(abs(a - b) for a, b in zip(o.box, d.box, strict=True)) < 0.05]
            assert match, (backend, d)
        assert abs(len(other) - len(ort)) <= len(ort) - len(close) + 1, backend


def test_a_batch_equals_one_at_a_time(detector_net: yolo_io.Network) -> None:
    images = [chelsea(), np.asarray(skdata.coffee()), np.asarray(skdata.astronaut())]
    thresh = a_thresh(detector_net, images[0])
    det = yolo_io.Detector(detector_net, backend="onnxruntime", thresh=thresh, batch=2)
    together = det(images)
    one = [yolo_io.detect(detector_net, im, thresh=thresh, backend="onnxruntime")[0]
           for im in images]
    assert len(together) == 3
    for a, b in zip(together, one, strict=True):
        assert [(d.class_id, d.box) for d in a] == [(d.class_id, d.box) for d in b]
        np.testing.assert_allclose([d.prob for d in a], [d.prob for d in b], rtol=1e-5)
    # a list gives a list per image; an (N, H, W, 3) array too
    assert len(yolo_io.detect(detector_net, [images[0]], thresh=thresh)) == 1
    stacked = np.stack([images[0], images[0]])
    assert len(yolo_io.detect(detector_net, stacked, thresh=thresh)) == 2


def test_detector_options_are_checked(detector_net: yolo_io.Network, tmp_path: Path) -> None:
    for bad in (-0.1, 1.0, float("nan"), "0.5", True):
        with pytest.raises(ValueError, match="thresh"):
            yolo_io.Detector(detector_net, thresh=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nms"):
        yolo_io.Detector(detector_net, nms=1.5)
    with pytest.raises(ValueError, match="backend"):
        yolo_io.Detector(detector_net, backend="tensorrt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"2 names; the network has 3 classes"):
        yolo_io.Detector(detector_net, names=["a", "b"])
    names = tmp_path / "obj.names"
    names.write_bytes(b"a\r\nb\r\n")
    with pytest.raises(ValueError, match=r"obj\.names holds 2 names"):
        yolo_io.Detector(detector_net, names=names)
    names.write_bytes(b"a\r\nb\r\nc\r\n")
    assert yolo_io.Detector(detector_net, names=names).names == ["a", "b", "c"]
    with pytest.raises(TypeError, match="Network"):
        yolo_io.Detector(detector_net.config)  # type: ignore[arg-type]


def test_a_classifier_or_a_partial_file_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "cls.cfg"
    cfg.write_text("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=4\nsize=1\n"
                   "activation=linear\n[avgpool]\n[softmax]\n")
    net = yolo_io.load(write_weights(tmp_path / "cls.weights", cfg), cfg)
    with pytest.raises(yolo_io.YoloIOError, match="no detection head"):
        yolo_io.Detector(net)
    det = tmp_path / "det.cfg"
    det.write_text(DETECTOR_CFG.format(letter=""))
    part = yolo_io.load(write_weights(tmp_path / "part.weights", det, layers=3), det,
                        partial=True)
    with pytest.raises(yolo_io.YoloIOError, match="detection needs them all"):
        yolo_io.Detector(part)


def test_opencv_refuses_heads_it_does_not_decode_as_darknet(tmp_path: Path) -> None:
    cfg = tmp_path / "g.cfg"
    cfg.write_text(DETECTOR_CFG.format(letter="").replace("[yolo]", "[Gaussian_yolo]")
                   .replace("filters=24", "filters=36"))
    net = yolo_io.load(write_weights(tmp_path / "g.weights", cfg, realistic=True), cfg)
    with pytest.raises(yolo_io.ConversionError, match=r"only \[yolo\] heads.*Gaussian_yolo"):
        yolo_io.Detector(net, backend="opencv")


def test_detection_text_is_darknets() -> None:
    d = yolo_io.Detection(1, "dog", 0.995, 10.5, -2.5, 100.49, 50.5)
    assert str(d) == ("dog: 100%\t(left_x:   11   top_y:   -3   width:  100   height:   51)")
    assert d.box == (10.5, -2.5, 100.49, 50.5)
    assert json.loads(json.dumps(d.to_dict()))["name"] == "dog"


# -- `yolo-io detect` -------------------------------------------------------------------


def call(capsys: pytest.CaptureFixture[str], *args: object, code: int = 0) -> tuple[str, str]:
    from yolo_io._cli import main

    try:
        got = main([str(a) for a in args])
    except SystemExit as exit_:
        got = exit_.code
    out, err = capsys.readouterr()
    assert got == code, (got, out, err)
    return out, err


@pytest.fixture
def files(tmp_path: Path, detector_net: yolo_io.Network) -> tuple[Path, Path, Path]:
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(chelsea()).save(images / "cat.png")
    Image.fromarray(np.asarray(skdata.coffee())).save(images / "coffee.jpg", quality=95)
    (images / "notes.md").write_text("not an image")
    names = tmp_path / "obj.names"
    names.write_text("\n".join(NAMES) + "\n")
    return Path(detector_net.config.path), Path(detector_net.path), names


def test_detect_a_folder(files: tuple[Path, Path, Path], tmp_path: Path,
                         detector_net: yolo_io.Network,
                         capsys: pytest.CaptureFixture[str]) -> None:
    cfg, weights, names = files
    thresh = a_thresh(detector_net, chelsea())
    out, err = call(capsys, "detect", cfg, weights, tmp_path / "images", "--names", names,
                    "--thresh", thresh, "--out", tmp_path / "out", "--json")
    doc = json.loads(out)
    assert [Path(i["path"]).name for i in doc["images"]] == ["cat.png", "coffee.jpg"]
    assert doc["backend"] == "onnxruntime" and doc["errors"] == []
    assert doc["images_per_second"] > 0 and "images/s" in err
    api = yolo_io.detect(detector_net, chelsea(), thresh=thresh, names=NAMES)[0]
    cat = doc["images"][0]
    assert [(d["class_id"], d["name"], d["prob"]) for d in cat["detections"]] == \
        [(d.class_id, d.name, d.prob) for d in api]
    for image in doc["images"]:
        with Image.open(image["output"]) as written, Image.open(image["path"]) as source:
            assert written.size == source.size and written.format == source.format
            assert not np.array_equal(np.asarray(written), np.asarray(source))


def test_annotate_draws_the_box_and_its_label() -> None:
    from yolo_io._inference.draw import annotate

    pixels = np.full((120, 200, 3), 40, np.uint8)
    found = [yolo_io.Detection(2, "cat", 0.9, 50.2, 40.4, 100.0, 60.0),
             yolo_io.Detection(0, "person", 0.4, 50.2, 40.4, 100.0, 60.0)]
    drawn = np.asarray(annotate(pixels, found, 3)).astype(int)
    color = class_color(2, 3)  # the best class's colour
    assert color != class_color(0, 3)
    for y in range(60, 100):  # the left and right edges, below the label
        assert tuple(drawn[y, 50]) == color and tuple(drawn[y, 150]) == color
    for x in range(60, 140):  # the bottom edge
        assert tuple(drawn[100, x]) == color
    assert tuple(drawn[70, 100]) == (40, 40, 40)  # inside the box: untouched
    label = drawn[:40, 50:150]  # above the box: the label, the colour and its text
    assert (label == color).all(axis=2).sum() > 100
    assert (~(label == color).all(axis=2) & ~(label == 40).all(axis=2)).sum() > 20
    assert drawn.shape == pixels.shape


def test_detect_prints_as_darknet(files: tuple[Path, Path, Path], tmp_path: Path,
                                  detector_net: yolo_io.Network,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    cfg, weights, names = files
    data = tmp_path / "obj.data"
    data.write_text(f"classes=3\nnames={names}\n")
    thresh = a_thresh(detector_net, chelsea())
    out, _ = call(capsys, "detect", cfg, weights, tmp_path / "images" / "cat.png", "--data",
                  data, "--thresh", thresh)
    lines = out.splitlines()
    assert lines[0].startswith(f"{tmp_path / 'images' / 'cat.png'}: Predicted in ")
    api = yolo_io.detect(detector_net, chelsea(), thresh=thresh, names=NAMES)[0]
    assert sorted(lines[1:]) == sorted(str(d) for d in api)
    assert lines[1].split(":")[0] in NAMES


def test_detect_a_list_file_with_windows_line_endings(
        files: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, weights, _ = files
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.txt").write_bytes(b"images/cat.png\r\n\r\nimages/coffee.jpg\r\n")
    out, _ = call(capsys, "detect", cfg, weights, "train.txt", "--json")
    assert [i["path"] for i in json.loads(out)["images"]] == ["images/cat.png",
                                                               "images/coffee.jpg"]


def test_detect_refuses_to_write_over_its_inputs(files: tuple[Path, Path, Path],
                                                 tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cfg, weights, _ = files
    images = tmp_path / "images"
    before = {p.name: p.read_bytes() for p in images.iterdir()}
    _, err = call(capsys, "detect", cfg, weights, images, "--out", images, code=2)
    assert "is the file being read" in err or "replace the file being read" in err
    # two inputs of one name would overwrite each other
    other = tmp_path / "other"
    other.mkdir()
    (other / "cat.png").write_bytes((images / "cat.png").read_bytes())
    _, err = call(capsys, "detect", cfg, weights, images / "cat.png", other / "cat.png",
                  "--out", tmp_path / "out", code=2)
    assert "would both be written to" in err
    # the cfg itself as an output, through a link in --out named as the output
    # of an image called like the cfg (Pillow cannot write a .cfg: .cfg.png)
    link = tmp_path / "links"
    link.mkdir()
    (link / (cfg.name + ".png")).symlink_to(cfg)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / cfg.name).write_bytes((images / "cat.png").read_bytes())
    _, err = call(capsys, "detect", cfg, weights, tmp_path / "src" / cfg.name, "--out", link,
                  code=2)
    assert "the input CFG" in err or "an input" in err
    assert {p.name: p.read_bytes() for p in images.iterdir()} == before
    assert not (tmp_path / "out").exists()


def test_detect_refuses_an_output_linked_to_another_input_image(
        files: tuple[Path, Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    cfg, weights, _ = files
    images = tmp_path / "images"
    (images / "b.png").write_bytes((images / "cat.png").read_bytes())
    before = {p.name: p.read_bytes() for p in images.iterdir()}
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.png").symlink_to(images / "cat.png")  # b's output would replace cat.png
    _, err = call(capsys, "detect", cfg, weights, images / "cat.png", images / "b.png",
                  "--out", out, code=2)
    assert "the input image" in err and "cat.png" in err
    assert {p.name: p.read_bytes() for p in images.iterdir()} == before


def test_detect_output_names_and_formats(files: tuple[Path, Path, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    cfg, weights, _ = files
    images = tmp_path / "images"
    with Image.open(images / "cat.png") as opened:
        cat = opened.copy()
    src = tmp_path / "src"
    src.mkdir()
    cat.save(src / "a.psd.tmp", format="PNG")
    (src / "a.psd.tmp").rename(src / "a.psd")  # Pillow reads .psd but cannot write it
    (src / "noext").write_bytes((images / "cat.png").read_bytes())
    cat.convert("L").save(src / "g.pgm")
    out = tmp_path / "out"
    call(capsys, "detect", cfg, weights, src / "a.psd", src / "noext", src / "g.pgm",
         "--out", out, "--thresh", "0.01")
    assert sorted(p.name for p in out.iterdir()) == ["a.psd.png", "g.pgm", "noext.png"]
    with Image.open(out / "a.psd.png") as png:
        assert png.format == "PNG"
    with Image.open(out / "g.pgm") as g:
        assert g.mode == "L" and (out / "g.pgm").read_bytes()[:2] == b"P5"
    # an output name taken by a folder: refused before any image is run
    (tmp_path / "out2" / "cat.png").mkdir(parents=True)
    _, err = call(capsys, "detect", cfg, weights, images / "cat.png", "--out",
                  tmp_path / "out2", code=3)
    assert "cat.png" in err and "cannot be written there" in err


def test_detect_goes_on_past_an_unreadable_image(files: tuple[Path, Path, Path],
                                                 tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cfg, weights, _ = files
    images = tmp_path / "images"
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff broken")
    out, err = call(capsys, "detect", cfg, weights, images, "--json", code=3)
    doc = json.loads(out)
    assert [Path(i["path"]).name for i in doc["images"]] == ["cat.png", "coffee.jpg"]
    assert [Path(e["path"]).name for e in doc["errors"]] == ["broken.jpg"]
    assert "broken.jpg" in err and "skipped" in err and "Traceback" not in err


def test_detect_usage_errors(files: tuple[Path, Path, Path], tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    cfg, weights, names = files
    _, err = call(capsys, "detect", cfg, weights, tmp_path / "images", "--thresh", "1.5",
                  code=2)
    assert "thresh must be a number in [0, 1)" in err
    _, err = call(capsys, "detect", cfg, weights, tmp_path / "images", "--names", names,
                  "--data", names, code=2)
    empty = tmp_path / "empty"
    empty.mkdir()
    _, err = call(capsys, "detect", cfg, weights, empty, code=3)
    assert "a folder without images" in err
    out, _ = call(capsys, "detect", cfg, weights, tmp_path / "nope.png", "--json", code=3)
    assert json.loads(out)["errors"][0]["error"]
    _, err = call(capsys, "detect", weights, cfg, tmp_path / "images", code=1)
    assert "swapped" in err or "the other way round" in err


# -- found by the adversarial review -------------------------------------------------------


def test_wide_samples_keep_their_high_byte_as_stb_image(tmp_path: Path) -> None:
    from yolo_io._lowering.image import read_pixels

    wide = (np.arange(64 * 48, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(wide).save(path)  # a 16-bit gray PNG (mode I;16 or I)
    got, _ = read_pixels(path, 3)
    np.testing.assert_array_equal(got[:, :, 0], (wide >> 8).astype(np.uint8))  # not clipped
    got, _ = read_pixels(path, 1)
    np.testing.assert_array_equal(got[:, :, 0], (wide >> 8).astype(np.uint8))


def test_a_gray_network_reads_a_jpegs_luma(tmp_path: Path) -> None:
    from yolo_io._lowering.image import read_pixels, to_gray

    path = tmp_path / "c.jpg"
    Image.fromarray(chelsea()).save(path, quality=90)
    gray, _ = read_pixels(path, 1)
    rgb, _ = read_pixels(path, 3)
    with Image.open(path) as img:
        luma = np.asarray(img.convert("YCbCr"))[:, :, 0]
    # stb_image copies the decoded Y plane (the developers compared with stb_image
    # itself: one level apart on 0.4% of pixels, the IDCTs differ); Y recomputed
    # from the decoded RGB is close, stb's RGB formula on it 36% of pixels off
    assert np.abs(gray[:, :, 0].astype(int) - luma).max() <= 2
    assert not np.array_equal(gray[:, :, 0], to_gray(rgb))


def test_an_image_too_thin_to_letterbox_is_an_error(detector_net: yolo_io.Network) -> None:
    thin = np.zeros((1, 4000, 3), np.uint8)
    with pytest.raises(ValueError, match=r"4000x1 image letterboxed .* 96x0 pixels"):
        yolo_io.prepare_image(detector_net, thin, letter_box=True)
    yolo_io.prepare_image(detector_net, thin)  # resized, it is fine


def test_a_decompression_bomb_is_an_oserror(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from yolo_io._lowering.image import read_pixels

    path = tmp_path / "big.png"
    Image.fromarray(chelsea()).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(OSError, match="too many pixels"):
        read_pixels(path, 3)


def test_boxes_that_are_not_finite_are_not_drawn_and_are_null_in_json() -> None:
    from yolo_io._cli.detect import _json_safe
    from yolo_io._inference.draw import annotate

    pixels = np.full((40, 50, 3), 200, np.uint8)
    found = [yolo_io.Detection(0, "a", 0.9, float("nan"), 0.0, 10.0, 10.0),
             yolo_io.Detection(0, "a", 0.8, 0.0, 0.0, float("inf"), 10.0),
             yolo_io.Detection(0, "a", 0.7, -1e30, -1e30, 2e30, 2e30),  # huge: clamped, fast
             yolo_io.Detection(0, "a", 0.6, 30.0, 30.0, -10.0, -10.0)]  # negative size
    image = annotate(pixels, found, 1)
    assert image.size == (50, 40)
    doc = _json_safe({"d": [d.to_dict() for d in found]})
    assert doc["d"][0]["left"] is None and doc["d"][1]["width"] is None
    json.dumps(doc, allow_nan=False)


def test_heads_with_different_class_counts_are_refused(tmp_path: Path) -> None:
    text = DETECTOR_CFG.format(letter="")
    last = text.rindex("classes=3")
    text = text[:last] + "classes=4" + text[last + len("classes=3"):]
    last = text.rindex("filters=24")
    text = text[:last] + "filters=27" + text[last + len("filters=24"):]
    cfg = tmp_path / "mixed.cfg"
    cfg.write_text(text)
    net = yolo_io.load(write_weights(tmp_path / "mixed.weights", cfg), cfg)
    with pytest.raises(yolo_io.YoloIOError, match=r"has 3 classes and .* 4: .*one class count"):
        yolo_io.Detector(net, backend="onnxruntime")


def test_opencv_gets_thresh_0_under_each_head_whatever_the_line_ends(tmp_path: Path) -> None:
    from yolo_io._inference.backends import _cfg_for_opencv

    text = DETECTOR_CFG.format(letter="").replace("[yolo]\n", "[yolo]\nthresh=0.7\n")
    cfg = tmp_path / "cr.cfg"
    cfg.write_bytes(text.replace("\n", "\r\r\n").encode())
    with pytest.warns(UserWarning, match="unused option 'thresh=0.7'"):  # darknet: unused
        net = yolo_io.load(write_weights(tmp_path / "cr.weights", cfg), cfg)
    lines = _cfg_for_opencv(net).split(b"\n")
    heads = [i for i, line in enumerate(lines) if line.startswith(b"[yolo]")]
    assert len(heads) == 2
    assert all(lines[i + 1] == b"thresh=0" for i in heads)
    assert not any(line.startswith(b"thresh=0.7") for line in lines)


def test_run_inputs_and_detect_check_their_arguments(detector_net: yolo_io.Network) -> None:
    det = yolo_io.Detector(detector_net, backend="onnxruntime")
    x = yolo_io.prepare_image(detector_net, chelsea())
    assert det.run_inputs(x, [(451, 300)])[0] == det([chelsea()])[0]
    for bad_sizes in ([], [(451, 300), (1, 1)], [(0, 0)], [(-5, 300)], [(451.0, 300)],
                      [(451,)]):
        with pytest.raises(ValueError, match="sizes must be 1"):
            det.run_inputs(x, bad_sizes)  # type: ignore[arg-type]
    for bad in (x[0], x.transpose(0, 2, 3, 1), x[:, :, :32], x[:0]):
        with pytest.raises(ValueError, match=r"inputs must be \(N, 3, 64, 96\)"):
            det.run_inputs(bad, [(451, 300)] * len(bad))
    with pytest.raises(TypeError, match="Detector"):
        yolo_io.detect(detector_net, (im for im in [chelsea()]))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="letter_box must be True, False or None"):
        yolo_io.Detector(detector_net, letter_box="no")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="letter_box must be True, False or None"):
        yolo_io.prepare_image(detector_net, chelsea(), letter_box="no")  # type: ignore[arg-type]


def test_detect_without_an_image_decoder_is_a_dependency_error(
        files: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import yolo_io._lowering.image as image_module

    cfg, weights, _ = files
    monkeypatch.setattr(image_module, "decoder_available", lambda: False)
    _, err = call(capsys, "detect", cfg, weights, tmp_path / "images", "--backend", "torch",
                  code=4)
    assert "Pillow or OpenCV" in err and "Traceback" not in err


def test_detect_of_a_partial_file_says_what_it_needs(files: tuple[Path, Path, Path],
                                                     tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    cfg, _, _ = files
    part = write_weights(tmp_path / "part.weights", cfg, layers=3)
    _, err = call(capsys, "detect", cfg, part, tmp_path / "images", code=1)
    assert "detection needs every layer's weights" in err and "--partial" not in err


def test_detect_an_image_too_thin_and_a_huge_box(files: tuple[Path, Path, Path],
                                                 tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cfg, weights, _ = files
    thin = tmp_path / "thin.png"
    Image.fromarray(np.zeros((1, 2000, 3), np.uint8)).save(thin)
    out, err = call(capsys, "detect", cfg, weights, thin, tmp_path / "images" / "cat.png",
                    "--letter-box", "--json", "--out", tmp_path / "out", code=3)
    doc = json.loads(out)
    assert [Path(e["path"]).name for e in doc["errors"]] == ["thin.png"]
    assert "divide by zero" in err
    assert (tmp_path / "out" / "cat.png").exists()

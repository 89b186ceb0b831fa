"""check_data() and ``yolo-io check-data``: a dataset built here with one
planted instance of each fault darknet's ``detector train`` meets late, each
found at its file and line with a fix; a clean dataset is clean; the label
paths are derived as AlexeyAB's utils.c:replace_image_to_label derives them;
darknet's readers (fgetl, read_data_cfg, read_boxes) on odd bytes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import yolo_io
from yolo_io import _cli
from yolo_io._diagnosis.data import (
    DataCheck,
    DataFinding,
    check_data,
    label_path,
    plot,
    read_boxes,
)
from yolo_io._diagnosis.text_files import fgetl_lines

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"  # what stat() sees; never decoded without images=True

# A detector with one [yolo] head for 3 classes; the training options are
# filled in by train_cfg().
HEAD = """\
[convolutional]
filters={filters}
size=1
stride=1
pad=1
activation=linear

[yolo]
mask=0,1,2
anchors=10,13, 16,30, 33,23
classes=3
num=3
max={max}
"""
GOOD_NET = """\
[net]
batch=64
subdivisions=16
width=224
height=224
channels=3
max_batches=6000
policy=steps
steps=4800,5400
scales=.1,.1

"""
# batch not divisible (line 3), width/height not multiples of 32 (line 4),
# a step beyond max_batches (line 10), fewer scales than steps (line 11).
BAD_NET = """\
[net]
batch=64
subdivisions=24
width=200
height=224
channels=3
max_batches=1000
policy=steps
# the schedule
steps=800,2000
scales=.1

"""


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def image(root: Path, name: str, labels: str | bytes | None = "0 0.5 0.5 0.2 0.2\n") -> str:
    """An image (its first bytes) and, unless None, its label file beside it."""
    write(root / name, JPEG)
    if labels is not None:
        write(root / label_path(name), labels)
    return name


def dataset(root: Path, *, train: bytes | None = None, valid: bytes | None = None,
            data: str | None = None, names: str = "cat\ndog\nbird\n") -> Path:
    """A clean dataset in ``root`` (relative paths, as darknet is run from
    there): obj.data, obj.names, train.txt, valid.txt, backup/."""
    if train is None:
        train = "".join(image(root, f"data/obj/t{i}.jpg", f"{i % 3} 0.5 0.5 0.2 0.3\n") + "\n"
                        for i in range(6)).encode()
    if valid is None:
        valid = (image(root, "data/obj/v0.jpg", "1 0.4 0.6 0.3 0.3\n2 0.5 0.5 0.9 0.9\n")
                 + "\n").encode()
    write(root / "train.txt", train)
    write(root / "valid.txt", valid)
    write(root / "obj.names", names)
    (root / "backup").mkdir(exist_ok=True)
    return write(root / "obj.data", data if data is not None else
                 "classes = 3\ntrain = train.txt\nvalid = valid.txt\nnames = obj.names\n"
                 "backup = backup/\n")


def train_cfg(root: Path, net: str = GOOD_NET, filters: int = 24, max_boxes: int = 90) -> Path:
    return write(root / "yolo-obj.cfg", net + HEAD.format(filters=filters, max=max_boxes))


def where(report: DataCheck) -> set[tuple[str, str, int | None]]:
    """(kind, file name, line) of every finding."""
    return {(f.kind, Path(f.path or "").name, f.line) for f in report.findings}


# -- a clean dataset ---------------------------------------------------------------------


def test_a_clean_dataset_is_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = dataset(tmp_path)
    cfg = train_cfg(tmp_path)
    monkeypatch.chdir(tmp_path)
    report = check_data("obj.data", cfg=cfg, progress=False)
    assert report.ok and report.findings == (), str(report)
    assert isinstance(report, yolo_io.DataCheck)
    assert (report.train_images, report.valid_images, report.labels) == (6, 1, 6)
    assert report.boxes_per_class == (2, 2, 2) and report.boxes == 6
    assert report.class_names == ("cat", "dog", "bird") and report.classes == 3
    assert report.root == str(tmp_path) and report.train == str(tmp_path / "train.txt")
    assert report.classes_without_boxes == () and report.images_without_boxes == 0
    assert "ready to train" in str(report) and "2 bird" in str(report)
    doc = json.loads(json.dumps(report.to_dict()))
    assert doc["ok"] and doc["boxes_per_class"] == [2, 2, 2] and doc["findings"] == []
    # the same from another folder, with root=
    monkeypatch.chdir(tmp_path.parent)
    assert check_data(data, cfg=cfg, root=tmp_path, progress=False).findings == ()


def test_the_command_on_a_clean_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    dataset(tmp_path)
    train_cfg(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert _cli.main(["check-data", "obj.data", "--cfg", "yolo-obj.cfg", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("obj.data: ready to train") and f"relative to {tmp_path}" in out
    assert _cli.main(["check-data", "obj.data", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["plot"] is None and doc["train_images"] == 6


def test_classes_without_boxes_are_named(tmp_path: Path) -> None:
    train = (image(tmp_path, "a.jpg", "0 0.5 0.5 0.2 0.2\n") + "\n"
             + image(tmp_path, "b.jpg", "") + "\n").encode()
    data = dataset(tmp_path, train=train, data="classes=3\ntrain=train.txt\nvalid=train.txt\n"
                                                "names=obj.names\nbackup=backup\n")
    report = check_data(data, root=tmp_path, progress=False)
    assert report.boxes_per_class == (1, 0, 0) and report.classes_without_boxes == (1, 2)
    assert report.images_without_boxes == 1 and report.labels == 2
    assert "classes without a box: 1 dog, 2 bird" in str(report)
    assert where(report) == {("valid-is-train", "obj.data", 3)}


# -- every fault, planted once -------------------------------------------------------------


def planted(root: Path) -> tuple[Path, Path]:
    """One instance of each fault; returns the .data and the cfg."""
    image(root, "data/obj/ok1.jpg")
    image(root, "data/obj/ok2.jpg")
    image(root, "data/obj/both.jpg")
    image(root, "data/obj/nolabel.jpg", None)
    write(root / "data/obj/empty.jpg", b"")  # an image file of 0 bytes
    write(root / label_path("data/obj/empty.jpg"), "0 0.5 0.5 0.1 0.1\n")
    image(root, "data/obj/anim.gif")
    image(root, "data/obj/badline.jpg", "0 0.5 0.5 0.2 0.2\n1 0.5 0.5 oops 0.2\n2 0.5 0.5 0.2 0.2\n")
    image(root, "data/obj/classid.jpg", "0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.2 0.2\n")
    image(root, "data/obj/negid.jpg", "-1 0.5 0.5 0.2 0.2\n")
    image(root, "data/obj/coords.jpg", "0 0.5 0.5 0.2 0.2\n1 1.5 0.5 0.2 0.2\n")
    image(root, "data/obj/zero.jpg", "2 0.5 0.5 0 0.2\n")
    image(root, "data/obj/crowd.jpg", "0 0.2 0.2 0.1 0.1\n" * 4)
    image(root, "data/obj/tiny.jpg", "0 0.5 0.5 0.001 0.2\n")
    image(root, "data/obj/cr.jpg")
    train = b"\r\n".join([
        b"data/obj/ok1.jpg",            # 1
        b"",                            # 2 blank
        b"data/obj/missing.jpg",        # 3 missing image
        b"data/obj/empty.jpg",          # 4 unreadable (empty) image
        b"data/obj/ok1.jpg",            # 5 duplicate of 1
        b"data/obj/both.jpg",           # 6 also in valid
        b"data/obj/nolabel.jpg",        # 7 label missing
        b"data/obj/anim.gif",           # 8 unsupported extension
        b"data/obj/badline.jpg",        # 9 a label line that is not five numbers
        b"data/obj/classid.jpg",        # 10 class id 7 of 3
        b"data/obj/negid.jpg",          # 11 class id -1
        b"data/obj/coords.jpg",         # 12 x = 1.5
        b"data/obj/zero.jpg",           # 13 w = 0
        b"data/obj/crowd.jpg",          # 14 4 boxes, max=3
        b"data/obj/tiny.jpg",           # 15 under a pixel at 224
        b"data/obj/cr.jpg\r",           # 16 the last line, no \n: its \r stays
    ])
    data = dataset(root, train=train, valid=b"data/obj/ok2.jpg\ndata/obj/both.jpg\n", data=(
        "# a .data with faults\n"        # 1
        "classes = 3\n"                  # 2
        "train = train.txt\n"            # 3
        "valid = valid.txt\n"            # 4
        "names = obj.names\n"            # 5
        "backup = nobackup/\n"           # 6 does not exist
        "eval=\n"                        # 7 no value: refused
        "trian = x.txt\n"                # 8 a typo
    ), names="cat\ndog\n")               # 2 names for classes=3
    return data, train_cfg(root, BAD_NET, max_boxes=3)


EXPECTED = {
    ("backup-missing", "obj.data", 6),
    ("data-refused-line", "obj.data", 7),
    ("data-unknown-key", "obj.data", 8),
    ("data-names", "obj.names", 2),
    ("names-count", "obj.names", 2),
    ("batch", "yolo-obj.cfg", 2),
    ("input-size", "yolo-obj.cfg", 4),
    ("steps", "yolo-obj.cfg", 10),
    ("steps", "yolo-obj.cfg", 11),
    ("crlf", "train.txt", 1),
    ("crlf", "train.txt", 16),
    ("blank-line", "train.txt", 2),
    ("image-missing", "train.txt", 3),
    ("image-unreadable", "train.txt", 4),
    ("duplicate-image", "train.txt", 5),
    ("train-valid-overlap", "valid.txt", 2),
    ("label-missing", "train.txt", 7),
    ("label-extension", "train.txt", 8),
    ("label-format", "badline.txt", 2),
    ("class-id", "classid.txt", 2),
    ("class-id", "negid.txt", 1),
    ("box-coords", "coords.txt", 2),
    ("box-size", "zero.txt", 1),
    ("too-many-boxes", "crowd.txt", None),
    ("box-tiny", "tiny.txt", 1),
}


def test_every_planted_fault_is_found_at_its_line(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    data, cfg = planted(tmp_path)
    monkeypatch.chdir(tmp_path)
    report = check_data(data, cfg=cfg, progress=False)
    assert where(report) == EXPECTED, str(report)
    assert not report.ok and all(f.fix for f in report.findings)
    assert all(isinstance(f, DataFinding) and f.path for f in report.findings)
    severities = [f.severity for f in report.findings]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)
    assert sum(report.counts.values()) == len(report.findings)
    by_kind = {f.kind: f for f in report.findings}
    # what darknet does, in the messages
    assert "trains, then fails at its first save" in by_kind["backup-missing"].message
    assert "yolo-obj_last.weights" in by_kind["backup-missing"].message
    assert "48 images per iteration" in by_kind["batch"].message
    assert "stops at line 2" in by_kind["label-format"].message
    assert "1 box(es)" in by_kind["label-format"].message
    assert "clipped" in by_kind["box-coords"].message or "dropped" in by_kind["box-coords"].message
    assert "'data/obj/cr.jpg\\r'" in str(report)
    assert "(a typo of 'train'?)" in by_kind["data-unknown-key"].message
    # boxes darknet keeps: ok1 (twice), both, badline's first, classid's 0, coords' 0
    # (its x = 1.5 box is outside the image: dropped), crowd's 4; not the label of
    # the image it cannot load (empty.jpg)
    assert report.boxes_per_class == (10, 0, 0), report.boxes_per_class
    text = str(report)
    assert text.splitlines()[0].startswith(f"{data}: ") and "error(s)" in text
    assert f"{tmp_path / 'train.txt'}:3: error [image-missing]" in text


def test_the_command_reports_the_planted_faults(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    planted(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert _cli.main(["check-data", "obj.data", "--cfg", "yolo-obj.cfg", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert not doc["ok"]
    found = {(f["kind"], Path(f["path"]).name, f["line"]) for f in doc["findings"]}
    assert found == EXPECTED
    assert _cli.main(["check-data", "obj.data"]) == 1
    assert "error [image-missing]" in capsys.readouterr().out


def test_a_head_whose_filters_do_not_fit_its_classes(tmp_path: Path) -> None:
    data = dataset(tmp_path)
    cfg = train_cfg(tmp_path, filters=255)  # 80 classes' filters, classes=3
    report = check_data(data, cfg=cfg, root=tmp_path, progress=False)
    (finding,) = report.findings
    assert (finding.kind, Path(finding.path or "").name, finding.line) == \
        ("head-filters", "yolo-obj.cfg", 13)
    assert finding.edits and finding.edits[0].new == "filters=24"
    # the labels are still checked, against the .data's classes
    assert report.boxes_per_class == (2, 2, 2)


def test_heads_that_disagree(tmp_path: Path) -> None:
    data = dataset(tmp_path)
    two = GOOD_NET + HEAD.format(filters=24, max=90) + "\n[route]\nlayers=-2\n\n" + HEAD.format(
        filters=30, max=90).replace("classes=3", "classes=5")
    report = check_data(data, cfg=write(tmp_path / "two.cfg", two), root=tmp_path,
                        progress=False)
    kinds = {f.kind for f in report.findings}
    assert {"heads-disagree", "data-classes", "names-count"} <= kinds
    # darknet's train_detector takes the last head's classes: 5
    assert report.classes == 5


def test_the_defaults_of_a_sparse_data_file(tmp_path: Path) -> None:
    """No backup=, no valid=, no classes=: darknet's defaults, named."""
    image(tmp_path, "a.jpg")
    write(tmp_path / "train.txt", "a.jpg\n")
    data = write(tmp_path / "obj.data", "train=train.txt\n")
    report = check_data(data, root=tmp_path, progress=False)
    msgs = {f.kind: f.message for f in report.findings}
    assert "/backup/ (the default: backup= is not set)" in msgs["backup-missing"]
    assert "data/names.list (the default)" in msgs["names-missing"]
    assert "classes= is not set" in msgs["data-default"]
    assert "valid defaults to train" in msgs["valid-is-train"]


def test_darknet_reads_the_data_file_without_spaces_and_with_comments(tmp_path: Path) -> None:
    """read_data_cfg deletes every space (inside paths too) and keeps inline
    comments; the first copy of a key wins; a key without '=' hides a later
    value."""
    image(tmp_path, "my list.jpg")
    write(tmp_path / "mylist.txt", "a.jpg\n")
    write(tmp_path / "my list.txt", "my list.jpg\n")
    data = write(tmp_path / "obj.data", "train = my list.txt\nvalid=valid.txt # the valid set\n"
                 "names\nnames=obj.names\nbackup=backup\nbackup=other\nclasses=1\n")
    (tmp_path / "backup").mkdir()
    report = check_data(data, root=tmp_path, progress=False)
    assert report.train == str(tmp_path / "mylist.txt")
    msgs = [(f.kind, f.line, f.message) for f in report.findings]
    assert any(k == "list-missing" and "valid.txt#thevalidset" in m
               and "keeps a comment" in m for k, _, m in msgs), msgs
    assert any(k == "data-refused-line" and line == 3 for k, line, _ in msgs)
    assert any(k == "names-missing" and "data/names.list" in m for k, _, m in msgs)
    assert any(k == "data-unknown-key" and line == 6 and "first one, at line 5" in m
               for k, line, m in msgs)


# -- label paths -----------------------------------------------------------------------------

LABEL_PATHS = [
    ("data/obj/img1.jpg", "data/obj/img1.txt"),
    ("/coco/images/train2017/000000000009.jpg", "/coco/labels/train2017/000000000009.txt"),
    ("/coco/images/val2017/000000000139.jpg", "/coco/labels/val2017/000000000139.txt"),
    ("/coco/images/train2014/COCO_train2014_1.jpg", "/coco/labels/train2014/COCO_train2014_1.txt"),
    ("/coco/images/val2014/COCO_val2014_1.jpg", "/coco/labels/val2014/COCO_val2014_1.txt"),
    ("/VOC/VOC2007/JPEGImages/000001.jpg", "/VOC/VOC2007/labels/000001.txt"),
    # only the first occurrence is replaced
    ("/d/JPEGImages/x/JPEGImages/a.jpg", "/d/labels/x/JPEGImages/a.txt"),
    ("/a/images/train2017/images/train2017/b.png", "/a/labels/train2017/images/train2017/b.txt"),
    # a plain /images/ (the YOLOv5 layout) is not replaced
    ("dataset/images/train/a.jpg", "dataset/images/train/a.txt"),
    # backslashes: the COCO and VOC folders, as darknet on Windows writes them
    ("C:\\coco\\images\\train2017\\a.jpg", "C:\\coco\\labels\\train2017\\a.txt"),
    ("C:\\VOC\\JPEGImages\\a.jpg", "C:\\VOC\\labels\\a.txt"),
    ("C:\\data\\images\\a.jpg", "C:\\data\\images\\a.txt"),
    # extensions: case-sensitive, each only at the end
    ("a.JPG", "a.txt"), ("a.jpeg", "a.txt"), ("a.JPEG", "a.txt"), ("a.png", "a.txt"),
    ("a.PNG", "a.txt"), ("a.bmp", "a.txt"), ("a.BMP", "a.txt"), ("a.ppm", "a.txt"),
    ("a.PPM", "a.txt"), ("a.tiff", "a.txt"), ("a.TIFF", "a.txt"),
    ("a.Jpg", "a.Jpg"), ("a.tif", "a.tif"), ("a.webp", "a.webp"), ("a.gif", "a.gif"),
    ("a.jpg.png", "a.jpg.txt"), ("a.png.jpg", "a.png.txt"), ("x.jpgs", "x.jpgs"),
    ("dir.jpg/a", "dir.jpg/a"), ("a.txt", "a.txt"),
    # trim: spaces and tabs at both ends (after the folders), then the extension
    ("  a.jpg \t", "a.txt"), ("a.jpg\r", "a.jpg\r"),
    # the folder patterns need their slashes on both sides
    ("/JPEGImages.jpg", "/JPEGImages.txt"), ("JPEGImages/a.jpg", "JPEGImages/a.txt"),
    ("", ""),
]


@pytest.mark.parametrize(("image_path", "expected"), LABEL_PATHS)
def test_label_paths_as_replace_image_to_label_derives_them(image_path: str,
                                                            expected: str) -> None:
    assert label_path(image_path) == expected


def test_a_missing_label_in_the_yolov5_layout_says_where_darknet_looks(tmp_path: Path) -> None:
    write(tmp_path / "ds/images/train/a.jpg", JPEG)
    write(tmp_path / "ds/labels/train/a.txt", "0 0.5 0.5 0.1 0.1\n")
    data = dataset(tmp_path, train=b"ds/images/train/a.jpg\n")
    report = check_data(data, root=tmp_path, progress=False)
    (missing,) = [f for f in report.findings if f.kind == "label-missing"]
    assert "ds/images/train/a.txt" in missing.message
    assert "ds/labels/train/a.txt" in (missing.fix or "") and "beside its image" in (
        missing.fix or "")


# -- darknet's readers on odd bytes -------------------------------------------------------------


@pytest.mark.parametrize(("data", "lines"), [
    (b"", []),
    (b"a\nb\n", [(b"a", 1), (b"b", 2)]),
    (b"a\nb", [(b"a", 1), (b"b", 2)]),
    (b"a\r\nb\r\n", [(b"a", 1), (b"b", 2)]),
    (b"a\r\nb\r", [(b"a", 1), (b"b\r", 2)]),   # the last line keeps its \r
    (b"a\r\nbc\rd", [(b"a", 1), (b"bc", 2)]),   # line[curr-2] == \r cuts the last character
    (b"a\r\r\n", [(b"a\r", 1)]),
    (b"a\rb\rc\r", [(b"a\rb\rc\r", 1)]),        # old Mac line ends: one line
    (b"\n\n", [(b"", 1), (b"", 2)]),
    (b"ab\0cd\nef\ngh\n", [(b"abef", 1), (b"gh", 3)]),  # a NUL joins the next line
    (b"ab\0cd", [(b"ab", 1)]),
])
def test_fgetl(data: bytes, lines: list[tuple[bytes, int]]) -> None:
    assert fgetl_lines(data) == lines


def test_fgetl_of_a_long_line_with_a_nul() -> None:
    long = b"x" * 600
    assert fgetl_lines(long + b"\0y\nz\n") == [(long + b"z", 1)]
    assert fgetl_lines(long + b"\n") == [(long, 1)]


def f32(value: float) -> float:
    """``value`` as a C float stores it (what darknet's ``%f`` gives)."""
    return float(np.float32(value))


INF, NAN = float("inf"), float("nan")


# What glibc's fscanf("%d %f %f %f %f") loop of data.c:read_boxes reads, as a C
# program of that loop printed it (glibc 2.36, x86-64; /work/review4/rb.c).
@pytest.mark.parametrize(("data", "boxes", "stop"), [
    (b"0 0.5 0.5 0.1 0.1\n1 .2 .3 .4 .5", [(0, .5, .5, .1, .1), (1, .2, .3, .4, .5)], None),
    (b"0 0.5 0.5\n0.1 0.1 1 .2 .3 .4 .5\n", [(0, .5, .5, .1, .1), (1, .2, .3, .4, .5)], None),
    (b"0.0 0.5 0.5 0.1 0.1\n", [(0, 0.0, .5, .5, .1)], 1),  # %d takes 0, %f takes .0
    (b"0 0.5 0.5 0.1 0.1 7\n", [(0, .5, .5, .1, .1)], 1),   # an id and then the end
    (b"0 nan 0.5 inf 0.1\n", [(0, NAN, .5, INF, .1)], None),
    (b"0 0x1p-1 0.5 0.1 0.1\r\n", [(0, .5, .5, .1, .1)], None),
    (b"\xff\xfe0\x00 \x00", [], 1),  # UTF-16
    (b"", [], None),
    # %d: strtol's long, cut to an int
    (b"4294967296 .5 .5 .2 .2", [(0, .5, .5, .2, .2)], None),
    (b"4294967295 .5 .5 .2 .2", [(-1, .5, .5, .2, .2)], None),
    (b"2147483648 .5 .5 .2 .2", [(-2147483648, .5, .5, .2, .2)], None),
    (b"-2147483649 .5 .5 .2 .2", [(2147483647, .5, .5, .2, .2)], None),
    (b"99999999999999999999 .5 .5 .2 .2", [(-1, .5, .5, .2, .2)], None),
    (b"-99999999999999999999 .5 .5 .2 .2", [(0, .5, .5, .2, .2)], None),
    (b"9" * 5000 + b" .5 .5 .2 .2", [(-1, .5, .5, .2, .2)], None),  # past int()'s 4300 digits
    # %f: an exponent without digits is none (glibc before its bug 12701 fix)
    (b"0 0.5 0.5 0.2 1e\n1 .5 .5 .2 .2", [(0, .5, .5, .2, 1), (1, .5, .5, .2, .2)], None),
    (b"0 0.5 0.5 0.2 1e+\n1 .5 .5 .2 .2", [(0, .5, .5, .2, 1), (1, .5, .5, .2, .2)], None),
    (b"0 .5 .5 .2 1.5e", [(0, .5, .5, .2, 1.5)], None),
    (b"0 0x1p .5 .2 .2\n1 .5 .5 .2 .2", [(0, 1, .5, .2, .2), (1, .5, .5, .2, .2)], None),
    (b"0 .5 .5 .2 0x1p+", [(0, .5, .5, .2, 1)], None),
    (b"0 .5 .5 .2 1e5.5", [(0, .5, .5, .2, 100000)], 1),  # ".5" is then read as an id: fails
    # hexadecimal: "0x." is 0, "0x" without a digit fails
    (b"0 0x. .5 .2 .2\n1 .5 .5 .2 .2", [(0, 0, .5, .2, .2), (1, .5, .5, .2, .2)], None),
    (b"0 .5 .5 .2 0x.8", [(0, .5, .5, .2, .5)], None),
    (b"0 .5 .5 .2 0x1e", [(0, .5, .5, .2, 30)], None),
    (b"0 0x .5 .2 .2\n1 .5 .5 .2 .2", [], 1),
    (b"0 .5 .5 .2 -0x", [], 1),
    (b"0 .5 .5 .2 0xg", [], 1),
    # infinity: a partial "infinity" fails; nan stops at a "("
    (b"0 .5 .5 .2 infx 1 .5 .5 .2 .2", [(0, .5, .5, .2, INF)], 1),
    (b"0 .5 .5 .2 infinity", [(0, .5, .5, .2, INF)], None),
    (b"0 infin .5 .2 .2\n1 .5 .5 .2 .2", [], 1),
    (b"0 .5 .5 .2 infi", [], 1),
    (b"0 .5 .5 .2 nan(1) 1 .5 .5 .2 .2", [(0, .5, .5, .2, NAN)], 1),
    (b"0 nan(abc) .5 .2 .2", [], 1),
    (b"0 . .5 .2 .2", [], 1),
    (b"0 .e1 .5 .2 .2", [], 1),
    (b"+ .5 .5 .2 .2", [], 1),
    # a C float: rounded, overflowing to infinity, underflowing to 0
    (b"0 1.00000001 .5 .2 .2", [(0, 1, .5, .2, .2)], None),
    (b"0 .5 .5 .2 3.4028236e38", [(0, .5, .5, .2, INF)], None),
    (b"0 .5 .5 .2 1e-46", [(0, .5, .5, .2, 0)], None),
    (b"0 .5 .5 .2 0x1p-150", [(0, .5, .5, .2, 0)], None),
    (b"0 .5 .5 .2 0x1p99999", [(0, .5, .5, .2, INF)], None),
])
def test_read_boxes(data: bytes, boxes: list[tuple[float, ...]], stop: int | None) -> None:
    got, stopped = read_boxes(data)
    as_tuples = [(b.id, b.x, b.y, b.w, b.h) for b in got]
    assert len(as_tuples) == len(boxes) and stopped == stop, (as_tuples, stopped)
    for a, b in zip(as_tuples, boxes, strict=True):
        assert a[0] == b[0] and [str(x) for x in a[1:]] == [str(f32(x)) for x in b[1:]]


def test_read_boxes_counts_lines_in_linear_time() -> None:
    """The line of each box is counted forward, not from the start of the
    file for each box (quadratic: minutes for a label file of 100,000 boxes)."""
    scanned = []

    class Counting(bytes):
        def count(self, sub: bytes, start: int = 0,  # type: ignore[override]
                  end: int | None = None) -> int:
            scanned.append((len(self) if end is None else end) - start)
            return super().count(sub, start, end)

    data = Counting(b"0 0.5 0.5 0.2 0.2\n" * 3000 + b"oops\n")
    boxes, stop = read_boxes(data)
    assert len(boxes) == 3000 and boxes[-1].line == 3000 and stop == 3001
    assert sum(scanned) <= 2 * len(data), sum(scanned)
    scanned.clear()
    listed = Counting(b"a\0b\n" + b"name.jpg\n" * 3000)  # a NUL: fgetl step by step
    lines = fgetl_lines(listed)
    assert len(lines) == 3000 and lines[0] == (b"aname.jpg", 1) and lines[-1] == (b"name.jpg",
                                                                                  3001)
    assert sum(scanned) <= 2 * len(listed), sum(scanned)


def test_odd_bytes_in_the_lists_and_labels_do_not_crash(tmp_path: Path) -> None:
    image(tmp_path, "ok.jpg", b"\x00\xff garbage \x00\n" + b"9" * 100 + b" 1 1 1 1\n")
    train = (b"ok.jpg\n" + b"\xff\xfename.jpg\n" + b"a" * 100_000 + b".jpg\n" + b"nul\0.jpg\n"
             + b"next.jpg\n" + b"/dev/null\n" + b"/\n")
    data = dataset(tmp_path, train=train, valid=b"\n")
    report = check_data(data, root=tmp_path, progress=False)
    kinds = {f.kind for f in report.findings}
    assert {"nul-byte", "image-missing", "label-format", "image-unreadable"} <= kinds
    assert "File name too long" in str(report)
    assert "\\xff\\xfename.jpg" in str(report)  # printable, as its bytes
    json.dumps(report.to_dict())


def test_a_huge_label_count_is_capped_but_counted(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The counts say how many were found, the report how many it kept, and
    the hint promises no more than --json has."""
    import yolo_io._diagnosis.data as module

    monkeypatch.setattr(module, "MAX_FINDINGS_PER_KIND", 3)
    train = "".join(image(tmp_path, f"i{i}.jpg", None) + "\n" for i in range(10)).encode()
    report = check_data(dataset(tmp_path, train=train), root=tmp_path, progress=False)
    assert report.counts["label-missing"] == 10 and report.totals["error"] == 10
    assert sum(f.kind == "label-missing" for f in report.findings) == 3
    text = str(report)
    assert text.splitlines()[0].startswith(f"{report.data}: 10 error(s), 0 warning(s)")
    assert "(10 finding(s) found, 3 kept: at most 3 of a kind" in text.splitlines()[0]
    assert "... [label-missing]: 7 more found but not kept" in text
    assert "all of them" not in text
    monkeypatch.setattr(module, "_SHOW_PER_KIND", 2)
    assert ("... [label-missing]: 1 more in --json / to_dict(), 7 more found but not kept"
            in str(report))
    doc = report.to_dict()
    assert doc["counts"] == {"label-missing": 10} and doc["findings_kept"] == 3
    assert doc["totals"] == {"error": 10, "warning": 0, "info": 0}
    assert len(doc["findings"]) == 3
    monkeypatch.chdir(tmp_path)
    assert _cli.main(["check-data", "obj.data", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["totals"]["error"] == 10 and doc["findings_kept"] == len(doc["findings"]) == 3


def test_backup_permissions_and_unreadable_images(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """As root, access() says yes to everything: the answer is simulated."""
    import yolo_io._diagnosis.data as module

    data = dataset(tmp_path)
    real = os.access

    def access(path: str, mode: int, *, dir_fd: int | None = None) -> bool:
        if str(path).rstrip("/").endswith(("backup", "t1.jpg")):
            return False
        return real(path, mode, dir_fd=dir_fd)

    monkeypatch.setattr(module.os, "access", access)
    report = check_data(data, root=tmp_path, progress=False)
    got = {(f.kind, f.line) for f in report.findings}
    assert got == {("backup-unwritable", 5), ("image-unreadable", 2)}


def test_backup_path_too_long_for_darknet(tmp_path: Path) -> None:
    deep = "b" * 120 + "/" + "c" * 120
    (tmp_path / deep).mkdir(parents=True)
    data = dataset(tmp_path, data=f"classes=3\ntrain=train.txt\nvalid=valid.txt\nnames=obj.names"
                                  f"\nbackup={deep}\n")
    report = check_data(data, cfg=train_cfg(tmp_path), root=tmp_path, progress=False)
    assert {(f.kind, f.line) for f in report.findings} == {("backup-path-too-long", 5)}


def test_empty_and_missing_lists(tmp_path: Path) -> None:
    data = dataset(tmp_path, train=b"", valid=b"x.jpg\n")
    (tmp_path / "valid.txt").unlink()
    report = check_data(data, root=tmp_path, progress=False)
    got = {(f.kind, f.severity, Path(f.path or "").name) for f in report.findings}
    assert got == {("list-empty", "error", "train.txt"), ("list-missing", "warning", "obj.data")}


# -- bad input: typed errors ---------------------------------------------------------------------


def test_bad_input_is_a_typed_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(FileNotFoundError):
        check_data(tmp_path / "nothere.data")
    assert _cli.main(["check-data", str(tmp_path / "nothere.data")]) == 3
    assert "nothere.data: No such file" in capsys.readouterr().err
    with pytest.raises(IsADirectoryError):
        check_data(tmp_path)
    for text in ("just some text\nno options\n", "", "\x00\x01\x02binary", "[net]\nbatch=1\n"):
        bad = write(tmp_path / "bad.data", text)
        with pytest.raises(yolo_io.FormatError, match=r"bad\.data"):
            check_data(bad)
        assert _cli.main(["check-data", str(bad), "--json"]) == 3
        captured = capsys.readouterr()
        assert json.loads(captured.out)["exit_code"] == 3 and "bad.data" in captured.err
    with pytest.raises(FileNotFoundError):
        check_data(dataset(tmp_path), root=tmp_path / "nofolder")
    with pytest.raises(TypeError, match="data_file must be a path"):
        check_data(3)  # type: ignore[arg-type]
    assert _cli.main(["check-data"]) == 2


def test_a_missing_optional_dependency_is_exit_4(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = dataset(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert _cli.main(["check-data", str(data), "--plot", str(tmp_path / "p.png")]) == 4
    assert "matplotlib" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    assert _cli.main(["check-data", str(data), "--images"]) == 4
    assert "pip install Pillow" in capsys.readouterr().err
    with pytest.raises(ImportError, match="Pillow"):
        check_data(data, images=True)


def test_images_reads_headers(tmp_path: Path) -> None:
    pil = pytest.importorskip("PIL.Image")
    pil.new("RGB", (8, 6)).save(tmp_path / "real.png")
    write(tmp_path / "real.txt", "0 0.5 0.5 0.5 0.5\n")
    image(tmp_path, "fake.jpg")  # only a JPEG's first bytes
    data = dataset(tmp_path, train=b"real.png\nfake.jpg\n", valid=b"real.png\n")
    assert {f.kind for f in check_data(data, root=tmp_path, progress=False).findings} == {
        "train-valid-overlap"}
    report = check_data(data, root=tmp_path, images=True, progress=False)
    assert {(f.kind, f.line) for f in report.findings} == {("image-unreadable", 2),
                                                           ("train-valid-overlap", 1)}


def test_progress(tmp_path: Path) -> None:
    events: list[tuple[int, int, str]] = []
    check_data(dataset(tmp_path), root=tmp_path, progress=lambda *e: events.append(e))
    assert events[-1][:2] == (7, 7) and all(e[1] == 7 for e in events)
    with pytest.raises(TypeError, match="progress must be"):
        check_data(dataset(tmp_path), root=tmp_path, progress="yes")  # type: ignore[arg-type]


# -- the plot ------------------------------------------------------------------------------------


def test_plot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
              capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib", reason="the plot needs matplotlib (the plot extra)")
    dataset(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert _cli.main(["check-data", "obj.data", "--plot", "boxes.png", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["plot"] == "boxes.png"
    assert (tmp_path / "boxes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = check_data("obj.data", progress=False)
    for name in ("obj.data", "obj.names", "train.txt", "valid.txt", "data/obj/t1.jpg",
                 "data/obj/t1.txt"):
        before = (tmp_path / name).read_bytes()
        with pytest.raises(yolo_io.OutputIsInputError):
            plot(report, name)
        assert (tmp_path / name).read_bytes() == before
    assert _cli.main(["check-data", "obj.data", "--plot", "data/obj/v0.txt"]) == 2
    assert _cli.main(["check-data", "obj.data", "--plot", "obj.data"]) == 2
    assert not list(tmp_path.glob(".yolo_io-*"))


# -- what darknet trains with: the class count, the head ----------------------------------

REGION = """\
[convolutional]
filters=40
size=1
stride=1
pad=1
activation=linear

[region]
anchors=1,1, 2,2, 3,3, 4,4, 5,5
classes=3
coords=4
num=5
"""
GAUSSIAN = """\
[convolutional]
filters=36
size=1
stride=1
pad=1
activation=linear

[Gaussian_yolo]
mask=0,1,2
anchors=10,13, 16,30, 33,23
classes=3
num=3
"""
DETECTION = """\
[connected]
output=637
activation=linear

[detection]
classes=3
coords=4
rescore=1
side=7
num=2
softmax=0
sqrt=1
"""
NO_HEAD = """\
[convolutional]
filters=8
size=3
stride=1
pad=1
activation=leaky
"""


def test_a_huge_class_count_allocates_nothing_per_class(tmp_path: Path) -> None:
    """classes=50000000 in the .data (or the cfg) is reported, and no list
    of 50 million counters is made (boxes are counted per class id seen)."""
    import tracemalloc

    train = (image(tmp_path, "a.jpg", "0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2 0.2\n") + "\n").encode()
    data = dataset(tmp_path, train=train, data="classes=50000000\ntrain=train.txt\n"
                                                "valid=valid.txt\nnames=obj.names\nbackup=backup\n")
    huge = GOOD_NET + HEAD.format(filters=3 * (50_000_000 + 5), max=90).replace(
        "classes=3", "classes=50000000")
    cfg = write(tmp_path / "huge.cfg", huge)
    tracemalloc.start()
    try:
        report = check_data(data, root=tmp_path, progress=False)
        with_cfg = check_data(data, cfg=cfg, root=tmp_path, progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 30 << 20, peak  # a list of 50 million ints is 400 MB
    (finding,) = [f for f in report.findings if f.kind == "data-classes"]
    assert finding.severity == "error" and finding.line == 1
    assert "more than 100,000 classes" in finding.message
    assert "`detector train` ignores it" in finding.message
    assert "calc_anchors" in finding.message and finding.fix == "classes=3, the number of lines " \
                                                                 "of the .names file"
    # the labels are checked against the .names' count instead
    assert report.classes == 3 and report.boxes_per_class == (1, 1, 0)
    assert with_cfg.classes == 50_000_000 and len(with_cfg.boxes_per_class) == 100_000
    assert with_cfg.boxes == 2 and with_cfg.boxes_per_class[:3] == (1, 1, 0)
    assert len(str(with_cfg)) < 100_000  # the first 1000 classes listed, the rest counted
    assert "... and 99000 more classes" in str(with_cfg)


@pytest.mark.parametrize(("value", "message"), [
    ("abc", "classes=abc (darknet reads it with C's atoi: 0): no class count"),
    ("0", "classes=0: no class count"),
    ("-3", "classes=-3: no class count"),
])
def test_a_classes_value_that_is_no_count(tmp_path: Path, value: str, message: str) -> None:
    data = dataset(tmp_path, data=f"classes={value}\ntrain=train.txt\nvalid=valid.txt\n"
                                  f"names=obj.names\nbackup=backup\n")
    report = check_data(data, root=tmp_path, progress=False)
    (finding,) = report.findings
    assert (finding.kind, finding.severity, finding.line) == ("data-classes", "error", 1)
    assert finding.message.startswith(message), finding.message
    assert report.classes == 3 and report.boxes_per_class == (2, 2, 2)  # the .names' count


def test_an_unknown_class_count_skips_the_range_check(tmp_path: Path) -> None:
    """No cfg, no .names, no classes=: nothing to check class ids against;
    said once, and no box is called out of range."""
    train = (image(tmp_path, "a.jpg", "0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.2 0.2\n") + "\n"
             + image(tmp_path, "b.jpg", "-2 0.5 0.5 0.2 0.2\n") + "\n").encode()
    write(tmp_path / "train.txt", train)
    (tmp_path / "backup").mkdir()
    data = write(tmp_path / "obj.data", "train=train.txt\nbackup=backup\n")
    report = check_data(data, root=tmp_path, progress=False)
    kinds = {f.kind: f for f in report.findings}
    assert set(kinds) == {"data-default", "names-missing", "valid-is-train", "classes-unknown",
                          "class-id"}
    assert kinds["classes-unknown"].severity == "info"
    assert "class ids are not checked" in kinds["classes-unknown"].message
    (negative,) = [f for f in report.findings if f.kind == "class-id"]  # only the -2
    assert negative.line == 1 and Path(negative.path or "").name == "b.txt"
    assert report.classes == 0 and report.boxes_per_class == (1, 0, 0, 0, 0, 0, 0, 1)
    assert report.boxes == 2


def test_a_cfg_without_a_head_is_an_error(tmp_path: Path) -> None:
    """train_detector then takes the classes and max boxes of the last
    layer: 0 and 0, every box dropped."""
    data = dataset(tmp_path)
    cfg = write(tmp_path / "nohead.cfg", GOOD_NET + NO_HEAD)
    report = check_data(data, cfg=cfg, root=tmp_path, progress=False)
    assert not report.ok
    (finding,) = report.findings
    assert (finding.kind, finding.severity, finding.path, finding.line) == (
        "head-missing", "error", str(cfg), 12)
    assert "[convolutional] (layer 0, line 12)" in finding.message
    assert "trains on nothing" in finding.message
    # the labels are checked against the .data's classes
    assert report.classes == 3 and report.boxes_per_class == (2, 2, 2)


def test_a_detection_head_gives_the_class_count(tmp_path: Path) -> None:
    """YOLOv1's [detection] is the last layer: train_detector's classes."""
    train = (image(tmp_path, "a.jpg", "2 0.5 0.5 0.2 0.2\n5 0.5 0.5 0.2 0.2\n") + "\n").encode()
    data = dataset(tmp_path, train=train, names="a\nb\nc\nd\ne\nf\n",
                   data="classes=6\ntrain=train.txt\nvalid=valid.txt\nnames=obj.names\n"
                        "backup=backup\n")
    cfg = write(tmp_path / "v1.cfg", GOOD_NET + DETECTION)
    report = check_data(data, cfg=cfg, root=tmp_path, progress=False)
    assert report.classes == 3 and report.boxes_per_class == (0, 0, 1)
    assert {(f.kind, Path(f.path or "").name, f.line) for f in report.findings} >= {
        ("data-classes", "obj.data", 1), ("class-id", "a.txt", 2)}


@pytest.mark.parametrize(("head", "says"), [
    (HEAD.format(filters=24, max=90),
     "the [yolo] head skips it (yolo_layer.c: class_id < 0): the box is not trained on"),
    (GAUSSIAN, ("the [Gaussian_yolo] head uses the id unchecked as an index in its loss "
                "(gaussian_yolo_layer.c")),
    (REGION, "the [region] head uses the id unchecked as an index in its loss (region_layer.c"),
    (None, ("a [yolo] head then skips it (yolo_layer.c: class_id < 0), a [Gaussian_yolo] or "
            "[region] head uses the id unchecked")),
])
def test_a_negative_class_id_by_head_kind(tmp_path: Path, head: str | None, says: str) -> None:
    train = (image(tmp_path, "a.jpg", "-1 0.5 0.5 0.2 0.2\n") + "\n").encode()
    data = dataset(tmp_path, train=train)
    cfg = None if head is None else write(tmp_path / "x.cfg", GOOD_NET + head)
    report = check_data(data, cfg=cfg, root=tmp_path, progress=False)
    (finding,) = [f for f in report.findings if f.kind == "class-id"]
    assert finding.message.startswith("class id -1 is negative: data.c:fill_truth_detection "
                                      "keeps the box (it checks only id >= classes)")
    assert says in finding.message, finding.message
    assert report.boxes_per_class == (0, 0, 0)


# -- the lists -------------------------------------------------------------------------------


def test_a_list_of_blank_lines_is_an_error(tmp_path: Path) -> None:
    """Blank entries count as images darknet cannot load: no division by 0,
    but nothing to train on."""
    data = dataset(tmp_path, train=b"\n\n \n", valid=b"\n")
    report = check_data(data, root=tmp_path, progress=False)
    assert not report.ok
    (train,) = [f for f in report.findings if f.kind == "list-empty" and f.severity == "error"]
    assert Path(train.path or "").name == "train.txt"
    assert "none of its 3 entries is an image darknet can open" in train.message
    (valid,) = [f for f in report.findings if f.kind == "list-empty" and f.severity == "warning"]
    assert Path(valid.path or "").name == "valid.txt"


def test_long_names_are_cut_in_messages(tmp_path: Path) -> None:
    """A list of one 1 MB line (or a .data value as long) is not repeated
    whole in a message."""
    train = b"d/" + b"x" * 1_000_000 + b".jpg\r"  # no \n: the \r stays
    data = dataset(tmp_path, train=train, data="classes=3\ntrain=train.txt\nvalid=valid.txt\n"
                                               "names=obj.names\nbackup=" + "b" * 100_000 + "\n")
    report = check_data(data, root=tmp_path, progress=False)
    assert {f.kind for f in report.findings} >= {"crlf", "list-empty", "backup-missing"}
    assert all(len(f.message) < 2000 for f in report.findings), [
        (f.kind, len(f.message)) for f in report.findings]
    assert "(1000007 characters)" in str(report)
    assert len(json.dumps(report.to_dict())) < 20_000


# -- label files -----------------------------------------------------------------------------


def test_a_fifo_label_file_is_not_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """darknet's fopen of a FIFO blocks until a writer comes: reported, never
    opened here."""
    import yolo_io._diagnosis.data as module

    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    train = (image(tmp_path, "a.jpg", None) + "\n").encode()
    os.mkfifo(tmp_path / "a.txt")
    opened: list[str] = []
    real_open = os.open

    def spy(path: str, *args: object, **kwargs: object) -> int:
        opened.append(os.fspath(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(module.os, "open", spy)
    report = check_data(dataset(tmp_path, train=train), root=tmp_path, progress=False)
    (finding,) = [f for f in report.findings if f.kind == "label-unreadable"]
    assert Path(finding.path or "").name == "a.txt" and "a FIFO, not a file" in finding.message
    assert not any(p.endswith("a.txt") for p in opened), opened
    assert report.labels == 0 and not report.ok


@pytest.mark.parametrize(("labels", "severity", "says"), [
    ("0 nan 0.5 0.2 0.2\n", "warning",
     "x='nan' is not a plain decimal number: darknet's fscanf reads it as nan (box-coords says"),
    ("0 0.5 0.5 inf 0.2\n", "warning",
     "w='inf' is not a plain decimal number: darknet's fscanf reads it as inf"),
    ("0 0x1p-1 0.5 0.2 0.2\n", "warning",
     "x='0x1p-1' is not a plain decimal number: darknet's fscanf reads it as 0.5"),
    ("0 0.5 0.5 0.2 2e\n", "error",
     ("h='2e' is a number whose exponent has no digits: glibc's fscanf reads it as 2 (glibc "
      "before the fix of its bug 12701), later glibc stops reading the file there")),
])
def test_odd_numbers_are_not_called_shifted(tmp_path: Path, labels: str, severity: str,
                                             says: str) -> None:
    """nan, inf and hexadecimal floats are read as one number each: nothing
    after them shifts."""
    train = (image(tmp_path, "a.jpg", labels + "1 0.5 0.5 0.2 0.2\n") + "\n").encode()
    report = check_data(dataset(tmp_path, train=train), root=tmp_path, progress=False)
    (finding,) = [f for f in report.findings if f.kind == "label-format"]
    assert (finding.severity, finding.line) == (severity, 1)
    assert says in finding.message and "shifted" not in finding.message, finding.message
    assert report.boxes_per_class[1] == 1  # the next line is read as written


def test_an_id_too_large_for_an_int_and_a_float_rounded(tmp_path: Path) -> None:
    """%d cuts 4294967296 to 0 (a box of class 0); %f rounds 1.00000001 to
    1.0 (inside the image)."""
    train = (image(tmp_path, "a.jpg", "4294967296 0.5 0.5 0.2 0.2\n1 1.00000001 0.5 0.2 0.2\n")
             + "\n").encode()
    report = check_data(dataset(tmp_path, train=train), root=tmp_path, progress=False)
    (finding,) = [f for f in report.findings if f.kind != "valid-is-train"]
    assert (finding.kind, finding.line) == ("class-id", 1)
    assert finding.message == ("class id 4294967296 does not fit a C int: darknet's fscanf (%d) "
                               "reads it as 0, and it trains the box as class 0")
    assert report.boxes_per_class == (1, 1, 0)


def test_a_large_label_file_is_streamed(tmp_path: Path) -> None:
    """No object per box is kept: 300,000 boxes take less memory than their
    file's bytes twice; and a file's findings are capped (the rest counted)."""
    import tracemalloc

    big = "0 0.5 0.5 0.2 0.2\n" * 300_000
    bad = "5 0.5 0.5 0.2 0.2\n" * 100  # class 5 of 3: 100 findings
    train = (image(tmp_path, "big.jpg", big) + "\n" + image(tmp_path, "bad.jpg", bad)
             + "\n").encode()
    data = dataset(tmp_path, train=train)
    tracemalloc.start()
    try:
        report = check_data(data, root=tmp_path, progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.boxes_per_class == (300_000, 0, 0)
    assert peak < 2 * len(big), peak
    assert report.counts["class-id"] == 100
    kept = [f for f in report.findings if f.kind == "class-id"]
    assert len(kept) == 20 and [f.line for f in kept] == list(range(1, 21))
    assert "80 more found but not kept" in str(report)

"""yolo_io.diagnose(): each failure users meet, built from the corpus (or our
own cfgs) plus yolo_io.testing, with the exact lines it tells them to change."""

from __future__ import annotations

import pickle
import re
import struct
import zipfile
from pathlib import Path

import pytest
from conftest import SHARED_CFG, TINY_CFG

import yolo_io
from yolo_io import CfgEdit, diagnose
from yolo_io._diagnosis.published import PUBLISHED, published_with_size
from yolo_io.testing import write_weights

# write_weights() parses corpus cfgs that have options darknet ignores.
pytestmark = pytest.mark.filterwarnings("ignore::yolo_io.CfgWarning")

YOLOV4_3_CLASSES = [  # (line, old, new) the stock yolov4.cfg needs for 3 classes
    (961, "filters=255", "filters=24"), (968, "classes=80", "classes=3"),
    (1049, "filters=255", "filters=24"), (1056, "classes=80", "classes=3"),
    (1137, "filters=255", "filters=24"), (1144, "classes=80", "classes=3"),
]


def edited(src: Path, dst: Path, changes: dict[int, str]) -> Path:
    """``src`` with the given 1-based lines replaced, written to ``dst``."""
    lines = src.read_text().split("\n")
    for n, text in changes.items():
        lines[n - 1] = text
    dst.write_text("\n".join(lines))
    return dst


def triples(edits: tuple[CfgEdit, ...]) -> list[tuple[int, str | None, str]]:
    return [(e.line, e.old, e.new) for e in edits]


def kinds(report: yolo_io.Diagnosis) -> list[str]:
    return [f.kind for f in report.findings]


def finding(report: yolo_io.Diagnosis, kind: str) -> yolo_io.Finding:
    found = [f for f in report.findings if f.kind == kind]
    assert found, f"no {kind} finding in {kinds(report)}:\n{report}"
    return found[0]


# -- class counts -------------------------------------------------------------


def test_yolov4_trained_for_3_classes(corpus: Path, tmp_path: Path) -> None:
    stock = corpus / "yolov4.cfg"
    three = edited(stock, tmp_path / "yolov4-3.cfg",
                   {line: new for line, _, new in YOLOV4_3_CLASSES})
    weights = write_weights(tmp_path / "custom.weights", three, sparse=True)
    report = diagnose(weights, stock)
    assert not report.ok
    assert report.findings[0].kind == "class-count"
    fix = report.findings[0]
    assert triples(fix.edits) == YOLOV4_3_CLASSES
    assert {e.path for e in fix.edits} == {str(stock)}
    assert [e.layer for e in fix.edits] == [138, 139, 149, 150, 160, 161]
    assert "classes=3 at every one of its 3 [yolo] heads" in fix.message
    assert report.suggestion() is fix
    # The same weights with the fixed cfg: consistent.
    assert diagnose(weights, three).ok


def test_load_error_names_the_lines(corpus: Path, tmp_path: Path) -> None:
    stock = corpus / "yolov4.cfg"
    three = edited(stock, tmp_path / "yolov4-3.cfg",
                   {line: new for line, _, new in YOLOV4_3_CLASSES})
    weights = write_weights(tmp_path / "custom.weights", three, sparse=True)
    with pytest.raises(yolo_io.WeightsSizeError) as info:
        yolo_io.load(weights, stock)
    msg = str(info.value)
    assert "classes=3" in msg
    for line, old, new in YOLOV4_3_CLASSES:
        assert f"{stock}:{line}: {old}  ->  {new}" in msg
    assert info.value.expected == 257717640  # the attributes are kept
    assert info.value.layer == 159


def test_yolov2_region_class_count(corpus: Path, tmp_path: Path) -> None:
    stock = corpus / "AlexeyAB-yolov2.cfg"
    voc = edited(stock, tmp_path / "voc.cfg", {237: "filters=125", 244: "classes=20"})
    weights = write_weights(tmp_path / "voc.weights", voc, sparse=True)
    fix = diagnose(weights, stock).findings[0]
    assert fix.kind == "class-count"
    assert triples(fix.edits) == [(237, "filters=425", "filters=125"), (244, "classes=80", "classes=20")]
    assert fix.layer is not None and (fix.layer.index, fix.layer.type) == (31, "region")


def test_gaussian_yolo_class_count(corpus: Path, tmp_path: Path) -> None:
    stock = corpus / "Gaussian_yolov3_BDD.cfg"
    text = stock.read_text()
    assert text.count("classes=10") == 3 and text.count("filters=57") == 3  # 3 x (10 + 9)
    (tmp_path / "g.cfg").write_text(text.replace("classes=10", "classes=1")
                                    .replace("filters=57", "filters=30"))
    weights = write_weights(tmp_path / "g.weights", tmp_path / "g.cfg", sparse=True)
    fix = diagnose(weights, stock).findings[0]
    assert fix.kind == "class-count"
    assert [e.new for e in fix.edits] == ["filters=30", "classes=1"] * 3


def test_anchors_per_head(corpus: Path, tmp_path: Path) -> None:
    stock = corpus / "yolov4.cfg"
    text = stock.read_text().replace("filters=255", "filters=170")
    for mask in ("0,1,2", "3,4,5", "6,7,8"):
        text = text.replace(f"mask = {mask}", f"mask = {mask[:3]}")
    (tmp_path / "two.cfg").write_text(text)
    weights = write_weights(tmp_path / "two.weights", tmp_path / "two.cfg", sparse=True)
    fix = diagnose(weights, stock).findings[0]
    assert fix.kind == "anchors-per-head"
    assert "2 anchors per head with classes=80" in fix.message
    assert triples(fix.edits) == [
        (961, "filters=255", "filters=170"), (966, "mask = 0,1,2", "mask=0,1"),
        (1049, "filters=255", "filters=170"), (1054, "mask = 3,4,5", "mask=3,4"),
        (1137, "filters=255", "filters=170"), (1142, "mask = 6,7,8", "mask=6,7")]


def test_class_count_on_own_cfg(tmp_path: Path) -> None:
    """Runs without the corpus: the tiny cfg's head with classes=1 vs 4."""
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    four = tmp_path / "four.cfg"
    four.write_text(TINY_CFG.replace("classes=1", "classes=4").replace("filters=18", "filters=27"))
    weights = write_weights(tmp_path / "w.weights", four, seed=0)
    fix = diagnose(weights, cfg).findings[0]
    assert fix.kind == "class-count"
    lines = cfg.read_text().split("\n")
    assert [(lines[e.line - 1], e.new) for e in fix.edits] == [
        ("filters=18", "filters=27"), ("classes=1", "classes=4")]


def test_unsolvable_size_gets_no_class_fix(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    weights = write_weights(tmp_path / "w.weights", cfg)
    with weights.open("ab") as f:
        f.write(b"\0" * 12)  # 3 floats: no class count adds 3 floats
    report = diagnose(weights, cfg)
    assert kinds(report) == ["size-long"]
    assert "12 bytes (3 floats) trail" in report.findings[0].message


# -- sizes, partial files, headers --------------------------------------------


def test_short_file_names_the_first_layer_past_the_end(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    weights = write_weights(tmp_path / "w.weights", cfg)
    data = weights.read_bytes()
    weights.write_bytes(data[:-10])
    report = diagnose(weights, cfg)
    short = finding(report, "size-short")
    assert short.layer is not None
    net_cfg = yolo_io.parse_cfg(cfg)
    last = max(layer.index for layer in net_cfg if layer.param_count)
    assert short.layer.index == last
    assert "10 bytes (2 floats + 2 bytes) short" in short.message


def test_partial_backbone(corpus: Path, tmp_path: Path) -> None:
    cfg = corpus / "yolov4.cfg"
    weights = write_weights(tmp_path / "yolov4.conv.137", cfg, layers=137, sparse=True)
    report = diagnose(weights, cfg)
    part = report.findings[0]
    assert part.kind == "partial-file" and part.severity == "error"
    assert "first 137 layers" in part.message and "yolov4.conv.137" in part.message
    assert "partial=True" in (part.fix or "")
    assert "published-model" not in kinds(report)  # named by the partial finding instead
    ok = diagnose(weights, cfg, partial=True)
    assert ok.ok and kinds(ok) == ["partial-file"] and ok.findings[0].severity == "info"


def test_header_with_32_bit_seen(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    weights = write_weights(tmp_path / "w.weights", cfg, version=(0, 1, 0))
    data = bytearray(weights.read_bytes())
    data[4:8] = struct.pack("<i", 2)  # says 0.2 (20 bytes), written with a 16-byte header
    weights.write_bytes(bytes(data))
    fix = diagnose(weights, cfg).findings[0]
    assert fix.kind == "header-seen-32bit"
    assert "32-bit `seen`" in fix.message and "version to 0.1" in (fix.fix or "")


def test_header_with_64_bit_seen(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    weights = write_weights(tmp_path / "w.weights", cfg, version=(0, 2, 0))
    data = bytearray(weights.read_bytes())
    data[4:8] = struct.pack("<i", 1)  # says 0.1 (16 bytes), written with a 20-byte header
    weights.write_bytes(bytes(data))
    fix = diagnose(weights, cfg).findings[0]
    assert fix.kind == "header-seen-64bit"
    assert "version to 0.2" in (fix.fix or "")
    data[0:8] = struct.pack("<ii", 0, 2)  # following the fix makes the file load
    weights.write_bytes(bytes(data))
    assert diagnose(weights, cfg).ok


# -- not a weights file -------------------------------------------------------


def _zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", b"x")


@pytest.mark.parametrize(
    ("make", "kind", "text"),
    [
        (lambda p: p.write_bytes(b""), "empty-file", "empty"),
        (lambda p: p.write_text("<!DOCTYPE html><html><body>Sign in</body></html>"),
         "text-file", "HTML"),
        (lambda p: p.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:ab\n"
                                "size 257717640\n"), "text-file", "git lfs pull"),
        (lambda p: p.write_text(TINY_CFG), "text-file", ".cfg file"),
        (_zip, "archive", "ZIP archive"),
        (lambda p: p.write_bytes(pickle.dumps({"model": [1.0]}, protocol=2)), "archive",
         "pickle"),
        (lambda p: p.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64), "archive", "HDF5"),
        (lambda p: p.write_bytes(b"\x1f\x8b\x08" + b"\0" * 30), "archive", "gzip"),
    ],
    ids=["empty", "html", "git-lfs", "cfg", "zip", "pickle", "hdf5", "gzip"],
)
def test_not_a_weights_file(tmp_path: Path, make: object, kind: str, text: str) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    weights = tmp_path / "model.weights"
    make(weights)  # type: ignore[operator]
    report = diagnose(weights, cfg)
    assert kinds(report) == [kind]
    assert text in report.findings[0].message and report.findings[0].fix


def test_swapped_arguments(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    weights = write_weights(tmp_path / "w.weights", cfg)
    report = diagnose(cfg, weights)
    assert kinds(report) == ["swapped-arguments"]
    assert report.weights == str(weights) and report.cfg == str(cfg)  # read the right way


def test_cfg_error_is_a_finding(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(TINY_CFG + "\n[bogus]\n")
    weights = write_weights(tmp_path / "w.weights", _tiny(tmp_path))
    report = diagnose(weights, cfg)
    assert kinds(report) == ["cfg-error"]
    assert re.search(r"bad\.cfg:\d+:", report.findings[0].message)


def test_classes_changed_without_filters_names_every_filters_line(corpus: Path,
                                                                   tmp_path: Path) -> None:
    """classes=3 in both [yolo] sections of yolov3-tiny, filters=255 left: one
    finding with both filters= lines to change (not one head per run, not the
    section's line), and the class count the weights fit."""
    stock = corpus / "yolov3-tiny.cfg"
    weights = write_weights(tmp_path / "coco.weights", stock, sparse=True)
    text = stock.read_text()
    cfg = tmp_path / "three.cfg"
    cfg.write_text(text.replace("classes=80", "classes=3"))
    filters = [n for n, line in enumerate(text.split("\n"), 1) if line == "filters=255"]
    classes = [n for n, line in enumerate(text.split("\n"), 1) if line == "classes=80"]
    assert len(filters) == len(classes) == 2
    for given in (cfg, str(cfg), cfg.read_text()):
        report = diagnose(weights, given)
        assert kinds(report) == ["head-filters"]
        found = report.findings[0]
        where = str(cfg) if given != cfg.read_text() else "<string>"
        assert triples(found.edits) == [(n, "filters=255", "filters=24") for n in filters]
        assert [str(e).split("   ")[0] for e in found.edits] == [
            f"{where}:{n}: filters=255  ->  filters=24" for n in filters]
        assert f"{weights} fits the cfg as it is with classes=80" in found.message
        assert found.fix is not None and "change these 2 filters= lines for classes=3" in found.fix
        assert ("set classes=80 back at " + ", ".join(f"{where}:{n}" for n in classes)
                in found.fix)
        assert "fix the cfg line the message names" not in str(report)
    # the changed lines parse, and the weights trained for 3 classes fit them
    lines = cfg.read_text().split("\n")
    for n in filters:
        lines[n - 1] = "filters=24"
    retrained = write_weights(tmp_path / "three.weights", "\n".join(lines), sparse=True)
    found = diagnose(retrained, cfg).findings[0]
    assert found.kind == "head-filters" and f"{retrained} fits the cfg with these lines " \
        "changed" in found.message
    # one head only: the one line
    one = tmp_path / "one.cfg"
    one.write_text(text.replace("classes=80", "classes=3", 1))
    found = diagnose(weights, one).findings[0]
    assert found.kind == "head-filters" and triples(found.edits) == [
        (filters[0], "filters=255", "filters=24")]


def _tiny(tmp_path: Path) -> Path:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    return cfg


def test_consistent_pair_is_ok(tmp_path: Path) -> None:
    cfg = _tiny(tmp_path)
    report = diagnose(write_weights(tmp_path / "w.weights", cfg), cfg)
    assert report.ok and report.findings == ()
    assert report.to_dict()["ok"] is True


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        diagnose(tmp_path / "none.weights", _tiny(tmp_path))


# -- other published models ---------------------------------------------------


def test_another_published_model(corpus: Path, tmp_path: Path) -> None:
    weights = write_weights(tmp_path / "model.weights", corpus / "yolov4-tiny.cfg", sparse=True)
    report = diagnose(weights, corpus / "yolov4.cfg")
    hit = finding(report, "published-model")
    assert "official yolov4-tiny.weights (YOLOv4-tiny, COCO, 80 classes" in hit.message
    assert "yolov4-tiny.cfg" in (hit.fix or "")


def test_published_sizes_are_the_manifest_facts() -> None:
    if not SHARED_CFG.is_dir():
        pytest.skip("the corpus manifest is not beside the checkout")
    manifest = (SHARED_CFG / "MANIFEST.md").read_text()
    for p in PUBLISHED:
        assert str(p.size) in manifest, p.file


@pytest.mark.parametrize("entry", PUBLISHED, ids=[p.file for p in PUBLISHED])
def test_published_sizes_follow_from_the_cfgs(entry: object) -> None:
    p = entry
    assert isinstance(p, yolo_io._diagnosis.published.Published)
    names = {"yolov2.cfg": "AlexeyAB-yolov2.cfg", "yolov3.cfg": "AlexeyAB-yolov3.cfg",
             "alexnet.cfg (pjreddie/darknet)": "pjreddie-alexnet.cfg",
             "darknet53.cfg or yolov3.cfg": "darknet53.cfg",
             "csresnext50-panet-spp.cfg": "csresnext50-panet-spp-original-optimal.cfg",
             "enet-coco.cfg": "enet-coco.cfg"}
    cfg = SHARED_CFG / names.get(p.cfg, p.cfg)
    if not cfg.is_file():
        pytest.skip(f"{cfg} is not beside the checkout")
    version = (0, 1) if "16-byte" in p.model else (0, 2)
    assert yolo_io.parse_cfg(cfg).expected_size(version, layers=p.layers) == p.size
    assert p in published_with_size(p.size)


# -- .data and .names -----------------------------------------------------------


def test_data_and_names_disagree_with_the_heads(tmp_path: Path) -> None:
    cfg = _tiny(tmp_path)
    weights = write_weights(tmp_path / "w.weights", cfg)
    names = tmp_path / "obj.names"
    names.write_text("cat\n\ndog\n")
    data = tmp_path / "obj.data"
    data.write_text(f"classes = 3\ntrain = train.txt\nnames = {names}\n# comment\n")
    report = diagnose(weights, cfg, data=data)
    assert not report.ok
    assert sorted(kinds(report)) == ["data-classes", "names-count"]
    dc = finding(report, "data-classes")
    assert f"{data}:1 says classes=3" in dc.message
    assert dc.edits == () and f"set classes=1 at {data}:1" in (dc.fix or "")
    nc = finding(report, "names-count")
    assert "3 lines (1 of them blank" in nc.message
    # An explicit .names that agrees with the heads but not with .data.
    one = tmp_path / "one.names"
    one.write_text("cat\n")
    report = diagnose(weights, cfg, data=data, names=one)
    assert sorted(kinds(report)) == ["data-classes", "data-names"]


def test_names_that_agree(tmp_path: Path) -> None:
    cfg = _tiny(tmp_path)
    names = tmp_path / "one.names"
    names.write_text("person\n")
    report = diagnose(write_weights(tmp_path / "w.weights", cfg), cfg, names=names)
    assert report.ok and report.findings == ()


def test_heads_that_disagree(corpus: Path, tmp_path: Path) -> None:
    text = (corpus / "yolov3-tiny.cfg").read_text()
    first = text.index("classes=80")
    text = text[:first] + "classes=75" + text[first + 10:]
    text = text.replace("filters=255", "filters=240", 1)
    (tmp_path / "mixed.cfg").write_text(text)
    weights = write_weights(tmp_path / "w.weights", tmp_path / "mixed.cfg", sparse=True)
    report = diagnose(weights, tmp_path / "mixed.cfg")
    assert kinds(report) == ["heads-disagree"] and report.ok


def test_names_file_the_data_file_cannot_find(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _tiny(tmp_path)
    data = tmp_path / "obj.data"
    data.write_text("classes=1\nnames=data/obj.names\n")
    monkeypatch.chdir(tmp_path)
    report = diagnose(write_weights(tmp_path / "w.weights", cfg), cfg, data=data)
    assert kinds(report) == ["names-missing"] and report.ok
    assert f"{data}:2 names data/obj.names" in report.findings[0].message


def test_header_fix_for_a_major_version_above_0(tmp_path: Path) -> None:
    cfg = _tiny(tmp_path)
    weights = write_weights(tmp_path / "w.weights", cfg, version=(1, 0, 0))
    weights.write_bytes(weights.read_bytes()[:-4])
    fix = diagnose(weights, cfg).findings[0]
    assert fix.kind == "header-seen-32bit"
    # Following the fix makes the file load.
    data = bytearray(weights.read_bytes())
    data[0:8] = struct.pack("<ii", 0, 1)
    weights.write_bytes(bytes(data))
    assert "version to 0.1" in (fix.fix or "") and diagnose(weights, cfg).ok


def test_ambiguous_class_count_says_so(corpus: Path, tmp_path: Path) -> None:
    stock = corpus / "yolov4.cfg"
    three = edited(stock, tmp_path / "yolov4-3.cfg",
                   {line: new for line, _, new in YOLOV4_3_CLASSES})
    weights = write_weights(tmp_path / "custom.weights", three, sparse=True)
    fix = diagnose(weights, stock).findings[0]
    # filters=24 is also 1 anchor x (19 + 5), 2 x (7 + 5), 4 x (1 + 5)
    assert "also fit 1 anchor per head with classes=19; 2 anchors per head with classes=7; " \
           "4 anchors per head with classes=1" in fix.message
    assert ".names file, one line per class, settles it" in fix.message


def test_cfg_text_and_config(tmp_path: Path) -> None:
    """diagnose() and load() take cfg text or a Config, as load() does."""
    four = TINY_CFG.replace("classes=1", "classes=4").replace("filters=18", "filters=27")
    weights = write_weights(tmp_path / "w.weights", four)
    fix = diagnose(weights, TINY_CFG).findings[0]
    assert fix.kind == "class-count" and {e.path for e in fix.edits} == {"<string>"}
    lines = TINY_CFG.split("\n")
    assert [(lines[e.line - 1], e.new) for e in fix.edits] == [
        ("filters=18", "filters=27"), ("classes=1", "classes=4")]
    with pytest.raises(yolo_io.WeightsSizeError, match=r"<string>:[0-9]+: filters=18  ->  filters=27"):
        yolo_io.load(weights, TINY_CFG)
    cfg = _tiny(tmp_path)
    assert diagnose(weights, yolo_io.parse_cfg(cfg)).findings[0].kind == "class-count"
    assert diagnose(weights, yolo_io.parse_cfg(TINY_CFG)).findings[0].kind == "size-long"


def test_yolov1_detection_class_count(corpus: Path, tmp_path: Path) -> None:
    stock = corpus / "yolov1.cfg"
    text = stock.read_text()
    # output = side^2 x ((1 + coords) x num + classes): 49 x (15 + 20); 49 x (15 + 5) = 980
    assert "output= 1715" in text or "output=1715" in text
    lines = text.split("\n")
    out_line = next(i for i, x in enumerate(lines, 1) if x.replace(" ", "") == "output=1715")
    cls_line = next(i for i, x in enumerate(lines, 1) if x.replace(" ", "") == "classes=20")
    five = edited(stock, tmp_path / "five.cfg", {out_line: "output=980", cls_line: "classes=5"})
    weights = write_weights(tmp_path / "five.weights", five, sparse=True)
    fix = diagnose(weights, stock).findings[0]
    assert fix.kind == "class-count"
    assert [(e.line, e.new) for e in fix.edits] == [(out_line, "output=980"),
                                                     (cls_line, "classes=5")]


def test_load_error_names_the_published_model(corpus: Path, tmp_path: Path) -> None:
    weights = write_weights(tmp_path / "yolov4-tiny.weights", corpus / "yolov4-tiny.cfg",
                            sparse=True)
    with pytest.raises(yolo_io.WeightsSizeError) as info:
        yolo_io.load(weights, corpus / "yolov4.cfg")
    lines = str(info.value).split("\n")
    assert lines[1].startswith(f"Likely cause: {weights} has exactly the size of the official "
                               "yolov4-tiny.weights (YOLOv4-tiny, COCO, 80 classes")
    assert info.value.layer == 69 and info.value.actual == 24251276

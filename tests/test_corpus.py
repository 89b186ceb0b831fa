"""The 40 real cfgs beside the checkout (../shared/cfg): every one parses with
the size MANIFEST.md computes; errors on real models name the right layer."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import pytest
from conftest import SHARED_CFG, corpus_param, manifest_sizes

import yolo_io
from yolo_io.testing import write_weights

# Published partial files (MANIFEST.md, "Partial (.conv.N) files").
PARTIALS = {
    "yolov4.conv.137": ("yolov4.cfg", 137, 170038676),
    "yolov4-tiny.conv.29": ("yolov4-tiny.cfg", 29, 19789716),
    "darknet53.conv.74": ("darknet53.cfg", 74, 162482580),
    "yolov3-tiny.conv.11": ("yolov3-tiny.cfg", 11, 6303188),
    "enetb0-coco.conv.132": ("enet-coco.cfg", 132, 14436180),
}


def parse_quietly(path: Path) -> yolo_io.Config:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", yolo_io.CfgWarning)
        return yolo_io.parse_cfg(path)


@pytest.mark.parametrize("path", corpus_param(exclude=("yolor_csp.cfg",)))
def test_every_cfg_parses_with_the_manifest_size(path: Path) -> None:
    cfg = parse_quietly(path)
    expected = manifest_sizes()[path.name]
    assert cfg.expected_size() == expected
    assert cfg.expected_size((0, 1, 0)) == expected - 4
    # The layer count in MANIFEST's "layers" column.
    row = next(line for line in (SHARED_CFG / "MANIFEST.md").read_text().splitlines()
               if line.startswith(f"| {path.name} |"))
    count = int(re.match(r"(\d+):", row.split("|")[6].strip()).group(1))  # type: ignore[union-attr]
    assert len(cfg) == count
    for layer in cfg:
        assert all(d >= 1 for d in layer.output_shape), layer


def test_yolor_is_not_darknet(corpus: Path) -> None:
    path = corpus / "yolor_csp.cfg"
    first = next(i for i, line in enumerate(path.read_text().splitlines(), 1)
                 if line.strip() == "[implicit_add]")
    with pytest.raises(yolo_io.CfgError, match=r"yolor_csp\.cfg:\d+: unknown section \[implicit_add\]") as e:
        yolo_io.parse_cfg(path)
    assert e.value.line == first == 1222


def test_manifest_partial_sizes(corpus: Path) -> None:
    for cfg_name, layers, size in PARTIALS.values():
        assert parse_quietly(corpus / cfg_name).expected_size(layers=layers) == size


@pytest.mark.parametrize("name", ["yolov4-tiny.conv.29", "yolov3-tiny.conv.11", "enetb0-coco.conv.132"])
def test_partial_files_load_with_partial_true(tmp_path: Path, corpus: Path, name: str) -> None:
    cfg_name, layers, size = PARTIALS[name]
    cfg = parse_quietly(corpus / cfg_name)
    path = write_weights(tmp_path / name, cfg, layers=layers)
    assert path.stat().st_size == size
    # Layers after the cutoff that store nothing (yolov3-tiny's layer 11 is a
    # maxpool) are complete too: the file covers up to the next storing layer.
    covered = next(i for i in range(layers, len(cfg)) if cfg[i].param_count)
    with pytest.raises(yolo_io.WeightsSizeError, match=f"covering the first {covered} layers") as e:
        yolo_io.load(path, cfg)
    assert f"cutoff of {layers}" in str(e.value)
    assert e.value.partial_layers == covered
    net = yolo_io.load(path, cfg, partial=True)
    assert net.covered_layers == covered
    assert net[layers - 1].loaded and not net[covered].loaded


def test_truncating_yolov4_tiny_everywhere(tmp_path: Path, corpus: Path) -> None:
    cfg = parse_quietly(corpus / "yolov4-tiny.cfg")
    full = write_weights(tmp_path / "full.weights", cfg, seed=5)
    work = tmp_path / "cut.weights"
    shutil.copyfile(full, work)
    cases = []
    pos = 20
    for layer in cfg:
        if layer.param_count:
            cases += [(pos, "boundary", layer.index), (pos + 4 * layer.param_count // 2, "inside", layer.index)]
        pos += 4 * layer.param_count
    # Cut one copy from the end backwards: each case is a smaller truncate().
    for size, kind, index in sorted(cases, reverse=True):
        with work.open("r+b") as f:
            f.truncate(size)
        with pytest.raises(yolo_io.WeightsSizeError) as e:
            yolo_io.load(work, cfg)
        if kind == "boundary":
            assert e.value.partial_layers == index, size
        else:
            assert e.value.layer == index, size
            assert f"layer {index} (convolutional, {cfg.path} line {cfg[index].line})" in str(e.value)


def test_another_models_weights_yolov4_tiny_with_yolov4(tmp_path: Path, corpus: Path) -> None:
    tiny = write_weights(tmp_path / "yolov4-tiny.weights", parse_quietly(corpus / "yolov4-tiny.cfg"))
    assert tiny.stat().st_size == 24251276
    cfg = parse_quietly(corpus / "yolov4.cfg")
    with pytest.raises(yolo_io.WeightsSizeError) as e:
        yolo_io.load(tiny, cfg)
    msg = str(e.value)
    assert "yolov4-tiny.weights does not match" in msg and "yolov4.cfg" in msg
    assert "needs 257717640 bytes" in msg and "has 24251276 bytes" in msg
    assert "233466364 bytes (58366591 floats) short" in msg
    assert e.value.layer is not None
    layer = cfg[e.value.layer]
    assert f"layer {layer.index} ({layer.type}, {cfg.path} line {layer.line})" in msg
    assert "another model's weights" in msg

"""An independent oracle: darknet2any's Darknet module (PyPI ``darknet2any``, a
packaging of Tianxiaomo/pytorch-YOLOv4's darknet2pytorch) takes
``yolo_io.torch.state_dict(net, naming="darknet2pytorch")`` with
``load_state_dict(strict=True)`` and then computes exactly what its own
``load_weights`` gives. (Its loader cannot read [connected] layers: it copies a
flat buffer into the 2-d Linear weight, so they are left out here.) Install it with ``pip install --no-deps darknet2any``
(its declared dependencies pull in GPU toolchains); skipped without it."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any

import pytest
from conftest import SHARED_CFG

import yolo_io
from yolo_io.testing import write_weights

torch = pytest.importorskip("torch")
d2p = pytest.importorskip("darknet2any.tool.darknet2pytorch",
                          reason="darknet2any is not installed (pip install --no-deps darknet2any)")
import yolo_io.torch

SMALL = """\
[net]
width=32
height=32
channels=3
[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky
[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=mish
[maxpool]
size=2
stride=2
[convolutional]
filters=8
size=1
stride=1
pad=1
activation=linear
[route]
layers=-1,-2
[convolutional]
batch_normalize=1
filters=16
size=1
stride=1
pad=1
activation=leaky
[shortcut]
from=-4
activation=linear
[convolutional]
filters=18
size=1
stride=1
pad=1
activation=linear
[yolo]
mask=0,1,2
anchors=2,3, 5,7, 9,8
classes=1
num=3
scale_x_y=1.05
"""


def model(cfg: Path) -> Any:
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the network
        m = d2p.Darknet(str(cfg))
    return m.eval()


def outputs(m: Any, x: Any) -> list[Any]:
    """The model's detections, then every layer's output (its forward keeps them)."""
    with torch.no_grad():
        out = m(x)
    layers = [m.outputs[i] for i in sorted(m.outputs)]
    return [*(out if isinstance(out, (list, tuple)) else [out]), *layers]


def check(tmp_path: Path, cfg: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", yolo_io.CfgWarning)
        weights = write_weights(tmp_path / "m.weights", cfg, seed=11, realistic=True)
        net = yolo_io.load(weights, cfg)
    theirs = model(cfg)
    with contextlib.redirect_stdout(io.StringIO()):
        theirs.load_weights(str(weights))
    ours = model(cfg)
    ours.load_state_dict(yolo_io.torch.state_dict(net, naming="darknet2pytorch"), strict=True)
    x = torch.rand(1, 3, ours.height, ours.width, generator=torch.Generator().manual_seed(0))
    expected = outputs(theirs, x)
    got = outputs(ours, x)
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert torch.isfinite(b).all()  # a meaningful comparison, not NaN against NaN
        assert torch.equal(a, b)

    # Fused: the same model built without batch norm, given our fused arrays,
    # computes the same function up to float rounding.
    plain_cfg = tmp_path / "nobn.cfg"
    plain_cfg.write_text(cfg.read_text().replace("batch_normalize=1", "batch_normalize=0"))
    plain = model(plain_cfg)
    plain.load_state_dict(yolo_io.torch.state_dict(net, naming="darknet2pytorch", fuse=True), strict=True)
    for a, b in zip(outputs(plain, x), expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_small_model(tmp_path: Path) -> None:
    cfg = tmp_path / "small.cfg"
    cfg.write_text(SMALL)
    check(tmp_path, cfg)


@pytest.mark.parametrize("name", ["yolov4-tiny", "yolov4"])
def test_corpus_model(tmp_path: Path, name: str) -> None:
    cfg = SHARED_CFG / f"{name}.cfg"
    if not cfg.is_file():
        pytest.skip(f"{cfg} is not there (the real-cfg corpus lives beside the checkout in CI)")
    check(tmp_path, cfg)

"""Fine-tune in PyTorch, go back to Darknet: darknet2any's model built from
yolo_io's state dict, its weights changed in torch, saved by yolo_io.save(),
loads in OpenCV's darknet importer and computes what the torch model computes.
Skipped without torch, darknet2any or OpenCV."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SHARED_CFG

import yolo_io
from yolo_io.testing import write_weights

torch = pytest.importorskip("torch")
d2p = pytest.importorskip("darknet2any.tool.darknet2pytorch",
                          reason="darknet2any is not installed (pip install --no-deps darknet2any)")
cv2 = pytest.importorskip("cv2", reason="opencv-python-headless<5 is not installed")
from test_darknet2any import SMALL

import yolo_io.torch


def fine_tuned(cfg: Path, tmp_path: Path) -> tuple[Any, yolo_io.Network]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", yolo_io.CfgWarning)
        net = yolo_io.load(write_weights(tmp_path / "base.weights", cfg, seed=5, realistic=True,
                                         seen=64_000), cfg)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the network
        model = d2p.Darknet(str(cfg)).eval()
    model.load_state_dict(yolo_io.torch.state_dict(net, naming="darknet2pytorch"), strict=True)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # "fine-tuning": every parameter and BN statistic moves
        for p in [*model.parameters(), *model.buffers()]:
            if p.dtype.is_floating_point:
                p.mul_(1 + 0.05 * torch.randn(p.shape, generator=g))
    return model, net


def check(cfg: Path, tmp_path: Path) -> None:
    model, net = fine_tuned(cfg, tmp_path)
    heads = [layer.index - 1 for layer in net if layer.type == "yolo"]
    captured: dict[int, Any] = {}
    for i in heads:
        model.models[i].register_forward_hook(
            lambda _m, _in, out, i=i: captured.__setitem__(i, out.numpy()))
    x = torch.rand(1, 3, model.height, model.width, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        model(x)
    out = yolo_io.save(tmp_path / "tuned.weights", model.state_dict(), cfg, header=net.header)
    assert yolo_io.load(out, cfg).header == net.header  # seen kept
    opencv = cv2.dnn.readNetFromDarknet(str(cfg), str(out))
    opencv.setInput(x.numpy())
    for i in heads:
        theirs = opencv.forward(f"conv_{i}")
        ours = captured[i]
        assert theirs.shape == ours.shape and np.isfinite(ours).all()
        # OpenCV's batch norm adds 1e-6, darknet's (and torch's) 1e-5.
        assert np.abs(theirs - ours).max() <= 1e-4 * np.abs(ours).max(), i


def test_small_model(tmp_path: Path) -> None:
    cfg = tmp_path / "small.cfg"
    cfg.write_text(SMALL)
    check(cfg, tmp_path)


def test_yolov4_tiny(tmp_path: Path) -> None:
    source = SHARED_CFG / "yolov4-tiny.cfg"
    if not source.is_file():
        pytest.skip(f"{source} is not there (the real-cfg corpus lives beside the checkout in CI)")
    cfg = tmp_path / "yolov4-tiny.cfg"  # 128x128 keeps OpenCV and torch fast
    cfg.write_text(source.read_text().replace("width=416", "width=128")
                   .replace("height=416", "height=128"))
    check(cfg, tmp_path)


def test_unknown_keys_are_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "small.cfg"
    cfg.write_text(SMALL)
    model, _ = fine_tuned(cfg, tmp_path)
    state = {**model.state_dict(), "models.99.conv99.weight": torch.zeros(1)}
    with pytest.raises(yolo_io.ConversionError, match=r"'models\.99\.conv99\.weight'"):
        yolo_io.save(tmp_path / "x.weights", state, cfg)
    assert not (tmp_path / "x.weights").exists()

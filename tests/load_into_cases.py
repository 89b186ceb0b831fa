"""What the load_into tests of both frameworks share: small cfgs, the NumPy
darknet forward pass as their oracle, and corpus cfgs resized for speed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_CFG, resized

import yolo_io
from yolo_io.testing import write_weights

SIZE = 256  # the corpus cfgs' [net] size here (darknet's weights fit any size)


def corpus_cfg(tmp_path: Path, name: str) -> Path:
    """``../shared/cfg/<name>.cfg`` at SIZE x SIZE (skips without the corpus)."""
    source = SHARED_CFG / f"{name}.cfg"
    if not source.is_file():
        pytest.skip(f"{source} is not there (the real-cfg corpus lives beside the checkout in CI)")
    cfg = tmp_path / f"{name}.cfg"
    cfg.write_text(resized(source.read_text(), SIZE))
    return cfg


def corpus_network(tmp_path: Path, name: str, seed: int) -> yolo_io.Network:
    """A corpus cfg at SIZE with realistic random weights."""
    cfg = corpus_cfg(tmp_path, name)
    return yolo_io.load(write_weights(tmp_path / f"{name}.weights", cfg, realistic=True,
                                      seed=seed), cfg)


def small_net(tmp_path: Path, text: str, seed: int = 2) -> yolo_io.Network:
    """A network of cfg ``text`` with realistic random weights."""
    cfg = tmp_path / "s.cfg"
    cfg.write_text(text)
    return yolo_io.load(write_weights(tmp_path / "s.weights", cfg, realistic=True, seed=seed), cfg)


def darknet_output(net: yolo_io.Network, x: np.ndarray) -> np.ndarray:
    """The last layer's output of the NumPy darknet forward pass."""
    from darknet_forward import forward

    return forward(net, x)[len(net) - 1]


CLASSIFIER = """\
[net]
width=8
height=8
channels=3
[convolutional]
batch_normalize=1
filters=6
size=3
stride=1
pad=1
activation=leaky
[convolutional]
batch_normalize=1
filters=6
groups=6
size=3
stride=2
pad=1
activation=relu
[convolutional]
filters=12
groups=3
size=1
activation=linear
[connected]
output=10
activation=linear
[connected]
batch_normalize=1
output=5
activation=relu
"""


CONV_THEN_BATCHNORM = """\
[net]
width=6
height=6
channels=3
[convolutional]
filters=4
size=3
stride=1
pad=1
activation=linear
[batchnorm]
[convolutional]
filters=5
size=1
activation=linear
"""

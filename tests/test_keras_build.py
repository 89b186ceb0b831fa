"""yolo_io.keras.build (issue 24): a Keras 3 functional model (NHWC) from the
shared lowering, run on the torch backend (KERAS_BACKEND=torch), against
onnxruntime running the ONNX export."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from built_models import (
    HEAD_NET,
    HEADS,
    PADDED_CFG,
    activation_cfg,
    assert_outputs_equal,
    load,
)
from conftest import SHARED_CFG, resized
from opencv_oracle import natural_image
from test_onnx import ACTIVATIONS, SYNTHETIC_CFG, UNSUPPORTED, run

import yolo_io

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="Keras 3 is not installed (the test extra)")
pytest.importorskip("torch", reason="PyTorch is not installed (the oracle extra)")
import yolo_io.keras as ykeras
import yolo_io.onnx as yonnx

pytestmark = pytest.mark.filterwarnings("ignore::yolo_io.CfgWarning")


def forward(model: Any, x: np.ndarray) -> list[np.ndarray]:
    """The model's outputs for an NCHW batch, 4-d ones back in NCHW."""
    out = model(x.transpose(0, 2, 3, 1), training=False)
    out = out if isinstance(out, (list, tuple)) else [out]
    arrays = [t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t) for t in out]
    return [a.transpose(0, 3, 1, 2) if a.ndim == 4 else a for a in arrays]


def assert_equal_to_onnx(net: yolo_io.Network, x: np.ndarray, outputs: str = "raw",
                         what: str = "") -> None:
    model = ykeras.build(net, outputs=outputs)  # type: ignore[arg-type]
    want = run(yonnx.export(None, net, outputs=outputs), x)  # type: ignore[arg-type]
    assert list(model.output_names) == list(want)
    assert_outputs_equal(want, forward(model, x), what)


def test_every_supported_layer_equals_onnx(tmp_path: Path) -> None:
    net = load(tmp_path, SYNTHETIC_CFG)
    assert_equal_to_onnx(net, natural_image(*net.input_shape, batch=2))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activations_equal_onnx(tmp_path: Path, activation: str) -> None:
    net = load(tmp_path, activation_cfg(activation))
    assert_equal_to_onnx(net, np.random.default_rng(0).random((2, *net.input_shape),
                                                                dtype=np.float32), what=activation)


@pytest.mark.parametrize("head", HEADS.values(), ids=HEADS.keys())
@pytest.mark.parametrize("outputs", ["raw", "decoded"])
def test_heads_equal_onnx(tmp_path: Path, head: str, outputs: str) -> None:
    net = load(tmp_path, HEAD_NET + head)
    assert_equal_to_onnx(net, natural_image(*net.input_shape, batch=2), outputs)


def test_padded_pooling_weighted_shortcuts_and_local_layers(tmp_path: Path) -> None:
    net = load(tmp_path, PADDED_CFG)
    assert_equal_to_onnx(net, natural_image(*net.input_shape, batch=2))


# The list: Mish, N-ary routes, a classifier, and the tiny detectors.
CORPUS = ["yolov3-tiny.cfg", "yolov4-tiny.cfg", "yolov4-csp.cfg", "yolov7-tiny.cfg",
          "enet-coco.cfg", "pjreddie-darknet19.cfg"]


@pytest.mark.slow
@pytest.mark.parametrize("name", CORPUS)
def test_corpus_equals_onnx(tmp_path: Path, name: str) -> None:
    cfg = SHARED_CFG / name
    if not cfg.is_file():
        pytest.skip(f"{cfg} is not there (the real-cfg corpus lives beside the checkout in CI)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", yolo_io.CfgWarning)
        net = load(tmp_path, resized(cfg.read_text(), 160), cfg.stem)
    x = natural_image(*net.input_shape)
    assert_equal_to_onnx(net, x, "raw", name)
    if any(layer.kind.head for layer in net.config):
        assert_equal_to_onnx(net, x, "decoded", name)


# Keras' get_weights() on the torch backend (NumPy 2's copy keyword)
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_layers_are_named_after_darknets_and_a_cfg_builds_a_trainable_model(
        tmp_path: Path) -> None:
    cfg = tmp_path / "c.cfg"
    cfg.write_text("[net]\nwidth=16\nheight=16\nchannels=3\n\n[convolutional]\n"
                   "batch_normalize=1\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\n\n"
                   + HEADS["yolo"])
    model = ykeras.build(cfg)
    names = {layer.name for layer in model.layers}
    assert {"conv0", "bn0", "conv1", "head_2"} <= names
    assert model.get_layer("bn0").epsilon == pytest.approx(1e-5)
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).random((2, 16, 16, 3), dtype=np.float32)
    before = model.get_layer("conv0").get_weights()[0].copy()
    model.fit(x, np.zeros((2, 8, 8, 21), np.float32), epochs=1, verbose=0)
    assert not np.array_equal(before, model.get_layer("conv0").get_weights()[0])


@pytest.mark.parametrize(("body", "what"), UNSUPPORTED.values(), ids=UNSUPPORTED.keys())
def test_what_no_model_computes_is_refused_naming_the_layer(tmp_path: Path, body: str,
                                                            what: str) -> None:
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("[net]\nwidth=9\nheight=9\nchannels=3\n\n[convolutional]\nfilters=4\nsize=1\n"
                   "activation=linear\n\n" + body)
    bad = max(layer.index for layer in yolo_io.parse_cfg(cfg))
    with pytest.raises(yolo_io.ConversionError, match=what) as info:
        ykeras.build(cfg)
    assert f"{cfg} line" in str(info.value) and f"layer {bad}" in str(info.value)


def test_dilation_with_a_stride_and_a_local_layer_without_weights(tmp_path: Path) -> None:
    """Keras' Conv2D refuses dilation with a stride: a stride-1 convolution,
    then every stride-th row and column (exact). A [local] layer has weights
    only from a network: from a cfg alone it is refused."""
    net = load(tmp_path, "[net]\nwidth=16\nheight=16\nchannels=3\n\n[convolutional]\n"
               "batch_normalize=1\nfilters=4\nsize=3\nstride=2\ndilation=2\npad=1\n"
               "activation=leaky\n\n[convolutional]\nfilters=4\nsize=3\nstride_x=3\n"
               "stride_y=2\ndilation=3\npad=1\nactivation=linear\n")
    assert_equal_to_onnx(net, natural_image(*net.input_shape, batch=2))
    cfg = tmp_path / "c.cfg"
    cfg.write_text("[net]\nwidth=6\nheight=6\nchannels=3\n\n[local]\nfilters=2\nsize=3\n"
                   "stride=1\npad=1\nactivation=leaky\n")
    with pytest.raises(yolo_io.ConversionError, match=r"layer 0 .*line 6.*no trainable "
                                                      r"LocallyConnected2D.*Keras cannot"):
        ykeras.build(cfg)
    assert ykeras.build(load(tmp_path, cfg.read_text(), "local")) is not None


@pytest.mark.filterwarnings("ignore::UserWarning")  # Keras on mixed precision
def test_mixed_precision_pads_with_a_finite_value(tmp_path: Path) -> None:
    """Under mixed_float16 a padded max pooling pads with float16's lowest
    value, not float32's (which does not fit)."""
    net = load(tmp_path, "[net]\nwidth=8\nheight=8\nchannels=3\n\n[convolutional]\n"
               "filters=4\nsize=3\npad=1\nactivation=leaky\n\n[maxpool]\nsize=2\n"
               "stride=1\n")
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        out = forward(ykeras.build(net), natural_image(*net.input_shape))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(out[0]).all()


def test_dropout_drops_only_in_training(tmp_path: Path) -> None:
    net = load(tmp_path, "[net]\nwidth=8\nheight=8\nchannels=3\n\n[convolutional]\n"
               "filters=8\nsize=3\npad=1\nactivation=leaky\n\n[dropout]\nprobability=.5\n")
    model = ykeras.build(net)
    x = natural_image(*net.input_shape).transpose(0, 2, 3, 1)
    a, b = (model(x, training=False).detach().numpy() for _ in range(2))
    np.testing.assert_array_equal(a, b)
    dropped = model(x, training=True).detach().numpy()
    assert (dropped == 0).mean() > 0.3 and not np.array_equal(dropped, a)


def test_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outputs must be 'raw' or 'decoded'"):
        ykeras.build(tmp_path / "x.cfg", outputs="all")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Network, a Config or a cfg path"):
        ykeras.build(None)  # type: ignore[arg-type]

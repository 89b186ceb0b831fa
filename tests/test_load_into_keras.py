"""yolo_io.keras.load_into / check_model: Keras models written the way the
popular Keras YOLO ports write them (hunglc007/tensorflow-yolov4-tflite's
``common.convolutional``: Conv2D without bias + BatchNormalization +
LeakyReLU(0.1), ZeroPadding2D before each stride-2 conv, ``tf.split`` for a
route's groups, branches created in the port's order) take darknet's weights
and then compute what OpenCV's darknet importer computes. Keras 3 runs on the
torch backend here, so TensorFlow is not needed."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from load_into_cases import (
    CLASSIFIER,
    CONV_THEN_BATCHNORM,
    SIZE,
    corpus_network,
    darknet_output,
    small_net,
)
from opencv_oracle import close, natural_image, opencv_heads, opencv_weights

import yolo_io
from yolo_io.testing import write_weights

os.environ.setdefault("KERAS_BACKEND", "torch")
pytest.importorskip("torch", reason="the Keras tests run Keras on the torch backend")
keras = pytest.importorskip("keras", reason="keras is not installed (the test extra)")
if keras.backend.backend() != "torch":  # pragma: no cover - a user's environment
    pytest.skip("these tests run Keras 3 on the torch backend", allow_module_level=True)
from keras import layers, ops

import yolo_io.keras

pytestmark = pytest.mark.filterwarnings("ignore::yolo_io.CfgWarning")


@pytest.fixture(autouse=True)
def _fresh_layer_names() -> None:
    """Keras numbers default layer names per session (conv2d, conv2d_1, ...):
    each test's model starts from conv2d again."""
    keras.backend.clear_session()



# -- a hunglc007-style port ------------------------------------------------------------------


def conv(x: Any, filters: int, size: int, *, down: bool = False, bn: bool = True,
         act: bool = True, name: str | None = None, bias: bool | None = None) -> Any:
    if down:
        x = layers.ZeroPadding2D(((1, 0), (1, 0)))(x)
    x = layers.Conv2D(filters, size, strides=2 if down else 1,
                      padding="valid" if down else "same",
                      use_bias=not bn if bias is None else bias, name=name)(x)
    if bn:
        x = layers.BatchNormalization()(x)
    if act:
        x = layers.LeakyReLU(negative_slope=0.1)(x)
    return x


def route_group(x: Any, groups: int, group_id: int) -> Any:
    return ops.split(x, groups, axis=-1)[group_id]


def yolov4_tiny(classes: int = 80, *, extra: bool = False, bn: bool = True,
                head_name: str | None = None, swapped: bool = False) -> Any:
    """hunglc007's cspdarknet53_tiny + YOLOv4_tiny; its outputs are
    [medium, large], the reverse of darknet's. ``extra``: one 3x3 conv too
    many before the large head; ``bn=False``: convs with biases and no batch
    norms (for fuse=True); ``swapped``: the first CSP block concatenates its
    two convs in the other order (every shape still fits)."""

    def c(x: Any, f: int, s: int, **kw: Any) -> Any:
        return conv(x, f, s, bn=bn and kw.pop("bn", True), **kw)

    inp = keras.Input((SIZE, SIZE, 3))
    x = c(inp, 32, 3, down=True)
    x = c(x, 64, 3, down=True)
    x = c(x, 64, 3)
    for ch in (32, 64, 128):
        route = x
        x = route_group(x, 2, 1)
        x = c(x, ch, 3)
        route_1 = x
        x = c(x, ch, 3)
        x = layers.Concatenate(axis=-1)([route_1, x] if swapped and ch == 32 else [x, route_1])
        x = c(x, 2 * ch, 1)
        route_1 = x
        x = layers.Concatenate(axis=-1)([route, x])
        x = layers.MaxPool2D(2, 2, "same")(x)
        if ch < 128:
            x = c(x, 4 * ch, 3)
    x = c(x, 512, 3)
    x = c(x, 256, 1)
    lobj = c(x, 512, 3)
    if extra:
        lobj = c(lobj, 512, 3)
    lbbox = conv(lobj, 3 * (classes + 5), 1, bn=False, act=False, name=head_name)
    x = c(x, 128, 1)
    x = layers.UpSampling2D(2)(x)
    x = layers.Concatenate(axis=-1)([x, route_1])
    mobj = c(x, 256, 3)
    mbbox = conv(mobj, 3 * (classes + 5), 1, bn=False, act=False)
    return keras.Model(inp, [mbbox, lbbox])


def residual(x: Any, c1: int, c2: int) -> Any:
    short = x
    x = conv(x, c1, 1)
    x = conv(x, c2, 3)
    return layers.Add()([short, x])


def yolov3(classes: int = 80) -> Any:
    """hunglc007's darknet53 + YOLOv3; outputs [small, medium, large]."""
    inp = keras.Input((SIZE, SIZE, 3))
    x = conv(inp, 32, 3)
    x = conv(x, 64, 3, down=True)
    x = residual(x, 32, 64)
    x = conv(x, 128, 3, down=True)
    for _ in range(2):
        x = residual(x, 64, 128)
    x = conv(x, 256, 3, down=True)
    for _ in range(8):
        x = residual(x, 128, 256)
    route_1 = x
    x = conv(x, 512, 3, down=True)
    for _ in range(8):
        x = residual(x, 256, 512)
    route_2 = x
    x = conv(x, 1024, 3, down=True)
    for _ in range(4):
        x = residual(x, 512, 1024)
    out = 3 * (classes + 5)
    heads = []
    for k, (c, route) in enumerate(((512, route_2), (256, route_1), (128, None))):
        for _ in range(2):
            x = conv(x, c, 1)
            x = conv(x, 2 * c, 3)
        x = conv(x, c, 1)
        obj = conv(x, 2 * c, 3)
        heads.append(conv(obj, out, 1, bn=False, act=False))
        if route is not None:
            x = conv(x, c // 2, 1)
            x = layers.UpSampling2D(2)(x)
            x = layers.Concatenate(axis=-1)([x, route])
        assert k < 3
    return keras.Model(inp, heads[::-1])


# -- helpers ------------------------------------------------------------------------------------


def network(tmp_path: Path, name: str) -> yolo_io.Network:
    return corpus_network(tmp_path, name, seed=3)


def numpy(x: Any) -> np.ndarray:
    """A Keras variable's or the torch backend's tensor's values (not through
    keras.ops.convert_to_numpy, whose np.array(tensor) warns on NumPy 2)."""
    x = getattr(x, "value", x)
    return np.array(x.detach().cpu().numpy())


def values(model: Any) -> list[np.ndarray]:
    return [numpy(v) for v in model.weights]


def assert_equals_opencv(net: yolo_io.Network, model: Any, tmp_path: Path) -> None:
    x = natural_image(3, SIZE, SIZE)
    expected = opencv_heads(Path(net.config.path), opencv_weights(net, tmp_path / "cv.weights"), x)
    got = [numpy(y).transpose(0, 3, 1, 2)
           for y in model(x.transpose(0, 2, 3, 1), training=False)]
    by_shape = {a.shape: a for a in got}
    assert len(by_shape) == len(expected)
    for b in expected:
        assert np.isfinite(b).all() and np.ptp(b) > 0.1  # a meaningful comparison
        assert close(by_shape[b.shape], b) is None, b.shape


def unchanged_after(model: Any, call: Callable[[], object]) -> None:
    before = values(model)
    call()
    assert all(np.array_equal(a, b) for a, b in zip(before, values(model), strict=True))


# -- the ports compute what darknet computes ---------------------------------------------------


def test_yolov4_tiny_port_equals_opencv(tmp_path: Path) -> None:
    net = network(tmp_path, "yolov4-tiny")
    model = yolov4_tiny()
    pairing = yolo_io.keras.load_into(model, net)
    assert_equals_opencv(net, model, tmp_path)
    rows = pairing.rows()
    assert [r["layer"] for r in rows] == [u.index for u in net if u.param_count]
    assert all(r["paired_by"] == "data flow" and r["status"] == "ok" for r in rows)
    assert rows[-1]["framework"] == model.outputs[0]._keras_history.operation.name
    # Keras' epsilon (1e-3) was compensated: the variances are darknet's + 1e-5 - 1e-3.
    bn = model.get_layer("batch_normalization")
    np.testing.assert_allclose(numpy(bn.moving_variance),
                               net[0].params["rolling_variance"] + 1e-5 - 1e-3, rtol=1e-6)


@pytest.mark.slow
def test_yolov3_port_equals_opencv(tmp_path: Path) -> None:
    net = network(tmp_path, "AlexeyAB-yolov3")
    model = yolov3()
    # Keras lists the layers in another order than darknet's (topologically,
    # heads interleaved): pairing by order would fail; the graph does not.
    names = [layer.name for layer in model.layers if isinstance(layer, layers.Conv2D)]
    assert names != sorted(names, key=lambda n: int(n.partition("_")[2] or 0))
    yolo_io.keras.load_into(model, net)
    assert_equals_opencv(net, model, tmp_path)


def test_fused_into_convs_with_biases(tmp_path: Path) -> None:
    net = network(tmp_path, "yolov4-tiny")
    model = yolov4_tiny(bn=False)
    with pytest.raises(yolo_io.ModelMismatchError, match=r"pass fuse=True"):
        yolo_io.keras.load_into(model, net)
    pairing = yolo_io.keras.load_into(model, net, fuse=True)
    assert {r["status"] for r in pairing.rows()} == {"ok", "ok, batch norm fused"}
    assert_equals_opencv(net, model, tmp_path)


# -- the three classic mistakes ------------------------------------------------------------


def test_wrong_class_count_names_the_lines_and_changes_nothing(tmp_path: Path) -> None:
    net = network(tmp_path, "yolov4-tiny")
    model = yolov4_tiny(classes=3)
    cfg = net.config.path
    with pytest.raises(yolo_io.ModelMismatchError) as info:
        unchanged_after(model, lambda: yolo_io.keras.load_into(model, net))
    err = info.value
    head = model.outputs[1]._keras_history.operation.name
    assert str(err).startswith(
        f"keras layer {head!r} (Conv2D) does not fit darknet layer 29 ([convolutional], {cfg} "
        "line 217): expected conv 1x1 512->255 (kernel 1x1x512x255, bias 255), found conv 1x1 "
        "512->24 (kernel 1x1x512x24, bias 24). The model was built for 3 classes (3 anchors x "
        f"(3 + 5) = 24 filters); the cfg is for 80: {cfg}:221/274: filters=255 and "
        f"{cfg}:229/280: classes=80. Build the model for 80 classes, or use weights and a cfg "
        "trained for 3 (filters=24, classes=3).")
    assert (err.framework_layer, err.darknet_layer, err.line) == (head, 29, 217)
    assert err.expected == {"kernel": (1, 1, 512, 255), "bias": (255,)}
    assert err.found == {"kernel": (1, 1, 512, 24), "bias": (24,)}
    # The same through check_model, which never assigns.
    with pytest.raises(yolo_io.ModelMismatchError, match="built for 3 classes"):
        yolo_io.keras.check_model(model, net.config)


def test_an_extra_layer_is_named_and_changes_nothing(tmp_path: Path) -> None:
    net = network(tmp_path, "yolov4-tiny")
    model = yolov4_tiny(extra=True)
    extra = model.get_layer("conv2d_17")
    assert extra.kernel.shape == (3, 3, 512, 512)
    with pytest.raises(yolo_io.ModelMismatchError) as info:
        unchanged_after(model, lambda: yolo_io.keras.load_into(model, net))
    cfg = net.config.path
    assert str(info.value) == (
        "the keras model has a layer the cfg does not: 'conv2d_17' (Conv2D, conv 3x3 512->512, "
        "kernel 3x3x512x512) after the counterpart of darknet layer 28 ([convolutional], "
        f"{cfg} line 209), where darknet's next is layer 29 ([convolutional], {cfg} line 217) "
        "(conv 1x1 512->255)")
    assert info.value.framework_layer == "conv2d_17"


def test_a_mistyped_name_in_a_mapping_is_named_and_changes_nothing(tmp_path: Path) -> None:
    net = network(tmp_path, "yolov4-tiny")
    model = yolov4_tiny(head_name="conv_lbbox")
    with pytest.raises(yolo_io.ModelMismatchError) as info:
        unchanged_after(model, lambda: yolo_io.keras.load_into(model, net,
                                                                mapping={29: "conv_lbox"}))
    assert str(info.value) == ("mapping[29] names keras layer 'conv_lbox', which the model does "
                               "not have; did you mean 'conv_lbbox'?")
    # Spelled right, the mapping pairs what the graph would have paired.
    pairing = yolo_io.keras.load_into(model, net, mapping={29: "conv_lbbox"})
    row = next(r for r in pairing.rows() if r["layer"] == 29)
    assert (row["framework"], row["paired_by"]) == ("conv_lbbox", "mapping")


def test_a_route_in_another_order_is_named(tmp_path: Path) -> None:
    """Every shape fits, one for one in darknet's order, but the model
    concatenates a route's inputs the other way round: it computes something
    else, and the data flow says where."""
    net = network(tmp_path, "yolov4-tiny")
    model = yolov4_tiny(swapped=True)
    with pytest.raises(yolo_io.ModelMismatchError) as info:
        unchanged_after(model, lambda: yolo_io.keras.load_into(model, net))
    assert str(info.value) == (
        "the keras model has no concatenation that matches darknet layer 6 ([route], "
        f"{net.config.path} line 79): its inputs' counterparts are not combined that way in "
        "the model (another order of a route's inputs, or another layer feeding it)")
    assert (info.value.darknet_layer, info.value.line) == (6, 79)


TWIN_BRANCHES = """\
[net]
width=8
height=8
channels=3
[convolutional]
filters=4
size=3
pad=1
activation=leaky
[convolutional]
filters=4
size=1
activation=linear
[route]
layers=-2
[maxpool]
size=3
stride=1
[convolutional]
filters=4
size=1
activation=linear
[shortcut]
from=-4
activation=linear
"""


def test_look_alikes_the_structure_cannot_tell_apart_need_a_mapping(tmp_path: Path) -> None:
    """Two 1x1 convs of the same shapes on the same input, added: one after a
    max pool. The pairing does not compare layers without parameters, so it
    says it cannot tell which is which, and takes a mapping."""
    from darknet_forward import forward

    cfg = tmp_path / "twins.cfg"
    cfg.write_text(TWIN_BRANCHES)
    net = yolo_io.load(write_weights(tmp_path / "twins.weights", cfg, realistic=True), cfg)
    inp = keras.Input((8, 8, 3))
    x = layers.LeakyReLU(negative_slope=0.1)(layers.Conv2D(4, 3, padding="same")(inp))
    a = layers.Conv2D(4, 1, name="plain")(x)
    b = layers.Conv2D(4, 1, name="pooled")(layers.MaxPool2D(3, 1, "same")(x))
    model = keras.Model(inp, layers.Add()([a, b]))
    with pytest.raises(yolo_io.ModelMismatchError) as info:
        unchanged_after(model, lambda: yolo_io.keras.load_into(model, net))
    assert str(info.value) == (
        f"darknet layer 1 ([convolutional], {cfg} line 10) (conv 1x1 4->4) could be keras layer "
        "'plain' or 'pooled': both fit the data flow, and the layers around them differ at most "
        "in layers without parameters, which the pairing does not compare; pass "
        "mapping={1: 'plain'} (or the other) to say which")
    yolo_io.keras.load_into(model, net, mapping={1: "plain"})
    image = natural_image(3, 8, 8)
    expected = forward(net, image)[len(net) - 1]
    got = numpy(model(image.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    assert close(got, expected, atol=1e-5, rtol=1e-5) is None


# -- check_model's table; other layer kinds ------------------------------------------------


def test_check_model_prints_the_pairing_without_assigning(tmp_path: Path) -> None:
    net = network(tmp_path, "yolov4-tiny")
    model = yolov4_tiny()
    pairing: Any = None

    def check() -> None:
        nonlocal pairing
        pairing = yolo_io.keras.check_model(model, net)

    unchanged_after(model, check)
    text = str(pairing).splitlines()
    assert text[0].split() == ["layer", "type", "line", "keras", "layer", "shapes", "paired",
                               "by", "status"]
    assert text[1].split() == ["0", "convolutional", "34", "conv2d", "+",
                               "batch_normalization", "3x3x3x32", "data", "flow", "ok"]
    assert len(text) == 1 + 21




def test_depthwise_grouped_and_dense_after_flatten_equal_numpy_darknet(tmp_path: Path) -> None:
    """DepthwiseConv2D (HWCM), a grouped Conv2D, and Dense layers, the first
    after a Flatten of an NHWC image (its rows in HWC order), against the
    NumPy darknet forward pass."""
    from darknet_forward import forward

    cfg = tmp_path / "c.cfg"
    cfg.write_text(CLASSIFIER)
    weights = write_weights(tmp_path / "c.weights", cfg, realistic=True, seed=5)
    net = yolo_io.load(weights, cfg)
    inp = keras.Input((8, 8, 3))
    x = layers.Conv2D(6, 3, padding="same", use_bias=False)(inp)
    x = layers.BatchNormalization(epsilon=1e-4)(x)
    x = layers.LeakyReLU(negative_slope=0.1)(x)
    x = layers.ZeroPadding2D(((1, 0), (1, 0)))(x)
    x = layers.DepthwiseConv2D(3, strides=2, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Conv2D(12, 1, groups=3)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(10)(x)
    x = layers.Dense(5, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    model = keras.Model(inp, x)
    yolo_io.keras.load_into(model, net)
    image = natural_image(3, 8, 8)
    expected = forward(net, image)[len(net) - 1].reshape(1, -1)
    got = numpy(model(image.transpose(0, 2, 3, 1)))
    assert close(got, expected, atol=1e-5, rtol=1e-5) is None


# -- regressions of an adversarial review ------------------------------------------------------


CONV_DENSE = """\
[net]
width=4
height=4
channels=3
[convolutional]
filters=4
size=3
stride=1
pad=1
activation=linear
[connected]
output=5
activation=linear
"""


@pytest.fixture
def channels_first() -> Any:
    keras.config.set_image_data_format("channels_first")
    yield
    keras.config.set_image_data_format("channels_last")


@pytest.mark.usefixtures("channels_first")
@pytest.mark.parametrize("flatten", ["channels_first", "channels_last"])
def test_dense_rows_follow_how_keras_flattens_nchw(tmp_path: Path, flatten: str) -> None:
    """On NCHW tensors, Flatten(channels_first) moves the channels last
    first (HWC rows), Flatten(channels_last) keeps CHW."""
    net = small_net(tmp_path, CONV_DENSE, seed=1)
    inp = keras.Input((3, 4, 4))
    y = layers.Conv2D(4, 3, padding="same")(inp)
    y = layers.Dense(5)(layers.Flatten(data_format=flatten)(y))
    model = keras.Model(inp, y)
    yolo_io.keras.load_into(model, net)
    x = natural_image(3, 4, 4)
    expected = darknet_output(net, x).reshape(1, -1)
    assert close(numpy(model(x)), expected, atol=1e-5, rtol=1e-5) is None


LOOK_ALIKES = """\
[net]
width=8
height=8
channels=3
[convolutional]
filters=16
size=3
stride=1
pad=1
activation=leaky
[convolutional]
filters=16
size=1
activation=leaky
[convolutional]
filters=16
size=1
activation=linear
"""


class Block(keras.layers.Layer):
    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.first = layers.Conv2D(16, 1)  # darknet layer 1
        self.second = layers.Conv2D(16, 1)  # darknet layer 2

    def call(self, t: Any) -> Any:
        return self.second(keras.ops.leaky_relu(self.first(t), 0.1))


class Subclassed(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.stem = layers.Conv2D(16, 3, padding="same")
        self.block = Block()

    def call(self, t: Any) -> Any:
        return self.block(keras.ops.leaky_relu(self.stem(t), 0.1))


def test_a_subclassed_model_pairs_in_the_order_its_layers_are_made(tmp_path: Path) -> None:
    net = small_net(tmp_path, LOOK_ALIKES, seed=5)
    model = Subclassed()
    model(np.zeros((1, 8, 8, 3), np.float32))
    pairing = yolo_io.keras.load_into(model, net)
    assert [r["framework"] for r in pairing.rows()] == [model.stem.name, model.block.first.name,
                                                       model.block.second.name]
    x = natural_image(3, 8, 8)
    got = numpy(model(x.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    assert close(got, darknet_output(net, x), atol=1e-5, rtol=1e-5) is None


CSP = """\
[net]
width=16
height=16
channels=3
[convolutional]
batch_normalize=1
filters=8
size=3
pad=1
activation=leaky
[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
pad=1
activation=leaky
[convolutional]
batch_normalize=1
filters=16
size=1
activation=leaky
[route]
layers=-2
[convolutional]
batch_normalize=1
filters=16
size=1
activation=leaky
[convolutional]
batch_normalize=1
filters=8
size=1
activation=leaky
[convolutional]
batch_normalize=1
filters=16
size=3
pad=1
activation=leaky
[shortcut]
from=-3
activation=linear
[convolutional]
batch_normalize=1
filters=16
size=1
activation=leaky
[route]
layers=-1,-7
[convolutional]
batch_normalize=1
filters=16
size=1
activation=leaky
"""


class ConvBlock(keras.layers.Layer):
    """Conv2D + BatchNormalization + leaky, as a custom layer (how many ports
    write their blocks)."""

    def __init__(self, filters: int, size: int, stride: int = 1, **kw: Any) -> None:
        super().__init__(**kw)
        self.pad = layers.ZeroPadding2D(((1, 0), (1, 0))) if stride == 2 else None
        self.conv = layers.Conv2D(filters, size, stride, use_bias=False,
                                  padding="valid" if stride == 2 else "same")
        self.bn = layers.BatchNormalization()

    def call(self, t: Any) -> Any:
        if self.pad is not None:
            t = self.pad(t)
        return keras.ops.leaky_relu(self.bn(self.conv(t)), 0.1)


@pytest.mark.parametrize("strict", [True, False])
def test_a_functional_model_of_custom_blocks(tmp_path: Path, strict: bool) -> None:
    """The blocks' insides are traced (on new symbolic inputs, and the nodes
    that adds to their layers are removed again); the CSP block's two
    look-alike 1x1 convs are told apart by what they feed."""
    net = small_net(tmp_path, CSP)
    inp = keras.Input((16, 16, 3))
    t = ConvBlock(16, 3, 2)(ConvBlock(8, 3)(inp))
    short, main = ConvBlock(16, 1)(t), ConvBlock(16, 1)(t)
    y = ConvBlock(16, 1)(layers.Add()([ConvBlock(16, 3)(ConvBlock(8, 1)(main)), main]))
    model = keras.Model(inp, ConvBlock(16, 1)(layers.Concatenate()([y, short])))
    inbound = [len(x._inbound_nodes) for x in model._flatten_layers(recursive=True)]
    pairing = yolo_io.keras.load_into(model, net, strict=strict)
    assert inbound == [len(x._inbound_nodes) for x in model._flatten_layers(recursive=True)]
    assert {r["status"] for r in pairing.rows()} == {"ok"}
    x = natural_image(3, 16, 16)
    got = numpy(model(x.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    assert close(got, darknet_output(net, x), atol=1e-5, rtol=1e-5) is None




@pytest.mark.parametrize(("bias", "bn"), [(True, True), (False, True), (True, False)])
def test_a_batchnorm_section_after_a_conv_without_one(tmp_path: Path, bias: bool,
                                                      bn: bool) -> None:
    net = small_net(tmp_path, CONV_THEN_BATCHNORM)
    inp = keras.Input((6, 6, 3))
    y = layers.Conv2D(4, 3, padding="same", use_bias=bias)(inp)
    if bn:
        y = layers.BatchNormalization()(y)
    model = keras.Model(inp, layers.Conv2D(5, 1)(y))
    yolo_io.keras.load_into(model, net, fuse=not bn)
    x = natural_image(3, 6, 6)
    got = numpy(model(x.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    assert close(got, darknet_output(net, x), atol=1e-5, rtol=1e-5) is None


def test_a_lora_layer_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    net = small_net(tmp_path, CONV_THEN_BATCHNORM)
    inp = keras.Input((6, 6, 3))
    y = layers.BatchNormalization()(layers.Conv2D(4, 3, padding="same")(inp))
    last = layers.Conv2D(5, 1)
    model = keras.Model(inp, last(y))
    last.enable_lora(2)
    with pytest.raises(yolo_io.ModelMismatchError, match=r"keras layer '.*' \(Conv2D\): its "
                       r"kernel is not a variable but a computed .* \(LoRA enabled\?\)"):
        unchanged_after(model, lambda: yolo_io.keras.load_into(model, net))


ROUTE_OF_TWO = """\
[net]
width=8
height=8
channels=3
[convolutional]
batch_normalize=1
filters=4
size=3
pad=1
activation=leaky
[convolutional]
batch_normalize=1
filters=4
size=1
activation=leaky
[route]
layers=-1,-2
[convolutional]
batch_normalize=1
filters=6
size=1
activation=leaky
"""


class Merge(keras.layers.Layer):
    """A custom layer whose call() takes a list and concatenates it."""

    def __init__(self, filters: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.block = ConvBlock(filters, 1)

    def call(self, inputs: Any) -> Any:
        a, b = inputs
        return self.block(keras.ops.concatenate([a, b], axis=-1))


def test_a_custom_layer_called_on_a_list_is_traced(tmp_path: Path) -> None:
    net = small_net(tmp_path, ROUTE_OF_TWO, seed=3)
    inp = keras.Input((8, 8, 3))
    a = ConvBlock(4, 3)(inp)
    b = ConvBlock(4, 1)(a)
    model = keras.Model(inp, Merge(6)([b, a]))
    yolo_io.keras.load_into(model, net)
    x = natural_image(3, 8, 8)
    got = numpy(model(x.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    assert close(got, darknet_output(net, x), atol=1e-5, rtol=1e-5) is None


class Scaled(keras.layers.Layer):
    """A conv and a learnable scale of the layer's own: no darknet layer has one."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.conv = layers.Conv2D(6, 1)
        self.scale = self.add_weight(shape=(6,), initializer="ones", name="scale")

    def call(self, t: Any) -> Any:
        return self.conv(t) * self.scale


def test_a_custom_layers_own_weights_are_refused(tmp_path: Path) -> None:
    net = small_net(tmp_path, ROUTE_OF_TWO, seed=3)
    inp = keras.Input((8, 8, 3))
    a = ConvBlock(4, 3)(inp)
    b = ConvBlock(4, 1)(a)
    model = keras.Model(inp, Scaled(name="scaled")(layers.Concatenate()([b, a])))
    with pytest.raises(yolo_io.ModelMismatchError, match=r"keras layer 'scaled' \(Scaled, "
                       r"parameters scale 6\) has parameters, but no darknet layer is of its kind"):
        unchanged_after(model, lambda: yolo_io.keras.load_into(model, net))


@pytest.mark.usefixtures("channels_first")
def test_a_route_of_a_channels_first_model(tmp_path: Path) -> None:
    """NCHW tensors concatenate their channels on axis 1."""
    net = small_net(tmp_path, ROUTE_OF_TWO, seed=3)
    inp = keras.Input((3, 8, 8))

    def block(x: Any, filters: int, size: int) -> Any:
        x = layers.Conv2D(filters, size, padding="same", use_bias=False)(x)
        return layers.LeakyReLU(negative_slope=0.1)(layers.BatchNormalization(axis=1)(x))

    a = block(inp, 4, 3)
    b = block(a, 4, 1)
    model = keras.Model(inp, block(layers.Concatenate(axis=1)([b, a]), 6, 1))
    yolo_io.keras.load_into(model, net)
    x = natural_image(3, 8, 8)
    assert close(numpy(model(x)), darknet_output(net, x), atol=1e-5, rtol=1e-5) is None


def test_a_conv_that_pads_otherwise_is_refused(tmp_path: Path) -> None:
    """Keras' "valid" where darknet pads, or "same" at stride 2 (TensorFlow
    pads the odd pixel after: windows start one pixel later than darknet's),
    fit the weights and compute something else; a ZeroPadding2D of (1, 0)
    before a "valid" stride-2 conv computes what darknet does."""
    net = small_net(tmp_path, CONV_THEN_BATCHNORM)
    where = rf"darknet layer 0 \(\[convolutional\], {re.escape(net.config.path)} line 5\)"
    inp = keras.Input((6, 6, 3))
    model = keras.Model(inp, layers.Conv2D(5, 1)(layers.BatchNormalization()(
        layers.Conv2D(4, 3, padding="valid", name="valid")(inp))))
    with pytest.raises(yolo_io.ModelMismatchError, match=(
            rf"keras layer 'valid' \(Conv2D\) pads 0 on each side for its 6x6 input, but {where} "
            rf"pads 1 on each side \({re.escape(net.config.path)}: pad= at line 9\): the weights "
            r"fit, but the model computes something else")) as info:
        unchanged_after(model, lambda: yolo_io.keras.load_into(model, net))
    assert (info.value.framework_layer, info.value.darknet_layer, info.value.line) == \
        ("valid", 0, 5)
    net = small_net(tmp_path, CONV_THEN_BATCHNORM.replace("stride=1", "stride=2"))
    x = natural_image(3, 6, 6)
    same = layers.Conv2D(4, 3, 2, padding="same", name="same")
    model = keras.Model(inp, layers.Conv2D(5, 1)(layers.BatchNormalization()(same(inp))))
    with pytest.raises(yolo_io.ModelMismatchError, match=(
            r"keras layer 'same' \(Conv2D\) pads \(0, 1, 0, 1\) \(top, bottom, left, right\) "
            r"for its 6x6 input, but darknet layer 0 .* pads 1 on each side")):
        unchanged_after(model, lambda: yolo_io.keras.load_into(model, net))
    # "same" pads for the input it sees: after a ZeroPadding2D of (1, 0) on 6x6,
    # 7x7, (1, 1): (2, 1) in all, and a 4x4 output where darknet's is 3x3.
    same = layers.Conv2D(4, 3, 2, padding="same", name="same")
    model = keras.Model(inp, layers.Conv2D(5, 1)(layers.BatchNormalization()(
        same(layers.ZeroPadding2D(((1, 0), (1, 0)))(inp)))))
    with pytest.raises(yolo_io.ModelMismatchError, match=(
            r"keras layer 'same' \(Conv2D\) pads \(2, 1, 2, 1\) \(top, bottom, left, right\) "
            r"for its 6x6 input, but darknet layer 0 .* pads 1 on each side")):
        unchanged_after(model, lambda: yolo_io.keras.load_into(model, net))
    padded = layers.Conv2D(4, 3, 2, padding="valid")(layers.ZeroPadding2D(((1, 0), (1, 0)))(inp))
    model = keras.Model(inp, layers.Conv2D(5, 1)(layers.BatchNormalization()(padded)))
    yolo_io.keras.load_into(model, net)
    got = numpy(model(x.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    assert close(got, darknet_output(net, x), atol=1e-5, rtol=1e-5) is None


class UntraceableConv(keras.Model):
    """CONV_THEN_BATCHNORM as a subclassed model around ``conv`` whose call()
    wants a concrete tensor (it cannot be traced on a symbolic one)."""

    def __init__(self, conv: Any) -> None:
        super().__init__()
        self.conv, self.bn, self.out = conv, layers.BatchNormalization(), layers.Conv2D(5, 1)

    def call(self, t: Any) -> Any:
        if not isinstance(t, np.ndarray | type(keras.ops.zeros(1))):
            raise TypeError("wants a concrete tensor")
        return self.out(self.bn(self.conv(t)))


@pytest.mark.parametrize("trace", [None, False])
def test_padding_without_a_trace(tmp_path: Path, trace: bool | None) -> None:
    """A call() that cannot be traced (or trace=False): what the conv itself
    proves wrong is refused ("same" at stride 1 pads size//2 on each side: more
    than darknet's pad=0; "same" at stride 2 pads (0, 1) on an even size, and
    no padding before it helps, as it changes the conv's own); "valid" where
    darknet pads may be completed by a ZeroPadding2D before it, which only the
    trace shows: a note naming the conv, both paddings and trace=True, which
    refuses a call() it cannot trace."""
    x = natural_image(3, 6, 6).transpose(0, 2, 3, 1)
    for cfg, conv, message in [
            (CONV_THEN_BATCHNORM.replace("pad=1", "pad=0"),
             layers.Conv2D(4, 3, padding="same", name="c"),
             (r"keras layer 'c' \(Conv2D\) pads 1 on each side for its 6x6 input, but darknet "
             r"layer 0 .* pads 0 on each side")),
            (CONV_THEN_BATCHNORM.replace("stride=1", "stride=2"),
             layers.Conv2D(4, 3, 2, padding="same", name="c"),
             (r"keras layer 'c' \(Conv2D\) pads \(0, 1, 0, 1\) \(top, bottom, left, right\) "
             r"for its 6x6 input, but darknet layer 0 .* pads 1 on each side"))]:
        net = small_net(tmp_path, cfg)
        model = UntraceableConv(conv)
        model(x)
        with pytest.raises(yolo_io.ModelMismatchError, match=message):
            unchanged_after(model, lambda m=model, n=net: yolo_io.keras.load_into(
                m, n, trace=trace))
    for cfg, conv, found in [
            (CONV_THEN_BATCHNORM, layers.Conv2D(4, 3, padding="valid", name="c"),
             "0 on each side"),
            (CONV_THEN_BATCHNORM.replace("stride=1", "stride=2"),
             layers.Conv2D(4, 3, 2, padding="valid", name="c"),
             "0 on each side")]:
        net = small_net(tmp_path, cfg)
        model = UntraceableConv(conv)
        model(x)
        pairing = yolo_io.keras.load_into(model, net, trace=trace)
        assert pairing.notes[1] == (
            f"keras layer 'c' (Conv2D) pads {found} for its 6x6 input, but darknet layer 0 "
            f"([convolutional], {net.config.path} line 5) pads 1 on each side "
            f"({net.config.path}: pad= at line 9): right only if a zero padding right before "
            "it pads the rest, which the data flow would show, but it was not traced, so this "
            "was not checked; pass trace=True to decide (a model that cannot be traced is then "
            "an error)")
        with pytest.raises(yolo_io.ConversionError, match=(
                r"trace=True, but the keras model's call\(\) could not be traced on a symbolic "
                r"input of shape \(1, 6, 6, 3\) \(TypeError: wants a concrete tensor\); pass "
                r"trace=False")):
            unchanged_after(model, lambda m=model, n=net: yolo_io.keras.load_into(m, n, trace=True))
    assert pairing.notes[0].startswith("trace=False: " if trace is False else
                                       "its call() could not be traced")


class SubclassedRoute(keras.Model):
    """ROUTE_OF_TWO as a subclassed model; ``swapped``: its route
    concatenates its inputs in the other order (every shape fits)."""

    def __init__(self, swapped: bool = False) -> None:
        super().__init__()
        self.a = ConvBlock(4, 3)
        self.b = ConvBlock(4, 1)
        self.c = ConvBlock(6, 1)
        self.swapped = swapped

    def call(self, t: Any) -> Any:
        a = self.a(t)
        b = self.b(a)
        return self.c(keras.ops.concatenate([a, b] if self.swapped else [b, a], axis=-1))


def test_a_subclassed_models_call_is_traced(tmp_path: Path) -> None:
    """As torch's forward: the data flow of a subclassed model (its call()
    on a symbolic input) is checked, and where it cannot be, the pairing
    says so."""
    net = small_net(tmp_path, ROUTE_OF_TWO, seed=3)
    x = natural_image(3, 8, 8)
    swapped = SubclassedRoute(swapped=True)
    swapped(x.transpose(0, 2, 3, 1))
    with pytest.raises(yolo_io.ModelMismatchError, match=r"the keras model has no concatenation "
                       r"that matches darknet layer 2 \(\[route\]"):
        unchanged_after(swapped, lambda: yolo_io.keras.load_into(swapped, net))
    model = SubclassedRoute()
    model(x.transpose(0, 2, 3, 1))
    inbound = [len(x._inbound_nodes) for x in model._flatten_layers(recursive=True)]
    pairing = yolo_io.keras.load_into(model, net)
    assert inbound == [len(x._inbound_nodes) for x in model._flatten_layers(recursive=True)]
    assert {r["paired_by"] for r in pairing.rows()} == {"data flow"} and pairing.notes == []
    got = numpy(model(x.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    assert close(got, darknet_output(net, x), atol=1e-5, rtol=1e-5) is None

    class Untraceable(SubclassedRoute):
        def call(self, t: Any) -> Any:
            if not isinstance(t, np.ndarray | type(keras.ops.zeros(1))):
                raise TypeError("wants a concrete tensor")
            return super().call(t)

    model = Untraceable()
    model(x.transpose(0, 2, 3, 1))
    pairing = yolo_io.keras.check_model(model, net)
    assert {r["paired_by"] for r in pairing.rows()} == {"order"}
    assert pairing.notes == [
        ("its call() could not be traced on a symbolic input of shape (1, 8, 8, 3) (TypeError: "
        "wants a concrete tensor); its data flow (what feeds each layer, the order of a route's "
        "inputs) was not checked, only the shapes in the order of its layers")]

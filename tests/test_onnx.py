"""yolo_io.onnx.export(): the graph is valid ONNX (full checker), and
onnxruntime's outputs equal independent darknet implementations on a natural
image: OpenCV's darknet importer for every corpus cfg it runs, darknet's own
decode formulas (tests/darknet_decode.py) for the decoded outputs, and a NumPy
darknet forward (tests/darknet_forward.py, checked against the C darknet) where
OpenCV is not a valid oracle."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SHARED_CFG, TINY_CFG, corpus_cfgs, corpus_param, resized
from opencv_oracle import close, natural_image, opencv_heads, opencv_weights

import yolo_io
from yolo_io.testing import write_weights

onnx = pytest.importorskip("onnx", reason="the onnx package is not installed (the onnx extra)")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (the test extra)")
import yolo_io._export.onnx as yonnx_impl
import yolo_io.onnx as yonnx

pytestmark = pytest.mark.filterwarnings("ignore::yolo_io.CfgWarning")

# Raw outputs equal OpenCV's within 1e-3 absolute or 1e-4 relative (issue 11).
# float16 weights: each weight is rounded to 11 significant bits (relative
# error <= 2**-11 ~ 4.9e-4) while the arithmetic stays float32. Measured max
# |f16 - f32| / max|f32| per output: yolov3-tiny 4.9e-4, yolov4-tiny 5.7e-4,
# yolov4 4.8e-4, yolov4-csp 6e-5, efficientnet_b0 1.2e-4; the test allows 3e-3.
F16_TOL = 3e-3

# OpenCV's importer refuses these (unknown sections or activations) or is not
# a valid oracle for them (see tests/test_opencv_oracle.py).
OPENCV_REJECTS = {
    "AlexeyAB-rnn.train.cfg", "crnn.train.cfg", "lstm.train.cfg",
    "Gaussian_yolov3_BDD.cfg", "efficientnet-lite3.cfg", "xyolo.test.cfg", "yolov1.cfg",
    "yolov4-sam-mish-csp-reorg-bfm.cfg", "yolov4-tiny_contrastive.cfg", "yolor_csp.cfg",
}
# Corpus cfgs the export refuses, and why (the message must say so):
EXPORT_REFUSES = {
    # Recurrent text models: not detection or classification networks.
    "AlexeyAB-rnn.train.cfg": r"\[rnn\]", "crnn.train.cfg": r"\[crnn\]",
    "lstm.train.cfg": r"\[lstm\]",
    # AlexeyAB darknet asserts on it too (parse_shortcut: equal width and height).
    "pjreddie-resnet50.cfg": "darknet refuses inputs of different width or height",
    # darknet's XNOR inference packs bits (gemm_nn_custom_bin_mean_transposed);
    # from darknet's cfg/unsupported folder. Refused, not approximated.
    "xyolo.test.cfg": r"binary \(XNOR\) convolution",
}


# Corpus cfgs OpenCV refuses or runs wrongly, at the input size the test uses
# (None: the cfg's own; its connected or local layers fix it): every layer's
# output, not only the heads, is compared with tests/darknet_forward.py.
NUMPY_ORACLE = {
    "Gaussian_yolov3_BDD.cfg": 128,                # [Gaussian_yolo]
    "efficientnet-lite3.cfg": 128,                 # relu6
    "yolov4-sam-mish-csp-reorg-bfm.cfg": 128,      # sam, reorg3d
    "yolov4-tiny_contrastive.cfg": 128,            # local_avgpool, contrastive
    "resnet152_trident.cfg": 128,                  # share_index (OpenCV reads it wrongly)
    "yolov1.cfg": None,                            # local, detection
}


@pytest.fixture(autouse=True)
def _drop_large_files(tmp_path: Path) -> Iterator[None]:
    """The corpus models (weights, OpenCV's copy, the .onnx) are up to 1.5 GB
    a cfg: gone after each test, so a run needs one model's room at a time."""
    yield
    for f in tmp_path.rglob("*"):
        if f.is_file() and f.stat().st_size > 1 << 20:
            f.unlink()


def run(model: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    """onnxruntime's outputs for a model or the path of a model file."""
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"input": x}), strict=True))


def corpus_model(tmp_path: Path, cfg: Path) -> yolo_io.Network:
    weights = write_weights(tmp_path / (cfg.stem + ".weights"), cfg, realistic=True, seed=0)
    return yolo_io.load(weights, cfg)


# -- the corpus against OpenCV -------------------------------------------------


def test_every_corpus_cfg_is_covered() -> None:
    """Each corpus cfg is checked against OpenCV, against the NumPy darknet
    forward, or is refused with its reason; yolor_csp is not darknet at all
    (its [implicit_add] is a CfgError on load, tested elsewhere)."""
    names = {c.name for c in corpus_cfgs()}
    if not names:
        pytest.skip(f"{SHARED_CFG} is not there (the real-cfg corpus lives beside the checkout)")
    others = set(NUMPY_ORACLE) | set(EXPORT_REFUSES) | {"yolor_csp.cfg"}
    assert others >= OPENCV_REJECTS
    assert names - others, "nothing left for OpenCV"
    assert others <= names


@pytest.mark.slow
@pytest.mark.parametrize("cfg", corpus_param(exclude=tuple(
    OPENCV_REJECTS | set(NUMPY_ORACLE) | set(EXPORT_REFUSES))))
def test_corpus_raw_outputs_equal_opencv(tmp_path: Path, cfg: Path) -> None:
    net = corpus_model(tmp_path, cfg)
    model = yonnx.export(tmp_path / "m.onnx", net)
    onnx.checker.check_model(str(tmp_path / "m.onnx"), full_check=True)
    x = natural_image(*net.input_shape)
    ours = run(model, x)
    assert list(ours) == yonnx.head_output_names(net)
    reference = opencv_heads(cfg, opencv_weights(net, tmp_path / "cv.weights"), x)
    for name, ref in zip(ours, reference, strict=True):
        report = close(ours[name], ref.reshape(ours[name].shape))
        assert report is None, f"{cfg.name} {name}: {report}"


@pytest.mark.parametrize("name", sorted(EXPORT_REFUSES))
def test_corpus_refusals_name_the_reason_and_line(tmp_path: Path, name: str) -> None:
    cfg = SHARED_CFG / name
    if not cfg.is_file():
        pytest.skip(f"{cfg} is not there (the real-cfg corpus lives beside the checkout in CI)")
    net = corpus_model(tmp_path, cfg)
    with pytest.raises(yolo_io.ConversionError, match=EXPORT_REFUSES[name]) as info:
        yonnx.export(None, net)
    assert f"{cfg} line" in str(info.value)


# -- where OpenCV is not an oracle: the NumPy darknet forward --------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NUMPY_ORACLE))
def test_layers_equal_numpy_darknet(tmp_path: Path, name: str) -> None:
    if not (SHARED_CFG / name).is_file():
        pytest.skip(f"{SHARED_CFG / name} is not there (the real-cfg corpus lives beside the "
                    "checkout in CI)")
    darknet_forward = pytest.importorskip("darknet_forward")
    cfg = tmp_path / name
    size = NUMPY_ORACLE[name]
    text = (SHARED_CFG / name).read_text()
    cfg.write_text(text if size is None else resized(text, size))
    net = corpus_model(tmp_path, cfg)
    x = natural_image(*net.input_shape)
    path = yonnx.export(tmp_path / "m.onnx", net, intermediates=True)
    onnx.checker.check_model(str(path), full_check=True)
    ours = run(path, x)
    reference = darknet_forward.forward(net, x)
    for index, want in reference.items():
        name_i = f"layer_{index}"
        if name_i not in ours:
            assert net.config[index].type in ("cost", "contrastive")  # left out, listed
            continue
        report = close(ours[name_i], want.reshape(ours[name_i].shape))
        assert report is None, f"{name} layer {index} ({net.config[index].type}): {report}"


# Every layer kind the export supports, in one small network of our own
# (always runs: no corpus needed), including what OpenCV gets wrong: a route
# with groups over several inputs.
SYNTHETIC_CFG = """\
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
filters=8
size=3
pad=1
dilation=2
groups=2
activation=mish

[route]
layers=-1,-2
groups=2
group_id=1

[maxpool]
size=2
stride=1

[maxpool]
size=3
stride_x=2
stride_y=1

[local_avgpool]
size=2
stride=2

[upsample]
stride=2
scale=0.5

[convolutional]
batch_normalize=1
filters=12
size=1
activation=swish

[shortcut]
from=-4
activation=linear

[reorg3d]
stride=2

[convolutional]
filters=48
size=1
activation=logistic

[sam]
from=-2

[avgpool]

[scale_channels]
from=-2

[batchnorm]

[dropout]
probability=0.5

[reorg]
stride=2

[connected]
output=20
batch_normalize=1
activation=relu

[softmax]
groups=2
temperature=2
"""


def test_every_supported_layer_equals_numpy_darknet(tmp_path: Path) -> None:
    darknet_forward = pytest.importorskip("darknet_forward")
    cfg = tmp_path / "all.cfg"
    cfg.write_text(SYNTHETIC_CFG)
    net = yolo_io.load(write_weights(tmp_path / "all.weights", cfg, realistic=True), cfg)
    route = net.config[2].attrs
    assert isinstance(route, yolo_io.attrs.RouteAttrs) and len(route.input_layers) == 2
    x = natural_image(*net.input_shape, batch=2)
    ours = run(yonnx.export(None, net, intermediates=True), x)
    reference = darknet_forward.forward(net, x)
    assert len(reference) == len(net)
    for index, want in reference.items():
        got = ours[f"layer_{index}"]
        report = close(got, want.reshape(got.shape))
        assert report is None, f"layer {index} ({net.config[index].type}): {report}"


DARKNET_DATA = Path(__file__).parent / "data" / "darknet_forward"


def test_attention_layers_equal_darknets_own_outputs(tmp_path: Path) -> None:
    """sam, scale_channels (per channel and scale_wh), shortcuts over several
    layers with different channel counts and per_feature/per_channel weights
    under relu and softmax normalisation: against the C darknet's own layer
    outputs (tests/data/darknet_forward/README.md says how they were made)."""
    data = np.load(DARKNET_DATA / "attention.npz")
    weights = tmp_path / "attention.weights"
    weights.write_bytes(data["weights"].tobytes())
    net = yolo_io.load(weights, DARKNET_DATA / "attention.cfg")
    ours = run(yonnx.export(None, net, intermediates=True), data["x"])
    compared = 0
    for key in data.files:
        if key.startswith("out"):
            got = ours[f"layer_{key[3:]}"]
            report = close(got, data[key].reshape(got.shape))
            assert report is None, f"layer {key[3:]}: {report}"
            compared += 1
    assert compared >= 10


ACTIVATIONS = ["leaky", "revleaky", "relu", "relu6", "logistic", "tanh", "elu", "selu", "swish",
               "mish", "hard_mish", "gelu", "relie", "ramp", "plse", "hardtan", "lhtan", "loggy"]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activations_equal_numpy_darknet(tmp_path: Path, activation: str) -> None:
    """Every activation a conv computes, on inputs spread over about -10..10
    (an [upsample] with scale=8), against tests/darknet_forward.py, itself
    checked against darknet's own outputs (relu6: darknet's GPU formula)."""
    darknet_forward = pytest.importorskip("darknet_forward")
    # darknet computes swish, mish and hard_mish only in convs and shortcuts
    plain = "leaky" if activation in ("swish", "mish", "hard_mish") else activation
    cfg = tmp_path / "act.cfg"
    cfg.write_text("[net]\nwidth=8\nheight=8\nchannels=3\n\n[convolutional]\nfilters=8\n"
                   "size=1\nactivation=linear\n\n[upsample]\nstride=1\nscale=8\n\n"
                   f"[convolutional]\nfilters=4\nsize=3\npad=1\nactivation={activation}\n"
                   f"\n[activation]\nactivation={plain}\n")
    net = yolo_io.load(write_weights(tmp_path / "act.weights", cfg, realistic=True), cfg)
    x = np.random.default_rng(0).random((2, *net.input_shape), dtype=np.float32)
    ours = run(yonnx.export(None, net, intermediates=True), x)
    for index, want in darknet_forward.forward(net, x).items():
        report = close(ours[f"layer_{index}"], want.reshape(ours[f"layer_{index}"].shape))
        assert report is None, f"{activation} layer {index}: {report}"
    spread = ours["layer_1"]
    assert spread.min() < -4 and spread.max() > 4


def test_swish_outside_a_conv_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "act.cfg"
    cfg.write_text("[net]\nwidth=8\nheight=8\nchannels=3\n\n[convolutional]\nfilters=8\n"
                   "size=1\nactivation=linear\n\n[activation]\nactivation=swish\n")
    net = yolo_io.load(write_weights(tmp_path / "act.weights", cfg), cfg)
    with pytest.raises(yolo_io.ConversionError, match=r"layer 1 .*line 11.*darknet outputs 0"):
        yonnx.export(None, net)


# -- decoded outputs -----------------------------------------------------------


def decoded_reference(net: yolo_io.Network, raws: dict[int, np.ndarray]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    darknet_decode = pytest.importorskip("darknet_decode")
    with np.errstate(over="ignore"):  # exp() of large raw sizes is inf, as in darknet
        return darknet_decode.decode_all(raws, net)  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["yolov3-tiny.cfg", "yolov4-csp.cfg", "yolov2-tiny.cfg",
                                  "AlexeyAB-yolov2.cfg"])
def test_decoded_equals_darknet_decode_of_opencv_heads(tmp_path: Path, name: str) -> None:
    cfg = SHARED_CFG / name
    if not cfg.is_file():
        pytest.skip(f"{cfg} is not there (the real-cfg corpus lives beside the checkout in CI)")
    net = corpus_model(tmp_path, cfg)
    x = natural_image(*net.input_shape)
    ours = run(yonnx.export(None, net, outputs="decoded"), x)
    heads = [layer.index for layer in net.config if layer.type in yonnx.HEAD_TYPES]
    raws = {i: r.reshape(1, *net.config[i].input_shape)
            for i, r in zip(heads, opencv_heads(cfg, opencv_weights(net, tmp_path / "cv.weights"),
                                                x), strict=True)}
    boxes, objectness, scores = decoded_reference(net, raws)
    for got, want, what in ((ours["boxes"], boxes, "boxes"), (ours["objectness"], objectness,
                            "objectness"), (ours["scores"], scores, "scores")):
        report = close(got, want)
        assert report is None, f"{name} {what}: {report}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["Gaussian_yolov3_BDD.cfg", "yolov7-tiny.cfg", "yolov1.cfg"])
def test_decoded_equals_darknet_decode_of_our_raw_heads(tmp_path: Path, name: str) -> None:
    """Heads OpenCV cannot run ([Gaussian_yolo], [detection]) or that it
    decodes without the raw numbers (new_coords): the decode of the graph's
    own raw outputs (those are checked against darknet elsewhere)."""
    cfg = SHARED_CFG / name
    if not cfg.is_file():
        pytest.skip(f"{cfg} is not there (the real-cfg corpus lives beside the checkout in CI)")
    net = corpus_model(tmp_path, cfg)
    x = natural_image(*net.input_shape)
    raw = run(yonnx.export(None, net), x)
    ours = run(yonnx.export(None, net, outputs="decoded"), x)
    raws = {int(k.split("_")[1]): v for k, v in raw.items()}
    boxes, objectness, scores = decoded_reference(net, raws)
    # darknet takes exp() of a raw size in double: above ~88.7 the float32
    # graph gives inf where darknet still has a finite (absurd) box. The
    # "realistic" random weights reach that in a few cells; they are left out.
    finite = np.isfinite(ours["boxes"]).all(axis=-1)
    assert finite.mean() > 0.99
    for got, want, what in ((ours["boxes"], boxes, "boxes"),
                            (ours["objectness"], objectness, "objectness"),
                            (ours["scores"], scores, "scores")):
        report = close(got[finite], want[finite])
        assert report is None, f"{name} {what}: {report}"


def test_nms_selects_from_the_decoded_boxes(tmp_path: Path) -> None:
    cfg = SHARED_CFG / "yolov3-tiny.cfg"
    if not cfg.is_file():
        pytest.skip(f"{cfg} is not there")
    net = corpus_model(tmp_path, cfg)
    x = natural_image(*net.input_shape, batch=2)
    out = run(yonnx.export(None, net, outputs="nms", score_threshold=0.2, iou_threshold=0.5,
                           max_detections=10), x)
    selected = out["selected"]
    assert selected.ndim == 2 and selected.shape[1] == 3 and len(selected)
    b, c, i = selected.T
    assert set(b) <= {0, 1}
    assert (out["scores"][b, i, c] > 0.2).all()
    # per (image, class), at most max_detections boxes
    _, counts = np.unique(selected[:, :2], axis=0, return_counts=True)
    assert counts.max() <= 10


# -- batch, dtype, options -----------------------------------------------------


def test_a_batch_of_two_gives_each_images_result(tmp_path: Path) -> None:
    cfg = SHARED_CFG / "yolov4-tiny.cfg"
    if not cfg.is_file():
        pytest.skip(f"{cfg} is not there")
    net = corpus_model(tmp_path, cfg)
    model = yonnx.export(None, net, outputs="decoded")
    x = natural_image(*net.input_shape, batch=2)
    both = run(model, x)
    for k in range(2):
        single = run(model, x[k:k + 1])
        for name, value in single.items():
            np.testing.assert_allclose(both[name][k:k + 1], value, rtol=1e-5, atol=1e-6)


def test_float16_export(tmp_path: Path) -> None:
    cfg = SHARED_CFG / "yolov4-tiny.cfg"
    if not cfg.is_file():
        pytest.skip(f"{cfg} is not there")
    net = corpus_model(tmp_path, cfg)
    x = natural_image(*net.input_shape)
    full = yonnx.export(tmp_path / "f32.onnx", net)
    half = yonnx.export(tmp_path / "f16.onnx", net, dtype="float16")
    assert half == tmp_path / "f16.onnx"
    onnx.checker.check_model(str(half), full_check=True)
    stored = onnx.load(str(half))
    weights = [t for t in stored.graph.initializer if t.dims and len(t.dims) == 4]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    assert (tmp_path / "f16.onnx").stat().st_size < 0.55 * (tmp_path / "f32.onnx").stat().st_size
    a, b = run(full, x), run(half, x)
    assert stored.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    for name in a:
        assert b[name].dtype == np.float32
        scale = np.abs(a[name]).max()
        assert np.abs(a[name] - b[name]).max() <= F16_TOL * scale, name


def test_static_batch_and_metadata(tmp_path: Path) -> None:
    cfg = SHARED_CFG / "yolov4-csp.cfg"
    if not cfg.is_file():
        pytest.skip(f"{cfg} is not there")
    net = corpus_model(tmp_path, cfg)
    model = yonnx.export(None, net, dynamic_batch=False)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, *net.input_shape]
    meta = {p.key: p.value for p in model.metadata_props}
    heads = json.loads(meta["yolo_io.heads"])
    yolo = [layer for layer in net.config if layer.type == "yolo"]
    assert [h["layer"] for h in heads] == [layer.index for layer in yolo]
    first = yolo[0].attrs
    assert isinstance(first, yolo_io.attrs.YoloAttrs)
    assert heads[0]["anchors"] == [list(p) for p in first.anchors]
    assert heads[0]["mask"] == list(first.mask)
    assert heads[0]["scale_x_y"] == first.scale_x_y and heads[0]["new_coords"] is True
    assert heads[0]["stride"] == [8, 8]
    assert meta["yolo_io.cfg"] == cfg.name  # the name, not the user's folders
    info = json.loads(meta["yolo_io.input"])
    assert info["shape"] == list(net.input_shape) and info["channel_order"] == "RGB"
    assert info["letter_box"] == int(net.config.net.letter_box)


def test_letter_box_with_an_inline_comment(tmp_path: Path) -> None:
    """letter_box=1 # keep aspect: darknet's atoi() reads 1 (issue 22, item 11:
    the export parsed the raw text with int() and raised a bare ValueError)."""
    cfg = tmp_path / "lb.cfg"
    cfg.write_text("[net]\nwidth=8\nheight=8\nchannels=3\nletter_box=1 # keep aspect\n\n"
                   "[convolutional]\nfilters=2\nsize=1\nactivation=linear\n")
    net = yolo_io.load(write_weights(tmp_path / "lb.weights", cfg), cfg)
    assert net.config.net == yolo_io.attrs.NetAttrs(width=8, height=8, channels=3, inputs=192,
                                              letter_box=True)
    meta = {p.key: p.value for p in yonnx.export(None, net).metadata_props}
    assert json.loads(meta["yolo_io.input"])["letter_box"] == 1


def test_mish_native_and_decomposed_agree(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    net = yolo_io.load(write_weights(tmp_path / "t.weights", cfg, realistic=True), cfg)
    x = np.random.default_rng(0).random((1, *net.input_shape), dtype=np.float32)
    native = yonnx.export(None, net, opset=18, mish="native")
    decomposed = yonnx.export(None, net, opset=18, mish="decomposed")
    assert any(n.op_type == "Mish" for n in native.graph.node)
    assert not any(n.op_type == "Mish" for n in decomposed.graph.node)
    assert not any(n.op_type == "Mish" for n in yonnx.export(None, net, opset=17).graph.node)
    a, b = run(native, x), run(decomposed, x)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="opset 18"):
        yonnx.export(None, net, opset=17, mish="native")


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_the_streamed_file_is_the_model(tmp_path: Path, dtype: str) -> None:
    """export(path, net) writes the model piece by piece from the arrays; it
    parses to exactly the model export(None, net) builds in memory."""
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    net = yolo_io.load(write_weights(tmp_path / "t.weights", cfg, realistic=True), cfg)
    path = yonnx.export(tmp_path / "m.onnx", net, dtype=dtype, outputs="nms")  # type: ignore[call-overload]
    assert onnx.load(str(path)) == yonnx.export(None, net, dtype=dtype, outputs="nms")  # type: ignore[call-overload]


def test_a_smaller_export_removes_the_data_file_of_the_model_it_replaces(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    net = yolo_io.load(write_weights(tmp_path / "t.weights", cfg, realistic=True), cfg)
    with monkeypatch.context() as m:
        m.setattr(yonnx_impl, "_EXTERNAL_DATA_LIMIT", 100)
        m.setattr(yonnx_impl, "_EXTERNAL_TENSOR_MIN", 64)
        yonnx.export(tmp_path / "m.onnx", net)
    assert (tmp_path / "m.onnx.data").is_file()
    unrelated = tmp_path / "other.onnx.data"
    unrelated.write_bytes(b"mine")
    (tmp_path / "other.onnx").write_bytes(b"not a model")
    yonnx.export(tmp_path / "m.onnx", net)
    yonnx.export(tmp_path / "other.onnx", net)
    assert not (tmp_path / "m.onnx.data").exists()  # orphaned: the new model holds its data
    assert unrelated.read_bytes() == b"mine"          # not the replaced model's: kept
    assert onnx.load(str(tmp_path / "m.onnx")) == yonnx.export(None, net)


def test_float16_overflow_names_the_layer(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    net = yolo_io.load(write_weights(tmp_path / "t.weights", cfg, realistic=True), cfg)
    arrays = {layer.index: dict(layer.params) for layer in net if layer.params}
    arrays[3]["weights"] = arrays[3]["weights"] * np.float32(1e6)
    big = yolo_io.load(yolo_io.save(tmp_path / "big.weights", arrays, cfg), cfg)
    for path in (None, tmp_path / "m.onnx"):
        with pytest.warns(yolo_io.PrecisionWarning, match=r"of layer 3 \(convolutional, .*tiny\.cfg line \d+\)"):
            yonnx.export(path, big, dtype="float16")


def test_external_data_for_large_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    net = yolo_io.load(write_weights(tmp_path / "t.weights", cfg, realistic=True), cfg)
    monkeypatch.setattr(yonnx_impl, "_EXTERNAL_DATA_LIMIT", 100)  # as if it were over 2 GB
    monkeypatch.setattr(yonnx_impl, "_EXTERNAL_TENSOR_MIN", 64)
    yonnx.export(tmp_path / "m.onnx", net)
    model = yonnx.export(None, net)
    assert (tmp_path / "m.onnx.data").is_file()
    stored = onnx.load(str(tmp_path / "m.onnx"), load_external_data=False)
    assert sum(t.data_location == onnx.TensorProto.EXTERNAL for t in stored.graph.initializer) > 3
    onnx.checker.check_model(str(tmp_path / "m.onnx"), full_check=True)
    x = np.random.default_rng(0).random((1, *net.input_shape), dtype=np.float32)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x})
    want = run(model, x)
    for a, b in zip(got, want.values(), strict=True):
        np.testing.assert_array_equal(a, b)


# -- refusals ------------------------------------------------------------------

YOLO_HEAD = ("[convolutional]\nfilters=18\nsize=1\nactivation=linear\n\n[yolo]\nmask=0,1,2\n"
             "anchors=1,2, 3,4, 5,6\nclasses=1\nnum=3\n\n")
UNSUPPORTED = {
    "stair": ("[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=stair\n", "activation=stair"),
    "binary": ("[convolutional]\nfilters=4\nsize=3\npad=1\nbinary=1\nactivation=leaky\n",
               "binary"),
    "shortcut-sizes": (("[convolutional]\nfilters=4\nsize=3\npad=1\nstride=2\n"
                       "activation=leaky\n\n[shortcut]\nfrom=-2\nactivation=linear\n"),
                       "different width or height"),
    "crop": ("[crop]\ncrop_height=4\ncrop_width=4\n", r"\[crop\]"),
    # darknet's 1x1 path ignores stride_y and the padding
    "1x1-stride_y": (("[convolutional]\nfilters=4\nsize=1\nstride_x=1\nstride_y=2\n"
                     "activation=leaky\n"), "darknet computes wrongly"),
    "1x1-padding": ("[convolutional]\nfilters=4\nsize=1\npadding=1\nactivation=leaky\n",
                    "darknet computes wrongly"),
    "softmax-tree": ("[softmax]\ntree=data/9k.tree\n", "softmax tree"),
    "from-cost": ("[cost]\n\n[route]\nlayers=-2,-1\n", "computes nothing at inference"),
    "from-head": (YOLO_HEAD + "[route]\nlayers=-1\n", "transforms in place"),
    "reorg3d-pitch": ("[maxpool]\nsize=1\nstride=1\n\n[reorg3d]\nstride=2\n",
                      "does not divide"),
    "avgpool-padding": ("[local_avgpool]\nsize=2\nstride=2\npadding=3\n", "wholly outside"),
}


@pytest.mark.parametrize(("body", "what"), UNSUPPORTED.values(), ids=UNSUPPORTED.keys())
def test_unsupported_layers_name_the_layer_and_line(tmp_path: Path, body: str, what: str) -> None:
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("[net]\nwidth=9\nheight=9\nchannels=3\n\n[convolutional]\nfilters=4\nsize=1\n"
                   "activation=linear\n\n" + body)
    net = yolo_io.load(write_weights(tmp_path / "bad.weights", cfg), cfg)
    bad = next(layer for layer in reversed(list(net.config)) if layer.index > 0)
    with pytest.raises(yolo_io.ConversionError, match=what) as info:
        yonnx.export(None, net)
    message = str(info.value)
    assert f"{cfg} line" in message and f"layer {bad.index}" in message, message


# Values darknet divides by, or computes something no ONNX operator can, are a
# CfgError at their line when the cfg is parsed (issue 22, item 10): the
# export never sees them. Each case: (layer, its line's key, the message).
BAD_VALUES = {
    "softmax groups=0": ("[softmax]\ngroups=0\n", "groups", r"groups=0; it must be at least 1"),
    "softmax groups=-2": ("[softmax]\ngroups=-2\n", "groups", r"groups=-2; it must be at least 1"),
    "softmax groups=5": ("[softmax]\ngroups=5\n", "groups",
                         r"groups=5, which does not divide its 324 inputs"),
    "conv dilation=0": ("[convolutional]\nfilters=4\nsize=3\npad=1\ndilation=0\n", "dilation",
                        r"dilation=0; it must be at least 1"),
    "conv dilation=-1": ("[convolutional]\nfilters=4\nsize=3\npad=1\ndilation=-1\n", "dilation",
                         r"dilation=-1; it must be at least 1"),
    "conv padding=-5": ("[convolutional]\nfilters=4\nsize=3\npadding=-5\n", "padding",
                        r"padding=-5; it must be at least 0"),
    "conv padding=-1": ("[convolutional]\nfilters=4\nsize=1\npadding=-1\n", "padding",
                        r"padding=-1; it must be at least 0"),
    "maxpool padding=-1": ("[maxpool]\nsize=2\nstride=2\npadding=-1\n", "padding",
                           r"padding=-1; it must be at least 0"),
    "local_avgpool padding=-2": ("[local_avgpool]\nsize=2\nstride=2\npadding=-2\n", "padding",
                                 r"padding=-2; it must be at least 0"),
    "maxpool size past the input": ("[maxpool]\nsize=12\nstride=1\npadding=0\n", None,
                                    r"size=12 larger than its padded input 4x9x9"),
    "upsample to nothing": ("[upsample]\nstride=-10\n", None, r"has an empty output 4x0x0"),
}
# The nearest values that are valid: each exports a model onnx.checker
# accepts and onnxruntime runs.
GOOD_VALUES = {
    "softmax groups=1": "[softmax]\ngroups=1\n",
    "softmax groups=4": "[softmax]\ngroups=4\n",
    "conv dilation=1": "[convolutional]\nfilters=4\nsize=3\npad=1\ndilation=1\n",
    "conv dilation=2": "[convolutional]\nfilters=4\nsize=3\npad=1\ndilation=2\n",
    "conv padding=0": "[convolutional]\nfilters=4\nsize=3\npadding=0\n",
    "maxpool padding=0": "[maxpool]\nsize=2\nstride=2\npadding=0\n",
    "upsample stride=3": "[upsample]\nstride=3\n",
}
VALUES_NET = ("[net]\nwidth=9\nheight=9\nchannels=3\n\n[convolutional]\nfilters=4\nsize=1\n"
              "activation=linear\n\n")


@pytest.mark.parametrize(("body", "key", "what"), BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_values_darknet_misbehaves_on_are_cfg_errors(tmp_path: Path, body: str, key: str | None,
                                                     what: str) -> None:
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(VALUES_NET + body)
    lines = cfg.read_text().splitlines()
    section = max(n for n, text in enumerate(lines, 1) if text.startswith("["))
    line = section if key is None else next(
        n for n, text in enumerate(lines, 1) if text.startswith(key + "=") and n > section)
    with pytest.raises(yolo_io.CfgError, match=rf"^{cfg}:{line}: \[\w+\] (has )?{what}") as info:
        yolo_io.parse_cfg(cfg)
    assert info.value.line == line


@pytest.mark.parametrize("body", GOOD_VALUES.values(), ids=GOOD_VALUES.keys())
def test_the_nearest_valid_values_export_valid_models(tmp_path: Path, body: str) -> None:
    cfg = tmp_path / "good.cfg"
    cfg.write_text(VALUES_NET + body + "activation=linear\n")
    net = yolo_io.load(write_weights(tmp_path / "good.weights", cfg, realistic=True), cfg)
    path = yonnx.export(tmp_path / "m.onnx", net)
    onnx.checker.check_model(str(path), full_check=True)
    out = run(path, np.random.default_rng(0).random((1, *net.input_shape), dtype=np.float32))
    assert all(np.isfinite(v).all() for v in out.values())


def test_a_node_onnx_rejects_is_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Should a value the core refuses get past it (here forced into the
    attrs), the export raises before writing anything."""
    cfg = tmp_path / "c.cfg"
    cfg.write_text(VALUES_NET + "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=linear\n")
    net = yolo_io.load(write_weights(tmp_path / "c.weights", cfg), cfg)
    real = yolo_io.CfgLayer.attrs.fget
    assert real is not None

    def forced(layer: yolo_io.CfgLayer) -> yolo_io.attrs.LayerAttrs:
        a = real(layer)
        return dataclasses.replace(a, dilation=0) if layer.index == 1 else a

    monkeypatch.setattr(yolo_io.CfgLayer, "attrs", property(forced))
    with pytest.raises(yolo_io.ConversionError, match=r"Conv node .*dilations .* must be at least 1"):
        yonnx.export(tmp_path / "m.onnx", net)
    assert list(tmp_path.glob("m.onnx*")) == []


@pytest.mark.parametrize("padding", [2, 3, 5])
def test_maxpool_padding_beyond_the_kernel_equals_numpy_darknet(tmp_path: Path,
                                                                padding: int) -> None:
    """ONNX pads must be smaller than the kernel: larger darknet paddings are
    an explicit Pad with -FLT_MAX, as darknet's out-of-image taps."""
    darknet_forward = pytest.importorskip("darknet_forward")
    cfg = tmp_path / "pool.cfg"
    cfg.write_text("[net]\nwidth=7\nheight=7\nchannels=3\n\n[convolutional]\nfilters=4\n"
                   "size=1\nactivation=linear\n\n"
                   f"[maxpool]\nsize=2\nstride=2\npadding={padding}\n")
    net = yolo_io.load(write_weights(tmp_path / "pool.weights", cfg, realistic=True), cfg)
    x = np.random.default_rng(0).random((1, *net.input_shape), dtype=np.float32)
    path = yonnx.export(tmp_path / "m.onnx", net, intermediates=True)
    onnx.checker.check_model(str(path), full_check=True)
    ours = run(path, x)
    want = darknet_forward.forward(net, x)[1]
    np.testing.assert_allclose(ours["layer_1"], want.reshape(ours["layer_1"].shape),
                               rtol=1e-5, atol=1e-6)


def test_argument_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    net = yolo_io.load(write_weights(tmp_path / "t.weights", cfg), cfg)
    with pytest.raises(ValueError, match="outputs"):
        yonnx.export(None, net, outputs="boxes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dtype"):
        yonnx.export(None, net, dtype="bfloat16")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="opset"):
        yonnx.export(None, net, opset=11)
    for opset in (True, 17.0, "17"):  # no bool, float or text: True is not opset 1
        with pytest.raises(TypeError, match="opset must be an int"):
            yonnx.export(None, net, opset=opset)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Network"):
        yonnx.export(None, net.config)  # type: ignore[arg-type]


def test_saving_keeps_the_mode_and_survives_concurrent_saves(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    net = yolo_io.load(write_weights(tmp_path / "t.weights", cfg), cfg)
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")
    target.chmod(0o600)
    with ThreadPoolExecutor(4) as pool:
        for result in [pool.submit(yonnx.export, target, net) for _ in range(4)]:
            assert result.result() == target
    assert target.stat().st_mode & 0o777 == 0o600
    assert onnx.load(str(target)) == yonnx.export(None, net)
    assert [p.name for p in tmp_path.iterdir() if "m.onnx" in p.name] == ["m.onnx"]
    assert not list(tmp_path.glob(".yolo_io-*"))
    with pytest.raises(FileNotFoundError, match=r"nowhere/m\.onnx'"):
        yonnx.export(tmp_path / "nowhere" / "m.onnx", net)


_FULL_DISK = """
import resource, signal, sys, yolo_io, yolo_io.onnx
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
net = yolo_io.load(sys.argv[1], sys.argv[2])
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
try:
    yolo_io.onnx.export(sys.argv[3], net)
except OSError as err:
    print(type(err).__name__, err.errno, err)
"""


def test_saving_is_atomic(tmp_path: Path) -> None:
    """A write that fails (RLIMIT_FSIZE: EFBIG past 1000 bytes, as a full disk
    gives ENOSPC) in the core's atomic writer leaves the target as it was and
    no temporary behind."""
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    weights = write_weights(tmp_path / "t.weights", cfg)
    target = tmp_path / "m.onnx"
    target.write_bytes(b"precious")
    proc = subprocess.run([sys.executable, "-c", _FULL_DISK, str(weights), str(cfg), str(target)],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("OSError 27 ") and str(target) in proc.stdout, proc.stdout
    assert target.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir() if "m.onnx" in p.name] == ["m.onnx"]
    assert not list(tmp_path.glob(".yolo_io-*"))


@pytest.mark.parametrize(("option", "value", "error"), [
    ("max_detections", -1, ValueError), ("max_detections", 0, ValueError),
    ("max_detections", 2**63, ValueError), ("max_detections", 2.0, TypeError),
    ("max_detections", True, TypeError),
    ("score_threshold", 2, ValueError), ("score_threshold", -0.1, ValueError),
    ("score_threshold", float("nan"), ValueError), ("score_threshold", "0.3", TypeError),
    ("iou_threshold", float("nan"), ValueError), ("iou_threshold", float("inf"), ValueError),
])
def test_nms_options_out_of_range_are_refused(tmp_path: Path, option: str, value: object,
                                              error: type[Exception]) -> None:
    """The library checks the NMS settings, so that every caller (not only the
    CLI) is told, before anything is written."""
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    net = yolo_io.load(write_weights(tmp_path / "t.weights", cfg), cfg)
    with pytest.raises(error, match=option):
        yonnx.export(tmp_path / "m.onnx", net, outputs="nms", **{option: value})  # type: ignore[call-overload]
    assert not list(tmp_path.glob("m.onnx*"))
    # the edges of the ranges are fine
    yonnx.export(None, net, outputs="nms", score_threshold=0, iou_threshold=1, max_detections=1)


def test_too_many_detections_are_called_too_large(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    net = yolo_io.load(write_weights(tmp_path / "t.weights", cfg), cfg)
    with pytest.raises(ValueError, match="max_detections 99999999999999999999 is too large"):
        yonnx.export(None, net, outputs="nms", max_detections=99999999999999999999)


def test_external_data_replaces_a_link_and_an_unrelated_link_is_left(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``<model>.data`` is a regular file (ONNX's checker refuses external
    data behind a symbolic link): a link there is replaced, its target left
    as it was. When the weights fit inside the model, a ``<model>.data`` link
    to the network's own weights is no output: neither refused nor touched."""
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    weights = write_weights(tmp_path / "t.weights", cfg, realistic=True)
    net = yolo_io.load(weights, cfg)
    before = weights.read_bytes()
    (tmp_path / "store").mkdir()
    stored = tmp_path / "store" / "m.data"
    stored.write_bytes(b"old")
    (tmp_path / "m.onnx.data").symlink_to(stored)
    with monkeypatch.context() as m:
        m.setattr(yonnx_impl, "_EXTERNAL_DATA_LIMIT", 100)
        m.setattr(yonnx_impl, "_EXTERNAL_TENSOR_MIN", 64)
        yonnx.export(tmp_path / "m.onnx", net)
    assert not (tmp_path / "m.onnx.data").is_symlink() and stored.read_bytes() == b"old"
    onnx.checker.check_model(str(tmp_path / "m.onnx"), full_check=True)
    (tmp_path / "n.onnx.data").symlink_to(weights)  # the weights fit inside n.onnx
    yonnx.export(tmp_path / "n.onnx", net)
    assert (tmp_path / "n.onnx.data").is_symlink() and weights.read_bytes() == before
    with monkeypatch.context() as m:  # too big: writing through the link is refused
        m.setattr(yonnx_impl, "_EXTERNAL_DATA_LIMIT", 100)
        m.setattr(yonnx_impl, "_EXTERNAL_TENSOR_MIN", 64)
        with pytest.raises(yolo_io.OutputIsInputError):
            yonnx.export(tmp_path / "n.onnx", net)
    assert weights.read_bytes() == before

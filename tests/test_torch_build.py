"""yolo_io.torch.build (issue 24): a PyTorch module from the shared lowering,
checked against what we did not write: onnxruntime running the ONNX export,
OpenCV's darknet importer, the NumPy darknet forward (itself checked against
darknet's own outputs) and the decoding of tests/darknet_decode.py."""

from __future__ import annotations

import copy
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
from conftest import SHARED_CFG, corpus_cfgs, corpus_param, resized
from opencv_oracle import close, natural_image, opencv_heads, opencv_weights
from test_onnx import (
    ACTIVATIONS,
    EXPORT_REFUSES,
    NUMPY_ORACLE,
    OPENCV_REJECTS,
    SYNTHETIC_CFG,
    UNSUPPORTED,
    VALUES_NET,
    run,
)

import yolo_io
from yolo_io.testing import write_weights

torch = pytest.importorskip("torch", reason="PyTorch is not installed (the oracle extra)")
import yolo_io.onnx as yonnx
import yolo_io.torch as ytorch

pytestmark = pytest.mark.filterwarnings("ignore::yolo_io.CfgWarning")


def forward(model: Any, x: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        out = model(torch.from_numpy(x))
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def assert_equal_to_onnx(net: yolo_io.Network, x: np.ndarray, outputs: str = "raw",
                         what: str = "") -> None:
    model = ytorch.build(net, outputs=outputs).eval()  # type: ignore[arg-type]
    want = run(yonnx.export(None, net, outputs=outputs), x)  # type: ignore[arg-type]
    assert model.output_names == tuple(want)
    assert_outputs_equal(want, forward(model, x), what)


# -- the same numbers as the exporter ------------------------------------------


def test_every_supported_layer_equals_onnx_and_numpy_darknet(tmp_path: Path) -> None:
    darknet_forward = pytest.importorskip("darknet_forward")
    net = load(tmp_path, SYNTHETIC_CFG)
    x = natural_image(*net.input_shape, batch=2)
    assert_equal_to_onnx(net, x)
    want = darknet_forward.forward(net, x)
    got = forward(ytorch.build(net).eval(), x)[0]
    report = close(got, want[len(net) - 1].reshape(got.shape))
    assert report is None, report


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


def test_attention_layers_equal_darknets_own_outputs(tmp_path: Path) -> None:
    from test_onnx import DARKNET_DATA

    data = np.load(DARKNET_DATA / "attention.npz")
    weights = tmp_path / "attention.weights"
    weights.write_bytes(data["weights"].tobytes())
    net = yolo_io.load(weights, DARKNET_DATA / "attention.cfg")
    got = forward(ytorch.build(net).eval(), data["x"])[0]
    last = max(int(k[3:]) for k in data.files if k.startswith("out"))
    report = close(got, data[f"out{last}"].reshape(got.shape))
    assert report is None, report


def test_padded_pooling_weighted_shortcuts_and_local_layers(tmp_path: Path) -> None:
    net = load(tmp_path, PADDED_CFG)
    assert_equal_to_onnx(net, natural_image(*net.input_shape, batch=2))


SLOW_SIZE = 128  # corpus cfgs run at this input size (those with connected layers: their own)


def corpus_net(tmp_path: Path, cfg: Path, size: int | None = SLOW_SIZE) -> yolo_io.Network:
    text = cfg.read_text()
    fixed = any(k in text for k in ("[connected]", "[local]"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", yolo_io.CfgWarning)
        return load(tmp_path, text if fixed or size is None else resized(text, size),
                    cfg.stem)


@pytest.mark.slow
@pytest.mark.parametrize("cfg", corpus_param(exclude=(*EXPORT_REFUSES, "yolor_csp.cfg")))
def test_corpus_equals_onnx(tmp_path: Path, cfg: Path) -> None:
    """Every corpus cfg the export supports: raw outputs (and decoded ones for
    a detector) within 1e-4 of onnxruntime's, on a photograph."""
    net = corpus_net(tmp_path, cfg)
    x = natural_image(*net.input_shape)
    assert_equal_to_onnx(net, x, "raw", cfg.name)
    if any(layer.kind.head for layer in net.config):
        classes = {getattr(h.attrs, "classes", None) for h in net.config if h.kind.head}
        if len(classes) == 1:
            assert_equal_to_onnx(net, x, "decoded", cfg.name)


def test_corpus_is_covered() -> None:
    names = {c.name for c in corpus_cfgs()}
    if not names:
        pytest.skip(f"{SHARED_CFG} is not there (the real-cfg corpus lives beside the checkout)")
    assert set(EXPORT_REFUSES) <= names


@pytest.mark.slow
@pytest.mark.parametrize("cfg", corpus_param(exclude=tuple(
    OPENCV_REJECTS | set(NUMPY_ORACLE) | set(EXPORT_REFUSES))))
def test_corpus_equals_opencv(tmp_path: Path, cfg: Path) -> None:
    """Against OpenCV's darknet forward within its known error (1e-3 absolute
    or 1e-4 relative, tests/opencv_oracle.py's close)."""
    net = corpus_net(tmp_path, cfg)
    x = natural_image(*net.input_shape)
    ours = forward(ytorch.build(net).eval(), x)
    reference = opencv_heads(Path(net.config.path), opencv_weights(net, tmp_path / "cv.weights"),
                             x)
    for got, ref in zip(ours, reference, strict=True):
        report = close(got, ref.reshape(got.shape))
        assert report is None, f"{cfg.name}: {report}"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NUMPY_ORACLE))
def test_corpus_equals_numpy_darknet(tmp_path: Path, name: str) -> None:
    darknet_forward = pytest.importorskip("darknet_forward")
    cfg = SHARED_CFG / name
    if not cfg.is_file():
        pytest.skip(f"{cfg} is not there (the real-cfg corpus lives beside the checkout in CI)")
    net = corpus_net(tmp_path, cfg, NUMPY_ORACLE[name])
    x = natural_image(*net.input_shape)
    model = ytorch.build(net).eval()
    reference = darknet_forward.forward(net, x)
    heads = [layer.index for layer in net.config if layer.kind.head] or \
        [max(i for i in reference if not net.config[i].kind.training_only)]
    for index, got in zip(heads, forward(model, x), strict=True):
        want = reference[index] if not net.config[index].kind.head else \
            reference[net.config[index].inputs[0]]
        report = close(got, want.reshape(got.shape))
        assert report is None, f"{name} layer {index}: {report}"


# -- the module as PyTorch users use it ------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> yolo_io.Network:
    cfg = SHARED_CFG / "yolov4-tiny.cfg"
    if not cfg.is_file():
        pytest.skip(f"{cfg} is not there (the real-cfg corpus lives beside the checkout in CI)")
    tmp = tmp_path_factory.mktemp("tiny")
    return yolo_io.load(write_weights(tmp / "t.weights", cfg, realistic=True), cfg)


def test_state_dict_names_are_darknets_and_save_writes_the_same_file(
        tiny: yolo_io.Network, tmp_path: Path) -> None:
    model = ytorch.build(tiny)
    keys = set(model.state_dict())
    assert "layers.0.conv.weight" in keys and "layers.0.bn.running_var" in keys
    assert not any(k.startswith("const") for k in keys)  # constants are not state
    out = yolo_io.save(tmp_path / "back.weights", model.state_dict(), tiny.config)
    assert out.read_bytes()[20:] == Path(tiny.path).read_bytes()[20:]


@pytest.mark.parametrize("text", [SYNTHETIC_CFG, PADDED_CFG, HEAD_NET + HEADS["detection"]],
                         ids=["every layer", "padded, weighted, local", "connected"])
def test_every_kind_of_array_goes_back_through_save(tmp_path: Path, text: str) -> None:
    """conv, bn, connected (with batch norm), [batchnorm], local and weighted
    shortcut arrays: built, then saved from the state dict, byte for byte; a
    model from the cfg alone saves too (the shapes are darknet's)."""
    net = load(tmp_path, text)
    out = yolo_io.save(tmp_path / "back.weights", ytorch.build(net).state_dict(), net.config)
    assert out.read_bytes()[20:] == Path(net.path).read_bytes()[20:]
    scratch = yolo_io.save(tmp_path / "scratch.weights", ytorch.build(net.config).state_dict(),
                           net.config)
    assert scratch.stat().st_size == Path(net.path).stat().st_size


def test_batch_norm_is_darknets(tiny: yolo_io.Network) -> None:
    model = ytorch.build(tiny)
    norm = model.layers[0].bn
    assert isinstance(norm, torch.nn.BatchNorm2d)
    assert norm.eps == pytest.approx(1e-5) and norm.momentum == pytest.approx(0.01)


def test_train_step_then_save_equals_opencv(tiny: yolo_io.Network, tmp_path: Path) -> None:
    """The training round trip: one optimiser step in train() mode, every
    parameter with a finite gradient, then yolo_io.save of the state dict:
    OpenCV's darknet forward of the saved file equals the model's eval forward."""
    cv2 = pytest.importorskip("cv2")
    model = ytorch.build(tiny).train()
    optimiser = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.rand(2, *tiny.input_shape, generator=torch.Generator().manual_seed(0))
    outputs = model(x)
    loss = sum((o ** 2).mean() for o in outputs)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    optimiser.step()
    saved = yolo_io.save(tmp_path / "trained.weights", model.state_dict(), tiny.config)
    image = natural_image(*tiny.input_shape)
    ours = forward(model.eval(), image)
    cvnet = cv2.dnn.readNetFromDarknet(str(tiny.config.path), str(saved))
    cvnet.setInput(image)
    names = [cvnet.getLayerNames()[i - 1] for i in cvnet.getUnconnectedOutLayers().ravel()]
    reference = opencv_heads(Path(tiny.config.path), saved, image)
    assert len(names) == len(ours)
    for got, ref in zip(ours, reference, strict=True):
        report = close(got, ref.reshape(got.shape))
        assert report is None, report
    assert not np.array_equal(np.asarray(yolo_io.load(saved, tiny.config)[0].params["weights"]),
                              np.asarray(tiny[0].params["weights"]))  # the step changed them


def test_a_cfg_alone_builds_a_model_that_trains(tmp_path: Path) -> None:
    cfg = SHARED_CFG / "yolov3-tiny.cfg"
    if not cfg.is_file():
        pytest.skip(f"{cfg} is not there (the real-cfg corpus lives beside the checkout in CI)")
    text = resized(cfg.read_text(), 96)
    (tmp_path / "c.cfg").write_text(text)
    pytest.importorskip("cv2")
    for source in (tmp_path / "c.cfg", yolo_io.parse_cfg(tmp_path / "c.cfg")):
        torch.manual_seed(0)
        model = ytorch.build(source).train()
        optimiser = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
        out = model(torch.rand(2, 3, 96, 96))
        sum((o ** 2).mean() for o in out).backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all()
                   for p in model.parameters())
        optimiser.step()
        saved = yolo_io.save(tmp_path / "scratch.weights", model.state_dict(), tmp_path / "c.cfg")
        net = yolo_io.load(saved, tmp_path / "c.cfg")
        x = natural_image(*net.input_shape)
        ours = forward(model.eval(), x)
        for a, b in zip(ours, forward(ytorch.build(net).eval(), x), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
        for a, ref in zip(ours, opencv_heads(tmp_path / "c.cfg", saved, x), strict=True):
            report = close(a, ref.reshape(a.shape))
            assert report is None, report


def test_a_partial_file_assigns_what_it_holds(tiny: yolo_io.Network, tmp_path: Path) -> None:
    part = yolo_io.save(tmp_path / "part.weights", tiny, upto=10)
    net = yolo_io.load(part, tiny.config.path, partial=True)
    assert net.partial
    model = ytorch.build(net)
    np.testing.assert_array_equal(model.layers[0].conv.weight.detach().numpy(),
                                  np.asarray(tiny[0].params["weights"]).reshape(
                                      model.layers[0].conv.weight.shape))
    late = next(layer.index for layer in tiny if layer.index >= 10 and layer.fusion == "conv")
    assert not np.array_equal(model.layers[late].conv.weight.detach().numpy().ravel(),
                              np.asarray(tiny[late].params["weights"]))


def test_export_and_trace(tiny: yolo_io.Network) -> None:
    model = ytorch.build(tiny).eval()
    x = torch.from_numpy(natural_image(*tiny.input_shape))
    with torch.no_grad():
        want = model(x)
        with warnings.catch_warnings():  # torch 2.13 deprecates it; users still call it
            warnings.simplefilter("ignore", DeprecationWarning)
            traced = torch.jit.trace(model, x)
        for a, b in zip(traced(x), want, strict=True):
            torch.testing.assert_close(a, b)
    exported = torch.export.export(model, (x,))
    for a, b in zip(exported.module()(x), want, strict=True):
        torch.testing.assert_close(a, b)


def test_dtype_device_and_copies(tiny: yolo_io.Network) -> None:
    model = ytorch.build(tiny, outputs="decoded").eval()
    x = torch.from_numpy(natural_image(*tiny.input_shape))
    with torch.no_grad():
        want = model(x)
        double = copy.deepcopy(model).to(torch.float64)(x.double())
        assert all(t.dtype == torch.float64 for t in double)
        for a, b in zip(double, want, strict=True):
            torch.testing.assert_close(a.float(), b, rtol=1e-4, atol=1e-4)
        twin = copy.deepcopy(model)
        twin.layers[0].conv.weight.zero_()  # a copy computes with its own weights
        for a, b in zip(model(x), want, strict=True):
            torch.testing.assert_close(a, b)
        assert not torch.equal(twin(x)[0], want[0])
        model.to("meta")
        assert model(x.to("meta"))[0].device.type == "meta"


# -- refusals --------------------------------------------------------------------


@pytest.mark.parametrize(("body", "what"), UNSUPPORTED.values(), ids=UNSUPPORTED.keys())
def test_what_no_model_computes_is_refused_naming_the_layer(tmp_path: Path, body: str,
                                                            what: str) -> None:
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("[net]\nwidth=9\nheight=9\nchannels=3\n\n[convolutional]\nfilters=4\nsize=1\n"
                   "activation=linear\n\n" + body)
    net = yolo_io.load(write_weights(tmp_path / "bad.weights", cfg), cfg)
    bad = next(layer for layer in reversed(list(net.config)) if layer.index > 0)
    for source in (net, net.config):
        with pytest.raises(yolo_io.ConversionError, match=what) as info:
            ytorch.build(source)
        message = str(info.value)
        assert f"{cfg} line" in message and f"layer {bad.index}" in message, message


def test_argument_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "c.cfg"
    cfg.write_text(VALUES_NET)
    with pytest.raises(ValueError, match="outputs must be 'raw' or 'decoded'"):
        ytorch.build(cfg, outputs="nms")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Network, a Config or a cfg path"):
        ytorch.build(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ytorch.build(cfg, "raw")  # type: ignore[misc]
    with pytest.raises(FileNotFoundError):
        ytorch.build(tmp_path / "missing.cfg")


def test_the_model_pickles(tiny: yolo_io.Network, tmp_path: Path) -> None:
    """torch.save of the whole model (and so multiprocessing's spawn): the
    model holds no closures, and a Config pickles as its source."""
    model = ytorch.build(tiny).eval()
    torch.save(model, tmp_path / "m.pt")
    again = torch.load(tmp_path / "m.pt", weights_only=False)
    x = torch.from_numpy(natural_image(*tiny.input_shape))
    with torch.no_grad():
        for a, b in zip(model(x), again(x), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert again.config.path == tiny.config.path


def test_dropout_drops_only_in_training(tmp_path: Path) -> None:
    net = load(tmp_path, "[net]\nwidth=8\nheight=8\nchannels=3\n\n[convolutional]\nfilters=8\n"
               "size=3\npad=1\nactivation=leaky\n\n[dropout]\nprobability=.5\n")
    model = ytorch.build(net)
    x = torch.from_numpy(natural_image(*net.input_shape))
    with torch.no_grad():
        model.eval()
        torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)
        kept = model(x)
        model.train()
        dropped = model(x)
    assert (dropped == 0).float().mean() > 0.3
    mask = dropped != 0
    torch.testing.assert_close(dropped[mask], kept[mask] * 2)  # scaled by 1 / (1 - p)


def test_dontloadscales_computes_as_the_export_and_dontload_is_refused(tmp_path: Path) -> None:
    net = load(tmp_path, "[net]\nwidth=8\nheight=8\nchannels=3\n\n[convolutional]\n"
               "batch_normalize=1\ndontloadscales=1\nfilters=4\nsize=3\npad=1\n"
               "activation=leaky\n")
    assert_equal_to_onnx(net, natural_image(*net.input_shape))
    out = yolo_io.save(tmp_path / "back.weights", ytorch.build(net).state_dict(), net.config)
    assert out.read_bytes()[20:] == Path(net.path).read_bytes()[20:]
    net = load(tmp_path, "[net]\nwidth=8\nheight=8\nchannels=3\n\n[convolutional]\nfilters=4\n"
               "size=3\npad=1\ndontload=1\nactivation=leaky\n", "dontload")
    for build in (ytorch.build, lambda n: yonnx.export(None, n)):
        with pytest.raises(yolo_io.ConversionError, match=r"layer 0 .*line 6\): dontload=1"):
            build(net)


@pytest.mark.parametrize(("body", "what"), [
    # forward_shortcut_layer computes swish and mish itself; hard_mish goes to
    # activate(), which has no case for it and outputs 0.
    (("[convolutional]\nfilters=4\nsize=1\nactivation=linear\n\n[shortcut]\nfrom=-2\n"
     "activation=hard_mish\n"), r"layer 2 .*activation=hard_mish in a \[shortcut\]"),
    # 5x5 by stride 2: darknet's reorg reads past its input
    (("[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\n\n[reorg]\n"
     "stride=2\n"), r"layer 2 .*stride=2 does not divide"),
])
def test_what_darknet_computes_wrongly_is_refused_everywhere(tmp_path: Path, body: str,
                                                             what: str) -> None:
    import yolo_io.keras

    net = load(tmp_path, "[net]\nwidth=10\nheight=10\nchannels=3\n\n[convolutional]\n"
               "filters=4\nsize=1\nactivation=linear\n\n" + body)
    for build in (ytorch.build, yolo_io.keras.build, lambda n: yonnx.export(None, n)):
        with pytest.raises(yolo_io.ConversionError, match=what):
            build(net)


def test_a_head_that_cannot_be_decoded_says_raw_outputs_work(tmp_path: Path) -> None:
    net = load(tmp_path, HEAD_NET + HEADS["region"].replace("softmax=1", "softmax=0"))
    with pytest.raises(yolo_io.ConversionError, match=r"without softmax; no decoded outputs "
                                                      r"for it .*--outputs raw"):
        ytorch.build(net, outputs="decoded")
    assert ytorch.build(net, outputs="raw") is not None

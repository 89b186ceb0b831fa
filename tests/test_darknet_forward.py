"""The NumPy reference forward pass (tests/darknet_forward.py) against two
things we did not write: darknet itself and OpenCV's Darknet importer.

* Darknet: every stored layer output of the small synthetic cfgs in
  ``tests/data/darknet_forward/`` (made by AlexeyAB darknet's CPU build, see the
  README there): the layer types and options OpenCV cannot check. Tolerance:
  max |ours - darknet| <= 1e-5 * max(1, max |darknet|) per layer (measured:
  <= 1e-6 of that scale; darknet's float32 GEMM rounding).
* OpenCV (``cv2.dnn.readNetFromDarknet``): every non-head layer of small
  corpus cfgs, on a reduced input size. OpenCV's darknet batch norm divides by
  ``sqrt(var + 1e-6)`` where darknet uses ``sqrt(var + 1e-5)``, so OpenCV gets
  a copy of the weights whose variances are raised by 9e-6, and its Winograd
  convolution (errors ~1e-5) is switched off; then the tolerance is the same
  1e-5 * max(1, max |OpenCV|) (measured: <= 2e-6). Unadjusted, the two differ
  by ~5e-5 after a dozen layers.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS_REASON, SHARED_CFG, TINY_CFG
from darknet_forward import HEADS, forward

import yolo_io
from yolo_io.testing import write_weights

DATA = Path(__file__).parent / "data" / "darknet_forward"
CASES = sorted(p.stem for p in DATA.glob("*.cfg"))
RTOL = 1e-5


def close(ours: np.ndarray, ref: np.ndarray, where: str) -> float:
    """Asserts max |ours - ref| <= RTOL * max(1, max |ref|); returns that error
    relative to the scale. -FLT_MAX (a max-pool window wholly outside the
    image) must match exactly and is left out of the scale."""
    ours = ours.reshape(ref.shape)
    huge = np.abs(ref) == np.finfo(np.float32).max
    np.testing.assert_array_equal(ours[huge], ref[huge], err_msg=where)
    ours, ref = ours[~huge].astype(np.float64), ref[~huge]
    scale = max(1.0, float(np.abs(ref).max(initial=0)))
    err = float(np.abs(ours - ref).max(initial=0))
    assert err <= RTOL * scale, f"{where}: max |diff| {err:.3g} > {RTOL:g} * {scale:.3g}"
    return err / scale


@pytest.mark.parametrize("case", CASES)
def test_matches_darknet(tmp_path: Path, case: str) -> None:
    ref = np.load(DATA / f"{case}.npz")
    weights = tmp_path / f"{case}.weights"
    weights.write_bytes(ref["weights"].tobytes())
    net = yolo_io.load(weights, DATA / f"{case}.cfg")
    x = ref["x"]
    ours = forward(net, x)
    assert sorted(ours) == list(range(len(net)))
    compared = 0
    for layer in net:
        key = f"out{layer.index}"
        if key not in ref:
            continue
        theirs = ref[key]
        where = f"{case} layer {layer.index} ({layer.type})"
        if layer.activation == "relu6":
            # darknet's CPU activate() has no RELU6 case: it outputs zeros. The
            # reference computes the GPU kernel's min(max(x, 0), 6) instead.
            assert not theirs.any(), where
            if layer.type == "activation":
                close(ours[layer.index], np.clip(ref[f"out{layer.index - 1}"], 0, 6), where)
            continue
        close(ours[layer.index], theirs, where)
        compared += 1
    assert compared >= 5


def test_relu6_is_a_clip() -> None:
    """The relu6 [activation] above is compared with a clip of darknet's
    input; here a clip that actually clips."""
    from darknet_forward import _activate

    x = np.array([-7, -0.5, 0, 0.5, 5.9, 6, 6.1, 60], dtype=np.float32).reshape(1, -1, 1, 1)
    for path in ("conv", "shortcut", "array"):
        np.testing.assert_array_equal(_activate(x, "relu6", path), np.clip(x, 0, 6))


def cfg_net(tmp_path: Path, text: str, seed: int = 0) -> yolo_io.Network:
    cfg = tmp_path / "t.cfg"
    cfg.write_text(text)
    return yolo_io.load(write_weights(tmp_path / "t.weights", cfg, realistic=True, seed=seed), cfg)


def test_heads_return_their_input_and_upto(tmp_path: Path) -> None:
    net = cfg_net(tmp_path, TINY_CFG)
    x = np.random.default_rng(1).random((3, *net.input_shape), dtype=np.float32)
    out = forward(net, x)
    head = len(net) - 1
    assert net[head].type in HEADS
    assert out[head] is out[head - 1] and out[head].shape == (3, *net[head].output_shape)
    part = forward(net, x, upto=4)
    assert sorted(part) == [0, 1, 2, 3]
    for i in part:
        np.testing.assert_array_equal(part[i], out[i])
    assert forward(net, x, upto=0) == {}
    net.close()


def test_flat_outputs(tmp_path: Path) -> None:
    text = ("[net]\nwidth=4\nheight=4\nchannels=3\n[convolutional]\nfilters=2\nsize=1\nactivation=leaky\n"
            "[avgpool]\n[softmax]\n[route]\nlayers=0\n[connected]\noutput=5\nactivation=linear\n"
            "[dropout]\n[softmax]\n")
    net = cfg_net(tmp_path, text)
    out = forward(net, np.zeros((2, 3, 4, 4), dtype=np.float32))
    assert [out[i].shape for i in range(len(net))] == [
        (2, 2, 4, 4), (2, 2, 1, 1), (2, 2, 1, 1), (2, 2, 4, 4), (2, 5), (2, 5), (2, 5)]
    np.testing.assert_allclose(out[6].sum(axis=1), 1, rtol=1e-6)
    net.close()


@pytest.mark.parametrize(("section", "match"), [
    ("[avgpool]\n[scale_channels]\nfrom=-3\nactivation=swish\n", r"layer 3 \(scale_channels\).*swish"),
    ("[sam]\nfrom=-2\nactivation=mish\n", r"layer 2 \(sam\).*mish"),
    ("[rnn]\noutput=4\nhidden=4\n", r"layer 2 \(rnn\)"),
    ("[convolutional]\nfilters=2\nsize=3\npad=1\nxnor=1\n", r"layer 2 \(convolutional\).*xnor"),
    ("[softmax]\nspatial=1\n", r"layer 2 \(softmax\).*spatial"),
])
def test_unsupported_raise(tmp_path: Path, section: str, match: str) -> None:
    text = ("[net]\nwidth=4\nheight=4\nchannels=3\n[convolutional]\nfilters=2\nsize=1\n"
            "activation=leaky\n[convolutional]\nfilters=2\nsize=1\nactivation=logistic\n" + section)
    net = cfg_net(tmp_path, text)
    with pytest.raises(NotImplementedError, match=match):
        forward(net, np.zeros((1, 3, 4, 4), dtype=np.float32))
    assert sorted(forward(net, np.zeros((1, 3, 4, 4), dtype=np.float32), upto=2)) == [0, 1]
    net.close()


def test_bad_input(tmp_path: Path) -> None:
    net = cfg_net(tmp_path, TINY_CFG)
    with pytest.raises(ValueError, match="float32"):
        forward(net, np.zeros((1, 3, 8, 8)))
    with pytest.raises(ValueError, match=r"\(N, 3, 8, 8\)"):
        forward(net, np.zeros((1, 3, 8, 9), dtype=np.float32))
    net.close()


# ---------------------------------------------------------------------------
# OpenCV

# corpus cfg -> input size (small, to keep the test fast)
OPENCV_CASES = {
    "yolov3-tiny.cfg": 160,         # maxpool size 2 stride 1, route, upsample, 2 yolo heads
    "yolov4-tiny.cfg": 160,         # route groups (one input), concat
    "yolov3-tiny-prn.cfg": 160,     # shortcut with different channel counts, leaky shortcut
    "yolov2-tiny.cfg": 160,         # region head
    "yolov7-tiny.cfg": 128,         # SPP-style maxpools, many routes
    "pjreddie-darknet19.cfg": 128,  # avgpool, softmax
}


def resized(text: str, size: int) -> str:
    """The cfg with [net] width and height set to ``size`` (other sections untouched)."""
    net = re.search(r"^\[net(work)?\][^\[]*", text, re.MULTILINE)
    assert net is not None
    body = re.sub(r"^(width|height)=.*$", lambda m: f"{m.group(1)}={size}", net.group(0), flags=re.MULTILINE)
    return text[:net.start()] + body + text[net.end():]


def opencv_node(cfg: yolo_io.Config) -> dict[int, int]:
    """Darknet layer index -> position of its last node in OpenCV's layer list
    (one node per layer, +1 for a conv/connected batch norm, +1 for the permute
    before [yolo]/[region], +1 for a non-linear activation; as in
    tests/test_opencv_oracle.py)."""
    pos = -1
    out: dict[int, int] = {}
    for layer in cfg:
        pos += 1
        if layer.type in ("convolutional", "connected") and "scales" in layer.param_shapes:
            pos += 1
        if layer.type in ("yolo", "region"):
            pos += 1
        if (layer.activation or "linear") != "linear":
            pos += 1
        out[layer.index] = pos
    return out


def opencv_weights(net: yolo_io.Network, path: Path) -> Path:
    """A copy of the network's file with every rolling_variance raised by
    1e-5 - 1e-6, so that OpenCV's sqrt(var + 1e-6) equals darknet's sqrt(var + 1e-5)."""
    data = bytearray(net.raw)
    for layer in net:
        for spec in layer.param_specs:
            if spec.name == "rolling_variance":
                start = layer.offset + 4 * spec.offset
                var = np.frombuffer(data, np.float32, spec.size, start).astype(np.float64)
                data[start:start + 4 * spec.size] = (var + (1e-5 - 1e-6)).astype(np.float32).tobytes()
    path.write_bytes(bytes(data))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(OPENCV_CASES))
def test_matches_opencv(tmp_path: Path, name: str) -> None:
    if not SHARED_CFG.is_dir():
        pytest.skip(CORPUS_REASON)
    cv2 = pytest.importorskip("cv2", reason="opencv-python-headless<5 is not installed")
    if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromDarknet"):  # pragma: no cover
        pytest.skip("this OpenCV has no Darknet importer (removed in 5.x)")
    cfg = tmp_path / name
    cfg.write_text(resized((SHARED_CFG / name).read_text(), OPENCV_CASES[name]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", yolo_io.CfgWarning)
        net = cfg_net(tmp_path, cfg.read_text(), seed=3)
    x = np.random.default_rng(3).random((2, *net.input_shape), dtype=np.float32)
    ours = forward(net, x)

    ocv = cv2.dnn.readNetFromDarknet(str(cfg), str(opencv_weights(net, tmp_path / "ocv.weights")))
    if hasattr(ocv, "enableWinograd"):
        ocv.enableWinograd(False)
    names = list(ocv.getLayerNames())
    node = opencv_node(net.config)
    layers = [layer for layer in net if layer.type not in HEADS]
    ocv.setInput(x)
    theirs = ocv.forward([names[node[layer.index]] for layer in layers])
    worst = 0.0
    for layer, ref in zip(layers, theirs, strict=True):
        ref = np.asarray(ref).reshape(2, -1)
        assert ref.size == ours[layer.index].size, (layer.index, names[node[layer.index]])
        worst = max(worst, close(ours[layer.index], ref, f"{name} layer {layer.index} ({layer.type})"))
    assert {h.index - 1 for h in net if h.type in HEADS} <= {layer.index for layer in layers}
    assert worst < RTOL
    net.close()

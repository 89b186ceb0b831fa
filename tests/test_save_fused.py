"""yolo_io.save_fused(): the cfg changes only on its batch_normalize lines, the
weights are Layer.fused()'s, and OpenCV's darknet importer computes the same
outputs from the fused pair as from the original (the oracle)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_CFG, TINY_CFG

import yolo_io
from yolo_io._writing.fused import save_fused
from yolo_io.testing import write_weights

pytestmark = pytest.mark.filterwarnings("ignore::yolo_io.CfgWarning")

# CRLF line endings, comments (# and ;) anywhere, blank lines, spaces that
# darknet deletes, a cbn layer (BN forced on), a conv with batch_normalize=0,
# BN layers yolo_io must not fold ([deconvolutional], [batchnorm], [rnn]), a
# [connected] with BN, a repeated key (darknet reads the first copy), and a
# last line without a line ending.
ODD_CFG = (
    "# a cfg with CRLF line endings\r\n"
    "[net]\r\n"
    "width=8\r\n"
    "height=8\r\n"
    "channels=3\r\n"
    "\r\n"
    "; conv with spaces around its option\r\n"
    "[convolutional]\r\n"
    "  batch_normalize = 1  \r\n"
    "filters=4\r\n"
    "size=3\r\n"
    "pad=1\r\n"
    "activation=leaky\r\n"
    "\r\n"
    "[conv]\r\n"
    "filters=4\r\n"
    "size=1\r\n"
    "cbn=1\r\n"
    "activation=linear\r\n"
    "\r\n"
    "[convolutional]\r\n"
    "batch_normalize=0\r\n"
    "filters=4\r\n"
    "size=3\r\n"
    "pad=1\r\n"
    "groups=2\r\n"
    "activation=leaky\r\n"
    "\r\n"
    "[convolutional]\r\n"
    "batch_normalize=2   # darknet: atoi(\"2#darknet:...\") = 2\r\n"
    "batch_normalize=0\r\n"
    "filters=4\r\n"
    "size=3\r\n"
    "pad=1\r\n"
    "activation=mish\r\n"
    "\r\n"
    "[batchnorm]\r\n"
    "\r\n"
    "[deconvolutional]\r\n"
    "filters=2\r\n"
    "size=2\r\n"
    "stride=2\r\n"
    "batch_normalize=1\r\n"
    "activation=leaky\r\n"
    "\r\n"
    "[connected]\r\n"
    "output=6\r\n"
    "batch_normalize=1\r\n"
    "activation=leaky\r\n"
    "\r\n"
    "[rnn]\r\n"
    "output=4\r\n"
    "hidden=4\r\n"
    "batch_normalize=1\r\n"
    "activation=leaky\r\n"
    "\r\n"
    "[connected]\r\n"
    "output=3\r\n"
    "batch_normalize=1\r\n"
    "activation=linear\r\n"
    "# the last line has no line ending"
)
# Layers folded and the (1-based) lines that must change in ODD_CFG.
ODD_FUSED = {0, 1, 3, 6, 8}
ODD_LINES = {9: b"batch_normalize=0\r", 18: b"cbn=0\r", 30: b"batch_normalize=0\r",
             48: b"batch_normalize=0\r", 59: b"batch_normalize=0\r"}

# A small detector OpenCV's importer reads correctly (no route with groups
# over several inputs, no [connected] with BN, which OpenCV 4.x turns into
# NaNs): BN convs with leaky, mish, swish and logistic, a grouped conv, a
# single-input route with groups, a shortcut, maxpool, upsample, a two-input
# route, two yolo heads.
ORACLE_CFG = """\
[net]
width=32
height=32
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
groups=2
activation=mish

[route]
layers=-1
groups=2
group_id=1

[convolutional]
batch_normalize=1
filters=8
size=1
stride=1
pad=1
activation=swish

[shortcut]
from=-2
activation=linear

[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
pad=1
activation=logistic

[convolutional]
size=1
stride=1
pad=1
filters=18
activation=linear

[yolo]
mask=3,4,5
anchors=2,3, 4,5, 6,7, 8,9, 10,11, 12,13
classes=1
num=6

[route]
layers=-3

[convolutional]
batch_normalize=1
filters=8
size=1
stride=1
pad=1
activation=leaky

[upsample]
stride=2

[route]
layers=-1,-7

[convolutional]
size=1
stride=1
pad=1
filters=18
activation=linear

[yolo]
mask=0,1,2
anchors=2,3, 4,5, 6,7, 8,9, 10,11, 12,13
classes=1
num=6
"""

SHARE_CFG = """\
[net]
width=8
height=8
channels=4

[convolutional]
batch_normalize=1
filters=4
size=3
pad=1
activation=leaky

[convolutional]
batch_normalize={bn}
filters=4
size=3
pad=1
share_index=0
activation=leaky
"""


def lines(data: bytes) -> list[bytes]:
    """Lines as darknet (and yolo_io) count them: ended by LF only."""
    return data.split(b"\n")


def changed_lines(old: bytes, new: bytes) -> dict[int, bytes]:
    a, b = lines(old), lines(new)
    assert len(a) == len(b)
    return {i + 1: y for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y}


def fuse_pair(tmp_path: Path, cfg_bytes: bytes, seed: int = 5, realistic: bool = True,
              **kw: object) -> tuple[yolo_io.Network, Path, Path]:
    cfg = tmp_path / "orig.cfg"
    cfg.write_bytes(cfg_bytes)
    weights = write_weights(tmp_path / "orig.weights", cfg, seed=seed, realistic=realistic)
    net = yolo_io.load(weights, cfg)
    out_w, out_c = save_fused(tmp_path / "fused.weights", tmp_path / "fused.cfg", net, **kw)  # type: ignore[arg-type]
    assert (out_w, out_c) == (tmp_path / "fused.weights", tmp_path / "fused.cfg")
    return net, out_w, out_c


def small_corpus_cfg(name: str, tmp_path: Path, size: int) -> bytes:
    """A corpus cfg with a smaller input (first width/height in [net])."""
    path = SHARED_CFG / name
    if not path.is_file():
        pytest.skip(f"{path} is not there (the real-cfg corpus lives beside the checkout in CI)")
    data = path.read_bytes()
    data = re.sub(rb"(?m)^width=\d+", b"width=%d" % size, data, count=1)
    return re.sub(rb"(?m)^height=\d+", b"height=%d" % size, data, count=1)


# ---------------------------------------------------------------- (1) the cfg text


def expected_bn_lines(net: yolo_io.Network) -> dict[int, bytes]:
    out = {}
    for layer in net:
        if layer.fusion is not None and "scales" in layer.params:
            out[layer.option_line("batch_normalize")] = b"batch_normalize=0"
    return out


def test_cfg_changes_only_bn_lines_tiny(tmp_path: Path) -> None:
    net, _, cfg = fuse_pair(tmp_path, TINY_CFG.encode())
    changed = changed_lines(TINY_CFG.encode(), cfg.read_bytes())
    assert changed == expected_bn_lines(net) and len(changed) == 2


@pytest.mark.parametrize("name", ["yolov4-tiny.cfg", "yolov3-tiny.cfg", "yolov4.cfg"])
def test_cfg_changes_only_bn_lines_corpus(tmp_path: Path, name: str) -> None:
    original = small_corpus_cfg(name, tmp_path, 64)
    net, _, cfg = fuse_pair(tmp_path, original, realistic=False)
    changed = changed_lines(original, cfg.read_bytes())
    assert changed == expected_bn_lines(net)
    assert len(changed) == sum(1 for layer in net if getattr(layer.attrs, "batch_normalize", 0))


def test_cfg_crlf_comments_cbn_repeated_keys(tmp_path: Path) -> None:
    original = ODD_CFG.encode()
    net, weights, cfg = fuse_pair(tmp_path, original)
    assert {layer.index for layer in net if "scales" in layer.params and layer.fusion} == ODD_FUSED
    new = cfg.read_bytes()
    assert changed_lines(original, new) == ODD_LINES
    assert new.count(b"\r\n") == original.count(b"\r\n")
    assert not new.endswith(b"\n")
    fused = yolo_io.load(weights, cfg)
    for layer in fused:
        if layer.index in ODD_FUSED:
            attrs = layer.attrs
            assert isinstance(attrs, (yolo_io.attrs.ConvolutionalAttrs, yolo_io.attrs.ConnectedAttrs))
            assert not attrs.batch_normalize
        else:  # [batchnorm], [deconvolutional] and [rnn] keep their BN arrays
            assert layer.param_shapes == net[layer.index].param_shapes


# ------------------------------------------------- (2) yolo_io reads Layer.fused()


@pytest.mark.parametrize("header", [None, (0, 1, 0), (0, 2, 5, 99), (1000, 1001, 0)],
                         ids=["own", "0.1.0", "0.2.5-seen", "legacy-transposed"])
@pytest.mark.parametrize("cfg_text", [TINY_CFG, ODD_CFG], ids=["tiny", "odd"])
def test_fused_params_are_layer_fused(tmp_path: Path, cfg_text: str,
                                      header: tuple[int, ...] | None) -> None:
    net, weights, cfg = fuse_pair(tmp_path, cfg_text.encode(), realistic=False,
                                  header=header)
    fused = yolo_io.load(weights, cfg)
    if header is None:
        assert fused.header == net.header
    else:
        assert fused.header[:len(header)] == header
    assert len(fused) == len(net)
    n_fused = 0
    for old, new in zip(net, fused, strict=True):
        if old.fusion is not None and "scales" in old.params:
            w, b = old.fused()
            assert sorted(new.params) == ["biases", "weights"]
            assert new.params["weights"].tobytes() == w.tobytes()
            assert new.params["biases"].tobytes() == b.tobytes()
            assert new.fused()[0].tobytes() == w.tobytes()  # nothing left to fold
            n_fused += 1
        else:
            assert sorted(new.params) == sorted(old.params)
            for name, array in old.params.items():
                assert new.params[name].tobytes() == array.tobytes(), (old, name)
    assert n_fused > 0


def test_share_index_with_bn_follows_its_source(tmp_path: Path) -> None:
    original = SHARE_CFG.format(bn=1).encode()
    net, weights, cfg = fuse_pair(tmp_path, original)
    assert changed_lines(original, cfg.read_bytes()) == {7: b"batch_normalize=0",
                                                         14: b"batch_normalize=0"}
    fused = yolo_io.load(weights, cfg)
    attrs = fused[1].attrs
    assert isinstance(attrs, yolo_io.attrs.ConvolutionalAttrs) and not attrs.batch_normalize
    assert fused[1].share_index == 0
    assert fused[0].params["weights"].tobytes() == net[0].fused()[0].tobytes()


def test_save_over_the_networks_own_files_is_refused(tmp_path: Path) -> None:
    """The fused pair over the original pair would replace the only copy of
    the unfused model (issue 22: convert --fuse replaced its input cfg)."""
    cfg = tmp_path / "m.cfg"
    cfg.write_text(TINY_CFG)
    weights = write_weights(tmp_path / "m.weights", cfg, seed=2)
    before = (cfg.read_bytes(), weights.read_bytes())
    net = yolo_io.load(weights, cfg)
    for pair in [(weights, cfg), (weights, tmp_path / "f.cfg"), (tmp_path / "f.weights", cfg)]:
        with pytest.raises(yolo_io.OutputIsInputError):
            save_fused(*pair, net)
    assert (cfg.read_bytes(), weights.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.cfg", "m.weights"]


# ----------------------------------------------------------- (3) OpenCV, the oracle


def opencv_outputs(cfg: Path, weights: Path, x: np.ndarray) -> list[np.ndarray]:
    cv2 = pytest.importorskip("cv2", reason="opencv-python-headless is not installed")
    if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromDarknet"):
        pytest.skip("this OpenCV has no Darknet importer (removed in 5.x)")
    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    net.setInput(x)
    names = net.getUnconnectedOutLayersNames()
    assert names
    return [np.asarray(o) for o in net.forward(names)]


def max_relative_difference(original: list[np.ndarray], fused: list[np.ndarray]) -> float:
    """max |fused - original| / max |original|, over each output."""
    assert len(original) == len(fused)
    worst = 0.0
    for a, b in zip(original, fused, strict=True):
        assert a.shape == b.shape and np.isfinite(a).all() and np.isfinite(b).all()
        scale = float(np.abs(a).max())
        assert scale > 0
        worst = max(worst, float(np.abs(a - b).max()) / scale)
    return worst


@pytest.mark.parametrize(("name", "size"), [("own", 32), ("yolov4-tiny.cfg", 96),
                                            ("yolov3-tiny.cfg", 96)])
def test_opencv_gives_the_same_outputs(tmp_path: Path, name: str, size: int) -> None:
    pytest.importorskip("cv2", reason="opencv-python-headless is not installed")
    original = ORACLE_CFG.encode() if name == "own" else small_corpus_cfg(name, tmp_path, size)
    net, weights, cfg = fuse_pair(tmp_path, original, seed=3)
    assert any("scales" in layer.params for layer in net)
    x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    before = opencv_outputs(Path(net.config.path), Path(net.path), x)
    after = opencv_outputs(cfg, weights, x)
    rel = max_relative_difference(before, after)
    print(f"{name}: max relative difference {rel:.3g}")
    assert rel < 1e-4
    for a, b in zip(before, after, strict=True):  # element by element as well
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * float(np.abs(a).max()))


# ------------------------------------------------------------------ (4) bad inputs


@pytest.fixture
def tiny_net(tmp_path: Path) -> yolo_io.Network:
    cfg = tmp_path / "t.cfg"
    cfg.write_text(TINY_CFG)
    return yolo_io.load(write_weights(tmp_path / "t.weights", cfg, seed=1), cfg)


def assert_untouched(tmp_path: Path, before: dict[str, bytes]) -> None:
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def snapshot(tmp_path: Path) -> dict[str, bytes]:
    for name in ("out.weights", "out.cfg"):
        (tmp_path / name).write_bytes(b"old " + name.encode())
    return {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}


def test_closed_network(tmp_path: Path, tiny_net: yolo_io.Network) -> None:
    before = snapshot(tmp_path)
    tiny_net.close()
    with pytest.raises(yolo_io.YoloIOError, match="closed"):
        save_fused(tmp_path / "out.weights", tmp_path / "out.cfg", tiny_net)
    assert_untouched(tmp_path, before)


def test_partial_network(tmp_path: Path) -> None:
    cfg = tmp_path / "t.cfg"
    cfg.write_text(TINY_CFG)
    weights = write_weights(tmp_path / "t.weights", cfg, layers=2)
    net = yolo_io.load(weights, cfg, partial=True)
    before = snapshot(tmp_path)
    with pytest.raises(yolo_io.ConversionError, match=r"first \d+ of the 9 layers"):
        save_fused(tmp_path / "out.weights", tmp_path / "out.cfg", net)
    assert_untouched(tmp_path, before)


def test_network_from_cfg_text(tmp_path: Path) -> None:
    weights = write_weights(tmp_path / "t.weights", TINY_CFG, seed=1)
    net = yolo_io.load(weights, TINY_CFG)
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match="cfg_text"):
        save_fused(tmp_path / "out.weights", tmp_path / "out.cfg", net)
    assert_untouched(tmp_path, before)
    with pytest.raises(yolo_io.ConversionError, match="not the cfg"):
        save_fused(tmp_path / "out.weights", tmp_path / "out.cfg", net,
                   cfg_text=TINY_CFG.replace("filters=4", "filters=6"))
    assert_untouched(tmp_path, before)
    save_fused(tmp_path / "out.weights", tmp_path / "out.cfg", net, cfg_text=TINY_CFG)
    assert changed_lines(TINY_CFG.encode(), (tmp_path / "out.cfg").read_bytes()) == \
        expected_bn_lines(net)
    yolo_io.load(tmp_path / "out.weights", tmp_path / "out.cfg")


def test_network_from_a_raw_safetensors_export(tmp_path: Path, tiny_net: yolo_io.Network) -> None:
    """Issue 22: the cfg a raw export holds is the one rewritten (there is no
    cfg file: its config.path names the export)."""
    raw = yolo_io.load(yolo_io.save_safetensors(tmp_path / "m.safetensors", tiny_net))
    w, c = save_fused(tmp_path / "a.weights", tmp_path / "a.cfg", tiny_net)
    w2, c2 = save_fused(tmp_path / "b.weights", tmp_path / "b.cfg", raw)
    assert c2.read_bytes() == c.read_bytes()
    assert w2.read_bytes() == w.read_bytes()
    # Its own export may not be replaced by a .weights file (its cfg would be lost).
    before = (tmp_path / "m.safetensors").read_bytes()
    with pytest.raises(yolo_io.OutputIsInputError, match="weights file"):
        save_fused(tmp_path / "m.safetensors", tmp_path / "m.cfg", raw)
    assert (tmp_path / "m.safetensors").read_bytes() == before


def test_cfg_file_changed_since_load(tmp_path: Path, tiny_net: yolo_io.Network) -> None:
    Path(tiny_net.config.path).write_text("# edited\n" + TINY_CFG)
    before = snapshot(tmp_path)
    with pytest.raises(yolo_io.ConversionError, match="changed since it was loaded"):
        save_fused(tmp_path / "out.weights", tmp_path / "out.cfg", tiny_net)
    assert_untouched(tmp_path, before)


def test_share_index_without_bn_cannot_be_expressed(tmp_path: Path) -> None:
    cfg = tmp_path / "s.cfg"
    cfg.write_text(SHARE_CFG.format(bn=0))
    net = yolo_io.load(write_weights(tmp_path / "s.weights", cfg), cfg)
    before = snapshot(tmp_path)
    with pytest.raises(yolo_io.ConversionError, match="share_index"):
        save_fused(tmp_path / "out.weights", tmp_path / "out.cfg", net)
    assert_untouched(tmp_path, before)


def test_bad_arguments(tmp_path: Path, tiny_net: yolo_io.Network) -> None:
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match="both"):
        save_fused(tmp_path / "out.x", tmp_path / "out.x", tiny_net)
    with pytest.raises(yolo_io.OutputIsInputError, match=r"network's weights file"):
        save_fused(tmp_path / "out.weights", tiny_net.path, tiny_net)
    with pytest.raises(yolo_io.OutputIsInputError, match=r"network.s cfg"):
        save_fused(tiny_net.config.path, tmp_path / "out.cfg", tiny_net)
    with pytest.raises(TypeError, match="Network"):
        save_fused(tmp_path / "out.weights", tmp_path / "out.cfg", tiny_net.config)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cfg_text"):
        save_fused(tmp_path / "out.weights", tmp_path / "out.cfg", tiny_net, cfg_text=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="header"):
        save_fused(tmp_path / "out.weights", tmp_path / "out.cfg", tiny_net, header=(1, 2))  # type: ignore[arg-type]
    assert_untouched(tmp_path, before)


def test_failure_while_writing_leaves_both_targets(tmp_path: Path, tiny_net: yolo_io.Network,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import yolo_io._writing.fused as module

    before = snapshot(tmp_path)

    class HalfWritten:  # the disk fills up after the cfg and part of the weights
        def write(self, writer: object, progress: object = None) -> None:
            writer.write(b"half a file")  # type: ignore[attr-defined]
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(module, "plan_weights", lambda *args, **kw: HalfWritten())
    with pytest.raises(OSError, match="No space"):
        save_fused(tmp_path / "out.weights", tmp_path / "out.cfg", tiny_net)
    assert_untouched(tmp_path, before)  # no temporary file left either


def test_missing_folder(tmp_path: Path, tiny_net: yolo_io.Network) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(FileNotFoundError):
            save_fused(tmp_path / "no" / "out.weights", tmp_path / "out.cfg", tiny_net)
    assert not (tmp_path / "out.cfg").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_repeated_batch_normalize_lines_are_all_switched_off(tmp_path: Path) -> None:
    text = TINY_CFG.replace("batch_normalize=1\n", "batch_normalize=1\nbatch_normalize=1\n", 1)
    cfg = tmp_path / "twice.cfg"
    cfg.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", yolo_io.CfgWarning)  # the repeated key
        net = yolo_io.load(write_weights(tmp_path / "w.weights", cfg, seed=2), cfg)
        _, out_cfg = yolo_io.save_fused(tmp_path / "f.weights", tmp_path / "f.cfg", net)
    new = out_cfg.read_text().split("\n")
    first = [i for i, line in enumerate(new) if line.startswith("batch_normalize")][:2]
    assert [new[i] for i in first] == ["batch_normalize=0", "batch_normalize=0"]

"""Network.state_dict() and yolo_io.torch.state_dict(): keys, shapes and values
in every naming and layout; darknet2any's own model takes our dict with
strict loading and then computes what its own loader gives."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import corpus_param

import yolo_io
from yolo_io.testing import header_bytes, write_weights

CFG = """\
[net]
width=8
height=8
channels=3
[convolutional]
batch_normalize=1
filters=8
size=3
pad=1
activation=leaky
[convolutional]
filters=8
groups=8
size=3
pad=1
batch_normalize=1
[convolutional]
filters=6
size=1
activation=linear
[dropout]
probability=.5
[batchnorm]
[maxpool]
size=2
stride=2
[connected]
output=5
batch_normalize=1
activation=leaky
"""
LAYOUTS = ("OIHW", "HWIO", "OHWI")
PERMUTE = {"OIHW": (0, 1, 2, 3), "HWIO": (2, 3, 1, 0), "OHWI": (0, 2, 3, 1)}


@pytest.fixture
def net(tmp_path: Path) -> yolo_io.Network:
    return yolo_io.load(write_weights(tmp_path / "s.weights", CFG, seed=4), CFG)


def test_default_naming_unfused_is_darknets_arrays(net: yolo_io.Network) -> None:
    sd = net.state_dict()
    assert sorted(sd) == sorted(
        [f"layers.{i}.conv.weight" for i in (0, 1, 2)] + ["layers.2.conv.bias"]
        + [f"layers.{i}.bn.{k}" for i in (0, 1, 4, 6)
           for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
        + ["layers.6.linear.weight"])
    for i in (0, 1):
        p = net[i].params
        np.testing.assert_array_equal(sd[f"layers.{i}.conv.weight"], p["weights"])
        np.testing.assert_array_equal(sd[f"layers.{i}.bn.weight"], p["scales"])
        np.testing.assert_array_equal(sd[f"layers.{i}.bn.bias"], p["biases"])
        np.testing.assert_array_equal(sd[f"layers.{i}.bn.running_mean"], p["rolling_mean"])
        np.testing.assert_array_equal(sd[f"layers.{i}.bn.running_var"], p["rolling_variance"])
        assert sd[f"layers.{i}.bn.num_batches_tracked"].shape == ()
        assert sd[f"layers.{i}.bn.num_batches_tracked"].dtype == np.int64
    assert sd["layers.1.conv.weight"].shape == (8, 1, 3, 3)
    np.testing.assert_array_equal(sd["layers.4.bn.running_var"], net[4].params["rolling_variance"])
    assert sd["layers.6.linear.weight"].shape == (5, 6 * 4 * 4)
    for a in sd.values():
        assert a.flags.writeable and not np.shares_memory(a, net.raw)


@pytest.mark.parametrize("lay", LAYOUTS)
def test_default_naming_fused_equals_layer_fused(net: yolo_io.Network, lay: str) -> None:
    sd = net.state_dict(fuse=True, layout=lay)
    assert sorted(sd) == sorted([f"layers.{i}.conv.{k}" for i in (0, 1, 2) for k in ("weight", "bias")]
                                + [f"layers.4.bn.{k}" for k in ("weight", "bias", "running_mean",
                                                                "running_var", "num_batches_tracked")]
                                + ["layers.6.linear.weight", "layers.6.linear.bias"])
    for i in (0, 1, 2):
        w, b = net[i].fused(lay)
        np.testing.assert_array_equal(sd[f"layers.{i}.conv.weight"], w)
        np.testing.assert_array_equal(sd[f"layers.{i}.conv.bias"], b)
    dense = "IO" if lay != "OIHW" else "OI"
    np.testing.assert_array_equal(sd["layers.6.linear.weight"], net[6].fused(dense)[0])


def test_bn_eps_adjusts_the_variance_to_reproduce_darknet(net: yolo_io.Network) -> None:
    p = net[0].params
    sd = net.state_dict(bn_eps=1e-3)
    x = np.linspace(-3, 3, 8, dtype=np.float64)
    darknet = p["scales"] * (x - p["rolling_mean"]) / np.sqrt(p["rolling_variance"] + 1e-5) + p["biases"]
    ours = (sd["layers.0.bn.weight"] * (x - sd["layers.0.bn.running_mean"])
            / np.sqrt(sd["layers.0.bn.running_var"].astype(np.float64) + 1e-3) + sd["layers.0.bn.bias"])
    np.testing.assert_allclose(ours, darknet, rtol=1e-6)


def test_darknet2pytorch_keys(tmp_path: Path) -> None:
    cfg = CFG.replace("groups=8", "groups=1").replace("[dropout]\nprobability=.5\n", "") \
        .replace("[batchnorm]\n", "").replace("[maxpool]\nsize=2\nstride=2\n", "[avgpool]\n")
    net = yolo_io.load(write_weights(tmp_path / "d.weights", cfg, seed=1), cfg)
    sd = net.state_dict(naming="darknet2pytorch", fuse=True)
    assert sorted(sd) == sorted(["models.0.conv1.weight", "models.0.conv1.bias", "models.1.conv2.weight",
                                 "models.1.conv2.bias", "models.2.conv3.weight", "models.2.conv3.bias",
                                 "models.4.0.weight", "models.4.0.bias",
                                 "loss.0.weight", "loss.0.bias"])  # the last module, listed twice
    assert sd["loss.0.weight"] is sd["models.4.0.weight"]
    with pytest.raises(yolo_io.ConversionError, match=r"layer 4 .*nn.Linear has no batch norm; use fuse=True"):
        net.state_dict(naming="darknet2pytorch", fuse=False)
    cfg = cfg.replace("output=5\nbatch_normalize=1", "output=5")
    net = yolo_io.load(write_weights(tmp_path / "e.weights", cfg, seed=1), cfg)
    unfused = net.state_dict(naming="darknet2pytorch", fuse=False)
    assert "models.0.bn1.running_var" in unfused and "models.2.conv3.bias" in unfused
    assert "models.0.conv1.bias" not in unfused and "models.4.0.bias" in unfused


@pytest.mark.parametrize(("edit", "message"), [
    (lambda c: c.replace("groups=8", "groups=1"), r"layer 3 \(\[dropout\], <string> line 21\).*adds no module"),
    (lambda c: c.replace("[dropout]\nprobability=.5\n", "").replace("[batchnorm]\n", ""),
     r"layer 1 .* ignores groups=8"),
])
def test_darknet2pytorch_refuses_what_its_model_cannot_hold(tmp_path: Path, edit, message: str) -> None:
    cfg = edit(CFG)
    net = yolo_io.load(write_weights(tmp_path / "r.weights", cfg), cfg)
    with pytest.raises(yolo_io.ConversionError, match=message):
        net.state_dict(naming="darknet2pytorch")


def test_weighted_shortcut_keeps_darknets_names_or_is_refused(tmp_path: Path) -> None:
    cfg = ("[net]\nwidth=4\nheight=4\nchannels=2\n[convolutional]\nfilters=2\nsize=1\n"
           "[shortcut]\nfrom=-1\nweights_type=per_feature\nweights_normalization=relu\n")
    net = yolo_io.load(write_weights(tmp_path / "w.weights", cfg, seed=5), cfg)
    sd = net.state_dict()
    np.testing.assert_array_equal(sd["layers.1.weights"], net[1].params["weights"])
    for naming in ("darknet2pytorch", "ultralytics"):
        with pytest.raises(yolo_io.ConversionError, match=r"layer 1 \(\[shortcut\], <string> line 8\)"):
            net.state_dict(naming=naming)


def test_ultralytics_keys_eps_and_refusals(tmp_path: Path, net: yolo_io.Network) -> None:
    with pytest.raises(yolo_io.ConversionError, match=r"layer 4 \(\[batchnorm\].*convolutions"):
        net.state_dict(naming="ultralytics")
    cfg = CFG.split("[dropout]")[0]
    convs = yolo_io.load(write_weights(tmp_path / "u.weights", cfg, seed=2), cfg)
    sd = convs.state_dict(naming="ultralytics")
    assert sorted(k for k in sd if k.startswith("module_list.2.")) == [
        "module_list.2.Conv2d.bias", "module_list.2.Conv2d.weight"]
    assert sd["module_list.1.Conv2d.weight"].shape == (8, 1, 3, 3)
    # BatchNorm2d(eps=1e-4): the variance is adjusted so that it reproduces darknet.
    p = convs[0].params
    np.testing.assert_allclose(sd["module_list.0.BatchNorm2d.running_var"].astype(np.float64) + 1e-4,
                               p["rolling_variance"].astype(np.float64) + 1e-5, rtol=1e-6)
    fused = convs.state_dict(naming="ultralytics", fuse=True)  # as after their model.fuse()
    assert sorted(fused) == ["module_list.0.0.bias", "module_list.0.0.weight", "module_list.1.0.bias",
                             "module_list.1.0.weight", "module_list.2.Conv2d.bias",
                             "module_list.2.Conv2d.weight"]


def test_bad_arguments(net: yolo_io.Network) -> None:
    with pytest.raises(ValueError, match="naming must be one of"):
        net.state_dict(naming="keras")
    with pytest.raises(ValueError, match="layout"):
        net.state_dict(layout="NCHW")


def test_partial_file_has_keys_only_for_its_layers(tmp_path: Path) -> None:
    path = write_weights(tmp_path / "p.weights", CFG, layers=2)
    sd = yolo_io.load(path, CFG, partial=True).state_dict(fuse=True)
    assert sorted(sd) == ["layers.0.conv.bias", "layers.0.conv.weight", "layers.1.conv.bias",
                          "layers.1.conv.weight"]


# --- torch ---------------------------------------------------------------

def test_torch_state_dict_shares_memory(net: yolo_io.Network) -> None:
    torch = pytest.importorskip("torch")
    import yolo_io.torch

    tensors = yolo_io.torch.state_dict(net, fuse=True)
    arrays = net.state_dict(fuse=True)
    assert tensors.keys() == arrays.keys()
    w = tensors["layers.0.conv.weight"]
    assert isinstance(w, torch.Tensor) and w.dtype == torch.float32
    w[0, 0, 0, 0] = 123.0  # the tensor is the arena: writing through it is safe
    assert w.numpy()[0, 0, 0, 0] == 123.0
    torch.testing.assert_close(tensors["layers.0.conv.bias"], torch.from_numpy(arrays["layers.0.conv.bias"]))


def atoi(text: str) -> int:
    """C's atoi, as darknet reads options ("40#32" is 40)."""
    m = re.match(r"\s*[-+]?\d+", text)
    return int(m[0]) if m else 0


def torch_expected_shapes(layer: yolo_io.Layer, fuse: bool) -> dict[str, tuple[int, ...]]:
    """The shapes torch's own modules have for this layer (OIHW), as each port builds them."""
    torch = pytest.importorskip("torch")
    bn = "scales" in layer._source_params()
    if layer.type == "convolutional":
        o = layer.output_shape[0]
        size = atoi(layer.options.get("size", "1"))
        groups = atoi(layer.options.get("groups", "1")) or 1
        conv = torch.nn.Conv2d(layer.input_shape[0], o, size, groups=groups, bias=fuse or not bn)
        shapes = {f"conv.{k}": tuple(v.shape) for k, v in conv.state_dict().items()}
        if bn and not fuse:
            shapes |= {f"bn.{k}": tuple(v.shape) for k, v in torch.nn.BatchNorm2d(o).state_dict().items()}
        return shapes
    if layer.type == "batchnorm":  # never fused: nothing to fold it into
        return {f"bn.{k}": tuple(v.shape)
                for k, v in torch.nn.BatchNorm2d(layer.output_shape[0]).state_dict().items()}
    assert layer.type == "connected"
    c, h, w = layer.input_shape
    lin = torch.nn.Linear(c * h * w, layer.output_shape[0])
    shapes = {f"linear.{k}": tuple(v.shape) for k, v in lin.state_dict().items()}
    if bn and not fuse:
        shapes |= {f"bn.{k}": tuple(v.shape)
                   for k, v in torch.nn.BatchNorm1d(layer.output_shape[0]).state_dict().items()}
        shapes.pop("linear.bias")
    return shapes


def generic_key(naming: str, key: str) -> str | None:
    """Maps a naming's key to (layer, 'conv.weight' / 'bn.running_var' / ...)."""
    patterns = {
        "yolo_io": [(r"layers\.(\d+)\.(conv|linear|bn)\.(\w+)$", lambda m: f"{m[1]}:{m[2]}.{m[3]}")],
        "darknet2pytorch": [(r"models\.(\d+)\.conv\d+\.(\w+)$", lambda m: f"{m[1]}:conv.{m[2]}"),
                            (r"models\.(\d+)\.bn\d+\.(\w+)$", lambda m: f"{m[1]}:bn.{m[2]}"),
                            (r"models\.(\d+)\.(?:0\.)?(weight|bias)$", lambda m: f"{m[1]}:linear.{m[2]}")],
        "ultralytics": [(r"module_list\.(\d+)\.(?:Conv2d|0)\.(\w+)$", lambda m: f"{m[1]}:conv.{m[2]}"),
                        (r"module_list\.(\d+)\.BatchNorm2d\.(\w+)$", lambda m: f"{m[1]}:bn.{m[2]}")],
    }[naming]
    for pattern, fmt in patterns:
        m = re.match(pattern, key)
        if m:
            return fmt(m)
    return None


@pytest.mark.slow
@pytest.mark.parametrize("cfg", corpus_param(
    exclude=("yolor_csp.cfg",), where=lambda c: any(la.fusion == "conv" for la in c)))
def test_corpus_state_dicts_have_the_shapes_torch_builds(tmp_path: Path, cfg: Path) -> None:
    """Every naming x layout x fuse on every corpus cfg with convolutions: the
    dict, or ConversionError for what that naming cannot hold; in OIHW the
    shapes are those of torch's own Conv2d/BatchNorm2d/Linear for the layer,
    in the other layouts their permutation."""
    pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", yolo_io.CfgWarning)
        config = yolo_io.parse_cfg(cfg)
    path = tmp_path / "zero.weights"  # a sparse file of the right size: shapes are the point here
    with path.open("wb") as f:
        f.write(header_bytes())
        f.truncate(config.expected_size())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", yolo_io.CfgWarning)
        warnings.simplefilter("ignore", yolo_io.PrecisionWarning)  # zero variances vs eps 1e-4
        net = yolo_io.load(path, cfg)
        expected = {}
        for fuse in (False, True):
            for layer in net:
                if layer.type in ("convolutional", "connected", "batchnorm") and (
                        layer.param_count or layer.share_index is not None):
                    for k, shape in torch_expected_shapes(layer, fuse).items():
                        expected[(fuse, f"{layer.index}:{k}")] = shape
        for naming in ("yolo_io", "darknet2pytorch", "ultralytics"):
            for fuse in (False, True):
                for lay in LAYOUTS:
                    refusal = None
                    try:
                        sd = net.state_dict(naming=naming, fuse=fuse, layout=lay)
                    except yolo_io.ConversionError as err:
                        refusal = str(err)
                    if refusal is not None:
                        assert naming != "yolo_io", refusal
                        assert re.search(r"layer \d+ \(\[[\w]+\], .* line \d+\) has no", refusal)
                        break
                    seen = set()
                    for key, a in sd.items():
                        if key.startswith("loss."):
                            continue
                        g = generic_key(naming, key)
                        if g is None:
                            assert naming == "yolo_io" and key.startswith("layers."), key
                            continue
                        want = expected[(fuse, g)]
                        if len(want) == 4 and g.endswith("conv.weight"):
                            want = tuple(want[d] for d in PERMUTE[lay])
                        elif len(want) == 2 and lay != "OIHW":
                            want = want[::-1]  # Dense: (in, out)
                        assert a.shape == want, (naming, fuse, lay, key)
                        seen.add(g)
                    assert seen == {g for f, g in expected if f == fuse}, (naming, fuse, lay)


# --- saving a state dict: every odd value is a ConversionError naming its key ---


@pytest.mark.parametrize("naming", ["yolo_io", "darknet2pytorch", "ultralytics"])
def test_an_integer_running_var_is_refused_in_every_naming(tmp_path: Path, naming: str) -> None:
    """One rule: an integer array where darknet stores floats is a mistake,
    refused with its key (ultralytics used to cast it while adjusting the
    variance to its epsilon, yolo_io refused it)."""
    cfg = tmp_path / "c.cfg"
    cfg.write_text(CFG.split("[dropout]")[0].replace("groups=8\n", ""))
    net = yolo_io.load(write_weights(tmp_path / "s.weights", cfg, seed=4), cfg)
    state = net.state_dict(naming=naming)
    key = next(k for k in state if k.endswith("running_var"))
    state[key] = np.ones(state[key].shape, np.int64)
    with pytest.raises(yolo_io.ConversionError, match=rf"state dict key '{re.escape(key)}' has "
                       r"dtype int64; only floating-point"):
        yolo_io.save(tmp_path / "out.weights", state, cfg)
    assert not (tmp_path / "out.weights").exists()


def test_tensors_without_numpy_values_are_refused_by_key(net: yolo_io.Network,
                                                         tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    import yolo_io.torch

    cfg = net.config
    for make, what in [(lambda t: t.to("meta"), "on the meta device"),
                       (lambda t: t.to(torch.float8_e4m3fn), "dtype torch.float8_e4m3fn")]:
        state = dict(yolo_io.torch.state_dict(net))
        state["layers.0.conv.weight"] = make(state["layers.0.conv.weight"])
        with pytest.raises(yolo_io.ConversionError,
                           match=rf"state dict key 'layers\.0\.conv\.weight' .*{what}"):
            yolo_io.save(tmp_path / "out.weights", state, cfg)
        assert not (tmp_path / "out.weights").exists()
    # Arrays keyed by layer index: the layer and the array are named.
    arrays = {i: dict(layer.params) for i, layer in enumerate(net) if layer.params}
    arrays[0]["weights"] = torch.empty(arrays[0]["weights"].shape, device="meta")
    with pytest.raises(yolo_io.ConversionError, match=r"layer 0 .*: array 'weights' is a tensor "
                       r"on the meta device"):
        yolo_io.save(tmp_path / "out.weights", arrays, cfg)

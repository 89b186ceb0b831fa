"""yolo_io.torch.load_into / check_model: darknet2any's model (without its
naming) and a hand-written nn.Module whose modules are registered in another
order than darknet's layers take darknet's weights and then compute what
OpenCV's darknet importer computes."""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SHARED_CFG
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

torch = pytest.importorskip("torch", reason="torch is not installed (the oracle extra)")
import torch.nn.functional as F
from torch import nn

import yolo_io.torch

pytestmark = pytest.mark.filterwarnings("ignore::yolo_io.CfgWarning")



class ConvBN(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, s: int = 1, *, bn: bool = True,
                 act: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, (k - 1) // 2, bias=not bn)
        self.bn = nn.BatchNorm2d(cout, eps=eps) if bn else None
        self.act = act

    def forward(self, x: Any) -> Any:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.leaky_relu(x, 0.1) if self.act else x


class TinyV4(nn.Module):
    """YOLOv4-tiny as someone might write it: the heads registered before
    the backbone, each CSP block's convs registered last to first (c3..c0),
    slicing for the route's groups. ``bn=False``: convs with biases (for
    fuse=True); ``extra``: one 3x3 conv too many in the large head;
    ``heads=False``: the backbone only."""

    def __init__(self, classes: int = 80, *, bn: bool = True, eps: float = 1e-5,
                 extra: bool = False, heads: bool = True) -> None:
        super().__init__()
        out = 3 * (classes + 5)

        def c(cin: int, cout: int, k: int, s: int = 1) -> ConvBN:
            return ConvBN(cin, cout, k, s, bn=bn, eps=eps)

        if heads:
            large = [c(512, 256, 1), c(256, 512, 3)] + ([c(512, 512, 3)] if extra else [])
            self.head_large = nn.ModuleList([*large, ConvBN(512, out, 1, bn=False, act=False)])
            self.head_medium = nn.ModuleList([c(256, 128, 1), c(384, 256, 3),
                                              ConvBN(256, out, 1, bn=False, act=False)])
        self.blocks = nn.ModuleList(
            nn.ModuleDict({"c3": c(ch, ch, 1), "c2": c(ch // 2, ch // 2, 3),
                           "c1": c(ch // 2, ch // 2, 3), "c0": c(ch, ch, 3)})
            for ch in (64, 128, 256))
        self.stem = nn.Sequential(c(3, 32, 3, 2), c(32, 64, 3, 2))
        self.last = c(512, 512, 3)
        self.heads = heads

    def forward(self, x: Any) -> Any:
        x = self.stem(x)
        route = x
        for k, b in enumerate(self.blocks):
            x = b["c0"](x)
            r = x
            x = b["c1"](x[:, x.shape[1] // 2:])
            x = b["c3"](torch.cat([b["c2"](x), x], 1))
            route = x
            x = F.max_pool2d(torch.cat([r, x], 1), 2, 2)
            assert k < 3
        x = self.last(x)
        if not self.heads:
            return x
        x = self.head_large[0](x)
        large = x
        for m in self.head_large[1:]:
            large = m(large)
        y = F.interpolate(self.head_medium[0](x), scale_factor=2, mode="nearest")
        medium = self.head_medium[2](self.head_medium[1](torch.cat([y, route], 1)))
        return large, medium


def network(tmp_path: Path, name: str = "yolov4-tiny") -> yolo_io.Network:
    return corpus_network(tmp_path, name, seed=4)


def expected_heads(net: yolo_io.Network, tmp_path: Path) -> dict[tuple[int, ...], np.ndarray]:
    x = natural_image(3, SIZE, SIZE)
    heads = opencv_heads(Path(net.config.path), opencv_weights(net, tmp_path / "cv.weights"), x)
    for b in heads:
        assert np.isfinite(b).all() and np.ptp(b) > 0.1  # a meaningful comparison
    return {b.shape: b for b in heads}


def assert_equal(got: list[Any], expected: dict[tuple[int, ...], np.ndarray]) -> None:
    assert len(got) == len(expected)
    for a in got:
        a = a.detach().double().numpy()
        assert close(a, expected[a.shape]) is None, a.shape


def run(model: nn.Module) -> list[Any]:
    with torch.no_grad():
        out = model.eval()(torch.from_numpy(np.ascontiguousarray(
            natural_image(3, SIZE, SIZE))).to(next(model.parameters()).dtype))
    return list(out)


def snapshot(model: nn.Module) -> dict[str, Any]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def unchanged_after(model: nn.Module, call: Callable[[], object]) -> None:
    before = snapshot(model)
    call()
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def darknet2any(cfg: Path) -> Any:
    d2p = pytest.importorskip("darknet2any.tool.darknet2pytorch",
                              reason="darknet2any is not installed (pip install --no-deps "
                              "darknet2any)")
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the network
        return d2p.Darknet(str(cfg)).eval()


# -- darknet2any's model and a model of our own, against OpenCV ----------------------------------


def test_darknet2any_model_equals_its_own_loader_and_opencv(tmp_path: Path) -> None:
    net = network(tmp_path)
    ours = darknet2any(Path(net.config.path))
    pairing = yolo_io.torch.load_into(ours, net)
    assert {r["paired_by"] for r in pairing.rows()} == {"data flow"} and pairing.notes == []
    # Its modules are in darknet's order: without the trace, the same pairs.
    by_order = yolo_io.torch.check_model(ours, net, trace=False)
    assert [r["framework"] for r in by_order.rows()] == [r["framework"] for r in pairing.rows()]
    assert {r["paired_by"] for r in by_order.rows()} == {"order"}
    assert by_order.notes[0].startswith("trace=False: its data flow (what feeds each layer, the "
                                        "order of a route's inputs) was not checked")
    theirs = darknet2any(Path(net.config.path))
    with contextlib.redirect_stdout(io.StringIO()):
        theirs.load_weights(str(net.path))
    mine, its = ours.state_dict(), theirs.state_dict()
    assert mine.keys() == its.keys()
    assert all(torch.equal(mine[k], its[k]) for k in mine)
    # Its forward keeps every layer's output: the heads' inputs, against OpenCV.
    with torch.no_grad():
        ours(torch.from_numpy(np.ascontiguousarray(natural_image(3, SIZE, SIZE))))
    heads = [ours.outputs[layer.index - 1] for layer in net.config if layer.type == "yolo"]
    assert_equal(heads, expected_heads(net, tmp_path))


def test_darknet2any_model_with_a_swapped_route_is_refused(tmp_path: Path) -> None:
    """The issue's case: yolov4-tiny's last route (layers=-1,23) concatenated
    the other way round: every module in darknet's order and every shape
    fits, and the second head computes something else; the traced data flow
    refuses it."""
    net = network(tmp_path)
    model = darknet2any(Path(net.config.path))
    route = max(i for i, b in enumerate(model.blocks[1:]) if b["type"] == "route"
                and "," in b["layers"])
    first, second = model.blocks[route + 1]["layers"].split(",")
    model.blocks[route + 1]["layers"] = f"{second.strip()},{first.strip()}"
    with pytest.raises(yolo_io.ModelMismatchError, match=rf"the torch model has no concatenation "
                       rf"that matches darknet layer {route} \(\[route\]"):
        unchanged_after(model, lambda: yolo_io.torch.load_into(model, net))


@pytest.mark.parametrize("name", ["csdarknet53-omega", "pjreddie-darknet19", "pjreddie-resnet50",
                                  "yolov2-tiny", "yolov4-tiny-3l"])
def test_darknet2any_corpus_models_equal_its_own_loader(tmp_path: Path, name: str) -> None:
    """Every corpus cfg under 120 MB that darknet2any can build and load
    (besides yolov4-tiny above): load_into (by registration order) puts
    exactly what its load_weights puts, and the traced data flow pairs the
    same modules; where its forward cannot be traced, the pairing says so."""
    cfg = SHARED_CFG / f"{name}.cfg"
    if not cfg.is_file():
        pytest.skip(f"{cfg} is not there (the real-cfg corpus lives beside the checkout in CI)")
    weights = write_weights(tmp_path / f"{name}.weights", cfg, seed=2)
    net = yolo_io.load(weights, cfg)
    ours, theirs = darknet2any(cfg), darknet2any(cfg)
    pairing = yolo_io.torch.load_into(ours, net)
    with contextlib.redirect_stdout(io.StringIO()):
        theirs.load_weights(str(weights))
    mine, its = ours.state_dict(), theirs.state_dict()
    assert all(torch.equal(mine[k], its[k]) for k in its)
    if name in ("csdarknet53-omega", "pjreddie-resnet50"):
        # darknet2any's own forward fails on these (a conv after its global
        # average pool gets a 2-d tensor; a shortcut of 64 and 256 channels).
        with pytest.raises(yolo_io.ConversionError, match=r"trace=True, but the torch model's "
                           r"forward could not be traced: \(RuntimeError: .*; pass trace=False"):
            yolo_io.torch.check_model(theirs, net, trace=True)
        assert {r["paired_by"] for r in pairing.rows()} == {"order"}
        assert pairing.notes[0].startswith("its forward could not be traced (RuntimeError: ")
        assert "its data flow (what feeds each layer, the order of a route's inputs) was not " \
            "checked" in pairing.notes[0]
        return
    assert {r["paired_by"] for r in pairing.rows()} == {"data flow"}
    traced = yolo_io.torch.check_model(theirs, net, trace=True)
    assert [r["framework"] for r in traced.rows()] == [r["framework"] for r in pairing.rows()]
    assert {r["paired_by"] for r in traced.rows()} == {"data flow"}


def test_a_module_registered_in_another_order_equals_opencv(tmp_path: Path) -> None:
    net = network(tmp_path)
    model = TinyV4()
    first = next(name for name, m in model.named_modules() if isinstance(m, nn.Conv2d))
    assert first == "head_large.0.conv"  # not darknet's layer 0
    pairing = yolo_io.torch.load_into(model, net)
    rows = pairing.rows()
    assert {r["paired_by"] for r in rows} == {"data flow"}
    # The CSP blocks' two look-alike 3x3 convs (darknet layers 4 and 5, same
    # shapes, c1 feeds c2) are told apart by the data flow.
    assert [r["framework"] for r in rows if r["layer"] in (4, 5)] == \
        ["blocks.0.c1.conv + blocks.0.c1.bn", "blocks.0.c2.conv + blocks.0.c2.bn"]
    assert_equal(run(model), expected_heads(net, tmp_path))


def test_each_batch_norms_own_epsilon(tmp_path: Path) -> None:
    net = network(tmp_path)
    model = TinyV4(eps=1e-3)
    yolo_io.torch.load_into(model, net)
    var = model.stem[0].bn.running_var.numpy()
    np.testing.assert_allclose(var, net[0].params["rolling_variance"] + 1e-5 - 1e-3, rtol=1e-6)
    assert_equal(run(model), expected_heads(net, tmp_path))


def test_fused_into_convs_with_biases(tmp_path: Path) -> None:
    net = network(tmp_path)
    model = TinyV4(bn=False)
    with pytest.raises(yolo_io.ModelMismatchError, match=r"pass fuse=True"):
        unchanged_after(model, lambda: yolo_io.torch.load_into(model, net))
    pairing = yolo_io.torch.load_into(model, net, fuse=True)
    assert {r["status"] for r in pairing.rows()} == {"ok", "ok, batch norm fused"}
    assert_equal(run(model), expected_heads(net, tmp_path))


def test_float64_tensors_take_the_same_values(tmp_path: Path) -> None:
    """Tensors the core cannot fill in place (not float32: float64 here, as
    for GPU or float16 ones) go through Tensor.copy_."""
    net = network(tmp_path)
    fast, slow = TinyV4(), TinyV4().double()
    yolo_io.torch.load_into(fast, net)
    yolo_io.torch.load_into(slow, net)
    a, b = fast.state_dict(), slow.state_dict()
    assert all(torch.equal(a[k].double(), b[k]) for k in a)


def test_strict_false_loads_a_backbone(tmp_path: Path) -> None:
    net = network(tmp_path)
    model = TinyV4(heads=False)
    with pytest.raises(yolo_io.ModelMismatchError, match=r"darknet layer 27 .* has no "
                       r"counterpart in the torch model \(nothing in the model takes the output "
                       r"of 'last.conv'\) \(pass strict=False"):
        unchanged_after(model, lambda: yolo_io.torch.load_into(model, net))
    pairing = yolo_io.torch.load_into(model, net, strict=False)
    assert [r["layer"] for r in pairing.rows() if r["status"] == "not in the model"] == \
        [27, 28, 29, 32, 35, 36]
    np.testing.assert_array_equal(model.last.conv.weight.detach().numpy(), net[26].params["weights"])


# -- the three classic mistakes ------------------------------------------------------------


def test_wrong_class_count_names_the_lines_and_changes_nothing(tmp_path: Path) -> None:
    net = network(tmp_path)
    model = TinyV4(classes=3)
    cfg = net.config.path
    with pytest.raises(yolo_io.ModelMismatchError) as info:
        unchanged_after(model, lambda: yolo_io.torch.load_into(model, net))
    assert str(info.value) == (
        f"torch layer 'head_large.2.conv' (Conv2d) does not fit darknet layer 29 "
        f"([convolutional], {cfg} line 217): expected conv 1x1 512->255 (weight 255x512x1x1, "
        "bias 255), found conv 1x1 512->24 (weight 24x512x1x1, bias 24). The model was built "
        "for 3 classes (3 anchors x (3 + 5) = 24 filters); the cfg is for 80: "
        f"{cfg}:221/274: filters=255 and {cfg}:229/280: classes=80. Build the model for 80 "
        "classes, or use weights and a cfg trained for 3 (filters=24, classes=3).")


def test_wrong_class_count_with_an_inline_comment_on_classes(tmp_path: Path) -> None:
    """classes=80 # coco: darknet's atoi() reads 80, and so does the hint (it
    parsed the raw text with int() and raised "invalid literal for int()"
    instead of the ModelMismatchError; issue 22, item 11)."""
    net = network(tmp_path)
    commented = tmp_path / "commented.cfg"
    commented.write_text(Path(net.config.path).read_text().replace("classes=80", "classes=80 # coco"))
    net = yolo_io.load(net.path, commented)
    model = TinyV4(classes=3)
    with pytest.raises(yolo_io.ModelMismatchError, match=r"The model was built for 3 classes .*"
                       r"the cfg is for 80: .*classes=80\. Build the model for 80 classes"):
        unchanged_after(model, lambda: yolo_io.torch.load_into(model, net))


def test_wrong_class_count_by_registration_order(tmp_path: Path) -> None:
    """darknet2any's model of the cfg edited for 3 classes, paired without a
    trace (its modules in darknet's order): the orders are aligned, and the
    first module that differs is named with the same advice."""
    net = network(tmp_path)
    cfg = net.config.path
    three = tmp_path / "three.cfg"
    three.write_text(Path(cfg).read_text().replace("filters=255", "filters=24")
                     .replace("classes=80", "classes=3"))
    model = darknet2any(three)
    with pytest.raises(yolo_io.ModelMismatchError) as info:
        unchanged_after(model, lambda: yolo_io.torch.load_into(model, net, trace=False))
    assert str(info.value).startswith(
        "torch layer 'models.29.conv18' (Conv2d) does not fit darknet layer 29 "
        f"([convolutional], {cfg} line 217): expected conv 1x1 512->255 (weight 255x512x1x1, "
        "bias 255), found conv 1x1 512->24 (weight 24x512x1x1, bias 24). The model was built "
        "for 3 classes")


def test_an_extra_layer_is_named_and_changes_nothing(tmp_path: Path) -> None:
    net = network(tmp_path)
    model = TinyV4(extra=True)
    with pytest.raises(yolo_io.ModelMismatchError) as info:
        unchanged_after(model, lambda: yolo_io.torch.load_into(model, net))
    assert str(info.value).startswith(
        "the torch model has a layer the cfg does not: 'head_large.2.conv' (Conv2d, conv 3x3 "
        "512->512, weight 512x512x3x3) after the counterpart of darknet layer 28")
    assert info.value.framework_layer == "head_large.2.conv"


def test_a_mistyped_name_in_a_mapping_changes_nothing(tmp_path: Path) -> None:
    net = network(tmp_path)
    model = TinyV4()
    with pytest.raises(yolo_io.ModelMismatchError) as info:
        unchanged_after(model, lambda: yolo_io.torch.load_into(
            model, net, mapping={29: "head_large.2.cnv"}))
    assert str(info.value) == ("mapping[29] names torch layer 'head_large.2.cnv', which the "
                               "model does not have; did you mean 'head_large.2.conv'?")
    with pytest.raises(ValueError, match=r"mapping\[30\]: layer 30 \(\[yolo\].*stores no "
                       "parameters"):
        yolo_io.torch.check_model(model, net, mapping={30: "head_large.2.conv"})


# -- other layer kinds, and a file that shrank ---------------------------------------------------




def classifier() -> nn.Module:
    """CLASSIFIER in PyTorch: a depthwise and a grouped conv, then Linear
    layers after a flatten of the NCHW image (CHW order, as darknet)."""
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.LeakyReLU(0.1),
        nn.Conv2d(6, 6, 3, 2, 1, groups=6, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Conv2d(6, 12, 1, groups=3), nn.Flatten(), nn.Linear(192, 10),
        nn.Linear(10, 5, bias=False), nn.BatchNorm1d(5), nn.ReLU())


def test_grouped_convs_and_linear_layers_equal_numpy_darknet(tmp_path: Path) -> None:
    from darknet_forward import forward

    cfg = tmp_path / "c.cfg"
    cfg.write_text(CLASSIFIER)
    net = yolo_io.load(write_weights(tmp_path / "c.weights", cfg, realistic=True, seed=6), cfg)
    model = classifier()
    yolo_io.torch.load_into(model, net)
    image = natural_image(3, 8, 8)
    expected = forward(net, image)[len(net) - 1].reshape(1, -1)
    with torch.no_grad():
        got = model.eval()(torch.from_numpy(image)).numpy()
    assert close(got, expected, atol=1e-5, rtol=1e-5) is None


def test_a_file_truncated_after_loading_is_a_format_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.cfg"
    cfg.write_text(CLASSIFIER)
    weights = write_weights(tmp_path / "c.weights", cfg, seed=6)
    net = yolo_io.load(weights, cfg)
    os.truncate(weights, 100)
    model = classifier()
    with pytest.raises(yolo_io.FormatError, match="truncated since"):
        yolo_io.torch.load_into(model, net)


# -- regressions of an adversarial review ------------------------------------------------------




@pytest.mark.parametrize(("bias", "bn", "trace"), [(True, True, None), (True, True, True),
                                                   (False, True, None), (True, False, None)])
def test_a_batchnorm_section_after_a_conv_without_one(tmp_path: Path, bias: bool, bn: bool,
                                                      trace: bool | None) -> None:
    """Darknet's conv (with biases) + [batchnorm] is one Conv2d + BatchNorm2d
    in a model: with the conv's bias, without it (the bias goes into the
    running mean), or folded into a conv with a bias (fuse=True)."""
    net = small_net(tmp_path, CONV_THEN_BATCHNORM)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1, bias=bias),
                          *([nn.BatchNorm2d(4)] if bn else []), nn.Conv2d(4, 5, 1)).eval()
    pairing = yolo_io.torch.load_into(model, net, trace=trace, fuse=not bn)
    assert [r["layer"] for r in pairing.rows()] == [0, 2]
    x = natural_image(3, 6, 6)
    with torch.no_grad():
        got = model(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    assert close(got, darknet_output(net, x), atol=1e-5, rtol=1e-5) is None


def test_a_mapping_of_the_wrong_kind_is_named(tmp_path: Path) -> None:
    net = small_net(tmp_path, CONV_THEN_BATCHNORM)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1), nn.BatchNorm2d(4), nn.Conv2d(4, 5, 1))
    with pytest.raises(yolo_io.ModelMismatchError) as info:
        unchanged_after(model, lambda: yolo_io.torch.load_into(model, net, mapping={0: "2"}))
    assert str(info.value).startswith(
        f"torch layer '2' (Conv2d) does not fit darknet layer 0 ([convolutional], "
        f"{net.config.path} line 5): expected conv 3x3 3->4")
    assert info.value.darknet_layer == 0


def test_a_bad_mapping_is_a_typed_error_naming_the_layer(tmp_path: Path) -> None:
    net = small_net(tmp_path, CONV_THEN_BATCHNORM)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1), nn.BatchNorm2d(4), nn.Conv2d(4, 5, 1))
    loc = rf"layer 0 \(\[convolutional\], {re.escape(net.config.path)} line 5\)"
    for mapping, message in [
            ({0: model[0]}, (rf"mapping\[0\] \({loc}\) is a Conv2d object: the mapping's "
                            r"values are torch layer names")),
            ({0: ["0", model[1]]}, r"mapping\[0\] .* is a list object"),
            ({0: ()}, r"mapping\[0\] .* is \(\)"),
            ({7: "0"}, r"mapping keys are darknet layer indices \(0\.\.2\) of .*, not 7"),
            ({"0": "0"}, r"mapping keys are darknet layer indices .* not '0'"),
            ({0: ("0", "2")}, rf"mapping\[0\] \({loc}\) names layers of two different units"),
            ({0: "0", 2: "0"}, (r"mapping pairs torch layer '0' with two darknet layers: layer 0 "
                               r".* and layer 2"))]:
        with pytest.raises(yolo_io.ModelMismatchError, match=message):
            unchanged_after(model, lambda m=mapping: yolo_io.torch.load_into(model, net,
                                                                             mapping=m))


TWO_CONVS = """\
[net]
width=8
height=8
channels=3
[convolutional]
filters=4
size=3
stride=1
pad=1
activation=linear
[convolutional]
filters=5
size=1
activation=linear
"""


def two_convs(**kwargs: Any) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1, **kwargs), nn.Conv2d(4, 5, 1, **kwargs))


def test_a_model_on_the_meta_device_is_refused(tmp_path: Path) -> None:
    """Nothing can be written into a meta tensor, and to_empty() would lose it."""
    net = small_net(tmp_path, TWO_CONVS)
    with torch.device("meta"):
        model = two_convs()
    assert yolo_io.torch.check_model(model, net).rows()[0]["status"] == "ok"  # shapes only
    with pytest.raises(yolo_io.ModelMismatchError, match=r"torch tensor '0\.weight' is on the meta "
                       r"device, .* Call model\.to_empty\(device='cpu'\) first, or build the "
                       r"model on the CPU \(layer 0 \(\[convolutional\], .* line 5\) goes there\)"):
        yolo_io.torch.load_into(model, net)
    # Half on meta: its first parameter on meta is named.
    model = two_convs()
    model[1].bias = nn.Parameter(torch.empty(5, device="meta"))
    with pytest.raises(yolo_io.ModelMismatchError, match=r"'1\.bias' is on the meta device"):
        unchanged_after(model[:1], lambda: yolo_io.torch.load_into(model, net))
    model.to_empty(device="cpu")
    yolo_io.torch.load_into(model, net)
    x = natural_image(3, 8, 8)
    with torch.no_grad():
        got = model(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    assert close(got, darknet_output(net, x), atol=1e-5, rtol=1e-5) is None


class Refuses(torch.Tensor):
    """A tensor whose copy_ fails (as a copy to another device or dtype can)."""

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func is torch.Tensor.copy_ and isinstance(args[0], Refuses):
            raise RuntimeError("this tensor refuses to be written")
        return super().__torch_function__(func, types, args, kwargs or {})


def test_tensors_a_write_would_fail_on_are_refused_before_the_first_write(
        tmp_path: Path) -> None:
    """"On any error the model is unchanged": what would make a write fail
    (or succeed and lose values) is found before anything is written, and
    a write that fails anyway puts back what was written before it."""
    net = small_net(tmp_path, TWO_CONVS)
    expanded = two_convs()
    expanded[1].bias = nn.Parameter(torch.zeros(1).expand(5))
    inference = two_convs()
    with torch.inference_mode():
        inference[1].bias = nn.Parameter(torch.zeros(5), requires_grad=False)
    integer = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1, bias=False), nn.BatchNorm2d(4),
                            nn.Conv2d(4, 5, 1))
    integer[1].running_var = torch.ones(4, dtype=torch.int64)
    aliased = two_convs()
    storage = torch.zeros(5 * 4 + 5)
    aliased[1].weight = nn.Parameter(storage[:20].view(5, 4, 1, 1))
    aliased[1].bias = nn.Parameter(storage[18:23])
    bn_net = small_net(tmp_path, CONV_THEN_BATCHNORM)
    for model, source, message in [
            (expanded, net, (r"torch tensor '1\.bias' has elements that share memory \(an "
                            r"expanded or as_strided tensor, strides \(0,\)\)")),
            (inference, net, r"torch tensor '1\.bias' was created in torch\.inference_mode\(\)"),
            (integer, bn_net, (r"torch tensor '1\.running_var' has dtype torch\.int64, which "
                              r"cannot hold darknet's float values \(layer 1 \(\[batchnorm\]")),
            (aliased, net, r"torch tensors '1\.weight' and '1\.bias' share memory")]:
        with pytest.raises(yolo_io.ModelMismatchError, match=message):
            unchanged_after(model, lambda m=model, n=source: yolo_io.torch.load_into(m, n))
    # A copy that fails anyway: the tensors written before it are put back.
    model = two_convs().double()
    model[1].bias = nn.Parameter(torch.zeros(5, dtype=torch.float64).as_subclass(Refuses))
    with pytest.raises(yolo_io.ConversionError, match=r"torch tensor '1\.bias' could not take "
                       r"darknet's values \(RuntimeError: this tensor refuses to be written\); "
                       r"the tensors written before it were put back"):
        unchanged_after(model, lambda: yolo_io.torch.load_into(model, net))


def test_a_conv_that_pads_otherwise_is_refused(tmp_path: Path) -> None:
    """Darknet pads pad x dilation zeros on each side: another amount or
    mode fits the weights and computes something else. Padding done before
    the conv (ZeroPad2d, F.pad) counts, and an uneven padding that computes
    the same (top and left as darknet's, the same output size) loads."""
    net = small_net(tmp_path, TWO_CONVS)
    where = rf"darknet layer 0 \(\[convolutional\], {re.escape(net.config.path)} line 5\)"
    for conv, message in [
            (nn.Conv2d(3, 4, 3, 1, 1, padding_mode="reflect"),
             (rf"torch layer '0' \(Conv2d\) pads with padding_mode='reflect', but {where} pads "
             r"with zeros: the weights fit, but the model computes something else")),
            (nn.Conv2d(3, 4, 3, 1, 1, padding_mode="circular"), r"padding_mode='circular'"),
            (nn.Conv2d(3, 4, 3, 1, 0),
             (rf"torch layer '0' \(Conv2d\) pads 0 on each side for its 8x8 input, but {where} "
             rf"pads 1 on each side \({re.escape(net.config.path)}: pad= at line 9\)")),
            (nn.Conv2d(3, 4, 3, 1, 3), r"pads 3 on each side for its 8x8 input"),
            (nn.Conv2d(3, 4, 3, 1, (1, 0)),
             r"pads \(1, 1, 0, 0\) \(top, bottom, left, right\) for its 8x8 input")]:
        model = nn.Sequential(conv, nn.Conv2d(4, 5, 1))
        with pytest.raises(yolo_io.ModelMismatchError, match=message) as info:
            unchanged_after(model, lambda m=model: yolo_io.torch.load_into(m, net))
        assert (info.value.framework_layer, info.value.darknet_layer, info.value.line) == \
            ("0", 0, 5)
        assert info.value.expected == {"padding": (1, 1, 1, 1)}
    # A zero padding before a conv that pads nothing (traced), or "same".
    x = natural_image(3, 8, 8)
    for model in [nn.Sequential(nn.ZeroPad2d(1), nn.Conv2d(3, 4, 3), nn.Conv2d(4, 5, 1)),
                  nn.Sequential(nn.Conv2d(3, 4, 3, padding="same"), nn.Conv2d(4, 5, 1))]:
        yolo_io.torch.load_into(model, net)
        with torch.no_grad():
            got = model(torch.from_numpy(np.ascontiguousarray(x))).numpy()
        assert close(got, darknet_output(net, x), atol=1e-5, rtol=1e-5) is None
    # Stride 2 on an even size: a (1, 0) padding computes what darknet's 1 does.
    net = small_net(tmp_path, TWO_CONVS.replace("stride=1", "stride=2"))
    model = nn.Sequential(nn.ZeroPad2d((1, 0, 1, 0)), nn.Conv2d(3, 4, 3, 2), nn.Conv2d(4, 5, 1))
    yolo_io.torch.load_into(model, net)
    with torch.no_grad():
        got = model(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    assert close(got, darknet_output(net, x), atol=1e-5, rtol=1e-5) is None
    unpadded = nn.Sequential(nn.Conv2d(3, 4, 3, 2), nn.Conv2d(4, 5, 1))
    with pytest.raises(yolo_io.ModelMismatchError, match=r"pads 0 on each side for its 8x8 "
                       r"input, but darknet layer 0 .* pads 1 on each side"):
        yolo_io.torch.load_into(unpadded, net)
    # Without the trace, what a padding before it adds is not known: said so.
    pairing = yolo_io.torch.check_model(unpadded, net, trace=False)
    assert pairing.notes[1] == (
        f"torch layer '0' (Conv2d) pads 0 on each side for its 8x8 input, but darknet layer 0 "
        f"([convolutional], {net.config.path} line 5) pads 1 on each side ({net.config.path}: "
        "pad= at line 9): right only if a zero padding right before it pads the rest, which the "
        "data flow would show, but it was not traced, so this was not checked; pass trace=True "
        "to decide (a model that cannot be traced is then an error)")


ROUTE_OF_TWO = """\
[net]
width=8
height=8
channels=3
[convolutional]
filters=8
size=3
stride=2
pad=1
activation=leaky
[convolutional]
filters=4
size=1
activation=leaky
[route]
layers=-2
[convolutional]
filters=8
size=1
activation=leaky
[route]
layers=-1,-3
[convolutional]
filters=5
size=1
activation=linear
"""


class RouteOfTwo(nn.Module):
    """ROUTE_OF_TWO, its modules registered in darknet's order; ``swapped``:
    its route concatenates its inputs in the other order (the shapes fit)."""

    def __init__(self, *, swapped: bool = False) -> None:
        super().__init__()
        self.c0 = nn.Conv2d(3, 8, 3, 2, 1)
        self.c1 = nn.Conv2d(8, 4, 1)
        self.c3 = nn.Conv2d(8, 8, 1)
        self.c5 = nn.Conv2d(12, 5, 1)
        self.swapped = swapped

    def forward(self, x: Any) -> Any:
        x = F.leaky_relu(self.c0(x), 0.1)
        a, b = F.leaky_relu(self.c3(x), 0.1), F.leaky_relu(self.c1(x), 0.1)
        return self.c5(torch.cat([b, a] if self.swapped else [a, b], 1))


def test_the_data_flow_is_checked_by_default(tmp_path: Path) -> None:
    """A route whose inputs are concatenated in the other order fits every
    shape in registration order: the traced data flow (the default) refuses
    it; trace=False pairs by order and says what it did not check."""
    net = small_net(tmp_path, ROUTE_OF_TWO)
    model = RouteOfTwo(swapped=True)
    with pytest.raises(yolo_io.ModelMismatchError, match=r"the torch model has no "
                       r"concatenation that matches darknet layer 4 \(\[route\], .* line 21\): "
                       r"its inputs' counterparts are not combined that way in the model") as info:
        unchanged_after(model, lambda: yolo_io.torch.load_into(model, net))
    assert info.value.darknet_layer == 4
    pairing = yolo_io.torch.check_model(model, net, trace=False)
    assert {r["paired_by"] for r in pairing.rows()} == {"order"}
    assert pairing.notes == [
        ("trace=False: its data flow (what feeds each layer, the order of a route's inputs) was "
        "not checked, only the shapes in the order its modules are registered in")]
    model = RouteOfTwo()
    pairing = yolo_io.torch.load_into(model, net)
    assert {r["paired_by"] for r in pairing.rows()} == {"data flow"} and pairing.notes == []
    x = natural_image(3, 8, 8)
    with torch.no_grad():
        got = model(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    assert close(got, darknet_output(net, x), atol=1e-5, rtol=1e-5) is None


class MishModel(nn.Module):
    """ROUTE_OF_TWO with darknet2any's mish, ``x * tanh(softplus(x))``: an
    operation of two inputs that both come from one value."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = RouteOfTwo()

    def forward(self, x: Any) -> Any:
        m = self.inner

        def mish(t: Any) -> Any:
            return t * torch.tanh(F.softplus(t))

        x = mish(m.c0(x))
        return m.c5(torch.cat([mish(m.c3(x)), mish(m.c1(x))], 1))


@pytest.mark.parametrize("trace", [None, True])
def test_an_activation_of_several_operations_passes_its_input_on(tmp_path: Path,
                                                                 trace: bool | None) -> None:
    net = small_net(tmp_path, ROUTE_OF_TWO.replace("activation=leaky", "activation=mish"))
    model = MishModel()
    pairing = yolo_io.torch.load_into(model, net, trace=trace)
    assert {r["paired_by"] for r in pairing.rows()} == {"data flow"}
    x = natural_image(3, 8, 8)
    with torch.no_grad():
        got = model(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    assert close(got, darknet_output(net, x), atol=1e-5, rtol=1e-5) is None
    assert "forward" not in model.inner.c0.__dict__


class Untraceable(nn.Module):
    """A forward that needs more than the image."""

    def __init__(self) -> None:
        super().__init__()
        self.c0 = nn.Conv2d(3, 4, 3, 1, 1)
        self.c1 = nn.Conv2d(4, 5, 1)

    def forward(self, x: Any, scale: float) -> Any:
        return self.c1(self.c0(x)) * scale


class UntraceableConv(nn.Module):
    """A forward that needs more than the image, around ``conv``."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.c0 = conv
        self.c1 = nn.Conv2d(4, 5, 1)

    def forward(self, x: Any, scale: float) -> Any:
        return self.c1(self.c0(x)) * scale


@pytest.mark.parametrize("trace", [None, False])
def test_padding_without_a_trace(tmp_path: Path, trace: bool | None) -> None:
    """A forward that cannot be traced (or trace=False): what the conv
    itself proves wrong is refused (a mode other than zeros, more than
    darknet's on a side: nothing before it takes padding away); less than
    darknet's may be completed by an explicit pad in the forward, which only
    the trace shows: a note naming the conv, both paddings and trace=True."""
    net = small_net(tmp_path, TWO_CONVS.replace("stride=1", "stride=2"))
    for conv, message in [
            (nn.Conv2d(3, 4, 3, 2, 3), r"torch layer 'c0' \(Conv2d\) pads 3 on each side"),
            (nn.Conv2d(3, 4, 3, 2, (2, 0)), r"pads \(2, 2, 0, 0\) \(top, bottom, left, right\)"),
            (nn.Conv2d(3, 4, 3, 2, 1, padding_mode="reflect"), r"padding_mode='reflect'")]:
        model = UntraceableConv(conv)
        with pytest.raises(yolo_io.ModelMismatchError, match=message) as info:
            unchanged_after(model, lambda m=model: yolo_io.torch.load_into(m, net, trace=trace))
        assert (info.value.framework_layer, info.value.darknet_layer) == ("c0", 0)
    for conv, found in [(nn.Conv2d(3, 4, 3, 2, 0), "0 on each side"),
                        (nn.Conv2d(3, 4, 3, 2, (1, 0)),
                         "(1, 1, 0, 0) (top, bottom, left, right)")]:
        pairing = yolo_io.torch.load_into(UntraceableConv(conv), net, trace=trace)
        assert pairing.notes[1] == (
            f"torch layer 'c0' (Conv2d) pads {found} for its 8x8 input, but darknet layer 0 "
            f"([convolutional], {net.config.path} line 5) pads 1 on each side "
            f"({net.config.path}: pad= at line 9): right only if a zero padding right before "
            "it pads the rest, which the data flow would show, but it was not traced, so this "
            "was not checked; pass trace=True to decide (a model that cannot be traced is then "
            "an error)")
        with pytest.raises(yolo_io.ConversionError, match=r"trace=True, but the torch model's "
                           r"forward could not be traced"):
            yolo_io.torch.check_model(UntraceableConv(conv), net, trace=True)


def test_a_forward_that_cannot_be_traced_is_paired_by_order_and_says_so(
        tmp_path: Path) -> None:
    net = small_net(tmp_path, TWO_CONVS)
    pairing = yolo_io.torch.load_into(Untraceable(), net)
    assert {r["paired_by"] for r in pairing.rows()} == {"order"}
    assert pairing.notes[0].startswith("its forward could not be traced (TypeError: ")
    assert pairing.notes[0].endswith(
        "its data flow (what feeds each layer, the order of a route's inputs) was not checked, "
        "only the shapes in the order its modules are registered in (pass example_input= if "
        "the forward needs another input)")
    assert "note: its forward could not be traced" in str(pairing)


class CachesAGrid(nn.Module):
    """Registers its head first (so the order does not fit and the forward
    is traced) and caches a tensor on itself in forward(), as detection
    heads cache their grids."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Conv2d(4, 5, 1)
        self.c0 = nn.Conv2d(3, 4, 3, 1, 1)
        self.grid: Any = None

    def forward(self, x: Any) -> Any:
        y = self.head(self.c0(x))
        if self.grid is None:
            self.grid = torch.zeros(y.shape[-2:])
        return y + self.grid


def test_tracing_leaves_the_module_as_it_was(tmp_path: Path) -> None:
    net = small_net(tmp_path, TWO_CONVS)
    model = CachesAGrid().train()
    pairing = yolo_io.torch.check_model(model, net)
    assert {r["paired_by"] for r in pairing.rows()} == {"data flow"}
    assert model.grid is None and model.training and model.c0.training
    assert not model.head._forward_hooks and not model.head._forward_pre_hooks
    yolo_io.torch.load_into(model, net)
    x = natural_image(3, 8, 8)
    with torch.no_grad():
        got = model.eval()(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    assert close(got, darknet_output(net, x), atol=1e-5, rtol=1e-5) is None


def test_models_that_compute_something_else_are_refused(tmp_path: Path) -> None:
    net = small_net(tmp_path, TWO_CONVS)
    dilated = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 2, dilation=2), nn.Conv2d(4, 5, 1))
    with pytest.raises(yolo_io.ModelMismatchError, match=r"torch layer '0' \(Conv2d\) has "
                       r"dilation 2, but darknet layer 0 .* has dilation 1"):
        unchanged_after(dilated, lambda: yolo_io.torch.load_into(dilated, net))
    strided = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.Conv2d(4, 5, 1))
    with pytest.raises(yolo_io.ModelMismatchError, match=r"has stride 2, but .* has stride 1"):
        yolo_io.torch.check_model(strided, net)
    tied = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1), nn.Conv2d(4, 5, 1), nn.Conv2d(4, 5, 1))
    tied[2].weight = tied[1].weight
    with pytest.raises(yolo_io.ModelMismatchError, match=r"torch layers '1' and '2' share a "
                       r"parameter \(tied weights\)"):
        yolo_io.torch.check_model(tied, net)
    normed = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1),
                           nn.utils.parametrizations.weight_norm(nn.Conv2d(4, 5, 1)))
    with pytest.raises(yolo_io.ModelMismatchError, match=r"torch layer '1' \(ParametrizedConv2d\)"
                       r" has no plain weight parameter"):
        yolo_io.torch.check_model(normed, net)


LOOK_ALIKES = """\
[net]
width=8
height=8
channels=3
[convolutional]
filters=8
size=3
stride=2
pad=1
activation=leaky
[convolutional]
filters=8
size=1
activation=leaky
[route]
layers=-2
[convolutional]
filters=8
size=1
activation=leaky
[convolutional]
filters=8
size=3
pad=1
activation=leaky
[route]
layers=-1,-4
"""


class Csp(nn.Module):
    """Darknet layers 1 and 3 are look-alikes (1x1 8->8 on layer 0); here
    registered as ``part_a`` (darknet's 3) before ``part_b`` (darknet's 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 2, 1)
        self.part_a = nn.Conv2d(8, 8, 1)
        self.part_b = nn.Conv2d(8, 8, 1)
        self.mix = nn.Conv2d(8, 8, 3, 1, 1)

    def forward(self, x: Any) -> Any:
        x = F.leaky_relu(self.stem(x), 0.1)
        a = F.leaky_relu(self.part_a(x), 0.1)
        b = F.leaky_relu(self.part_b(x), 0.1)
        return torch.cat([F.leaky_relu(self.mix(a), 0.1), b], 1)


def test_look_alikes_are_told_apart_by_the_data_flow_and_noted_without_it(
        tmp_path: Path) -> None:
    net = small_net(tmp_path, LOOK_ALIKES)
    model = Csp()
    by_order = yolo_io.torch.check_model(model, net, trace=False)
    assert by_order.notes[1:] == [(
        "darknet layers 1, 3 have the same shapes and the same input: the order its modules "
        "are registered in paired them; the data flow would tell them apart (torch: "
        "trace=True)")]
    assert str(by_order).endswith(by_order.notes[1])
    assert [r["framework"] for r in by_order.rows()] == ["stem", "part_a", "part_b", "mix"]
    pairing = yolo_io.torch.load_into(model, net)
    assert [r["framework"] for r in pairing.rows()] == ["stem", "part_b", "part_a", "mix"]
    assert pairing.notes == []
    x = natural_image(3, 8, 8)
    with torch.no_grad():
        got = model(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    assert close(got, darknet_output(net, x), atol=1e-5, rtol=1e-5) is None


CONV_ACTIVATION_BATCHNORM = CONV_THEN_BATCHNORM.replace("activation=linear", "activation=leaky", 1)


def test_a_batchnorm_section_after_an_activation_is_its_own_layer(tmp_path: Path) -> None:
    """bn(leaky(conv(x))): the batch norm is not the conv's, so it cannot be
    folded into it, and a model with a conv, a LeakyReLU and a BatchNorm2d
    takes the three as they are."""
    net = small_net(tmp_path, CONV_ACTIVATION_BATCHNORM)
    folded = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1), nn.LeakyReLU(0.1), nn.Conv2d(4, 5, 1))
    with pytest.raises(yolo_io.ModelMismatchError, match=r"the torch model lacks darknet layer 1 "
                       r"\(\[batchnorm\]"):
        unchanged_after(folded, lambda: yolo_io.torch.load_into(folded, net, fuse=True))
    model = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1), nn.LeakyReLU(0.1), nn.BatchNorm2d(4),
                          nn.Conv2d(4, 5, 1)).eval()
    pairing = yolo_io.torch.load_into(model, net)
    assert [r["layer"] for r in pairing.rows()] == [0, 1, 2]
    x = natural_image(3, 6, 6)
    with torch.no_grad():
        got = model(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    assert close(got, darknet_output(net, x), atol=1e-5, rtol=1e-5) is None


def test_a_partial_file_that_ends_between_a_conv_and_its_batchnorm(tmp_path: Path) -> None:
    cfg = tmp_path / "c.cfg"
    cfg.write_text(CONV_THEN_BATCHNORM)
    weights = write_weights(tmp_path / "c.weights", cfg, layers=1)
    net = yolo_io.load(weights, cfg, partial=True)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1), nn.BatchNorm2d(4), nn.Conv2d(4, 5, 1))
    with pytest.raises(yolo_io.ModelMismatchError, match=r"layer 1 \(\[batchnorm\], .*\) is past "
                       r"the end of the partial file .*, but the model's '0' takes it with layer 0"):
        unchanged_after(model, lambda: yolo_io.torch.load_into(model, net, strict=False))


class CachesGridsInAList(CachesAGrid):
    """As CachesAGrid, with its grids in a list changed in place (YOLOv5's
    Detect head)."""

    def __init__(self) -> None:
        super().__init__()
        self.grid = [torch.zeros(1)]

    def forward(self, x: Any) -> Any:
        y = self.head(self.c0(x))
        if self.grid[0].shape != y.shape[-2:]:
            self.grid[0] = torch.zeros(y.shape[-2:])
        return y + self.grid[0]


def test_tracing_restores_what_a_forward_changes_in_a_list(tmp_path: Path) -> None:
    net = small_net(tmp_path, TWO_CONVS)
    model = CachesGridsInAList()
    grids = model.grid
    yolo_io.torch.check_model(model, net)
    assert model.grid is grids and model.grid[0].device.type == "cpu"
    assert model.grid[0].shape == (1,)


FORWARDS: list[bool] = []  # NeedsValues' batch norm had a stand-in (tracing restores its lists)


class NeedsValues(nn.Module):
    """A forward that reads a value (fails on the meta device), so it is
    traced on real zeros, with its batch norm's own forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Conv2d(4, 5, 1)

    def forward(self, x: Any) -> Any:
        y = self.bn(self.conv(x))
        FORWARDS.append("forward" in self.bn.__dict__)
        if float(y.abs().max()) > 1e30:
            raise ValueError("not a number")
        return self.head(y)


def test_a_forward_that_needs_values_is_traced_on_zeros(tmp_path: Path) -> None:
    net = small_net(tmp_path, CONV_THEN_BATCHNORM.replace("[batchnorm]\n", "").replace(
        "filters=4\n", "batch_normalize=1\nfilters=4\n", 1))
    model = NeedsValues()
    FORWARDS.clear()
    pairing = yolo_io.torch.load_into(model, net)
    assert {r["paired_by"] for r in pairing.rows()} == {"data flow"} and pairing.notes == []
    assert FORWARDS == [True, False]  # on meta: its stand-in; on zeros: its own
    assert "forward" not in model.bn.__dict__

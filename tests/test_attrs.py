"""layer.attrs: one typed record per layer kind with darknet's defaults, on
small cfgs written for these tests (tests/test_attrs_darknet.py checks the
corpus against darknet's own parser)."""

from __future__ import annotations

import dataclasses
import warnings

import pytest

import yolo_io
from yolo_io._model import attrs as _attrs


def net(w: int = 8, h: int = 8, c: int = 4) -> str:
    return f"[net]\nwidth={w}\nheight={h}\nchannels={c}\n"


def parse(text: str) -> yolo_io.Config:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", yolo_io.CfgWarning)
        return yolo_io.parse_cfg(text)


def one(body: str, **kw: int) -> yolo_io.CfgLayer:
    return parse(net(**kw) + body)[-1]


# One small cfg body per layer kind (the last section is the one checked).
KIND_CFGS: dict[str, str] = {
    "convolutional": "[convolutional]\n",
    "deconvolutional": "[deconvolutional]\n",
    "connected": "[connected]\n",
    "local": "[local]\n",
    "maxpool": "[maxpool]\n",
    "local_avgpool": "[local_avgpool]\n",
    "avgpool": "[avgpool]\n",
    "route": "[convolutional]\n[route]\nlayers=-1\n",
    "shortcut": "[convolutional]\nfilters=4\n[convolutional]\nfilters=4\n[shortcut]\nfrom=-2\n",
    "scale_channels": "[convolutional]\nfilters=4\n[avgpool]\n[scale_channels]\nfrom=-2\n",
    "sam": "[convolutional]\nfilters=4\n[convolutional]\nfilters=4\n[sam]\nfrom=-2\n",
    "upsample": "[upsample]\n",
    "reorg": "[reorg]\nstride=2\n",
    "reorg3d": "[reorg3d]\nstride=2\n",
    "yolo": "[convolutional]\nfilters=6\n[yolo]\nclasses=1\n",
    "Gaussian_yolo": "[convolutional]\nfilters=10\n[Gaussian_yolo]\nclasses=1\n",
    "region": "[convolutional]\nfilters=6\n[region]\nclasses=1\ncoords=4\n",
    "detection": "[connected]\noutput=3\n[detection]\nside=1\nclasses=1\ncoords=1\n",
    "rnn": "[rnn]\n",
    "lstm": "[lstm]\n",
    "gru": "[gru]\n",
    "crnn": "[crnn]\n",
    "conv_lstm": "[conv_lstm]\n",
    "batchnorm": "[batchnorm]\n",
    "dropout": "[dropout]\n",
    "softmax": "[softmax]\n",
    "cost": "[cost]\n",
    "normalization": "[normalization]\n",
    "activation": "[activation]\n",
    "contrastive": "[convolutional]\nfilters=6\n[yolo]\nclasses=1\n[contrastive]\nyolo_layer=-1\n",
    "crop": "[crop]\n",
    "history": "[history]\n",
    "implicit": "[implicit]\n",
    "iseg": "[iseg]\n",
    "empty": "[empty]\n",
    "logistic": "[logistic]\n",
    "l2norm": "[l2norm]\n",
}


def test_every_kind_is_covered() -> None:
    assert set(KIND_CFGS) == set(yolo_io.LAYER_TYPES)


@pytest.mark.parametrize("kind", sorted(KIND_CFGS))
def test_every_kind_has_a_frozen_typed_record(kind: str) -> None:
    layer = one(KIND_CFGS[kind])
    assert layer.type == kind
    attrs = layer.attrs
    assert isinstance(attrs, yolo_io.attrs.LayerAttrs)
    assert type(attrs).__name__ in yolo_io.attrs.__all__
    assert attrs == layer.attrs  # values, not identity
    hints = {f.name: f.type for f in dataclasses.fields(attrs)}
    for name, annotation in hints.items():
        value = getattr(attrs, name)
        expected = {"int": int, "float": float, "bool": bool, "str": str}.get(str(annotation))
        if expected is not None:
            assert type(value) is expected, (name, value, annotation)
    for f in dataclasses.fields(attrs):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(attrs, f.name, 0)


def test_conv_defaults_and_effective_values() -> None:
    a = one("[convolutional]\n").attrs
    assert a == yolo_io.attrs.ConvolutionalAttrs(
        filters=1, size=1, stride_x=1, stride_y=1, dilation=1, pad=0, groups=1,
        batch_normalize=False, activation="logistic", share_index=None, flipped=False,
        antialiasing=0, binary=False, xnor=False)
    # pad=1 means size//2 (padding= is then ignored); a 1x1 kernel has dilation 1
    a = one("[convolutional]\nsize=5\npad=1\npadding=7\ndilation=2\n").attrs
    assert isinstance(a, yolo_io.attrs.ConvolutionalAttrs)
    assert (a.pad, a.dilation) == (2, 2)
    a = one("[convolutional]\nsize=1\ndilation=3\npadding=1\n").attrs
    assert isinstance(a, yolo_io.attrs.ConvolutionalAttrs)
    assert (a.pad, a.dilation) == (1, 1)
    # stride_x/stride_y win only together; groups < 1 and xnor give 1
    a = one("[convolutional]\nstride=2\nstride_x=3\n").attrs
    assert isinstance(a, yolo_io.attrs.ConvolutionalAttrs)
    assert (a.stride_x, a.stride_y) == (3, 2)
    a = one("[convolutional]\nfilters=4\ngroups=4\nxnor=1\ncbn=1\n").attrs
    assert isinstance(a, yolo_io.attrs.ConvolutionalAttrs)
    assert (a.groups, a.xnor, a.batch_normalize) == (1, True, True)


def test_conv_share_index() -> None:
    cfg = parse(net() + "[convolutional]\nfilters=4\n[convolutional]\nfilters=4\nshare_index=-1\n")
    a = cfg[1].attrs
    assert isinstance(a, yolo_io.attrs.ConvolutionalAttrs)
    assert a.share_index == 0


def test_maxpool_padding_and_its_placement() -> None:
    a = one("[maxpool]\nsize=2\nstride=1\n").attrs  # yolov3-tiny's size-keeping pool
    assert a == yolo_io.attrs.PoolAttrs(size=2, stride_x=1, stride_y=1, pad=1, pad_before=0,
                                  pad_after=1, maxpool_depth=False, out_channels=1,
                                  antialiasing=0)
    a = one("[maxpool]\nstride=2\n").attrs  # size defaults to the stride
    assert isinstance(a, yolo_io.attrs.PoolAttrs)
    assert (a.size, a.pad, a.pad_before, a.pad_after) == (2, 1, 0, 1)
    a = one("[maxpool]\nsize=5\nstride=1\n").attrs
    assert isinstance(a, yolo_io.attrs.PoolAttrs)
    assert (a.pad, a.pad_before, a.pad_after) == (4, 2, 2)
    layer = one("[maxpool]\nsize=3\nstride_x=2\nstride_y=1\npadding=3\n")
    a = layer.attrs
    assert isinstance(a, yolo_io.attrs.PoolAttrs)
    assert (a.stride_x, a.stride_y, a.pad_before, a.pad_after) == (2, 1, 1, 2)
    c, h, w = layer.input_shape
    assert layer.output_shape == (c, (h + a.pad - a.size) // a.stride_y + 1,
                                  (w + a.pad - a.size) // a.stride_x + 1)


def test_route_inputs_groups_and_slices() -> None:
    cfg = parse(net() + "[convolutional]\nfilters=6\n[convolutional]\nfilters=2\n"
                "[route]\nlayers=-2,-1\ngroups=2\ngroup_id=1\n")
    route = cfg[2]
    assert route.attrs == yolo_io.attrs.RouteAttrs(input_layers=(0, 1), groups=2, group_id=1,
                                             channel_slices=((3, 6), (1, 2)))
    assert route.inputs == (0, 1)
    assert route.input_shapes == ((6, 8, 8), (2, 8, 8))
    assert route.input_shape == (2, 8, 8)  # darknet's params: the previous layer's output
    assert route.output_shape == (4, 8, 8)


def test_route_groups_must_divide_every_input() -> None:
    with pytest.raises(yolo_io.CfgError, match=r"groups=2, which does not divide the 3 channels"):
        parse(net() + "[convolutional]\nfilters=3\n[route]\nlayers=-1\ngroups=2\n")


def test_shortcut_names_darknets_effective_settings() -> None:
    cfg = parse(net() + "[convolutional]\nfilters=2\n[convolutional]\nfilters=4\n"
                "[convolutional]\nfilters=4\n"
                "[shortcut]\nfrom=-2, -3\nweights_type=per_layer\nweights_normalization=avg_relu\n")
    s = cfg[3]
    assert s.attrs == yolo_io.attrs.ShortcutAttrs(input_layers=(1, 0), weights_type="per_feature",
                                            weights_normalization="relu", activation="linear")
    assert s.inputs == (2, 1, 0)
    assert s.input_shapes == ((4, 8, 8), (4, 8, 8), (2, 8, 8))


def test_layer_zero_reads_the_network_input() -> None:
    layer = one("[convolutional]\n", c=5)
    assert layer.inputs == ()
    assert layer.input_shapes == ((5, 8, 8),)


def test_upsample_and_reorg() -> None:
    assert one("[upsample]\n").attrs == yolo_io.attrs.UpsampleAttrs(stride=2, reverse=False, scale=1.0)
    layer = one("[upsample]\nstride=-2\nscale=0.5\n")
    assert layer.attrs == yolo_io.attrs.UpsampleAttrs(stride=2, reverse=True, scale=0.5)
    assert layer.output_shape == (4, 4, 4)
    assert one("[reorg]\nstride=2\nreverse=1\n").attrs == yolo_io.attrs.ReorgAttrs(stride=2, reverse=True)


YOLO = "[convolutional]\nfilters=12\n[yolo]\nclasses=1\nnum=4\nmask=2,3\n"


def test_yolo_anchors_after_mask_and_defaults() -> None:
    a = one(YOLO + "anchors=10,13, 16,30, 33,23, 30,61\nscale_x_y=1.05\nnew_coords=1\n"
            "nms_kind=diounms\nbeta_nms=0.5\n").attrs
    assert a == yolo_io.attrs.YoloAttrs(
        classes=1, num=2, total=4, mask=(2, 3), anchors=((33.0, 23.0), (30.0, 61.0)),
        all_anchors=((10.0, 13.0), (16.0, 30.0), (33.0, 23.0), (30.0, 61.0)), scale_x_y=1.05,
        new_coords=True, nms_kind="diounms", beta_nms=0.5)
    # No anchors: darknet's 0.5; no mask: every anchor; unknown nms_kind: default;
    # a comment ends parse_yolo()'s anchor list.
    a = one("[convolutional]\nfilters=12\n[yolo]\nclasses=1\nnum=2\nanchors=7,8 # 9,9\n"
            "nms_kind=cornersnms\n").attrs
    assert isinstance(a, yolo_io.attrs.YoloAttrs)
    assert (a.mask, a.anchors, a.nms_kind, a.scale_x_y) == ((0, 1), ((7.0, 8.0), (0.5, 0.5)),
                                                           "default", 1.0)


def test_yolo_mask_outside_the_anchors_is_refused() -> None:
    with pytest.raises(yolo_io.CfgError, match=r"mask index 4 outside the num=4 anchors"):
        one("[convolutional]\nfilters=12\n[yolo]\nclasses=1\nnum=4\nmask=3,4\n")


def test_gaussian_yolo_point_and_anchor_overrun() -> None:
    a = one("[convolutional]\nfilters=20\n[Gaussian_yolo]\nclasses=1\nnum=2\nyolo_point=left_top\n"
            "nms_kind=cornersnms\nnew_coords=1\n").attrs
    assert isinstance(a, yolo_io.attrs.GaussianYoloAttrs)
    assert (a.yolo_point, a.nms_kind, a.new_coords, a.num) == ("left_top", "cornersnms", False, 2)
    with pytest.raises(yolo_io.CfgError, match=r"lists 6 anchor values, more than the 4"):
        one("[convolutional]\nfilters=20\n[Gaussian_yolo]\nclasses=1\nnum=2\nanchors=1,2,3,4,5,6\n")


def test_region_and_detection() -> None:
    a = one("[convolutional]\nfilters=12\n[region]\nclasses=1\ncoords=4\nnum=2\nsoftmax=1\n"
            "anchors=1,2,3,4,5,6\n").attrs  # parse_region() reads num*2 values at most
    assert a == yolo_io.attrs.RegionAttrs(classes=1, coords=4, num=2, anchors=((1.0, 2.0), (3.0, 4.0)),
                                    softmax=True, tree=False, classfix=0)
    a = one(KIND_CFGS["detection"]).attrs
    assert a == yolo_io.attrs.DetectionAttrs(classes=1, coords=1, num=1, side=1, softmax=False,
                                       sqrt=False, rescore=False)


def test_contrastive_takes_its_heads_classes() -> None:
    a = one(KIND_CFGS["contrastive"] + "classes=1000\n").attrs
    assert a == yolo_io.attrs.ContrastiveAttrs(classes=1, yolo_layer=1, temperature=1.0)


def test_other_kinds_defaults() -> None:
    assert one("[dropout]\n").attrs == yolo_io.attrs.DropoutAttrs(probability=0.2, dropblock=False)
    assert one("[softmax]\ngroups=2\nspatial=1.5\n").attrs == yolo_io.attrs.SoftmaxAttrs(
        groups=2, temperature=1.0, spatial=True, tree=False)
    assert one("[connected]\noutput=7\n").attrs == yolo_io.attrs.ConnectedAttrs(
        outputs=7, batch_normalize=False, activation="logistic")
    assert one("[rnn]\nhidden=3\noutput=2\nactivation=leaky\nbatch_normalize=1\n").attrs == \
        yolo_io.attrs.RnnAttrs(outputs=2, hidden=3, batch_normalize=True, activation="leaky")
    assert one("[conv_lstm]\noutput=2\npad=1\n").attrs == yolo_io.attrs.ConvLstmAttrs(
        outputs=2, size=3, stride=1, pad=1, groups=1, batch_normalize=False, activation="linear",
        lstm_activation="tanh", peephole=False, bottleneck=False)
    assert one("[normalization]\n").attrs == yolo_io.attrs.NormalizationAttrs(
        size=5, alpha=0.0001, beta=0.75, kappa=1.0)
    assert one(KIND_CFGS["scale_channels"]).attrs == \
        yolo_io.attrs.ScaleChannelsAttrs(from_layer=0, scale_wh=False, activation="linear")


def test_fusion_and_default_layout_come_from_the_kind_table() -> None:
    cfg = parse(net() + "[convolutional]\n[connected]\n[dropout]\n")
    assert [(layer.fusion, layer.default_layout) for layer in cfg] == [
        ("conv", "OIHW"), ("dense", "OI"), (None, None)]


def test_param_specs_and_location() -> None:
    layer = one("[convolutional]\nbatch_normalize=1\nfilters=2\nsize=3\n", c=1)
    assert [tuple(s) for s in layer.param_specs] == [
        ("biases", (2,), 0, 2), ("scales", (2,), 2, 2), ("rolling_mean", (2,), 4, 2),
        ("rolling_variance", (2,), 6, 2), ("weights", (2, 1, 3, 3), 8, 18)]
    assert layer.location == "layer 0 ([convolutional], <string> line 5)"


def test_attrs_module_names_every_record() -> None:
    records = {name for name in _attrs.__all__ if name not in ("LayerAttrs", "NetAttrs")}
    made = {type(one(body).attrs).__name__ for body in KIND_CFGS.values()}
    assert records == made


@pytest.mark.parametrize("kind", ["dropout", "activation", "empty"])
def test_flat_layers_pass_darknets_outputs_on(kind: str) -> None:
    """parse_dropout()/parse_activation()/[empty] set l.outputs = params.inputs,
    and the next layer's params.inputs is that l.outputs: with [net] inputs=
    different from w*h*c, a following [connected] sees inputs=, as in darknet."""
    cfg = parse("[net]\nwidth=4\nheight=4\nchannels=2\ninputs=100\n"
                f"[{kind}]\n[connected]\noutput=3\n")
    assert cfg[1].param_shapes["weights"] == (3, 100)


def test_route_reports_mismatched_sizes_before_groups() -> None:
    with pytest.raises(yolo_io.CfgError, match="concatenates"):
        parse(net() + "[convolutional]\nfilters=3\n[maxpool]\nsize=2\nstride=2\n"
              "[route]\nlayers=-1,-2\ngroups=2\n")

"""The layer model: defaults, output shapes, inputs and parameter plans per
section type (spec sections 3 and 5), on small cfgs written for these tests."""

from __future__ import annotations

import pytest

import yolo_io


def net(w: int = 8, h: int = 8, c: int = 3) -> str:
    return f"[net]\nwidth={w}\nheight={h}\nchannels={c}\n"


def parse(text: str) -> yolo_io.Config:
    return yolo_io.parse_cfg(text)


def one(body: str, **kw: int) -> yolo_io.CfgLayer:
    return parse(net(**kw) + body)[-1]


# --------------------------------------------------------------- convolutional

def test_conv_defaults_are_darknets() -> None:
    layer = one("[convolutional]\n")
    assert layer.activation == "logistic"  # not linear
    assert layer.output_shape == (1, 8, 8)  # filters=1, size=1, stride=1
    assert dict(layer.param_shapes) == {"biases": (1,), "weights": (1, 3, 1, 1)}
    assert layer.inputs == ()


def test_conv_with_bn_order_and_counts() -> None:
    layer = one("[convolutional]\nbatch_normalize=1\nfilters=16\nsize=3\nstride=2\npad=1\n")
    assert list(layer.param_shapes) == ["biases", "scales", "rolling_mean", "rolling_variance", "weights"]
    assert layer.param_shapes["weights"] == (16, 3, 3, 3)
    assert layer.param_count == 16 * 4 + 16 * 27
    assert layer.output_shape == (16, 4, 4)


@pytest.mark.parametrize(
    ("opts", "shape"),
    [
        ("size=3\npad=1", (8, 8)),        # pad -> padding = size/2
        ("size=3\npadding=1", (8, 8)),
        ("size=3", (6, 6)),               # no padding
        ("size=3\npad=1\npadding=5", (8, 8)),  # pad overrides padding
        ("size=3\nstride=2\npad=1", (4, 4)),
        ("size=1\nstride_x=2\nstride_y=1", (8, 4)),   # (h, w)
        ("size=1\nstride_x=2\nstride=4", (2, 4)),     # stride_y falls back to stride
        ("size=5\npad=1\ndilation=2", (8, 8)),        # shape ignores dilation
    ],
)
def test_conv_output_shape(opts: str, shape: tuple[int, int]) -> None:
    layer = one(f"[convolutional]\nfilters=2\n{opts}\n")
    assert layer.output_shape[1:] == shape


def test_grouped_and_depthwise_conv() -> None:
    layer = one("[convolutional]\nfilters=12\ngroups=3\nsize=3\npad=1\n", c=6)
    assert layer.param_shapes["weights"] == (12, 2, 3, 3)
    dw = one("[convolutional]\nfilters=6\ngroups=6\nsize=3\npad=1\n", c=6)
    assert dw.param_shapes["weights"] == (6, 1, 3, 3)


def test_xnor_forces_groups_to_one_and_groups_below_one_become_one() -> None:
    assert one("[convolutional]\nfilters=4\ngroups=2\nxnor=1\n", c=4).param_shapes["weights"] == (4, 4, 1, 1)
    assert one("[convolutional]\nfilters=4\ngroups=0\n", c=4).param_shapes["weights"] == (4, 4, 1, 1)


def test_antialiasing_blur_is_not_stored_and_strides_move_to_the_blur() -> None:
    layer = one("[convolutional]\nfilters=4\nsize=3\nstride=2\npad=1\nantialiasing=1\n")
    assert layer.param_count == 4 + 4 * 27
    assert layer.output_shape == (4, 4, 4)  # (8 + 2 - 3)/2 + 1 after a stride-1 host conv


def test_share_index_stores_nothing() -> None:
    cfg = parse(net() + "[convolutional]\nfilters=3\nsize=3\npad=1\nbatch_normalize=1\n"
                "[convolutional]\nfilters=3\nsize=3\npad=1\nbatch_normalize=1\nshare_index=0\n"
                "[convolutional]\nfilters=3\nsize=3\npad=1\nbatch_normalize=1\nshare_index=-2\n")
    assert cfg[1].share_index == 0 and cfg[2].share_index == 0
    assert cfg[1].param_count == 0 and cfg[2].param_count == 0
    assert cfg.param_count == cfg[0].param_count


def test_share_index_with_other_shapes_is_an_error() -> None:
    with pytest.raises(yolo_io.CfgError, match=r"shares the weights") as e:
        parse(net() + "[convolutional]\nfilters=3\nsize=3\npad=1\n"
              "[convolutional]\nfilters=5\nsize=3\npad=1\nshare_index=0\n")
    assert e.value.line == 13


def test_dontload_and_dontloadscales() -> None:
    cfg = parse(net() + "[convolutional]\nfilters=2\nbatch_normalize=1\ndontload=1\n"
                "[convolutional]\nfilters=2\nbatch_normalize=1\ndontloadscales=1\n")
    assert cfg[0].dontload and cfg[0].param_count == 0
    assert list(cfg[1].param_shapes) == ["biases", "weights"]


def test_dontloadscales_is_honoured_by_the_kinds_whose_loader_reads_it() -> None:
    # load_convolutional_weights() and load_connected_weights() skip the
    # batch-norm arrays; a deconvolution keeps them in this plan.
    dense = one("[connected]\noutput=4\nbatch_normalize=1\ndontloadscales=1\n")
    assert list(dense.param_shapes) == ["biases", "weights"]
    assert dense.param_count == 4 + 4 * 192
    deconv = one("[deconvolutional]\nfilters=2\nbatch_normalize=1\ndontloadscales=1\n")
    assert list(deconv.param_shapes) == ["biases", "scales", "rolling_mean",
                                         "rolling_variance", "weights"]


def test_cbn_means_batch_normalize() -> None:
    assert "scales" in one("[convolutional]\nfilters=2\ncbn=1\n").param_shapes


def test_conv_after_softmax_is_an_error_but_after_connected_is_1x1() -> None:
    with pytest.raises(yolo_io.CfgError, match="needs an image input") as e:
        parse(net() + "[softmax]\n[convolutional]\nfilters=1\n")
    assert e.value.line == 6
    layer = parse(net() + "[connected]\noutput=4\n[convolutional]\nfilters=2\n")[1]
    assert layer.input_shape == (4, 1, 1)
    assert layer.output_shape == (2, 1, 1)


@pytest.mark.parametrize(("before", "kind"), [
    ("[softmax]\n", "softmax"),
    ("[cost]\n", "cost"),
    ("[connected]\noutput=28\n[detection]\nclasses=2\ncoords=4\nside=2\nnum=1\n", "detection"),
])
def test_no_image_after_the_kinds_darknet_leaves_without_one(before: str, kind: str) -> None:
    with pytest.raises(yolo_io.CfgError,
                       match=rf"layer before it is \[{kind}\], whose output darknet leaves"):
        parse(net() + before + "[maxpool]\n")


@pytest.mark.parametrize("bad", ["filters=0", "size=0", "stride=-1", "size=99", "filters=-3"])
def test_conv_with_impossible_sizes_is_an_error(bad: str) -> None:
    with pytest.raises(yolo_io.CfgError, match=r"must be|larger|stride=0") as e:
        parse(net() + f"[convolutional]\n{bad}\n")
    assert e.value.line in (5, 6)


# --------------------------------------------------------------- pooling & co

def test_maxpool_size2_stride1_keeps_size() -> None:
    assert one("[maxpool]\nsize=2\nstride=1\n").output_shape == (3, 8, 8)


def test_maxpool_defaults_and_padding_is_total() -> None:
    assert one("[maxpool]\nstride=2\n").output_shape == (3, 4, 4)  # size defaults to stride
    assert one("[maxpool]\nsize=3\nstride=2\npadding=0\n").output_shape == (3, 3, 3)
    assert one("[maxpool]\nsize=2\nstride=2\n", w=7, h=7).output_shape == (3, 4, 4)


def test_maxpool_depth() -> None:
    assert one("[maxpool]\nmaxpool_depth=1\nout_channels=2\n", c=6).output_shape == (2, 8, 8)


def test_local_avgpool_avgpool() -> None:
    assert one("[local_avgpool]\nsize=2\nstride=2\n").output_shape == (3, 4, 4)
    assert one("[avgpool]\n", c=5).output_shape == (5, 1, 1)


def test_upsample_and_reverse_upsample() -> None:
    assert one("[upsample]\n").output_shape == (3, 16, 16)
    assert one("[upsample]\nstride=-2\n").output_shape == (3, 4, 4)


def test_reorg_and_reorg3d() -> None:
    assert one("[reorg]\nstride=2\n").output_shape == (12, 4, 4)
    assert one("[reorg3d]\nstride=2\n").output_shape == (12, 4, 4)
    assert one("[reorg3d]\nstride=2\nreverse=1\n", c=8).output_shape == (2, 16, 16)


# --------------------------------------------------------------- routing

def test_route_concatenates_and_resolves_indices() -> None:
    cfg = parse(net() + "[convolutional]\nfilters=2\n[convolutional]\nfilters=5\n[route]\nlayers=-1,0\n"
                "[route]\nlayers = -3, -2\n")
    assert cfg[2].inputs == (1, 0)
    assert cfg[2].output_shape == (7, 8, 8)
    assert cfg[3].inputs == (0, 1)


def test_route_groups_slices_channels() -> None:
    cfg = parse(net() + "[convolutional]\nfilters=6\n[route]\nlayers=-1\ngroups=2\ngroup_id=1\n")
    assert cfg[1].output_shape == (3, 8, 8)


def test_route_to_a_later_layer_is_an_error() -> None:
    with pytest.raises(yolo_io.CfgError, match=r"refer.* layer 3 .*only layers 0..0") as e:
        parse(net() + "[convolutional]\n[route]\nlayers=3\n")
    assert e.value.line == 7


def test_route_without_layers_and_with_mismatched_sizes() -> None:
    with pytest.raises(yolo_io.CfgError, match="has no layers="):
        parse(net() + "[convolutional]\n[route]\n")
    with pytest.raises(yolo_io.CfgError, match="width and height differ"):
        parse(net() + "[convolutional]\n[maxpool]\nstride=2\n[route]\nlayers=-1,-2\n")


def test_route_comment_after_the_list_is_read_like_darknet() -> None:
    # n = 1 + commas over the whole value: "-1#,x" gives -1 and atoi("x") = 0.
    cfg = parse(net() + "[convolutional]\n[convolutional]\n[route]\nlayers=-1#,x\n")
    assert cfg[2].inputs == (1, 0)


def test_shortcut_inputs_and_channel_mismatch() -> None:
    cfg = parse(net() + "[convolutional]\nfilters=4\n[convolutional]\nfilters=2\n[shortcut]\nfrom=-2\n")
    assert cfg[2].inputs == (1, 0)
    assert cfg[2].output_shape == (2, 8, 8)  # the previous layer's shape
    assert cfg[2].activation == "linear"
    assert cfg[2].param_count == 0


@pytest.mark.parametrize(("wt", "count"), [("per_feature", 3), ("per_layer", 3), ("per_channel", 12)])
def test_weighted_shortcut(wt: str, count: int) -> None:
    layer = parse(net() + "[convolutional]\nfilters=4\n[convolutional]\nfilters=4\n[convolutional]\nfilters=4\n"
                  f"[shortcut]\nfrom=-2,-3\nweights_type={wt}\nweights_normalization=softmax\n")[3]
    assert layer.inputs == (2, 1, 0)
    assert layer.param_count == count


def test_weighted_shortcut_needs_a_normalization() -> None:
    with pytest.raises(yolo_io.CfgError, match="weights_normalization"):
        parse(net() + "[convolutional]\n[shortcut]\nfrom=-1\nweights_type=per_feature\n")


def test_shortcut_spatial_mismatch_warns() -> None:
    with pytest.warns(yolo_io.CfgWarning, match="width and height differ"):
        cfg = parse(net() + "[convolutional]\n[maxpool]\nstride=2\n[shortcut]\nfrom=-2\n")
    assert cfg[2].output_shape == (1, 4, 4)


def test_scale_channels_and_sam() -> None:
    cfg = parse(net() + "[convolutional]\nfilters=4\n[avgpool]\n[scale_channels]\nfrom=-2\n"
                "[convolutional]\nfilters=4\n[sam]\nfrom=-2\n")
    assert cfg[2].inputs == (1, 0)
    assert cfg[2].output_shape == (4, 8, 8)
    assert cfg[4].inputs == (3, 2)
    with pytest.raises(yolo_io.CfgError, match="do not fit"):
        parse(net() + "[convolutional]\nfilters=4\n[scale_channels]\nfrom=-1\n")


# --------------------------------------------------------------- heads

def test_yolo_head_mismatch_names_the_conv_and_the_fix() -> None:
    with pytest.raises(yolo_io.CfgError, match=r"set filters=255 there") as e:
        parse(net() + "[convolutional]\nfilters=24\n[yolo]\nmask=0,1,2\nclasses=80\nnum=9\n")
    assert e.value.line == 7


def test_grid_heads_name_the_filters_and_detection_does_not() -> None:
    with pytest.raises(yolo_io.CfgError, match=r"set filters=50 there"):
        parse(net() + "[convolutional]\nfilters=24\n[region]\nclasses=5\nnum=5\n")
    with pytest.raises(yolo_io.CfgError, match=r"set filters=36 there"):
        parse(net() + "[convolutional]\nfilters=24\n[Gaussian_yolo]\nmask=0,1\nclasses=9\nnum=2\n")
    with pytest.raises(yolo_io.CfgError, match=r"outputs 24x8x8 \(darknet") as e:
        parse(net() + "[convolutional]\nfilters=24\n[detection]\nclasses=2\ncoords=4\nside=2\nnum=1\n")
    assert "set filters" not in str(e.value)


def test_yolo_mask_counts_up_to_hash() -> None:
    layer = one("[convolutional]\nfilters=12\n[yolo]\nmask=0,1#,2\nclasses=1\nnum=3\n")
    assert layer.output_shape == (12, 8, 8)


def test_region_detection_heads() -> None:
    assert one("[convolutional]\nfilters=50\n[region]\nclasses=5\nnum=5\n").output_shape == (50, 8, 8)
    # side^2 * ((1 + coords) * num + classes) = 4 * (5 + 2)
    layer = one("[connected]\noutput=28\n[detection]\nclasses=2\ncoords=4\nside=2\nnum=1\n")
    assert layer.inputs == (0,)
    with pytest.raises(yolo_io.CfgError, match="28 values"):
        one("[connected]\noutput=26\n[detection]\nclasses=2\ncoords=4\nside=2\nnum=1\n")


# --------------------------------------------------------------- other storing layers

def test_connected_order_and_flattening() -> None:
    layer = one("[connected]\noutput=10\nbatch_normalize=1\n", w=2, h=2, c=3)
    assert list(layer.param_shapes) == ["biases", "weights", "scales", "rolling_mean", "rolling_variance"]
    assert layer.param_shapes["weights"] == (10, 12)
    assert layer.output_shape == (10, 1, 1)
    assert layer.activation == "logistic"


def test_local_layer() -> None:
    layer = one("[local]\nfilters=2\nsize=3\nstride=1\npad=0\n", w=5, h=5, c=3)
    assert layer.output_shape == (2, 3, 3)
    assert layer.param_shapes == {"biases": (2, 3, 3), "weights": (9, 2, 3, 3, 3)}


def test_batchnorm_layer_stores_4c() -> None:
    layer = one("[batchnorm]\n", c=5)
    assert list(layer.param_shapes) == ["biases", "scales", "rolling_mean", "rolling_variance"]
    assert layer.param_count == 20


def test_implicit_layer() -> None:
    layer = one("[implicit]\nfilters=7\natoms=2\n")
    assert layer.param_shapes == {"weights": (7, 2)}
    assert layer.output_shape == (7, 2, 1)


def test_deconvolutional_layer() -> None:
    layer = one("[deconvolutional]\nfilters=4\nsize=4\nstride=2\npadding=1\n", c=3)
    assert layer.output_shape == (4, 16, 16)
    assert layer.param_shapes["weights"] == (3, 4, 4, 4)


def test_recurrent_layers_alexeyab_order() -> None:
    text = "[net]\ninputs=10\n"
    rnn = parse(text + "[rnn]\noutput=4\nhidden=6\n")[0]
    assert list(rnn.param_shapes) == [
        "input_layer.biases", "input_layer.weights",
        "self_layer.biases", "self_layer.weights",
        "output_layer.biases", "output_layer.weights"]
    assert rnn.param_shapes["input_layer.weights"] == (6, 10)
    assert rnn.param_shapes["output_layer.weights"] == (4, 6)
    lstm = parse(text + "[lstm]\noutput=4\n")[0]
    names = [n.split(".")[0] for n in lstm.param_shapes][::2]
    assert names == ["wf", "wi", "wg", "wo", "uf", "ui", "ug", "uo"]
    assert lstm.param_shapes["wf.weights"] == (4, 4)
    assert lstm.param_shapes["uf.weights"] == (4, 10)
    gru = parse(text + "[gru]\noutput=3\nbatch_normalize=1\n")[0]
    assert gru.param_count == 6 * (3 * 4) + 3 * (3 * 10) + 3 * (3 * 3)
    assert list(gru.param_shapes)[:5] == [
        "input_z_layer.biases", "input_z_layer.weights", "input_z_layer.scales",
        "input_z_layer.rolling_mean", "input_z_layer.rolling_variance"]


def test_crnn_and_conv_lstm() -> None:
    crnn = one("[crnn]\noutput=4\nhidden=5\nsize=3\npad=1\n", c=2)
    assert crnn.param_shapes["input_layer.weights"] == (5, 2, 3, 3)
    assert crnn.param_shapes["self_layer.weights"] == (5, 5, 3, 3)
    assert crnn.param_shapes["output_layer.weights"] == (4, 5, 3, 3)
    assert crnn.output_shape == (4, 8, 8)
    cl = one("[conv_lstm]\noutput=4\nsize=3\npad=1\npeephole=1\n", c=2)
    assert [n.split(".")[0] for n in cl.param_shapes][::2] == [
        "vf", "vi", "vo", "wf", "wi", "wg", "wo", "uf", "ui", "ug", "uo"]
    bott = one("[conv_lstm]\noutput=4\nsize=3\npad=1\nbottleneck=1\n", c=2)
    assert bott.param_shapes["wf.weights"] == (4, 8, 3, 3)
    assert "wi.weights" not in bott.param_shapes


def test_text_model_input_shape() -> None:
    cfg = parse("[net]\ninputs=256\n[connected]\noutput=8\n[softmax]\n[cost]\n")
    assert cfg.input_shape == (256, 1, 1)
    assert cfg[0].param_shapes["weights"] == (8, 256)
    assert cfg[2].output_shape == (8, 1, 1)


@pytest.mark.parametrize(
    "body",
    ["[dropout]\n", "[activation]\nactivation=leaky\n", "[normalization]\n", "[empty]\n",
     "[softmax]\n", "[cost]\n", "[logistic]\n", "[l2norm]\n"],
)
def test_pass_through_layers_keep_the_shape(body: str) -> None:
    assert one("[convolutional]\nfilters=2\n" + body).output_shape == (2, 8, 8)


def test_crop_history_iseg_contrastive() -> None:
    assert one("[crop]\ncrop_width=4\ncrop_height=2\n").output_shape == (3, 2, 4)
    assert one("[history]\nhistory_size=3\n").output_shape == (9, 8, 8)
    assert one("[iseg]\nclasses=2\nids=3\n").output_shape == (5, 8, 8)
    cfg = parse(net() + "[convolutional]\nfilters=6\n[yolo]\nclasses=1\n[contrastive]\nyolo_layer=-1\n")
    assert cfg[2].output_shape == (6, 8, 8)


def test_every_type_is_listed() -> None:
    assert "convolutional" in yolo_io.LAYER_TYPES
    assert "net" not in yolo_io.LAYER_TYPES
    assert len(set(yolo_io.LAYER_TYPES)) == len(yolo_io.LAYER_TYPES) == 37


def test_unknown_activation_becomes_relu_with_a_warning() -> None:
    with pytest.warns(yolo_io.CfgWarning, match="'silu'.*relu"):
        layer = one("[convolutional]\nactivation=silu\n")
    assert layer.activation == "relu"


@pytest.mark.parametrize(
    "body",
    ["[upsample]\nstride=2147483647\n[upsample]\nstride=2147483647\n",
     "[reorg]\nstride=2147483647\n",
     ("[history]\nhistory_size=2147483647\n[history]\nhistory_size=2147483647\n"
      "[history]\nhistory_size=2147483647\n"),
     "[convolutional]\nfilters=2147483647\nsize=2147483647\npad=1\n",
     "[upsample]\nstride=65536\n[yolo]\nclasses=2147483647\nnum=2147483647\n",
     "[deconvolutional]\nstride=2147483647\n[deconvolutional]\nstride=2147483647\n"],
)
def test_huge_values_are_refused_not_overflowed(body: str) -> None:
    with pytest.raises(yolo_io.CfgError, match=r"too large|overflows|empty output|expects"):
        parse(net() + body)


@pytest.mark.parametrize(
    "text",
    ["[net]\nwidth=2147483647\nheight=3\nchannels=2147483647\n[reorg3d]\n",
     "[net]\nwidth=1\nheight=2147483647\nchannels=2147483647\n[upsample]\n",
     "[net]\nwidth=7\nheight=3\nchannels=2\n[contrastive]\nyolo_layer=-1000000,5\n",
     "[net]\nwidth=183\nheight=1\nchannels=3\n[deconvolutional]\npadding=2147483648\n",
     "[net]\nwidth=2147483647\nheight=416\nchannels=2147483647\n[detection]\nside=-2147483647\n"],
)
def test_fuzzer_findings_are_cfg_errors(text: str) -> None:
    # Found by a sanitizer fuzz run: signed overflow and an unchecked index.
    with pytest.raises(yolo_io.CfgError):
        parse(text)

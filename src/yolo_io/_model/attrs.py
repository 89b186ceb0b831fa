"""Typed hyperparameters of every darknet layer kind (``layer.attrs``).

Each record is a frozen dataclass whose fields are the values darknet's parser
holds after reading the section, with darknet's defaults applied and its
quirks resolved (e.g. a conv's ``pad=1`` becomes the padding ``size // 2``, a
1x1 conv's dilation is 1, a [yolo] head's ``mask`` selects its ``anchors``).
Field names follow darknet's ``layer`` struct (``src/darknet.h``) where it has
one. Floats are the cfg's decimal values as ``atof`` reads them; darknet keeps
them as float32, so ``numpy.float32(value)`` is exactly what it computes with. The values are computed by the C++ core; this module only names and
documents them. Which record a layer gets is a column of the core's layer-kind
table.

Example, the arguments a framework's layers would take::

    for layer in net:
        a = layer.attrs
        if isinstance(a, yolo_io.attrs.ConvolutionalAttrs):
            Conv2d(layer.input_shape[0], a.filters, a.size, (a.stride_y, a.stride_x),
                   a.pad, a.dilation, a.groups, bias=not a.batch_normalize)
"""

from __future__ import annotations

from typing import Any

from .._base.records import Record, dataclass, record_params

__all__ = [
    "ActivationAttrs",
    "AvgpoolAttrs",
    "BatchnormAttrs",
    "ConnectedAttrs",
    "ContrastiveAttrs",
    "ConvLstmAttrs",
    "ConvolutionalAttrs",
    "CostAttrs",
    "CrnnAttrs",
    "CropAttrs",
    "DeconvolutionalAttrs",
    "DetectionAttrs",
    "DropoutAttrs",
    "EmptyAttrs",
    "GaussianYoloAttrs",
    "HistoryAttrs",
    "ImplicitAttrs",
    "IsegAttrs",
    "LayerAttrs",
    "LocalAttrs",
    "NetAttrs",
    "NormalizationAttrs",
    "PoolAttrs",
    "RecurrentAttrs",
    "RegionAttrs",
    "ReorgAttrs",
    "RnnAttrs",
    "RouteAttrs",
    "SamAttrs",
    "ScaleChannelsAttrs",
    "ShortcutAttrs",
    "SoftmaxAttrs",
    "UpsampleAttrs",
    "YoloAttrs",
]

Pairs = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class NetAttrs(Record):
    """The ``[net]`` section's options that inference needs
    (:attr:`Config.net <yolo_io.Config.net>`; [A] ``parse_net_options``), read
    as darknet reads them (``atoi``: ``letter_box=1 # keep aspect`` is 1).

    Attributes:
        width, height, channels: the network input (0 when only ``inputs`` is set).
        inputs: ``inputs=``, or ``width * height * channels``.
        letter_box: ``letter_box=`` is not 0: darknet letterboxes images
            (keeps their aspect ratio, pads with gray) instead of stretching them.
    """

    width: int
    height: int
    channels: int
    inputs: int
    letter_box: bool


@dataclass(frozen=True)
class LayerAttrs(Record):
    """Base of every layer's typed hyperparameters."""


@dataclass(frozen=True)
class ConvolutionalAttrs(LayerAttrs):
    """``[convolutional]`` / ``[conv]`` ([A] ``parse_convolutional``).

    Attributes:
        filters: output channels (darknet's ``l.n``).
        size: kernel height and width.
        stride_x, stride_y: strides (``stride=`` sets both unless ``stride_x``
            and ``stride_y`` are both given).
        dilation: 1 for a 1x1 kernel whatever the cfg says (darknet resets it).
            Darknet's output size ignores dilation:
            ``(h + 2*pad - size) // stride_y + 1``.
        pad: zero padding on each side: ``size // 2`` when ``pad=1``, else
            ``padding=`` (default 0).
        groups: 1 when ``xnor`` or when the cfg gives less than 1.
        batch_normalize: a batch norm follows the convolution (``cbn`` too);
            then the layer stores no separate bias term in the conv.
        activation: darknet's activation name (unknown names are ``"relu"``).
        share_index: the layer whose weights this one reuses, or None.
        flipped: the file stores the weights transposed (``[K][filters]``);
            yolo_io's views and fusion undo it.
        antialiasing: 0, or 1/2: a fixed blur conv (3x3/2x2, not stored)
            follows, carrying the strides, and the conv itself runs at stride 1.
        binary, xnor: XNOR-net binarisation of the weights (and inputs).
    """

    filters: int
    size: int
    stride_x: int
    stride_y: int
    dilation: int
    pad: int
    groups: int
    batch_normalize: bool
    activation: str
    share_index: int | None
    flipped: bool
    antialiasing: int
    binary: bool
    xnor: bool


@dataclass(frozen=True)
class DeconvolutionalAttrs(LayerAttrs):
    """``[deconvolutional]`` (pjreddie darknet): a transposed convolution whose
    output is ``(h - 1) * stride + size - 2 * pad``."""

    filters: int
    size: int
    stride: int
    pad: int
    batch_normalize: bool
    activation: str


@dataclass(frozen=True)
class ConnectedAttrs(LayerAttrs):
    """``[connected]``: a dense layer over the flattened (C, H, W) input.

    Attributes:
        outputs: output features (the cfg's ``output=``).
        batch_normalize: a batch norm follows.
        activation: darknet's activation name (default ``"logistic"``).
    """

    outputs: int
    batch_normalize: bool
    activation: str


@dataclass(frozen=True)
class LocalAttrs(LayerAttrs):
    """``[local]``: a locally connected layer (unshared weights per position).
    ``pad`` is darknet's flag: the output is ``(h - (1 if pad else size)) //
    stride + 1``."""

    filters: int
    size: int
    stride: int
    pad: int
    activation: str


@dataclass(frozen=True)
class PoolAttrs(LayerAttrs):
    """``[maxpool]`` and ``[local_avgpool]`` ([A] ``parse_maxpool``).

    Attributes:
        size: window height and width (default: the stride).
        stride_x, stride_y: strides.
        pad: total padding of each axis (``padding=``, default ``size - 1``):
            the output is ``(h + pad - size) // stride_y + 1``.
        pad_before, pad_after: how darknet places it: windows start at
            ``-pad // 2``, so ``pad // 2`` before and ``pad - pad // 2`` after.
            Max pooling pads with -inf (padding never wins), not zeros.
        maxpool_depth: pool across channels instead (output ``out_channels``).
        out_channels: output channels of a depth pool.
        antialiasing: 0, or 1/2: a fixed blur follows, carrying the strides.
    """

    size: int
    stride_x: int
    stride_y: int
    pad: int
    pad_before: int
    pad_after: int
    maxpool_depth: bool
    out_channels: int
    antialiasing: int


@dataclass(frozen=True)
class AvgpoolAttrs(LayerAttrs):
    """``[avgpool]``: a global average over height and width (output C x 1 x 1)."""


@dataclass(frozen=True)
class RouteAttrs(LayerAttrs):
    """``[route]``: concatenates (slices of) earlier layers' outputs on channels.

    Attributes:
        input_layers: absolute indices of the layers it reads, in order.
        groups, group_id: each input is cut into ``groups`` equal channel
            groups and group ``group_id`` is taken.
        channel_slices: per input, the ``(start, stop)`` channels taken.
    """

    input_layers: tuple[int, ...]
    groups: int
    group_id: int
    channel_slices: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class ShortcutAttrs(LayerAttrs):
    """``[shortcut]``: adds earlier layers' outputs to the previous layer's.

    Attributes:
        input_layers: absolute indices of the ``from=`` layers (the previous
            layer, ``index - 1``, is the first operand and not listed).
        weights_type: ``"none"``, ``"per_feature"`` (one weight per input;
            ``per_layer`` in the cfg) or ``"per_channel"``.
        weights_normalization: ``"none"``, ``"relu"`` (also ``avg_relu``) or
            ``"softmax"``.
        activation: applied after the sum (default ``"linear"``). Inputs with
            fewer channels add to the first channels only.
    """

    input_layers: tuple[int, ...]
    weights_type: str
    weights_normalization: str
    activation: str


@dataclass(frozen=True)
class ScaleChannelsAttrs(LayerAttrs):
    """``[scale_channels]``: multiplies layer ``from_layer``'s output by the
    previous layer's, per channel (``scale_wh``: per position)."""

    from_layer: int
    scale_wh: bool
    activation: str


@dataclass(frozen=True)
class SamAttrs(LayerAttrs):
    """``[sam]``: multiplies layer ``from_layer``'s output by the previous
    layer's, element-wise (spatial attention)."""

    from_layer: int
    activation: str


@dataclass(frozen=True)
class UpsampleAttrs(LayerAttrs):
    """``[upsample]``: nearest-neighbour by ``stride`` (each value repeated),
    output multiplied by ``scale``; ``reverse`` (a negative stride in the cfg)
    downsamples by ``stride`` instead."""

    stride: int
    reverse: bool
    scale: float


@dataclass(frozen=True)
class ReorgAttrs(LayerAttrs):
    """``[reorg]`` / ``[reorg3d]``: space-to-depth by ``stride`` (``reverse``:
    depth-to-space)."""

    stride: int
    reverse: bool


@dataclass(frozen=True)
class YoloAttrs(LayerAttrs):
    """``[yolo]`` ([A] ``parse_yolo``): what decoding this head's output needs.

    Attributes:
        classes: classes per anchor; the input has ``num * (classes + 5)``
            channels (x, y, w, h, objectness, classes).
        num: anchors this head uses (the length of ``mask``; darknet's ``l.n``).
        total: anchors listed for the whole network (the cfg's ``num=``).
        mask: indices into ``all_anchors`` (default ``0 .. total-1``).
        anchors: the (w, h) pairs this head uses, in pixels of the network
            input.
        all_anchors: every (w, h) pair (unlisted values are 0.5, as in darknet).
        scale_x_y: x, y = (sigmoid(t) * scale_x_y - (scale_x_y - 1) / 2 + cell) / grid.
        new_coords: the scaled-YOLOv4 decoding: the conv output is already
            logistic-activated, w = (2 * t)^2 * anchor, no exp.
        nms_kind: ``"default"``, ``"greedynms"`` or ``"diounms"``.
        beta_nms: the DIoU-NMS beta.
    """

    classes: int
    num: int
    total: int
    mask: tuple[int, ...]
    anchors: Pairs
    all_anchors: Pairs
    scale_x_y: float
    new_coords: bool
    nms_kind: str
    beta_nms: float


@dataclass(frozen=True)
class GaussianYoloAttrs(YoloAttrs):
    """``[Gaussian_yolo]``: as :class:`YoloAttrs` with ``classes + 9`` channels
    per anchor (x, y, w, h with their uncertainties, objectness); ``new_coords``
    is always False, ``nms_kind`` may also be ``"cornersnms"``.

    Attributes:
        yolo_point: ``"center"``, ``"left_top"`` or ``"right_bottom"``: which
            box point (x, y) gives.
    """

    yolo_point: str


@dataclass(frozen=True)
class RegionAttrs(LayerAttrs):
    """``[region]`` (YOLOv2): ``num`` anchors of ``coords + 1 + classes``
    channels; ``anchors`` are (w, h) in grid cells; ``softmax`` over classes;
    ``tree``: a softmax tree file is given (``tree=``, YOLO9000); ``classfix``
    as darknet reads it (-1 zeroes classes of low objectness)."""

    classes: int
    coords: int
    num: int
    anchors: Pairs
    softmax: bool
    tree: bool
    classfix: int


@dataclass(frozen=True)
class DetectionAttrs(LayerAttrs):
    """``[detection]`` (YOLOv1): a ``side`` x ``side`` grid of ``classes``
    scores, ``num`` confidences and ``num * coords`` coordinates."""

    classes: int
    coords: int
    num: int
    side: int
    softmax: bool
    sqrt: bool
    rescore: bool


@dataclass(frozen=True)
class RnnAttrs(LayerAttrs):
    """``[rnn]``: three connected layers (input, self, output) of ``hidden``
    and ``outputs`` units."""

    outputs: int
    hidden: int
    batch_normalize: bool
    activation: str


@dataclass(frozen=True)
class RecurrentAttrs(LayerAttrs):
    """``[lstm]`` and ``[gru]``: gates of ``outputs`` units."""

    outputs: int
    batch_normalize: bool


@dataclass(frozen=True)
class CrnnAttrs(LayerAttrs):
    """``[crnn]``: three convolutions (input, self, output)."""

    outputs: int
    hidden: int
    size: int
    stride: int
    pad: int
    groups: int
    batch_normalize: bool
    activation: str


@dataclass(frozen=True)
class ConvLstmAttrs(LayerAttrs):
    """``[conv_lstm]``: convolutional LSTM gates; ``peephole`` adds the
    vf/vi/vo convolutions, ``bottleneck`` merges the state convolutions."""

    outputs: int
    size: int
    stride: int
    pad: int
    groups: int
    batch_normalize: bool
    activation: str
    lstm_activation: str
    peephole: bool
    bottleneck: bool


@dataclass(frozen=True)
class BatchnormAttrs(LayerAttrs):
    """``[batchnorm]``: a batch norm over the input's channels (epsilon 1e-5)."""


@dataclass(frozen=True)
class DropoutAttrs(LayerAttrs):
    """``[dropout]``: identity at inference; ``probability`` in training."""

    probability: float
    dropblock: bool


@dataclass(frozen=True)
class SoftmaxAttrs(LayerAttrs):
    """``[softmax]``: over ``groups`` equal groups of the flattened input
    (``spatial``: over channels at each position), divided by ``temperature``;
    ``tree``: a softmax tree file is given (``tree=``, YOLO9000)."""

    groups: int
    temperature: float
    spatial: bool
    tree: bool


@dataclass(frozen=True)
class CostAttrs(LayerAttrs):
    """``[cost]``: a training loss; identity at inference."""


@dataclass(frozen=True)
class NormalizationAttrs(LayerAttrs):
    """``[normalization]`` / ``[lrn]``: local response normalisation across
    ``size`` channels: ``x / (kappa + alpha * sum(x^2))^beta``."""

    size: int
    alpha: float
    beta: float
    kappa: float


@dataclass(frozen=True)
class ActivationAttrs(LayerAttrs):
    """``[activation]``: applies ``activation`` (default ``"linear"``)."""

    activation: str


@dataclass(frozen=True)
class ContrastiveAttrs(LayerAttrs):
    """``[contrastive]``: a training loss on the embeddings of ``yolo_layer``
    (None: not tied to a head)."""

    classes: int
    yolo_layer: int | None
    temperature: float


@dataclass(frozen=True)
class CropAttrs(LayerAttrs):
    """``[crop]``: a (training) crop to ``crop_height`` x ``crop_width``."""

    crop_height: int
    crop_width: int


@dataclass(frozen=True)
class HistoryAttrs(LayerAttrs):
    """``[history]``: the last ``history_size`` inputs stacked on channels."""

    history_size: int


@dataclass(frozen=True)
class ImplicitAttrs(LayerAttrs):
    """``[implicit]``: a learned ``filters`` x ``atoms`` tensor (YOLOR)."""

    filters: int
    atoms: int


@dataclass(frozen=True)
class IsegAttrs(LayerAttrs):
    """``[iseg]`` (pjreddie darknet): instance segmentation output of
    ``classes + ids`` channels."""

    classes: int
    ids: int


@dataclass(frozen=True)
class EmptyAttrs(LayerAttrs):
    """``[empty]`` / ``[silence]``, ``[logistic]``, ``[l2norm]``: no settings."""


def make(class_name: str, values: list[tuple[str, Any]]) -> LayerAttrs:
    """The record named by the core's kind table, from its (name, value) list."""
    cls = globals()[class_name]
    assert isinstance(cls, type) and issubclass(cls, LayerAttrs), class_name
    record: LayerAttrs = cls(**dict(values))
    return record


record_params(globals())

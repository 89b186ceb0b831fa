"""The typed hyperparameters of each layer kind: ``layer.attrs`` is one of
these frozen records, built by the C++ core from the cfg with darknet's
defaults applied, fields named after darknet's ``layer`` struct (see
docs/converters.md). ``layer.kind.attrs`` names a kind's record.

>>> import yolo_io
>>> from yolo_io.attrs import ConvolutionalAttrs
>>> isinstance(net[0].attrs, ConvolutionalAttrs)
True
"""

from __future__ import annotations

from ._model.attrs import (
    ActivationAttrs,
    AvgpoolAttrs,
    BatchnormAttrs,
    ConnectedAttrs,
    ContrastiveAttrs,
    ConvLstmAttrs,
    ConvolutionalAttrs,
    CostAttrs,
    CrnnAttrs,
    CropAttrs,
    DeconvolutionalAttrs,
    DetectionAttrs,
    DropoutAttrs,
    EmptyAttrs,
    GaussianYoloAttrs,
    HistoryAttrs,
    ImplicitAttrs,
    IsegAttrs,
    LayerAttrs,
    LocalAttrs,
    NetAttrs,
    NormalizationAttrs,
    PoolAttrs,
    RecurrentAttrs,
    RegionAttrs,
    ReorgAttrs,
    RnnAttrs,
    RouteAttrs,
    SamAttrs,
    ScaleChannelsAttrs,
    ShortcutAttrs,
    SoftmaxAttrs,
    UpsampleAttrs,
    YoloAttrs,
)

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

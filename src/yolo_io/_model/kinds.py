"""The core's kind table (csrc/yolo_io/kinds.cpp), as Python reads it: every
fact about a layer type that Python needs (is it a head, training only, what
it fuses as) comes from here, never from a comparison of its type name.

Per-kind behaviour in Python (the ONNX emitters, verify's OpenCV names, the
pairing's roles) lives in registries keyed by kind name: dicts named
``*_BY_KIND``, each of which ``tests/test_kinds.py`` checks covers every kind
of this table, handled or explicitly refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from .. import _core
from .._base.records import Record, dataclass, record_params

__all__ = ["KINDS", "KindFacts", "Refused", "kind"]


@dataclass(frozen=True)
class KindFacts(Record):
    """One row of the core's kind table: a layer type and its facts."""

    #: Canonical type name, e.g. ``"convolutional"``.
    name: str
    #: The section headers that select it, e.g. ``("[conv]", "[convolutional]")``.
    sections: tuple[str, ...]
    #: May read arrays from a ``.weights`` file.
    stores_params: bool
    #: Its output is a flat vector, not an image.
    flat: bool
    #: A detection head (yolo, Gaussian_yolo, region, detection).
    head: bool
    #: A head decoding a grid of per-cell predictions from an image (yolo,
    #: Gaussian_yolo, region): the convolution before it sets their number.
    grid_head: bool
    #: darknet leaves its output shape at 0 (softmax, cost, detection).
    no_image_out: bool
    #: Its darknet loader honours ``dontloadscales=1``.
    dontloadscales: bool
    #: darknet computes nothing at inference that another layer reads (cost,
    #: contrastive): an inference graph leaves it out.
    training_only: bool
    #: What :meth:`~yolo_io.Layer.fused` computes for it: ``"conv"``,
    #: ``"dense"`` or None.
    fusion: Literal["conv", "dense"] | None
    #: The fusion's default layout (``"OIHW"``, ``"OI"``) or None.
    default_layout: str | None
    #: The name of its attrs record in :mod:`yolo_io.attrs` (e.g. ``"YoloAttrs"``).
    attrs: str


#: Every layer kind, by canonical name, in the core's table order.
KINDS: Mapping[str, KindFacts] = MappingProxyType(
    {row["name"]: KindFacts(**row) for row in _core.kind_table()})


def kind(name: str) -> KindFacts:
    """The facts of the layer kind ``name`` (a canonical type name)."""
    return KINDS[name]


@dataclass(frozen=True)
class Refused(Record):
    """A ``*_BY_KIND`` registry's entry for a kind it does not handle, and why
    (the reason goes into the error that names the layer)."""

    reason: str


record_params(globals())

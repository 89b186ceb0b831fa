"""Sizes of published Darknet weights files, to recognise another model's file.

Every size here is the exact byte count of an official file: stated byte for
byte by an independent source, or computed from the model's cfg (20-byte
header unless noted) where the AlexeyAB/darknet README's size in MiB agrees.
The sources are recorded per entry; ``tests/test_diagnose.py`` recomputes each
size from the cfg it names.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["PUBLISHED", "Published", "published_with_size"]


class Published(NamedTuple):
    """One published ``.weights`` file."""

    file: str
    """Its usual file name, e.g. ``"yolov4-tiny.weights"``."""
    size: int
    """Bytes."""
    model: str
    """What it is, e.g. ``"YOLOv4-tiny, COCO, 80 classes"``."""
    cfg: str
    """The cfg it goes with (AlexeyAB/darknet ``cfg/`` unless noted)."""
    layers: int | None
    """For a ``darknet partial`` backbone: the layers it covers (load with
    ``partial=True``); None for a complete file."""
    source: str
    """Where the size is published."""


_README = "AlexeyAB/darknet README"

PUBLISHED: tuple[Published, ...] = (
    Published("yolov2.weights", 203934260, "YOLOv2, COCO, 80 classes (16-byte 0.1 header)",
              "yolov2.cfg", None, "pjreddie.com Content-Length; darkflow 'found 203934260'"),
    Published("yolov2-tiny.weights", 44948600, "YOLOv2-tiny, COCO, 80 classes",
              "yolov2-tiny.cfg", None, "darkflow error text 'found 44948600'"),
    Published("yolov3.weights", 248007048, "YOLOv3, COCO, 80 classes", "yolov3.cfg", None,
              "streamlit/demo-self-driving; " + _README + " 236 MB"),
    Published("yolov3-tiny.weights", 35434956, "YOLOv3-tiny, COCO, 80 classes",
              "yolov3-tiny.cfg", None, "download-size constant; " + _README + " 33.7 MB"),
    Published("yolov3-spp.weights", 252209544, "YOLOv3-SPP, COCO, 80 classes",
              "yolov3-spp.cfg", None, _README + " 240 MB"),
    Published("yolov3-openimages.weights", 259229388, "YOLOv3, Open Images, 601 classes",
              "yolov3-openimages.cfg", None, _README + " 247 MB"),
    Published("yolov3-tiny-prn.weights", 19759052, "YOLOv3-tiny-PRN, COCO, 80 classes",
              "yolov3-tiny-prn.cfg", None, _README + " 18.8 MB"),
    Published("yolov4.weights", 257717640, "YOLOv4, COCO, 80 classes", "yolov4.cfg", None,
              "Keras download logs; " + _README + " 245 MB"),
    Published("yolov4-tiny.weights", 24251276, "YOLOv4-tiny, COCO, 80 classes",
              "yolov4-tiny.cfg", None, "Keras download log; " + _README + " 23.1 MB"),
    Published("yolov4-csp.weights", 211944840, "Scaled-YOLOv4 CSP (mish), COCO, 80 classes",
              "yolov4-csp.cfg", None, _README + " 202 MB"),
    Published("yolov4-csp-swish.weights", 211944840,
              "Scaled-YOLOv4 CSP (swish), COCO, 80 classes", "yolov4-csp-swish.cfg", None,
              _README + " 202 MB"),
    Published("yolov4x-mish.weights", 399388168, "Scaled-YOLOv4 X (mish), COCO, 80 classes",
              "yolov4x-mish.cfg", None, _README + " 381 MB"),
    Published("yolov4-csp-x-swish.weights", 399388168,
              "Scaled-YOLOv4 CSP-X (swish), COCO, 80 classes", "yolov4-csp-x-swish.cfg", None,
              _README + " 381 MB"),
    Published("yolov4-p5.weights", 283669892, "Scaled-YOLOv4 P5, COCO, 80 classes",
              "yolov4-p5.cfg", None, _README + " 271 MB"),
    Published("yolov4-p6.weights", 510868180, "Scaled-YOLOv4 P6, COCO, 80 classes",
              "yolov4-p6.cfg", None, _README + " 487 MB"),
    Published("enetb0-coco_final.weights", 19233100, "EfficientNet-B0 YOLOv3, COCO, 80 classes",
              "enet-coco.cfg", None, _README + " 18.3 MB"),
    Published("csresnext50-panet-spp-original-optimal_final.weights", 228123400,
              "CSPResNeXt50-PANet-SPP, COCO, 80 classes",
              "csresnext50-panet-spp-original-optimal.cfg", None, _README + " 217 MB"),
    Published("alexnet.weights", 249513396, "AlexNet, ImageNet, 1000 classes",
              "alexnet.cfg (pjreddie/darknet)", None, "pjreddie.com size table, 238 MB"),
    Published("yolov4.conv.137", 170038676, "the YOLOv4 backbone for training",
              "yolov4.cfg", 137, _README + " 162 MB"),
    Published("yolov4-tiny.conv.29", 19789716, "the YOLOv4-tiny backbone for training",
              "yolov4-tiny.cfg", 29, _README + " 19 MB"),
    Published("darknet53.conv.74", 162482580, "the Darknet-53 backbone for training YOLOv3",
              "darknet53.cfg or yolov3.cfg", 74, _README + " 154 MB"),
    Published("yolov3-tiny.conv.11", 6303188, "the YOLOv3-tiny backbone for training",
              "yolov3-tiny.cfg", 11, _README + " 6 MB"),
    Published("enetb0-coco.conv.132", 14436180, "the EfficientNet-B0 backbone for training",
              "enet-coco.cfg", 132, _README + " 14 MB"),
    Published("csresnext50-panet-spp.conv.112", 140311316,
              "the CSPResNeXt50-PANet-SPP backbone for training", "csresnext50-panet-spp.cfg",
              112, _README + " 133 MB"),
)


def published_with_size(size: int) -> tuple[Published, ...]:
    """Every published file of exactly ``size`` bytes (some models share a size)."""
    return tuple(p for p in PUBLISHED if p.size == size)

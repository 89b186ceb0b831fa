"""Keras 3 helpers (needs ``keras``, an optional dependency; any backend, and
``tf.keras`` where TensorFlow's Keras is Keras 3).

>>> import yolo_io, yolo_io.keras
>>> net = yolo_io.load("yolov4-tiny.weights", "yolov4-tiny.cfg")
>>> yolo_io.keras.load_into(model, net)     # a hand-written Keras YOLO: paired by structure

The implementation is in ``yolo_io._frameworks`` (see docs/state-dicts.md).
"""

from __future__ import annotations

from ._base.errors import ModelMismatchError
from ._frameworks.keras import check_model, load_into
from ._frameworks.pairing import Pairing

__all__ = ["ModelMismatchError", "Pairing", "check_model", "load_into"]

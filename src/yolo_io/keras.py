"""Keras 3 helpers (needs ``keras``, an optional dependency; any backend, and
``tf.keras`` where TensorFlow's Keras is Keras 3).

>>> import yolo_io, yolo_io.keras
>>> net = yolo_io.load("yolov4-tiny.weights", "yolov4-tiny.cfg")
>>> yolo_io.keras.load_into(model, net)     # a hand-written Keras YOLO: paired by structure
>>> model = yolo_io.keras.build(net)        # or the model itself, built from the cfg (NHWC)
>>> yolo_io.keras.export("yolov4-tiny.tflite", net, format="tflite")  # KERAS_BACKEND=tensorflow

The implementation is in ``yolo_io._frameworks`` (see docs/state-dicts.md).
"""

from __future__ import annotations

from ._base.errors import ModelMismatchError
from ._export.tensorflow import export
from ._frameworks.keras import check_model, load_into
from ._frameworks.keras_build import build
from ._frameworks.pairing import Pairing

__all__ = ["ModelMismatchError", "Pairing", "build", "check_model", "export", "load_into"]

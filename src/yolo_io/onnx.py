"""ONNX export of a darknet network, and its check against OpenCV.

    import yolo_io, yolo_io.onnx
    net = yolo_io.load("yolov4.weights", "yolov4.cfg")
    yolo_io.onnx.export("yolov4.onnx", net, outputs="decoded")
    print(yolo_io.onnx.verify(net, onnx_path="yolov4.onnx").summary())

:func:`export` needs ``pip install onnx`` (the ``onnx`` extra); :func:`verify`
also needs onnxruntime and OpenCV's darknet importer (the ``verify`` extra).
The implementation is in ``yolo_io._export`` (see docs/onnx.md).
"""

from __future__ import annotations

from ._export.onnx import HEAD_TYPES, export, head_output_names
from ._export.verify import LayerComparison, OutputComparison, Verification, verify

__all__ = ["HEAD_TYPES", "LayerComparison", "OutputComparison", "Verification", "export",
           "head_output_names", "verify"]

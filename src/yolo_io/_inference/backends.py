"""The runtimes :mod:`yolo_io.detect` runs a network on: each takes the
(N, C, H, W) inputs darknet makes and returns the decoded ``boxes`` (N, n, 4:
cx, cy, w, h relative to the network input) and ``scores`` (N, n, classes:
darknet's probability before its threshold), every head's entries in layer
order, as the ONNX export's ``outputs="decoded"``.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from .._base.errors import ConversionError, YoloIOError
from .._base.paths import shown
from .._model.attrs import YoloAttrs
from .._model.network import Network

__all__ = ["BACKENDS", "Backend", "BackendName", "make_backend"]

BackendName = Literal["onnxruntime", "torch", "opencv"]
#: The backends, in the order ``backend=None`` tries them.
BACKENDS: tuple[BackendName, ...] = ("onnxruntime", "torch", "opencv")
_MODULES = {"onnxruntime": "onnxruntime", "torch": "torch", "opencv": "cv2"}
_EXTRAS = {"onnxruntime": "detect", "torch": "torch", "opencv": "verify"}

F32 = npt.NDArray[np.float32]


class Backend(Protocol):
    name: str

    def run(self, x: F32) -> tuple[F32, F32]: ...


def make_backend(name: BackendName | None, net: Network) -> Backend:
    """The backend ``name`` (None: the first of :data:`BACKENDS` installed)
    with ``net``'s model built."""
    if name is None:
        found = [b for b in BACKENDS if importlib.util.find_spec(_MODULES[b]) is not None]
        if not found:
            raise ImportError("detection needs onnxruntime, PyTorch or OpenCV: pip install "
                              "'yolo_io[detect]'")
        name = found[0]
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)} or None, not {name!r}")
    if importlib.util.find_spec(_MODULES[name]) is None:
        raise ImportError(f"backend={name!r} needs the {_MODULES[name]} package: pip install "
                          f"'yolo_io[{_EXTRAS[name]}]'")
    if name == "onnxruntime":
        return _OnnxRuntime(net)
    if name == "torch":
        return _Torch(net)
    return _OpenCV(net)


class _OnnxRuntime:
    """The ONNX export (``outputs="decoded"``) in an onnxruntime session."""

    name = "onnxruntime"

    def __init__(self, net: Network) -> None:
        import onnxruntime as ort

        from .._export.onnx import export

        options = ort.SessionOptions()
        options.log_severity_level = 3
        if os.path.getsize(net.path) < 1 << 30:
            model = export(None, net, outputs="decoded")
            self.session = ort.InferenceSession(model.SerializeToString(), options,
                                                providers=["CPUExecutionProvider"])
            return
        # Over a protobuf's 2 GB: a file with its weights beside it, read once.
        with tempfile.TemporaryDirectory(prefix="yolo_io-detect-") as folder:
            path = export(Path(folder) / "model.onnx", net, outputs="decoded")
            self.session = ort.InferenceSession(str(path), options,
                                                providers=["CPUExecutionProvider"])

    def run(self, x: F32) -> tuple[F32, F32]:
        boxes, scores = self.session.run(["boxes", "scores"], {"input": x})
        return np.asarray(boxes, dtype=np.float32), np.asarray(scores, dtype=np.float32)


class _Torch:
    """``yolo_io.torch.build(net, outputs="decoded")`` in eval mode."""

    name = "torch"

    def __init__(self, net: Network) -> None:
        import torch

        from .._frameworks.torch_build import build

        self.torch = torch
        self.model = build(net, outputs="decoded").eval()

    def run(self, x: F32) -> tuple[F32, F32]:
        with self.torch.inference_mode():
            boxes, _, scores = self.model(self.torch.from_numpy(x))
        return boxes.numpy(), scores.numpy()


class _OpenCV:
    """OpenCV's darknet importer (``cv2.dnn.readNetFromDarknet``) on the
    network's own files, its ``[yolo]`` layers' decoded rows turned into
    darknet's order. OpenCV zeroes scores below a ``[yolo]`` layer's
    ``thresh=`` (0.2 by default): it is given the cfg with ``thresh=0`` there,
    so that the threshold is :class:`Detector`'s. Its batch norm adds 1e-6
    to the variance where darknet adds 1e-5, uncompensated: this is what
    OpenCV computes."""

    name = "opencv"

    def __init__(self, net: Network) -> None:
        import cv2

        from .._export.verify import opencv_layer_names

        config = net.config
        self.heads = [layer for layer in config if layer.kind.head]
        for head in self.heads:
            if type(head.attrs) is not YoloAttrs:
                raise ConversionError(f"{head.location}: OpenCV's darknet importer decodes only "
                                      f"[yolo] heads as darknet does, not {_section(head.section)}; use "
                                      "backend='onnxruntime' or 'torch'")
        weights = np.memmap(net.path, dtype=np.uint8, mode="r")
        try:
            self.net = cv2.dnn.readNetFromDarknet(np.frombuffer(_cfg_for_opencv(net), np.uint8),
                                                  weights)
        except cv2.error as err:
            msg = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
            raise ConversionError(f"{shown(str(config.path))}: OpenCV's darknet importer "
                                  f"fails on it ({msg})") from err
        finally:
            del weights
        names = [str(n) for n in self.net.getLayerNames()]
        mapped, _, why = opencv_layer_names(config, names)
        if why is not None:
            raise YoloIOError(f"{shown(str(config.path))}: {why}")
        self.outputs = [mapped[h.index] for h in self.heads]

    def run(self, x: F32) -> tuple[F32, F32]:
        import cv2

        self.net.setInput(x)
        try:
            values = self.net.forward(self.outputs)
        except cv2.error as err:
            raise YoloIOError(f"OpenCV fails to run the network ({str(err).strip()})") from err
        n = x.shape[0]
        boxes, scores = [], []
        for head, rows in zip(self.heads, values, strict=True):
            attrs = head.attrs
            assert isinstance(attrs, YoloAttrs)
            _, hh, ww = head.input_shape
            anchors, entries = len(attrs.anchors), 5 + attrs.classes
            # OpenCV: one row per (image, row, column, anchor); darknet: (anchor, row, column).
            r = np.asarray(rows, dtype=np.float32).reshape(n, hh, ww, anchors, entries)
            r = r.transpose(0, 3, 1, 2, 4).reshape(n, -1, entries)
            boxes.append(r[..., :4])
            scores.append(r[..., 5:])
        return (np.ascontiguousarray(np.concatenate(boxes, axis=1)),
                np.ascontiguousarray(np.concatenate(scores, axis=1)))


def _section(name: str) -> str:
    return name if name.startswith("[") else f"[{name}]"


def _cfg_for_opencv(net: Network) -> bytes:
    """The cfg text with every head section's ``thresh=`` lines replaced by
    ``thresh=0``. Lines end at ``\\n`` only, as darknet's ``fgetl`` and the
    config's line numbers count them (a lone ``\\r`` is inside a line)."""
    config = net.config
    lines = [line + b"\n" for line in config.source.split(b"\n")]
    lines[-1] = lines[-1][:-1]
    starts = {layer.line - 1: layer for layer in config}
    out: list[bytes] = []
    in_head = False
    for number, line in enumerate(lines):
        if number in starts:
            in_head = starts[number].kind.head
            out.append(line if line.endswith(b"\n") else line + b"\n")
            if in_head:
                out.append(b"thresh=0\n")
            continue
        if line.lstrip().startswith(b"["):
            in_head = False
        if in_head and line.split(b"=", 1)[0].strip() == b"thresh":
            continue
        out.append(line)
    return b"".join(out)

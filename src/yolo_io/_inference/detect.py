"""``yolo_io.detect``: from a network and images to detections, as darknet's
``detector test`` computes them.

Written from AlexeyAB/darknet (``src/``, commit 59596d7880f6): ``test_detector``
(detector.c) prepares each image (``load_image``, then ``letterbox_image`` if
the ``-letter_box`` flag or ``[net] letter_box=1``, else ``resize_image``),
runs the network, takes ``get_network_boxes(net, im.w, im.h, thresh, hier,
0, 1, ..., letter_box)`` (network.c ``fill_network_boxes``: each head's
``get_*_detections``, a class probability kept where it is above ``thresh``,
boxes corrected for the letterbox by ``correct_yolo_boxes``), then NMS at
0.45 with the ``nms_kind`` of the last ``[yolo]``, ``[Gaussian_yolo]`` or
``[region]`` layer (box.c ``do_nms_sort``, or ``diounms_sort`` for
``greedynms``, ``diounms`` and ``cornersnms``), per class, in float32 as
darknet computes it. The decoding of each head is the lowering's
(``_lowering/darknet.py``), run by the backend.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from .. import _core
from .._base.errors import YoloIOError
from .._base.paths import PathArg, fs_path, shown
from .._diagnosis.text_files import read_names
from .._lowering.image import letterbox_size, network_input, read_pixels
from .._model.attrs import RegionAttrs, YoloAttrs
from .._model.network import Network
from .backends import Backend, BackendName, make_backend

if TYPE_CHECKING:
    from .._model.config import Config

__all__ = ["Detection", "Detector", "detect", "prepare_image"]

F32 = npt.NDArray[np.float32]
ImageLike = PathArg | npt.NDArray[np.uint8] | Any  # a path, a uint8 array or a PIL image
NmsKind = Literal["default", "greedynms", "diounms", "cornersnms"]


@dataclass(frozen=True)
class Detection:
    """One class of one box that survived darknet's threshold and NMS.

    Attributes:
        class_id: the class index (0-based, the line of the ``.names`` file).
        name: the class name (``str(class_id)`` without names).
        prob: darknet's probability: objectness times the class probability
            (times ``1 -`` the mean uncertainty for ``[Gaussian_yolo]``).
        left, top, width, height: the box in pixels of the original image,
            as ``detector test -ext_output`` reports it (unrounded: darknet
            prints them rounded); it may reach outside the image.
    """

    class_id: int
    name: str
    prob: float
    left: float
    top: float
    width: float
    height: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        """``(left, top, width, height)`` in pixels."""
        return (self.left, self.top, self.width, self.height)

    def to_dict(self) -> dict[str, Any]:
        return {"class_id": self.class_id, "name": self.name, "prob": self.prob,
                "left": self.left, "top": self.top, "width": self.width,
                "height": self.height}

    def __str__(self) -> str:
        """darknet's line: ``dog: 99%  (left_x: ... top_y: ... width: ... height: ...)``."""
        return (f"{self.name}: {self.prob * 100:.0f}%\t(left_x: {_c_round(self.left):4.0f}   "
                f"top_y: {_c_round(self.top):4.0f}   width: {_c_round(self.width):4.0f}   "
                f"height: {_c_round(self.height):4.0f})")


def _c_round(x: float) -> float:
    """C's round(): halves away from zero."""
    return math.copysign(math.floor(abs(x) + 0.5), x) if math.isfinite(x) else x


def prepare_image(net: Network | Config, image: ImageLike, *,
                  letter_box: bool | None = None) -> F32:
    """The network input darknet's ``detector test`` makes of ``image``: RGB
    (gray for a one-channel network), divided by 255, resized to the cfg's
    width and height by darknet's own bilinear ``resize_image`` (not
    OpenCV's), or letterboxed (``letterbox_image``: aspect ratio kept, 0.5
    gray around) when ``letter_box`` is True (None: the cfg's ``[net]
    letter_box``); as a (1, C, H, W) float32 array for running the model
    yourself (``yolo_io.torch.build``, an ONNX export, ...).

    ``image``: a file name, a uint8 array (H, W) gray or (H, W, 3) RGB (or
    (H, W, 4) RGBA, alpha dropped) or a PIL image. Files are decoded by
    Pillow (or, without it, OpenCV), EXIF orientation not applied (darknet's
    stb_image ignores it).

    Raises:
        FileNotFoundError, OSError: an image file missing or not decodable.
        TypeError, ValueError: an image of another kind or shape.
        YoloIOError: a network that takes neither 1 nor 3 channels.
    """
    config = net.config if isinstance(net, Network) else net
    c, h, w = _input_shape(config)
    pixels, _ = read_pixels(image, c)
    if letter_box is not None and not isinstance(letter_box, (bool, np.bool_)):
        raise TypeError(f"letter_box must be True, False or None, not {letter_box!r}")
    letter = config.net.letter_box if letter_box is None else bool(letter_box)
    return network_input(pixels, w, h, letter)[None]


def _input_shape(config: Config) -> tuple[int, int, int]:
    c, h, w = config.input_shape
    if c not in (1, 3) or h < 1 or w < 1:
        raise YoloIOError(f"{shown(str(config.path))}: the network takes a {c}x{h}x{w} input; "
                          "detection feeds an RGB (3) or gray (1) image")
    return c, h, w


# -- darknet's thresholding, box correction and NMS -------------------------------------


def _correct(boxes: F32, im_w: int, im_h: int, net_w: int, net_h: int, letter: bool) -> F32:
    """``correct_yolo_boxes`` (yolo_layer.c) with relative=1: boxes relative to
    the network input -> relative to the image. x, y are computed in double
    (C promotes ``deltaw / 2. / netw``), w, h in float."""
    new_w, new_h = letterbox_size(im_w, im_h, net_w, net_h) if letter else (net_w, net_h)
    deltaw, deltah = np.float32(net_w - new_w), np.float32(net_h - new_h)
    ratiow, ratioh = np.float32(new_w) / np.float32(net_w), np.float32(new_h) / np.float32(net_h)
    out = np.empty_like(boxes)
    out[:, 0] = (boxes[:, 0].astype(np.float64) - float(deltaw) / 2.0 / net_w) / float(ratiow)
    out[:, 1] = (boxes[:, 1].astype(np.float64) - float(deltah) / 2.0 / net_h) / float(ratioh)
    out[:, 2] = boxes[:, 2] * (np.float32(1) / ratiow)
    out[:, 3] = boxes[:, 3] * (np.float32(1) / ratioh)
    return out


def _overlap(kind: NmsKind, beta: float) -> tuple[bool, float]:
    """(DIoU or IoU, DIoU's exponent) of an ``nms_kind``: ``diounms`` is
    box_diounms with ``beta_nms`` (a float, raised in double); ``greedynms``
    is diounms_sort's GREEDY_NMS branch, box_diou, whose exponent is the
    double 0.6; ``default`` (do_nms_sort) and ``cornersnms`` are box_iou."""
    if kind == "diounms":
        return True, float(np.float32(beta))
    if kind == "greedynms":
        return True, 0.6
    return False, 0.0


def nms(boxes: F32, probs: F32, threshold: float, kind: NmsKind = "default",
        beta: float = 0.6) -> npt.NDArray[np.intp]:
    """darknet's NMS of one class: the indices of ``probs`` (those above 0,
    the others already dropped by the threshold) that survive, highest first:
    in order of decreasing probability, each surviving box drops every later
    one whose overlap (IoU, or DIoU for ``greedynms``/``diounms``) is above
    ``threshold``. Computed by the core (nms.cpp), in darknet's float32."""
    probs = np.ascontiguousarray(probs, dtype=np.float32)
    diou, exponent = _overlap(kind, beta)
    keep = _core.nms_per_class(np.ascontiguousarray(boxes, dtype=np.float32), probs[:, None],
                               float(np.float32(threshold)), diou, exponent)[:, 0]
    kept = np.flatnonzero(keep)
    return kept[np.argsort(-probs[kept], kind="stable")]


@dataclass(frozen=True)
class _Heads:
    """What the postprocessing needs of a network's heads."""

    classes: int
    nms_kind: NmsKind
    beta_nms: float


def _heads(config: Config) -> _Heads:
    heads = [layer for layer in config if layer.kind.head]
    if not heads:
        raise YoloIOError(f"{shown(str(config.path))} has no detection head ([yolo], "
                          "[Gaussian_yolo], [region] or [detection]): it is no detector")
    # test_detector: l = the last [yolo], [Gaussian_yolo] or [region] layer (else the
    # network's last layer); its nms_kind and beta_nms choose the NMS.
    kind: NmsKind = "default"
    beta = 0.6
    for layer in heads:
        if isinstance(layer.attrs, YoloAttrs):  # GaussianYoloAttrs too
            kind, beta = layer.attrs.nms_kind, layer.attrs.beta_nms  # type: ignore[assignment]
        elif isinstance(layer.attrs, RegionAttrs):
            kind, beta = "default", 0.6
    counts = {getattr(layer.attrs, "classes", 0): layer for layer in heads}
    if len(counts) > 1:
        (a, first), (b, second) = list(counts.items())[:2]
        raise YoloIOError(f"{first.location} has {a} classes and {second.location} {b}: "
                          "darknet's detections take one class count for every head (its "
                          "get_network_boxes gives each box the classes of one layer); "
                          "set the same classes= in each head")
    classes = getattr(heads[-1].attrs, "classes", 0)
    return _Heads(classes=classes, nms_kind=kind, beta_nms=beta)


def _detections(boxes: F32, scores: F32, im_w: int, im_h: int, net_w: int, net_h: int,
                letter: bool, thresh: float, nms_threshold: float, heads: _Heads,
                names: Sequence[str] | None) -> list[Detection]:
    """One image's decoded outputs -> its detections, highest probability first."""
    keep = scores > np.float32(thresh)  # get_*_detections: prob > thresh ? prob : 0
    rows = np.flatnonzero(keep.any(axis=1))
    if rows.size == 0:
        return []
    boxes = _correct(np.asarray(boxes[rows], dtype=np.float32), im_w, im_h, net_w, net_h,
                     letter)
    probs = np.where(keep[rows], scores[rows], np.float32(0)).astype(np.float32)
    keep = probs > 0
    if nms_threshold > 0:
        # One class per call: the boxes of one class only (the same order, so
        # the same result), and a Ctrl-C lands between classes (darknet's NMS
        # is quadratic in a class's boxes: at a threshold near 0 that is long).
        diou, exponent = _overlap(heads.nms_kind, heads.beta_nms)
        for k in np.flatnonzero(keep.any(axis=0)):
            of_k = np.flatnonzero(keep[:, k])
            kept = _core.nms_per_class(boxes[of_k], probs[of_k, k:k + 1],
                                       float(np.float32(nms_threshold)), diou, exponent)
            keep[of_k[kept[:, 0] == 0], k] = False
    found: list[Detection] = []
    for i, k in zip(*np.nonzero(keep), strict=True):
        x, y, w, h = (float(v) for v in boxes[i])
        found.append(Detection(
            class_id=int(k), name=names[int(k)] if names is not None else str(int(k)),
            prob=float(probs[i, k]), left=(x - w / 2) * im_w, top=(y - h / 2) * im_h,
            width=w * im_w, height=h * im_h))
    found.sort(key=lambda d: (-d.prob, d.class_id, d.left, d.top))
    return found


# -- the API -----------------------------------------------------------------------


class Detector:
    """A network ready to detect: the backend's model is built once, then
    called on any number of images (:func:`detect` builds one per call).

    Args:
        net: a loaded network with one or more detection heads.
        backend: ``"onnxruntime"`` (the default when installed), ``"torch"``
            (``yolo_io.torch.build``) or ``"opencv"`` (OpenCV's own darknet
            importer, for comparison; ``[yolo]`` heads only); None: the first
            of those installed.
        thresh: darknet's ``-thresh``: a class is kept where its probability
            is above it (0 <= thresh < 1).
        nms: the NMS overlap threshold (darknet's fixed 0.45; 0: no NMS).
        names: class names: a sequence, or a ``.names`` file; None:
            ``str(class_id)``.
        letter_box: letterbox the images (None: the cfg's ``[net]
            letter_box``, as darknet, which also letterboxes when given
            ``-letter_box``).
        batch: images per forward pass.

    Raises:
        ConversionError: a layer or head the backend cannot compute.
        ImportError: the backend's package is missing.
        ValueError: an option out of range, or names whose count is not the
            network's classes.
        YoloIOError: a network without a detection head, or a partial file.
    """

    def __init__(self, net: Network, *, backend: BackendName | None = None,
                 thresh: float = 0.25, nms: float = 0.45,
                 names: Sequence[str] | PathArg | None = None,
                 letter_box: bool | None = None, batch: int = 1) -> None:
        if not isinstance(net, Network):
            raise TypeError(f"Detector takes a Network (yolo_io.load), not {type(net).__name__}")
        _check_fraction("thresh", thresh)
        _check_fraction("nms", nms)
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be an int of at least 1, not {batch!r}")
        self.net = net
        self.config = net.config
        self.channels, self.height, self.width = _input_shape(self.config)
        self.heads = _heads(self.config)
        self.thresh = float(thresh)
        self.nms = float(nms)
        if letter_box is not None and not isinstance(letter_box, (bool, np.bool_)):
            raise TypeError(f"letter_box must be True, False or None, not {letter_box!r}")
        self.letter_box = self.config.net.letter_box if letter_box is None else bool(letter_box)
        self.batch = batch
        self.names = _names(names, self.heads.classes)
        if net.partial:
            raise YoloIOError(f"{shown(str(net.path))} holds only the first "
                              f"{net.covered_layers} of {len(net)} layers: detection needs them all")
        self.backend: Backend = make_backend(backend, net)

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def __call__(self, images: Iterable[ImageLike]) -> list[list[Detection]]:
        """The detections of each image, in order."""
        results: list[list[Detection]] = []
        pending: list[tuple[F32, int, int]] = []
        for image in images:
            pixels, _ = read_pixels(image, self.channels)
            x = network_input(pixels, self.width, self.height, self.letter_box)
            pending.append((x, pixels.shape[1], pixels.shape[0]))
            if len(pending) == self.batch:
                results.extend(self._run(pending))
                pending = []
        if pending:
            results.extend(self._run(pending))
        return results

    def run_inputs(self, inputs: F32, sizes: Sequence[tuple[int, int]]) -> list[list[Detection]]:
        """Detections of prepared inputs ((N, C, H, W), as :func:`prepare_image`
        makes them) of images of ``sizes`` ((width, height) each, in pixels).

        Raises:
            ValueError: inputs of another shape than (N, C, H, W) of this
                network, or sizes that are not N pairs of positive ints.
        """
        shape = (self.channels, self.height, self.width)
        inputs = np.asarray(inputs)
        if inputs.ndim != 4 or inputs.shape[1:] != shape or inputs.shape[0] < 1:
            raise ValueError(f"inputs must be (N, {', '.join(map(str, shape))}) as "
                             f"prepare_image makes them (N >= 1), not {inputs.shape}")
        sizes = list(sizes)
        if len(sizes) != inputs.shape[0] or not all(
                len(s) == 2 and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                    and v >= 1 for v in s) for s in sizes):
            raise ValueError(f"sizes must be {inputs.shape[0]} (width, height) pairs of positive "
                             f"ints, one per input, not {sizes!r:.200}")
        boxes, scores = self.backend.run(np.ascontiguousarray(inputs, dtype=np.float32))
        return [_detections(boxes[n], scores[n], w, h, self.width, self.height, self.letter_box,
                            self.thresh, self.nms, self.heads, self.names)
                for n, (w, h) in enumerate(sizes)]

    def _run(self, pending: list[tuple[F32, int, int]]) -> list[list[Detection]]:
        x = np.stack([p[0] for p in pending])
        return self.run_inputs(x, [(p[1], p[2]) for p in pending])


def _check_fraction(what: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
            or not 0 <= float(value) < 1:
        raise ValueError(f"{what} must be a number in [0, 1), not {value!r}")


def _names(names: Sequence[str] | PathArg | None, classes: int) -> list[str] | None:
    if names is None:
        return None
    if isinstance(names, (str, bytes, os.PathLike)):
        source = shown(fs_path(names, "names"))
        listed = read_names(fs_path(names, "names"))
    else:
        source = "names"
        listed = [str(n) for n in names]
    if len(listed) != classes:
        raise ValueError(f"{source} holds {len(listed)} names; the network has {classes} classes")
    return listed


def detect(net: Network, images: ImageLike | Sequence[ImageLike], *, thresh: float = 0.25,
           nms: float = 0.45, names: Sequence[str] | PathArg | None = None,
           backend: BackendName | None = None, letter_box: bool | None = None
           ) -> list[list[Detection]]:
    """Detect objects in ``images`` exactly as darknet's ``detector test``
    does (the same preprocessing, decoding, thresholding and NMS).

    Args:
        net: a loaded network with detection heads (``yolo_io.load``).
        images: one image (a file name, a uint8 (H, W[, 3]) RGB array or a
            PIL image) or a list of them (or an (N, H, W, 3) uint8 array).
        thresh, nms, names, backend, letter_box: as :class:`Detector`.

    Returns:
        One list per image (one for a single image: ``detect(net, "dog.jpg")[0]``),
        its detections, highest probability first.

    For many calls, make a :class:`Detector` once: each ``detect`` call
    builds the backend's model again.
    """
    if isinstance(images, (Iterator, range, set, frozenset, dict)) or (
            isinstance(images, Iterable)
            and not isinstance(images, (str, bytes, os.PathLike, np.ndarray, list, tuple))
            and not type(images).__module__.startswith("PIL.")):
        raise TypeError(f"images must be one image or a list or tuple of them, not "
                        f"{type(images).__name__}: for a stream of images, call a Detector on "
                        "it (Detector(net)(images))")
    single = not isinstance(images, (list, tuple)) and not (
        isinstance(images, np.ndarray) and images.ndim == 4)
    detector = Detector(net, thresh=thresh, nms=nms, names=names, backend=backend,
                        letter_box=letter_box)
    return detector([images] if single else list(images))  # type: ignore[arg-type]


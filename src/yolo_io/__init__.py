"""yolo_io: read Darknet (YOLO) ``.cfg`` + ``.weights`` files, zero-copy.

>>> import yolo_io
>>> net = yolo_io.load("yolov4.weights", "yolov4.cfg")
>>> for layer in net:
...     layer.type, layer.output_shape, layer.params
"""

from __future__ import annotations

from typing import TYPE_CHECKING

try:
    from . import _core
except ImportError as err:  # pragma: no cover - only without a build
    err.add_note("yolo_io's extension is not built: run `python -m pip install -e .`")
    raise

from . import attrs
from ._base.deprecation import warn_deprecated
from ._base.errors import (
    CfgError,
    CfgWarning,
    ConversionError,
    FormatError,
    ModelMismatchError,
    OutputIsInputError,
    PrecisionWarning,
    SwappedArgumentsError,
    WeightsSizeError,
    YoloIOError,
)
from ._base.progress import Progress, ProgressCallback
from ._base.version import __version__
from ._diagnosis.data import DataCheck, DataFinding, check_data
from ._diagnosis.diagnose import CfgEdit, Diagnosis, Finding, LayerRef, diagnose
from ._diagnosis.doctor import Checkup, doctor
from ._inference.detect import Detection, Detector, detect, prepare_image
from ._model.config import CfgLayer, Config, ParamSpec, parse_cfg
from ._model.kinds import KindFacts
from ._model.network import Header, Layer, Network, load
from ._writing.fused import save_fused
from ._writing.safetensors import save_safetensors
from ._writing.weights import save, save_npz

LAYER_TYPES: tuple[str, ...] = tuple(_core.layer_types())


def release_cached_memory() -> int:
    """Unmap the memory yolo_io keeps for the next :meth:`Network.fused_all`.

    When every array of a ``fused_all()`` result has been freed while a
    Network is alive, its arena (up to 512 MiB) is kept, marked
    ``MADV_FREE`` so the kernel can reclaim it under memory pressure, and
    reused by the next ``fused_all()`` of a similar size, which then skips
    the page faults and zeroing of fresh memory. It is unmapped when the last
    Network is gone and by :meth:`Network.close`; call this to return it to
    the system at once. Returns the bytes released (0 if none).
    """
    return int(_core.release_cached_memory())

"""Canonical names of every section type yolo_io (and darknet) accepts."""

__all__ = [
    "LAYER_TYPES",
    "CfgEdit",
    "CfgError",
    "CfgLayer",
    "CfgWarning",
    "Checkup",
    "Config",
    "ConversionError",
    "DataCheck",
    "DataFinding",
    "Detection",
    "Detector",
    "Diagnosis",
    "Finding",
    "FormatError",
    "Header",
    "KindFacts",
    "Layer",
    "LayerRef",
    "ModelMismatchError",
    "Network",
    "OutputIsInputError",
    "ParamSpec",
    "PrecisionWarning",
    "Progress",
    "ProgressCallback",
    "SwappedArgumentsError",
    "WeightsSizeError",
    "YoloIOError",
    "__version__",
    "check_data",
    "detect",
    "diagnose",
    "doctor",
    "load",
    "parse_cfg",
    "prepare_image",
    "release_cached_memory",
    "save",
    "save_fused",
    "save_npz",
    "save_safetensors",
]


if TYPE_CHECKING:  # the old names, for type checkers (deprecated at run time)
    from .attrs import *
else:
    def __getattr__(name: str) -> object:
        """The attrs records' old home: ``yolo_io.ConvolutionalAttrs`` still
        works for one release, with a DeprecationWarning (now
        ``yolo_io.attrs.ConvolutionalAttrs``)."""
        if name in attrs.__all__:
            warn_deprecated(f"yolo_io.{name}", f"use yolo_io.attrs.{name}")
            return getattr(attrs, name)
        raise AttributeError(f"module 'yolo_io' has no attribute {name!r}")

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
from ._base.version import __version__
from ._model.config import CfgLayer, Config, ParamSpec, parse_cfg
from ._model.kinds import KindFacts
from ._model.network import Header, Layer, Network, load

# Imported when first used (``yolo_io.detect``, ``yolo_io.attrs``, ...): a
# command or a script pays only for what it calls. Each module's public names.
_LAZY: dict[str, tuple[str, ...]] = {
    "attrs": ("attrs",),
    "_base.progress": ("Progress", "ProgressCallback"),
    "_diagnosis.data": ("DataCheck", "DataFinding", "check_data"),
    "_diagnosis.diagnose": ("CfgEdit", "Diagnosis", "Finding", "LayerRef", "diagnose"),
    "_diagnosis.doctor": ("Checkup", "doctor"),
    "_inference.detect": ("Detection", "Detector", "detect", "prepare_image"),
    "_writing.fused": ("save_fused",),
    "_writing.safetensors": ("save_safetensors",),
    "_writing.weights": ("save", "save_npz"),
}


def _import_lazy(module: str) -> object:
    """The module of :data:`_LAZY` named ``module`` (static imports, for the
    layer checks)."""
    if module == "attrs":  # not `from . import attrs`: its hasattr would recurse here
        import yolo_io.attrs as attrs_module

        return attrs_module
    if module == "_base.progress":
        from ._base import progress

        return progress
    if module == "_diagnosis.data":
        from ._diagnosis import data

        return data
    if module == "_diagnosis.diagnose":
        from ._diagnosis import diagnose as diagnose_module

        return diagnose_module
    if module == "_diagnosis.doctor":
        from ._diagnosis import doctor as doctor_module

        return doctor_module
    if module == "_inference.detect":
        from ._inference import detect as detect_module

        return detect_module
    if module == "_writing.fused":
        from ._writing import fused

        return fused
    if module == "_writing.safetensors":
        from ._writing import safetensors

        return safetensors
    from ._writing import weights

    return weights


if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs
    from . import attrs as attrs
    from ._base.progress import Progress, ProgressCallback
    from ._diagnosis.data import DataCheck, DataFinding, check_data
    from ._diagnosis.diagnose import CfgEdit, Diagnosis, Finding, LayerRef, diagnose
    from ._diagnosis.doctor import Checkup, doctor
    from ._inference.detect import Detection, Detector, detect, prepare_image
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
    the system at once. The blocks a loop over the layers freed (up to 64
    MiB, kept for the next loop the same way) are unmapped too. Returns the
    bytes released (0 if none).
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
        """The names of :data:`_LAZY`, imported on first use (and kept); the
        attrs records' old home: ``yolo_io.ConvolutionalAttrs`` still works
        for one release, with a DeprecationWarning (now
        ``yolo_io.attrs.ConvolutionalAttrs``)."""
        for module, names in _LAZY.items():
            if name in names:
                found = _import_lazy(module)
                value = found if name == "attrs" else getattr(found, name)
                globals()[name] = value
                return value
        if not name.endswith("Attrs"):  # hasattr(yolo_io, "__wrapped__") imports nothing
            raise AttributeError(f"module 'yolo_io' has no attribute {name!r}")
        from . import attrs

        if name in attrs.__all__:
            from ._base.deprecation import warn_deprecated

            warn_deprecated(f"yolo_io.{name}", f"use yolo_io.attrs.{name}")
            return getattr(attrs, name)
        raise AttributeError(f"module 'yolo_io' has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(__all__) | {"attrs"})

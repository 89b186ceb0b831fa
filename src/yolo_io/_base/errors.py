"""Exception and warning classes of yolo_io.

Pure Python so that they pickle and import without the compiled core; the core
raises them through a translator in ``csrc/bindings/register_errors.cpp``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["CfgError", "CfgWarning", "ConversionError", "FormatError", "ModelMismatchError",
           "OutputIsInputError", "PrecisionWarning",
           "SwappedArgumentsError", "WeightsSizeError", "YoloIOError"]


class YoloIOError(Exception):
    """Base class of every error yolo_io raises (file-system errors aside)."""


class CfgError(YoloIOError):
    """A ``.cfg`` that darknet would refuse, crash on, or misread.

    Attributes:
        path: the cfg file (``"<string>"`` for text passed directly).
        line: 1-based line of the offending section or option (0: none).
    """

    def __init__(self, message: str, *, path: str | None = None, line: int = 0) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


class FormatError(YoloIOError):
    """A file that is not a Darknet ``.weights`` file, or that cannot be read as one."""


class WeightsSizeError(FormatError):
    """The ``.weights`` file and the ``.cfg`` disagree on the number of bytes.

    Attributes:
        expected: bytes the cfg needs (with this file's header size).
        actual: bytes the file has.
        layer: index of the first layer whose data would cross the end of the
            file, or None (trailing bytes, or a file ending on a layer boundary).
        partial_layers: for a file that ends exactly on a layer boundary, the
            number of layers it covers (load it with ``partial=True``); else None.
    """

    def __init__(
        self,
        message: str,
        *,
        expected: int = 0,
        actual: int = 0,
        layer: int | None = None,
        partial_layers: int | None = None,
    ) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual
        self.layer = layer
        self.partial_layers = partial_layers


class ConversionError(YoloIOError, ValueError):
    """A model that the requested target (a state-dict naming) cannot express
    faithfully: the message names the layer, its cfg line and the reason."""


class OutputIsInputError(YoloIOError, ValueError):
    """A writer was asked to write over one of the files it reads (the same
    file by device and inode: through a symbolic or hard link too). Nothing
    is written.

    Attributes:
        output: the output path as given.
        input: the input path it is the same file as.
    """

    def __init__(self, message: str, *, output: str = "", input: str = "") -> None:
        super().__init__(message)
        self.output = output
        self.input = input


class ModelMismatchError(ConversionError):
    """The framework model's layers do not fit the network's.

    Attributes:
        framework_layer: the name of the first framework layer that does not
            fit (None: the model lacks a layer).
        darknet_layer: the index of the darknet layer concerned (None: the
            model has a layer the cfg does not).
        line: that darknet layer's cfg line (0: none).
        expected: the parameter shapes the darknet layer needs, in the
            framework's layout ({} when not known).
        found: the framework layer's parameter shapes ({} when none).
        pairing: the pairing as far as it got (printable; None when the
            error came before any pairing).
    """

    def __init__(self, message: str, *, framework_layer: str | None = None,
                 darknet_layer: int | None = None, line: int = 0,
                 expected: Mapping[str, tuple[int, ...]] | None = None,
                 found: Mapping[str, tuple[int, ...]] | None = None,
                 pairing: Any = None) -> None:
        super().__init__(message)
        self.framework_layer = framework_layer
        self.darknet_layer = darknet_layer
        self.line = line
        self.expected = dict(expected or {})
        self.found = dict(found or {})
        self.pairing = pairing


class SwappedArgumentsError(YoloIOError, ValueError):
    """``load(cfg, weights)``: the first path is a ``.cfg`` text and the second
    a Darknet ``.weights`` file. The message shows the call with the two paths
    the right way round, ``load(weights, cfg)``."""


class CfgWarning(UserWarning):
    """Something in a ``.cfg`` that darknet ignores or replaces (an unused option,
    an unknown activation); darknet would go on, and so does yolo_io."""


class PrecisionWarning(UserWarning):
    """A conversion could not keep darknet's values: float16/bfloat16 overflow to
    inf, or a batch-norm variance that another framework's epsilon cannot express."""

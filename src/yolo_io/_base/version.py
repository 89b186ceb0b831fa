"""yolo_io's version (``yolo_io.__version__``): the one place it is written;
the build reads it from here (pyproject.toml: scikit-build-core's regex
provider), so the installed metadata says the same without
``importlib.metadata`` at import time."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

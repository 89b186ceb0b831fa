"""verify's default tolerances, apart so that the CLI's help text reads them
without importing the verification."""

from __future__ import annotations

__all__ = ["TOLERANCES"]

#: Default ``(atol, rtol)`` per weights dtype. A tensor is within tolerance
#: when its largest absolute difference is at most ``atol`` OR at most
#: ``rtol`` times the largest magnitude of OpenCV's tensor. Measured on every
#: corpus cfg OpenCV runs, with realistic random weights
#: (``write_weights(realistic=True)``) and the batch-norm epsilon compensated:
#: float32 exports differ from OpenCV by at most 3.7e-5 of a layer's largest
#: value (yolov4-p6, 305 layers; 1e-6..1e-5 on most models), summation order
#: alone; float16 weights (each rounded by up to 2**-11) by up to 1.5e-2 (the
#: last conv of yolov4-p6) and 2.6e-2 on the decoded scores of the yolov3
#: models, whose random head inputs reach a few hundred.
TOLERANCES: dict[str, tuple[float, float]] = {
    "float32": (1e-3, 1e-4),
    "float16": (1e-2, 3e-2),
}

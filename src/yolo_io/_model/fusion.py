"""What every fusion entry point shares (Layer.fused, Network.fused_all,
fuse_into, state_dict, bn_params): argument checks, the one place where the
core's overflow counts become PrecisionWarnings, bfloat16 views, and the
batch-norm variance adjustment for another framework's epsilon."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .. import _core
from .._base.errors import PrecisionWarning

if TYPE_CHECKING:  # numpy.typing costs ~1 ms of every import
    import numpy.typing as npt

    Array = npt.NDArray[np.generic]


class Located(Protocol):
    """What a warning about a layer names: a :class:`~yolo_io.CfgLayer` or a
    loaded :class:`~yolo_io.Layer` (a Protocol, so this module needs neither)."""

    @property
    def index(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def line(self) -> int: ...

BN_EPSILON: float = _core.BN_EPSILON
"""darknet's batch-norm epsilon, ``gamma * (x - mean) / sqrt(var + eps) +
beta``, as the core defines it (every fold uses this one value)."""


def threads_arg(threads: int | None) -> int:
    """``threads`` as the core takes it: all cores for None."""
    if threads is None:
        return os.cpu_count() or 1
    if threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads}")
    return int(threads)


def warn_overflow(count: int, dtype: str, where: str | None, stacklevel: int) -> None:
    """A PrecisionWarning for ``count`` values that overflowed ``dtype`` to
    inf (nothing when there are none); ``where`` names the layer, if one."""
    if not count:
        return
    place = f" of {where}" if where else ""
    warnings.warn(PrecisionWarning(f"{count} values{place} overflow {dtype} and became inf"),
                  stacklevel=stacklevel + 1)


def as_bfloat16(bits: Array, dtype: str) -> Array:
    """For ``dtype == "bfloat16"``: the uint16 bits viewed as
    ``ml_dtypes.bfloat16`` when that package is installed (else unchanged)."""
    if dtype != "bfloat16":
        return bits
    try:
        import ml_dtypes
    except ImportError:
        return bits
    return bits.view(ml_dtypes.bfloat16)


def plain_bits(a: Array, dtype: str) -> Array:
    """ml_dtypes.bfloat16 targets are passed to the core as their uint16 bits."""
    if dtype == "bfloat16" and a.dtype.itemsize == 2 and a.dtype != np.float16:
        return a.view(np.uint16)
    return a


def bn_for_eps(layer: Located, params: Mapping[str, npt.NDArray[np.float32]], eps: float,
               stacklevel: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """New (gamma, running_var) of ``layer``'s batch norm ``params`` for a
    framework whose BN adds ``eps``, so that it reproduces darknet's
    ``gamma * (x - mean) / sqrt(var + 1e-5) + beta`` (see Layer.bn_params)."""
    if eps == BN_EPSILON:  # darknet's own: the stored arrays, bit for bit
        return params["scales"].copy(), params["rolling_variance"].copy()
    var = params["rolling_variance"].astype(np.float64) + BN_EPSILON
    gamma = params["scales"].astype(np.float64)
    adjusted = var - eps
    bad = adjusted < 0
    if bad.any():
        gamma[bad] *= np.sqrt(eps) / np.sqrt(var[bad])
        adjusted[bad] = 0.0
        channels = np.flatnonzero(bad)
        warnings.warn(
            PrecisionWarning(
                f"layer {layer.index} ({layer.type}, line {layer.line}): rolling_variance + {BN_EPSILON:g} "
                f"< eps={eps} in {channels.size} channels "
                f"({channels[:8].tolist()}): their variance is 0 and their scales are rescaled "
                "instead"
            ),
            stacklevel=stacklevel + 1,
        )
    return gamma.astype(np.float32), adjusted.astype(np.float32)


def cast(a: npt.NDArray[np.generic], dtype: str) -> npt.NDArray[np.generic]:
    """A new array of float32 values ``a`` in ``dtype``, rounded to nearest
    even as the core's kernels round: float16 (NumPy's cast; beyond ±65504
    inf, which the core reports as a PrecisionWarning at the weights), or
    bfloat16 as :func:`as_bfloat16` gives it (the uint16 bit patterns, viewed
    as ``ml_dtypes.bfloat16`` when installed)."""
    if dtype == "float32":
        return np.array(a, np.float32)
    if dtype == "float16":
        with np.errstate(over="ignore"):
            return np.asarray(a, np.float32).astype(np.float16)
    if dtype != "bfloat16":
        raise ValueError(f"dtype must be float32, float16 or bfloat16, not {dtype!r}")
    bits = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    rounded[np.isnan(a)] = 0x7FC0
    return as_bfloat16(rounded, dtype)


def fold_bn(weights: npt.NDArray[np.float32], biases: npt.NDArray[np.float32],
            bn: Mapping[str, npt.NDArray[np.float32]], *, out_axis: int
            ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """A conv or connected layer without batch norm (``weights``, ``biases``)
    followed by a ``[batchnorm]`` layer (``bn``: its scales, biases,
    rolling_mean and rolling_variance), folded into one: darknet's
    arithmetic, in double, ``s = scales / sqrt(var + 1e-5)``,
    ``w' = w * s`` along ``out_axis``, ``b' = bn_biases + (b - mean) * s``."""
    s = bn["scales"].astype(np.float64) / np.sqrt(bn["rolling_variance"].astype(np.float64) + BN_EPSILON)
    shape = [1] * weights.ndim
    shape[out_axis] = -1
    w = (weights.astype(np.float64) * s.reshape(shape)).astype(np.float32)
    b = bn["biases"] + (biases.astype(np.float64) - bn["rolling_mean"]) * s
    return w, b.astype(np.float32)

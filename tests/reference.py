"""NumPy reference implementations the C++ kernels are tested against."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


def fuse(w: F32, b: F32, scales: F32 | None, mean: F32 | None, var: F32 | None) -> tuple[F32, F32]:
    """darknet network.c:fuse_conv_batchnorm(), in float64 like darknet, rows = w[o]."""
    if scales is None:
        return w.copy(), b.copy()
    denom = np.sqrt(var.astype(np.float64) + 0.00001)
    bias = (b.astype(np.float64) - scales.astype(np.float64) * mean.astype(np.float64) / denom).astype(np.float32)
    pre = scales.astype(np.float64) / denom
    shape = (-1,) + (1,) * (w.ndim - 1)
    return (w.astype(np.float64) * pre.reshape(shape)).astype(np.float32), bias


def layout(w: F32, name: str) -> F32:
    return {
        "OIHW": lambda a: a,
        "HWIO": lambda a: a.transpose(2, 3, 1, 0),
        "OHWI": lambda a: a.transpose(0, 2, 3, 1),
        "OI": lambda a: a,
        "IO": lambda a: a.T,
    }[name](w)


def to_bfloat16_bits(a: F32) -> npt.NDArray[np.uint16]:
    x = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    nan = (x & 0x7FFFFFFF) > 0x7F800000
    out = ((x + 0x7FFF + ((x >> 16) & 1)) >> 16).astype(np.uint16)
    out[nan] = ((x[nan] >> 16) | 0x40).astype(np.uint16)
    return out


def conv2d(x: npt.NDArray[np.float64], w: npt.NDArray[np.float64], groups: int, pad: int) -> npt.NDArray[np.float64]:
    """Stride-1 grouped convolution, x (C, H, W), w (O, C/groups, k, k) -> (O, H', W')."""
    _, h, wd = x.shape
    o, cg, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    oh, ow = h + 2 * pad - k + 1, wd + 2 * pad - k + 1
    out = np.zeros((o, oh, ow))
    per = o // groups
    for g in range(groups):
        xs = xp[g * cg:(g + 1) * cg]
        patches = np.lib.stride_tricks.sliding_window_view(xs, (k, k), axis=(1, 2))  # (cg, oh, ow, k, k)
        out[g * per:(g + 1) * per] = np.einsum("cyxij,ocij->oyx", patches, w[g * per:(g + 1) * per])
    return out

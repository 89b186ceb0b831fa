"""yolo_io.save_safetensors(): a Network as a ``.safetensors`` file, streamed.

The header (every tensor's dtype, shape and offsets) is known from the plan
before any data is read; it is written first, then the data, layer by layer,
through the core's atomic writer. The raw export's data region is the
``.weights`` data byte for byte, so the core copies it straight from the
source file (``write_mapped_layers`` in ``csrc/yolo_io/writer.cpp``), and
:func:`yolo_io.load` maps it back as a Network. Reading, validation and the
layout of the raw export are the core's (``csrc/yolo_io/safetensors.cpp``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .. import _core
from .._base.errors import ConversionError
from .._base.paths import PathArg
from .._base.progress import Progress, Reporter, bytes_written
from .._model.network import Network, core_weights, fused_layers
from .atomic import atomic_file, network_inputs, refuse_inputs, resolve_target

Pair = tuple[npt.NDArray[np.generic], npt.NDArray[np.generic]]

__all__ = ["save_safetensors"]

_DTYPES = ("float32", "float16", "bfloat16")


def save_safetensors(
    path: PathArg,
    net: Network,
    *,
    fuse: bool = False,
    layout: str | None = None,
    dtype: str = "float32",
    naming: str | None = None,
    progress: Progress = None,
) -> Path:
    """Write a network as a ``.safetensors`` file, atomically and streamed.

    With the defaults, a *raw* export: one float32 tensor per darknet array,
    named ``"{layer}.{param}"`` (``"0.weights"``, ``"3.rolling_variance"``,
    ``"5.wf.weights"``), in file order, whose data region is the ``.weights``
    data byte for byte (copied from the source file); the metadata holds the cfg
    text, the darknet header and ``"format": "yolo_io.darknet"``, so that
    ``yolo_io.load(path)`` maps it back as a Network without a cfg, and
    :func:`yolo_io.save` rebuilds the original ``.weights``. Each tensor has
    the shape of its bytes in the file: darknet's, except a flipped conv's
    ``(c/groups, size, size, filters)`` and, under a legacy header, a
    connected matrix's ``(inputs, outputs)``.

    With ``naming``, ``fuse``, ``layout`` or ``dtype`` set: the tensors of
    ``net.state_dict(naming=naming or "yolo_io", fuse=fuse, layout=layout,
    dtype=dtype)``, produced one layer at a time (memory: the largest layer),
    with the options, the cfg and the header in the metadata.

    Args:
        path: the file to write; written under a temporary name in the same
            folder (``.yolo_io-XXXXXXXXXXXXXXXX.tmp``), flushed and renamed
            over ``path`` (a failed save leaves ``path`` as it was and removes
            the temporary; a killed process or a folder renamed meanwhile
            leaves it behind).
        net: a loaded Network (not a partial one).
        fuse: fold batch norms in (as :meth:`Network.state_dict`).
        layout: the convolutions' layout (``"OIHW"``, ``"HWIO"``, ``"OHWI"``).
        dtype: ``"float32"``, ``"float16"`` or ``"bfloat16"`` for every
            floating-point tensor.
        naming: ``"yolo_io"``, ``"darknet2pytorch"`` or ``"ultralytics"``.
        progress: a bar on a terminal (None, the default), always (True) or
            never (False), or a callback ``(done, total, what)`` with the
            bytes written so far and the file's size: after each layer, or
            every few MiB when the core copies a raw export's bytes.

    Returns:
        The path written.

    Raises:
        ConversionError: a partial network; a layer the naming cannot hold.
        OutputIsInputError: ``path`` is one of the network's files (its
            weights file or raw export, its cfg), by inode and through
            links. Nothing is written then.
        ValueError: an unknown naming, layout or dtype.
        OSError: the folder is not writable, the disk is full; ``path`` is
            left as it was.
    """
    if not isinstance(net, Network):
        raise TypeError(f"save_safetensors() takes a Network, not {type(net).__name__}")
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(map(repr, _DTYPES))}, not {dtype!r}")
    source = core_weights(net)
    if net.partial:
        raise ConversionError(f"{net.path} holds only the first {net.covered_layers} of "
                              f"{len(net)} layers: a safetensors export needs them all")
    target = resolve_target(path)
    raw = naming is None and not fuse and layout is None and dtype == "float32"
    refuse_inputs(target, network_inputs(net))
    if raw:
        header = _core.raw_safetensors_header(source)
        size = len(header) + net.config.expected_size(layers=len(net)) - \
            net.config.expected_size(layers=0)
        with atomic_file(target) as writer, \
                Reporter(progress, size, "save", what="writing",
                         caller="yolo_io.save_safetensors", legacy=bytes_written) as report:
            writer.write(header)
            writer.write_layers(source, len(net), report)
            report.finish()
        return Path(target)
    return _save_state_dict(target, net, fuse=fuse, layout=layout, dtype=dtype,
                            naming=naming or "yolo_io", progress=progress)


def _save_state_dict(target: str, net: Network, *, fuse: bool, layout: str | None, dtype: str,
                     naming: str, progress: Progress) -> Path:
    """The state dict, streamed: its keys, dtypes and shapes first (from the
    fusion plans, nothing fused), then one layer's arrays at a time."""
    from .._model.state_dict import Layer as StateLayer
    from .._model.state_dict import check, layer_parts

    source = core_weights(net)
    eps = check(net, naming, fuse, None)
    shapes = source.fused_shapes(layout, None, dtype, "auto", fuse)
    placeholder = np.zeros((), np.float32)

    def planned(layer: StateLayer) -> Pair | None:
        if layer.index not in shapes:
            return None
        w, n = shapes[layer.index]
        return np.broadcast_to(placeholder, w), np.broadcast_to(placeholder, (n,))

    def computed(layer: StateLayer) -> Pair | None:
        if layer.index not in shapes:
            return None
        return fused_layers(net, layout, dtype=dtype, dense_layout=None, threads=None, fuse=fuse,
                            first=layer.index, last=layer.index + 1, stacklevel=6)[layer.index]

    with warnings.catch_warnings():  # the planning pass; the writing pass warns
        warnings.simplefilter("ignore")
        plan = [(key, _st_dtype(a, dtype), tuple(a.shape))
                for part in layer_parts(net, fuse=fuse, naming=naming, eps=eps, dtype=dtype,
                                        pair_of=planned, stacklevel=3)
                for key, a in part.items()]
    metadata = [("format", "yolo_io.state_dict"), ("naming", naming), ("fuse", str(int(fuse))),
                ("layout", layout or "default"), ("dtype", dtype)]
    header = _core.safetensors_header(source, plan, metadata)
    size = len(header) + sum(int(np.prod(shape)) * _ITEMSIZE[st] for _, st, shape in plan)
    with atomic_file(target) as writer, \
            Reporter(progress, size, "save", what="writing", caller="yolo_io.save_safetensors",
                     legacy=bytes_written, stacklevel=5) as report:  # one frame deeper
        writer.write(header)
        at = 0
        for i, part in enumerate(layer_parts(net, fuse=fuse, naming=naming, eps=eps,
                                             dtype=dtype, pair_of=computed, stacklevel=4)):
            for key, a in part.items():
                if plan[at] != (key, _st_dtype(a, dtype), tuple(a.shape)):  # pragma: no cover
                    raise AssertionError(f"{key}: the planned tensor was {plan[at]}")
                writer.write(np.ascontiguousarray(a).reshape(-1).view(np.uint8))
                at += 1
            if i < len(net):
                source.evict(i)  # read and written: out of the resident set
            if part:
                report(writer.written)
        report.finish()
    return Path(target)


_ST_DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}
_ITEMSIZE = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}


def _st_dtype(a: npt.NDArray[np.generic], dtype: str) -> str:
    """The safetensors dtype of a state-dict array: I64 for
    ``num_batches_tracked``, else ``dtype``'s."""
    return "I64" if a.dtype == np.int64 else _ST_DTYPES[dtype]

"""Helpers for tests, benchmarks and examples: write valid random ``.weights``.

>>> from yolo_io.testing import write_weights
>>> write_weights("model.weights", "model.cfg", seed=0)
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from . import _core
from ._base.deprecation import keyword_only
from ._base.paths import PathArg, fs_path
from ._model.config import Config, parse
from ._writing.atomic import atomic_file, refuse_inputs, resolve_target

__all__ = ["header_bytes", "write_weights"]


@keyword_only("seen")
def header_bytes(version: tuple[int, int, int] = (0, 2, 5), *, seen: int = 0) -> bytes:
    """The header darknet writes for ``version``: three int32, then ``seen`` as
    uint64 (versions 0.2 and later) or uint32 (earlier and legacy headers)."""
    major, minor, revision = version
    head = struct.pack("<iii", major, minor, revision)
    if _core.header_size_for(major, minor) == 20:
        return head + struct.pack("<Q", seen)
    return head + struct.pack("<I", seen)


def write_weights(
    path: PathArg,
    cfg: PathArg | Config,
    *,
    version: tuple[int, int, int] = (0, 2, 5),
    seen: int = 0,
    seed: int = 0,
    layers: int | None = None,
    realistic: bool = False,
    sparse: bool = False,
) -> Path:
    """Write a valid ``.weights`` file of random float32 values for ``cfg``.

    Values are standard normal, except ``rolling_variance`` arrays, which are
    positive (|x| + 0.01), as real batch-norm statistics are. The same seed
    gives the same bytes. Memory use is one layer at a time.

    Args:
        path: the file to write, atomically as :func:`yolo_io.save` writes
            (a temporary file renamed over it: a file a Network maps keeps
            its bytes, an interrupted call leaves it as it was); the cfg's
            own file is refused with OutputIsInputError.
        cfg: a path, cfg text or Config.
        version: header (major, minor, revision); below 0.2 the header has a
            32-bit ``seen`` (16 bytes), otherwise 64-bit (20 bytes).
        seen: the header's images-seen counter.
        seed: seed of the random generator.
        layers: write only the first ``layers`` layers, like ``darknet partial``.
        realistic: values shaped like a trained network's, so that a forward
            pass stays finite: weights N(0, 1/fan_in), BN scales near 1,
            biases and means N(0, 0.1^2), variances in [0.5, ~2].
        sparse: write the header only and extend the file to its full size
            with zeros, which most file systems store without writing them:
            a file of the right size in no time, for size checks and
            diagnoses of large models (every value is 0.0).

    Returns:
        The path written.
    """
    config = parse(cfg, stacklevel=2)
    refuse_inputs(path, [("the cfg", config.path)])
    n = len(config) if layers is None else layers
    if not 0 <= n <= len(config):
        raise ValueError(f"layers must be in 0..{len(config)}, got {layers}")
    rng = np.random.default_rng(seed)
    out = Path(fs_path(path))
    with atomic_file(resolve_target(path)) as writer:
        writer.write(header_bytes(version, seen=seen))
        if sparse:
            writer.extend_to(config.expected_size(version, layers=n))
            return out
        for i in range(n):
            layer = config[i]
            if layer.param_count == 0:
                continue
            data = rng.standard_normal(layer.param_count, dtype=np.float32)
            for name, shape, offset, count in layer.param_specs:
                part = data[offset : offset + count]
                base = name.rsplit(".", 1)[-1]
                if realistic:
                    if base == "weights":
                        part *= np.float32(1 / np.sqrt(max(1, count // max(1, shape[0]))))
                    elif base == "scales":
                        part *= np.float32(0.1)
                        part += np.float32(1)
                    elif base == "rolling_variance":
                        np.abs(part, out=part)
                        part *= np.float32(0.5)
                        part += np.float32(0.5)
                    else:
                        part *= np.float32(0.1)
                elif base == "rolling_variance":
                    np.abs(part, out=part)
                    part += np.float32(0.01)
            writer.write(data)
    return out

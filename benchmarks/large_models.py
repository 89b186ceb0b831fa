"""Width-scaled yolov4 variants of about 2 GB and 5 GB (issue 13): checkpoints
whose later layers sit past 4 GiB in the file.

Every convolution's ``filters=`` is scaled by the same factor (rounded down
to a multiple of 8), except the ones before a ``[yolo]`` head, so that the
network stays valid. The ``.weights`` file is sparse (the header, then zeros
that most file systems store without writing them, as
``yolo_io.testing.write_weights(sparse=True)``), except three layers with
parameters (the first, the middle and the last), which hold standard normal
values from a generator seeded with ``(SEED, layer index)``: a reader checks
them with :func:`layer_values` without generating gigabytes of numbers.

Generated once into a cache folder (``$YOLO_IO_BENCH_CACHE``, else
``~/.cache/yolo_io/benchmarks``) and reused while its cfg is the same.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_CFG

import yolo_io
from yolo_io.testing import write_weights

# name -> width factor, in tenths
SIZES = {"2GB": 28, "5GB": 44}
SEED = 13
GB = 1 << 30


def cache_folder() -> Path:
    folder = Path(os.environ.get("YOLO_IO_BENCH_CACHE",
                                 Path.home() / ".cache" / "yolo_io" / "benchmarks"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def scaled_cfg(text: str, tenths: int) -> str:
    """``text`` with every conv's filters times tenths/10 (a multiple of 8),
    the heads' convs (followed by ``[yolo]``) unchanged."""
    sections = re.split(r"(?m)^(?=\[)", text)
    out = []
    for k, section in enumerate(sections):
        after = sections[k + 1] if k + 1 < len(sections) else ""
        if section.startswith("[convolutional]") and not after.startswith("[yolo]"):
            section = re.sub(r"(?m)^filters\s*=\s*(\d+)",
                             lambda m: f"filters={int(m.group(1)) * tenths // 80 * 8}", section)
        out.append(section)
    return "".join(out)


def checked_layers(config: yolo_io.Config) -> list[int]:
    """The first, the middle and the last layer with parameters."""
    stored = [layer.index for layer in config if layer.param_count]
    return [stored[0], stored[len(stored) // 2], stored[-1]]


def layer_values(config: yolo_io.Config, index: int) -> dict[str, np.ndarray]:
    """The values the generator wrote for a checked layer, by array name."""
    layer = config[index]
    data = np.random.default_rng([SEED, index]).standard_normal(layer.param_count,
                                                                dtype=np.float32)
    return {s.name: data[s.offset:s.offset + s.size].reshape(s.shape) for s in layer.param_specs}


def large_model(name: str) -> tuple[Path, Path]:
    """(weights, cfg) of the variant ``name`` (a key of SIZES), generated
    into the cache folder if needed; skips without the corpus's yolov4.cfg or
    room for it."""
    source = SHARED_CFG / "yolov4.cfg"
    if not source.is_file():
        pytest.skip(f"{source} is not there (the real-cfg corpus lives beside the checkout in CI)")
    folder = cache_folder()
    text = scaled_cfg(source.read_text(), SIZES[name])
    cfg = folder / f"yolov4-{name}.cfg"
    weights = folder / f"yolov4-{name}.weights"
    config = yolo_io.parse_cfg(text)
    size = config.expected_size()
    if cfg.is_file() and cfg.read_text() == text and weights.is_file() \
            and weights.stat().st_size == size:
        return weights, cfg
    if shutil.disk_usage(folder).free < 2 * GB:
        pytest.skip(f"less than 2 GB free in {folder} for a sparse {size / GB:.1f} GB file")
    weights.unlink(missing_ok=True)
    write_weights(weights, config, sparse=True)
    if weights.stat().st_blocks * 512 > size // 2:  # not sparse: it took the whole size
        weights.unlink()
        pytest.skip(f"{folder}'s file system does not store sparse files")
    net = yolo_io.load(weights, config)
    with weights.open("r+b") as f:
        for i in checked_layers(config):
            values = np.random.default_rng([SEED, i]).standard_normal(config[i].param_count,
                                                                     dtype=np.float32)
            f.seek(net[i].offset)
            f.write(values.tobytes())
    cfg.write_text(text)  # last: a cfg beside a weights file means both are complete
    return weights, cfg

"""``yolo-io demo``: the tool at work on a small model it writes, no downloads."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from .._model.network import load
from .common import (
    EXIT_IO,
    EXIT_OK,
    PROG,
    Failure,
    shape_text,
)

DEMO_CFG = """\
# A small YOLO-style detector written for `yolo-io demo`: two heads,
# 2 classes, a 96x96 input. Written by the yolo_io project.
[net]
width=96
height=96
channels=3

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=32
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=64
size=3
stride=2
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters={filters}
activation=linear

[yolo]
mask=3,4,5
anchors=10,14, 23,27, 37,58, 81,82, 135,169, 344,319
classes={classes}
num=6

[route]
layers=-3

[upsample]
stride=2

[route]
layers=-1,-6

[convolutional]
size=1
stride=1
pad=1
filters={filters}
activation=linear

[yolo]
mask=0,1,2
anchors=10,14, 23,27, 37,58, 81,82, 135,169, 344,319
classes={classes}
num=6
"""


def demo_cfg(classes: int = 2) -> str:
    """The demo's cfg text for ``classes`` classes."""
    return DEMO_CFG.format(classes=classes, filters=3 * (classes + 5))


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from .._writing.atomic import WriterStream, atomic_file
    from ..testing import write_weights

    names = ("demo.cfg", "demo.weights", "demo-3classes.weights", "demo-fused-hwio.npz")
    if args.dir:
        folder = Path(args.dir)
        taken = [n for n in names if (folder / n).exists()]
        if taken:
            raise Failure(f"{folder} already has {', '.join(taken)}: the demo does not "
                           f"overwrite files; choose another --dir", EXIT_IO)
        folder.mkdir(parents=True, exist_ok=True)
    else:
        folder = Path(tempfile.mkdtemp(prefix="yolo_io-demo-"))
    out = sys.stdout
    try:
        cfg, weights = folder / "demo.cfg", folder / "demo.weights"
        with atomic_file(str(cfg)) as writer:  # the one atomic writer, as every file
            writer.write(demo_cfg(2).encode())
        write_weights(weights, cfg, seed=0, realistic=True)
        out.write(f"yolo-io demo: wrote {cfg} (a 2-class YOLO-style model written by yolo_io) "
                  f"and {weights} ({weights.stat().st_size:,} bytes of random weights from "
                  f"yolo_io.testing)\n\n$ {PROG} inspect {cfg} {weights}\n")
        out.flush()
        args.run(["inspect", str(cfg), str(weights)])
        out.write(f"\n$ {PROG} check {cfg} {weights}\n")
        out.flush()
        args.run(["check", str(cfg), str(weights)])
        three = folder / "demo-3classes.weights"
        write_weights(three, demo_cfg(3), seed=1, realistic=True)
        out.write(f"\nNow weights trained for 3 classes ({three.name}) against the 2-class cfg:"
                  f"\n$ {PROG} check {cfg} {three}\n")
        out.flush()
        code = args.run(["check", str(cfg), str(three)])
        out.write(f"(exit code {code}: the pair does not fit, and the lines to change are named)"
                  f"\n\nFused export: batch norm folded into each convolution, HWIO layout\n")
        with load(weights, cfg) as net:
            fused = net.fused_all(layout="HWIO")
            arrays = {f"layer{i}.{k}": a for i, (w, b) in fused.items()
                      for k, a in (("weight", w), ("bias", b))}
            npz = folder / "demo-fused-hwio.npz"
            with atomic_file(str(npz)) as writer:
                np.savez(WriterStream(writer), **arrays)  # type: ignore[arg-type]
            for i, (w, b) in fused.items():
                out.write(f"  layer {i}: weight {shape_text(w.shape)}, bias {shape_text(b.shape)}\n")
        out.write(f"wrote {npz} ({npz.stat().st_size:,} bytes, {len(arrays)} arrays)\n")
        if args.dir:
            out.write(f"\nThe files are in {folder}; try `{PROG} doctor {cfg} {weights}`.\n")
        else:
            out.write(f"\n{folder} is temporary and now removed; `{PROG} demo --dir DIR` "
                      f"keeps the files.\n")
    finally:
        if not args.dir:
            shutil.rmtree(folder, ignore_errors=True)
    return EXIT_OK

"""Boxes, labels and scores drawn on an image (Pillow), in darknet's colours."""

from __future__ import annotations

import functools
import io
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .detect import Detection

__all__ = ["annotate", "class_color", "encode", "output_name"]

# image.c: colors[6][3] and get_color(): a class's colour interpolated along them.
_COLORS = ((1, 0, 1), (0, 0, 1), (0, 1, 1), (0, 1, 0), (1, 1, 0), (1, 0, 0))


def _get_color(c: int, x: int, top: int) -> float:
    ratio = (x / top) * 5
    i, j = math.floor(ratio), math.ceil(ratio)
    ratio -= i
    return (1 - ratio) * _COLORS[i][c] + ratio * _COLORS[j][c]


def class_color(class_id: int, classes: int) -> tuple[int, int, int]:
    """darknet's colour of a class (``draw_detections_v3``: offset =
    ``class * 123457 % classes``, then ``get_color``), as 8-bit RGB."""
    classes = max(classes, 1)
    offset = class_id * 123457 % classes
    return tuple(round(255 * _get_color(k, offset, classes)) for k in (2, 1, 0))  # type: ignore[return-value]


def annotate(pixels: npt.NDArray[np.uint8], detections: Sequence[Detection],
             classes: int) -> Any:
    """A PIL image of ``pixels`` (H, W, 3 RGB or H, W, 1 gray) with each box
    outlined in its class's colour and labelled ``name 99%`` (the classes of
    one box on one label, the best first)."""
    from PIL import Image, ImageDraw, ImageFont

    rgb = pixels if pixels.shape[2] == 3 else np.repeat(pixels, 3, axis=2)
    image = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    draw = ImageDraw.Draw(image)
    h = image.height
    width = max(1, round(h * 0.004))
    size = max(10, round(h * 0.025))
    try:
        font: Any = ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow < 10.1
        font = ImageFont.load_default()
    boxes: dict[tuple[float, float, float, float], list[Detection]] = {}
    for d in detections:
        boxes.setdefault(d.box, []).append(d)
    for (left, top, w, hh), found in boxes.items():
        if not all(math.isfinite(v) for v in (left, top, left + w, top + hh)):
            continue  # an overflowing head's box: nowhere to draw it
        found.sort(key=lambda d: -d.prob)
        color = class_color(found[0].class_id, classes)
        # Sides far outside the image are drawn just outside it (Pillow would
        # walk every pixel of a huge rectangle); a negative width or height
        # (a [detection] head without sqrt) is drawn from its smaller side.
        xs = sorted(_clamp(v, image.width, width) for v in (left, left + w))
        ys = sorted(_clamp(v, image.height, width) for v in (top, top + hh))
        (x0, x1), (y0, y1) = xs, ys
        draw.rectangle((x0, y0, x1, y1), outline=color, width=width)
        label = ", ".join(f"{d.name} {d.prob * 100:.0f}%" for d in found)
        tl, tt, tr, tb = draw.textbbox((0, 0), label, font=font)
        pad = max(1, width)
        ly = y0 - (tb - tt) - 2 * pad if y0 - (tb - tt) - 2 * pad >= 0 else y0
        lx = min(max(x0, 0), max(image.width - (tr - tl) - 2 * pad, 0))
        draw.rectangle((lx, ly, lx + (tr - tl) + 2 * pad, ly + (tb - tt) + 2 * pad), fill=color)
        dark = sum(color) > 3 * 128
        draw.text((lx + pad - tl, ly + pad - tt), label, font=font,
                  fill=(0, 0, 0) if dark else (255, 255, 255))
    return image


def _clamp(v: float, size: int, margin: int) -> int:
    return round(min(max(v, -margin - 1), size + margin))


@functools.cache
def _writable(suffix: str) -> str | None:
    """The Pillow format an annotated image named ``*suffix`` is written in;
    None when Pillow cannot write an RGB image in it (``.psd``, which it
    only reads; ``.xbm``, one bit; an unknown suffix): tried on one pixel.
    ``.pgm`` is written gray."""
    from PIL import Image

    fmt = Image.registered_extensions().get(suffix.lower())
    if fmt is None or fmt not in Image.SAVE or suffix.lower() in (".pbm", ".pfm"):
        return None  # .pbm (one bit) and .pfm (floats) would get an RGB .ppm
    try:
        _save(Image.new("RGB", (1, 1)), suffix, fmt)
    except Exception:  # noqa: BLE001 - any failure of a format's writer: not this one
        return None
    return fmt


def _save(image: Any, suffix: str, fmt: str) -> bytes:
    if suffix.lower() == ".pgm":  # one channel
        image = image.convert("L")
    out = io.BytesIO()
    options: dict[str, Any] = {"quality": 95} if fmt == "JPEG" else {}
    image.save(out, format=fmt, **options)
    return out.getvalue()


def output_name(name: str) -> str:
    """The file name the annotated copy of image ``name`` is written to:
    ``name`` itself, or ``name.png`` when Pillow cannot write its format
    (``.psd``, a name without a suffix, ...)."""
    return name if _writable(os.path.splitext(name)[1]) else name + ".png"


def encode(image: Any, suffix: str) -> bytes:
    """The image in the format of ``suffix`` (JPEG at quality 95; gray for
    ``.pgm``, which holds one channel), as bytes; PNG when Pillow cannot
    write that format."""
    fmt = _writable(suffix)
    return _save(image, suffix, fmt) if fmt is not None else _save(image, ".png", "PNG")

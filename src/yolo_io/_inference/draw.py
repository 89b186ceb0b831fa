"""Boxes, labels and scores drawn on an image (Pillow), in darknet's colours."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .detect import Detection

__all__ = ["annotate", "class_color", "encode"]

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
        found.sort(key=lambda d: -d.prob)
        color = class_color(found[0].class_id, classes)
        x0, y0 = round(left), round(top)
        x1, y1 = round(left + w), round(top + hh)
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


def encode(image: Any, suffix: str) -> bytes:
    """The image in the format of ``suffix`` (JPEG at quality 95), as bytes."""
    from PIL import Image

    fmt = Image.registered_extensions().get(suffix.lower(), "PNG")
    out = io.BytesIO()
    options: dict[str, Any] = {"quality": 95} if fmt == "JPEG" else {}
    image.save(out, format=fmt, **options)
    return out.getvalue()

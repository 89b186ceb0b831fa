"""darknet's preprocessing of an image, and the inverse for its boxes.

Written from AlexeyAB/darknet's ``image.c`` (``resize_image``,
``letterbox_image``, ``load_image_stb``) and ``yolo_layer.c``
(``correct_yolo_boxes``), in the same float32 arithmetic, so that a network
input made here equals darknet's bit for bit (``tests/test_detect.py``).
"""

from __future__ import annotations

import errno
import importlib.util
import io
import os
from typing import Any

import numpy as np
import numpy.typing as npt

from .._base.paths import fs_path

__all__ = ["decoder_available", "letterbox", "letterbox_size", "network_input", "read_pixels", "resize", "to_float",
           "to_gray"]

F32 = npt.NDArray[np.float32]


def to_float(pixels: npt.NDArray[np.uint8]) -> F32:
    """``load_image_stb``: each 8-bit value divided by 255 (darknet divides in
    double and stores a float: the same float32 as this division)."""
    return pixels.astype(np.float32) / np.float32(255)


def to_gray(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """stb_image's RGB to one channel (``stbi__compute_y``): ``(77 r + 150 g
    + 29 b) >> 8``, what darknet's ``load_image_stb(name, 1)`` reads of an
    RGB image other than a JPEG (of a JPEG it reads the luma plane)."""
    r, g, b = (rgb[..., k].astype(np.uint32) for k in range(3))
    return ((r * 77 + g * 150 + b * 29) >> 8).astype(np.uint8)


Image = npt.NDArray[np.float32] | npt.NDArray[np.uint8]


def resize(im: Image, w: int, h: int) -> F32:
    """``resize_image`` of an (H, W, C) image: bilinear, first along x, then
    along y, the last column and row taken from the source's last. A uint8
    image is read as :func:`to_float` of it (the same floats)."""
    return np.ascontiguousarray(_resize_chw(im, w, h).transpose(1, 2, 0))


def _resize_chw(im: Image, w: int, h: int) -> F32:
    """:func:`resize` as (C, h, w): computed channel-major, as darknet does, so
    that the weights of a column broadcast along memory; a uint8 image is
    converted only where the result reads it."""
    chw = im.transpose(2, 0, 1)
    f: Any = to_float if im.dtype == np.uint8 else (lambda a: a)
    ih, iw = chw.shape[1:]
    if (iw, ih) == (w, h):
        return np.array(f(chw), dtype=np.float32)
    if w == 1 or iw == 1:
        part = np.repeat(f(chw[:, :, iw - 1:iw]), w, axis=2)
    else:
        sx = np.arange(w, dtype=np.float32) * (np.float32(iw - 1) / np.float32(w - 1))
        ix = np.minimum(sx.astype(np.int64), iw - 1)
        dx = sx - ix.astype(np.float32)
        part = ((np.float32(1) - dx) * f(np.take(chw, ix, axis=2))
                + dx * f(np.take(chw, np.minimum(ix + 1, iw - 1), axis=2)))
        part[:, :, w - 1] = f(chw[:, :, iw - 1])
    if h == 1 or ih == 1:
        return np.ascontiguousarray(np.repeat(part[:, :1], h, axis=1), dtype=np.float32)
    sy = np.arange(h, dtype=np.float32) * (np.float32(ih - 1) / np.float32(h - 1))
    iy = np.minimum(sy.astype(np.int64), ih - 1)
    dy = (sy - iy.astype(np.float32))[None, :, None]
    out = (np.float32(1) - dy) * np.take(part, iy, axis=1)
    out[:, :h - 1] += dy[:, :h - 1] * np.take(part, np.minimum(iy[:h - 1] + 1, ih - 1), axis=1)
    return np.ascontiguousarray(out, dtype=np.float32)


def letterbox_size(iw: int, ih: int, w: int, h: int) -> tuple[int, int]:
    """The size ``letterbox_image`` (and ``correct_yolo_boxes``) scales an
    ``iw`` x ``ih`` image to inside a ``w`` x ``h`` network: the side with the
    smaller float ratio fills the network, the other keeps the aspect ratio
    (integer division, as darknet's)."""
    if np.float32(w) / np.float32(iw) < np.float32(h) / np.float32(ih):
        return w, (ih * w) // iw
    return (iw * h) // ih, h


def letterbox(im: Image, w: int, h: int) -> F32:
    """``letterbox_image``: the image resized into :func:`letterbox_size`,
    centered on 0.5 gray."""
    return np.ascontiguousarray(_letterbox_chw(im, w, h).transpose(1, 2, 0))


def _letterbox_chw(im: Image, w: int, h: int) -> F32:
    ih, iw = im.shape[:2]
    new_w, new_h = letterbox_size(iw, ih, w, h)
    if new_w < 1 or new_h < 1:
        raise ValueError(f"a {iw}x{ih} image letterboxed into the network's {w}x{h} is "
                         f"{new_w}x{new_h} pixels: darknet would divide by zero; crop or pad "
                         "it first")
    boxed = np.full((im.shape[2], h, w), 0.5, dtype=np.float32)
    top, left = (h - new_h) // 2, (w - new_w) // 2
    boxed[:, top:top + new_h, left:left + new_w] = _resize_chw(im, new_w, new_h)
    return boxed


# -- reading ---------------------------------------------------------------------


def decoder_available() -> bool:
    """Whether image files can be decoded here (Pillow or OpenCV installed)."""
    return any(importlib.util.find_spec(m) is not None for m in ("PIL", "cv2"))


def _decode(path: str, channels: int) -> npt.NDArray[np.uint8]:
    """The pixels of an image file, HWC RGB (or HW gray) uint8, as decoded by
    Pillow or, without it, OpenCV; EXIF orientation is not applied (darknet's
    stb_image ignores it). For a one-channel network a JPEG's own luma plane
    is read, as stb_image does (``stbi__load_jpeg_image`` with ``req_comp``
    1 copies Y without converting to RGB)."""
    with open(path, "rb") as f:  # Python opens a name in any encoding; imread cannot
        encoded = f.read()
    if not encoded:
        raise OSError(errno.EINVAL, "an empty file is no image", path)
    if importlib.util.find_spec("PIL") is not None:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(encoded)) as img:
                if channels == 1 and img.format == "JPEG" and img.mode in ("RGB", "YCbCr"):
                    img.draft("L", img.size)  # libjpeg's gray output: the Y plane
                return _from_pil(img)
        except Image.DecompressionBombError as err:
            raise OSError(errno.EFBIG, f"too many pixels to decode safely ({err})", path) \
                from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
            raise OSError(errno.EINVAL, f"not an image Pillow can decode ({err})", path) from None
    try:
        import cv2
    except ImportError:
        raise ImportError("reading an image file needs Pillow (pip install 'yolo_io[detect]') "
                          "or OpenCV") from None
    jpeg_gray = channels == 1 and encoded[:2] == b"\xff\xd8"
    read = cv2.imdecode(np.frombuffer(encoded, dtype=np.uint8),
                        (cv2.IMREAD_GRAYSCALE if jpeg_gray else cv2.IMREAD_COLOR)
                        | cv2.IMREAD_IGNORE_ORIENTATION)
    if read is None:
        raise OSError(errno.EINVAL, "not an image OpenCV can decode", path)
    return np.ascontiguousarray(read if read.ndim == 2 else read[:, :, ::-1])


#: Pillow's modes of more than 8 bits per sample: stb_image keeps each
#: value's high byte (``stbi__convert_16_to_8``: ``v >> 8``).
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def _from_pil(img: Any) -> npt.NDArray[np.uint8]:
    if img.mode in _WIDE_MODES:
        wide = np.asarray(img).astype(np.int64)
        return (np.clip(wide, 0, 65535) >> 8).astype(np.uint8)
    if img.mode == "F":  # 32-bit float samples (TIFF): no stb_image format; read as 0..255
        values = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0)
        return np.clip(np.rint(values), 0, 255).astype(np.uint8)
    if img.mode not in ("RGB", "L"):
        img = img.convert("RGB")  # RGBA, LA, palette, CMYK: as stb_image, alpha dropped
    return np.asarray(img, dtype=np.uint8)


def read_pixels(image: object, channels: int) -> tuple[npt.NDArray[np.uint8], str]:
    """``image`` as darknet's ``load_image(name, 0, 0, channels)`` reads it:
    (H, W, channels) uint8, gray replicated to RGB or RGB made gray as
    stb_image does; and a description (the path, or the kind of object).

    ``image``: a file name (str, bytes, os.PathLike), a uint8 array (H, W) or
    (H, W, 1|3|4), RGB(A), or a PIL image.

    Raises:
        FileNotFoundError, IsADirectoryError, OSError: a file that is missing,
            a folder, or not a decodable image.
        TypeError, ValueError: an array that is not uint8 (H, W[, 1|3|4]), or
            another kind of object.
    """
    if isinstance(image, (str, bytes, os.PathLike)):
        path = fs_path(image, "image")
        if not path:
            raise FileNotFoundError(errno.ENOENT, "an empty path is no file name", path)
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        pixels, what = _decode(path, channels), path
    elif isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise TypeError(f"an image array must hold uint8 pixels (0..255), not {image.dtype}: "
                            "for float data in [0, 1] run the model on prepare_image()'s "
                            "output yourself")
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)) \
                or 0 in image.shape:
            raise ValueError(f"an image array must be (H, W), (H, W, 1), (H, W, 3) RGB or "
                             f"(H, W, 4) RGBA, not {image.shape}")
        pixels, what = image, f"a {'x'.join(map(str, image.shape))} array"
    elif type(image).__module__.startswith("PIL."):
        pixels, what = _from_pil(image), f"a PIL image ({image.mode})"  # type: ignore[attr-defined]
    else:
        raise TypeError(f"an image must be a path, a uint8 array or a PIL image, not "
                        f"{type(image).__name__}")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = pixels[:, :, :3]
    if channels == 1:
        gray = pixels if pixels.ndim == 2 else to_gray(pixels)
        return np.ascontiguousarray(gray[:, :, None]), what
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    return np.ascontiguousarray(pixels), what


def network_input(pixels: npt.NDArray[np.uint8], w: int, h: int, letter_box: bool) -> F32:
    """darknet's network input for (H, W, C) uint8 ``pixels``: 1/255, then
    ``letterbox_image`` or ``resize_image`` to ``w`` x ``h``, as (C, H, W)."""
    return _letterbox_chw(pixels, w, h) if letter_box else _resize_chw(pixels, w, h)

"""Reading one image (a file, or the bytes of one) as gray levels, refusing what cannot be read.

Every image mnistlab is asked to classify comes through `read_gray`: `mnistlab predict`'s files
and the server's uploads alike. What it refuses is one DataError line that names the image: not
an image, an empty or truncated file, an animation or multi-page file, more than 8 bits per
channel, CMYK, more than MAX_PIXELS pixels. How the gray levels then become a model's input is
mnistlab.data.preprocess.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mnistlab.errors import DataError

#: images with more pixels are refused before they are decoded (a 50-megapixel photo still passes)
MAX_PIXELS = 50_000_000
#: modes with more than 8 bits per channel: converting them to 8-bit gray would silently clip
DEEP_MODES = {"I;16": 16, "I;16B": 16, "I;16L": 16, "I;16N": 16, "I": 32, "F": 32}
#: what PIL raises for the many ways an encoded image can be broken
BROKEN = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)


def read_gray(source: str | os.PathLike | bytes, name: str | None = None) -> np.ndarray:
    """The image as float32 gray levels in [0, 1] (0 black, 1 white): (height, width).

    source: a path, or the bytes of an encoded image (PNG, JPEG, GIF, BMP, TIFF, WebP ...).
    name: what error messages call the image (default: the path; "image" for bytes).
    Transparent pixels count as white paper behind the ink; EXIF rotation is applied.
    """
    where = name or (str(source) if not isinstance(source, bytes) else "image")
    stream = _open_source(source, where)
    try:
        with Image.open(stream) as image:
            _check_kind(image, where)
            image.load()
            gray = _to_gray(ImageOps.exif_transpose(image))
    except Image.DecompressionBombError:
        raise DataError(f"{where}: too many pixels (more than {MAX_PIXELS:,})") from None
    except UnidentifiedImageError:
        raise DataError(f"{where}: not a readable image (no image format recognized)") from None
    except BROKEN as exc:
        raise DataError(f"{where}: truncated or corrupt image ({exc})") from None
    return gray


def _open_source(source: str | os.PathLike | bytes, where: str):
    """A file object for PIL; DataError for a missing, unreadable or empty source."""
    if isinstance(source, bytes):
        if not source:
            raise DataError(f"{where}: empty (0 bytes), not an image")
        return io.BytesIO(source)
    path = Path(source)
    if path.is_dir():
        raise DataError(f"{where}: is a folder, not an image")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{where}: no such file") from None
    except OSError as exc:
        raise DataError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    if not data:
        raise DataError(f"{where}: empty (0 bytes), not an image")
    return io.BytesIO(data)


def _check_kind(image: Image.Image, where: str) -> None:
    """Refuse, before decoding, what would give a wrong gray image rather than none."""
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise DataError(
            f"{where}: {width}x{height} is too many pixels (more than {MAX_PIXELS:,}); "
            "scale it down"
        )
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        raise DataError(
            f"{where}: has {frames} frames (an animation or a multi-page file); give one still "
            "image"
        )
    if image.mode in DEEP_MODES:
        raise DataError(
            f"{where}: {DEEP_MODES[image.mode]}-bit samples (mode {image.mode}) are not "
            "supported; save it with 8 bits per channel"
        )
    if image.mode == "CMYK":
        raise DataError(f"{where}: a CMYK image (print colors); save it as RGB or grayscale")


def _to_gray(image: Image.Image) -> np.ndarray:
    """(h, w) float32 in [0, 1], luma by ITU-R 601-2 (PIL's "L"), transparency over white."""
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        paper = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, image.convert("RGBA"))
    return np.asarray(image.convert("L"), dtype=np.float32) / np.float32(255.0)


def to_png(image: np.ndarray) -> bytes:
    """A (h, w) array of gray levels in [0, 1] as the bytes of an 8-bit grayscale PNG."""
    levels = np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(levels.astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()

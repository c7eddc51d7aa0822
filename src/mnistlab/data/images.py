"""MNIST-style preprocessing of a photo or drawing of one object, for `mnistlab predict`.

The steps MNIST itself used: grayscale; dark ink on light paper is inverted to light-on-dark;
crop to the ink's bounding box; scale it (keeping its aspect ratio) to fit a 20x20 box; place
it in a 28x28 canvas so that its center of mass is at the center. For other image sizes the
box and canvas scale with the side (20/28 of it).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mnistlab.errors import DataError

INK_THRESHOLD = 0.1


def read_gray(path: str | os.PathLike) -> np.ndarray:
    """The image as float32 gray levels in [0, 1]: (h, w)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                # Transparent pixels count as paper (white) behind the ink.
                background = Image.new("RGBA", image.size, (255, 255, 255, 255))
                image = Image.alpha_composite(background, image.convert("RGBA"))
            gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path}: not a readable image ({exc})") from None
    return gray


def mnist_style(
    gray: np.ndarray, side: int = 28, *, box_fraction: float = 20 / 28, where: str = "image"
) -> np.ndarray:
    """Preprocess one gray image (values in [0, 1]) into a (side, side) float32 array in [0, 1].

    box_fraction: the share of the side the ink is scaled to (MNIST: 20 of 28 pixels; the 8x8
    `digits` fill their frame: 1.0).
    """
    from PIL import Image

    if gray.ndim != 2 or gray.size == 0:
        raise DataError(f"{where}: expected a 2-D image, got shape {gray.shape}")
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:  # light background: make the ink the bright part
        gray = 1.0 - gray
    gray = gray - np.median(border if np.median(border) <= 0.5 else 1.0 - border)
    gray = np.clip(gray, 0.0, None)
    peak = gray.max()
    if peak <= 0:
        raise DataError(f"{where}: the image is blank (no ink found)")
    gray = gray / peak
    rows = np.flatnonzero(gray.max(axis=1) > INK_THRESHOLD)
    cols = np.flatnonzero(gray.max(axis=0) > INK_THRESHOLD)
    crop = gray[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    box = max(1, round(side * box_fraction))
    scale = box / max(crop.shape)
    height = max(1, round(crop.shape[0] * scale))
    width = max(1, round(crop.shape[1] * scale))
    resized = Image.fromarray((crop * 255).astype(np.uint8)).resize(
        (width, height), Image.Resampling.LANCZOS
    )
    glyph = np.asarray(resized, dtype=np.float32) / 255.0
    canvas = np.zeros((side, side), dtype=np.float32)
    top, left = (side - height) // 2, (side - width) // 2
    canvas[top : top + height, left : left + width] = glyph
    # Shift so that the center of mass sits at the center of the canvas.
    total = canvas.sum()
    ys, xs = np.indices(canvas.shape)
    dy = round((side - 1) / 2 - (ys * canvas).sum() / total)
    dx = round((side - 1) / 2 - (xs * canvas).sum() / total)
    shifted = np.zeros_like(canvas)
    src_y = slice(max(0, -dy), min(side, side - dy))
    dst_y = slice(max(0, dy), min(side, side + dy))
    src_x = slice(max(0, -dx), min(side, side - dx))
    dst_x = slice(max(0, dx), min(side, side + dx))
    shifted[dst_y, dst_x] = canvas[src_y, src_x]
    return shifted


def load_for_prediction(
    path: str | os.PathLike, side: int = 28, box_fraction: float = 20 / 28
) -> np.ndarray:
    """Read and preprocess one image file: (side, side) float32 in [0, 1]."""
    return mnist_style(read_gray(path), side, box_fraction=box_fraction, where=str(path))

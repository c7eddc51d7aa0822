"""From a picture of one object to a model's input: the steps that made its training images.

A model only knows images made the way its training images were, so a photo or a drawing is
brought into that form first. One style per way of making a dataset::

  mnist    MNIST and KMNIST (LeCun et al.): the ink, light on dark, scaled to fit a 20x20 box
           keeping its aspect ratio, placed in 28x28 with its center of mass at the center.
  fashion  Fashion-MNIST (Xiao et al. 2017): trimmed to the object, its longest side scaled to
           the full 28 pixels keeping the aspect ratio, the box centered; intensities kept.
  digits   scikit-learn's 8x8 digits (UCI optdigits): the ink scaled to fit a 32x32 bitmap,
           centered, and each 4x4 block's count of ink pixels (0..16) taken as one pixel (here
           divided by 16, as the training data were).
  resize   images that were never normalized (a folder of PNGs): the whole picture resized.
  none     the picture as it is; it must already have the model's size.

Light or dark background: the training images have one (`background`, "dark" for the MNIST
family), and `invert="auto"` inverts a picture whose background (the median of its border) is
the other one; "yes" and "no" decide it outright. Which style and background a run's data
have is recorded in its dataset.json (`preprocess_meta`); `Preprocessing.from_run` reads it
back. Every function here works on float gray levels in [0, 1] (mnistlab.data.images.read_gray).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from mnistlab.data.dataset import Dataset
from mnistlab.errors import DataError, UsageError

STYLES = ("mnist", "fashion", "digits", "resize", "none")
INVERT = ("auto", "yes", "no")
BACKGROUNDS = ("dark", "light")
#: the named datasets' styles; other datasets are measured (`measure_style`)
NAMED_STYLES = {"mnist": "mnist", "kmnist": "mnist", "fashion-mnist": "fashion", "digits": "digits"}
#: MNIST's box: 20 of 28 pixels
MNIST_BOX = 20 / 28
#: ink is what exceeds this share of the brightest ink (the crop's threshold)
INK_THRESHOLD = 0.1
#: Fashion-MNIST trimmed what lay within 5% of the background's color
FASHION_THRESHOLD = 0.05
#: optdigits' bitmaps are 4x4 blocks per pixel of the 8x8 image
DIGITS_BLOCK = 4


@dataclass(frozen=True)
class Preprocessing:
    """How a picture becomes one model input: __call__(gray) -> (height, width) in [0, 1].

    style: one of STYLES; image_shape: the training images' (height, width); background: the
    training images' background ("dark" or "light"); invert: "auto", "yes" or "no".
    """

    style: str = "mnist"
    image_shape: tuple[int, int] = (28, 28)
    background: str = "dark"
    invert: str = "auto"

    def __post_init__(self) -> None:
        for name, value, valid in (
            ("preprocess", self.style, STYLES),
            ("invert", self.invert, INVERT),
            ("background", self.background, BACKGROUNDS),
        ):
            if value not in valid:
                raise UsageError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
        if len(self.image_shape) != 2 or min(self.image_shape) < 1:
            raise UsageError(f"image_shape must be (height, width), got {self.image_shape}")
        if self.style == "digits" and tuple(self.image_shape) != (8, 8):
            raise UsageError(f"the digits style makes 8x8 images, not {self.image_shape}")

    @classmethod
    def from_run(
        cls, dataset: dict, *, style: str | None = None, invert: str = "auto"
    ) -> Preprocessing:
        """The preprocessing of a run's data from its dataset.json (`dataset`); `style`
        overrides the recorded one. A dataset.json written before the style was recorded gets
        its dataset's named style, "resize" for PNG folders, "mnist" for the rest."""
        shape = tuple(int(side) for side in dataset["image_shape"])
        recorded = dataset.get("preprocess") or NAMED_STYLES.get(
            dataset.get("name", ""), "resize" if dataset.get("format") == "png" else "mnist"
        )
        background = dataset.get("background", "dark")
        return cls(style or recorded, shape, background, invert)  # type: ignore[arg-type]

    def __call__(self, gray: np.ndarray, where: str = "image") -> np.ndarray:
        """gray: (h, w) gray levels in [0, 1] -> the model's (height, width) float32 input."""
        gray = np.asarray(gray, dtype=np.float32)
        if gray.ndim != 2 or gray.size == 0:
            raise DataError(f"{where}: expected a 2-D image, got shape {gray.shape}")
        target = self.background if self.style in ("resize", "none") else "dark"
        oriented = _orient(gray, self.invert, target)
        return STEPS[self.style](self, oriented, where)


# ---------------------------------------------------------------- the styles


def _mnist(prep: Preprocessing, gray: np.ndarray, where: str) -> np.ndarray:
    height, width = prep.image_shape
    ink = _ink(gray, where, normalize=True)
    box = (max(1, round(height * MNIST_BOX)), max(1, round(width * MNIST_BOX)))
    glyph = _fit(_crop(ink, INK_THRESHOLD), box)
    return _center_of_mass(_place(glyph, prep.image_shape))


def _fashion(prep: Preprocessing, gray: np.ndarray, where: str) -> np.ndarray:
    ink = _ink(gray, where, normalize=False)
    return _place(_fit(_crop(ink, FASHION_THRESHOLD), prep.image_shape), prep.image_shape)


def _digits(prep: Preprocessing, gray: np.ndarray, where: str) -> np.ndarray:
    height, width = prep.image_shape
    ink = _ink(gray, where, normalize=True)
    bitmap_shape = (height * DIGITS_BLOCK, width * DIGITS_BLOCK)
    bitmap = _place(_fit(_crop(ink, INK_THRESHOLD), bitmap_shape), bitmap_shape)
    # a block's mean is its count of ink pixels / 16 for a black-and-white bitmap, and the
    # expected count for the gray levels of an antialiased one
    return bitmap.reshape(height, DIGITS_BLOCK, width, DIGITS_BLOCK).mean(axis=(1, 3))


def _resize(prep: Preprocessing, gray: np.ndarray, where: str) -> np.ndarray:
    return _resized(gray, prep.image_shape)


def _none(prep: Preprocessing, gray: np.ndarray, where: str) -> np.ndarray:
    if gray.shape != tuple(prep.image_shape):
        height, width = prep.image_shape
        raise DataError(
            f"{where}: is {gray.shape[1]}x{gray.shape[0]} pixels; --preprocess none needs the "
            f"model's {width}x{height}"
        )
    return gray


STEPS: dict[str, Callable[[Preprocessing, np.ndarray, str], np.ndarray]] = {
    "mnist": _mnist,
    "fashion": _fashion,
    "digits": _digits,
    "resize": _resize,
    "none": _none,
}


# ---------------------------------------------------------------- the steps


def _border(gray: np.ndarray) -> np.ndarray:
    return np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])


def _orient(gray: np.ndarray, invert: str, target: str) -> np.ndarray:
    """The picture with the target background: inverted if told, or ("auto") if its border's
    median says its background is the other one."""
    if invert == "auto":
        light = float(np.median(_border(gray))) > 0.5
        flip = light != (target == "light")
    else:
        flip = invert == "yes"
    return 1.0 - gray if flip else gray


def _ink(gray: np.ndarray, where: str, *, normalize: bool) -> np.ndarray:
    """How far each pixel stands out from the (dark) background, in [0, 1]: the border's median
    level becomes 0 and white stays 1; with `normalize`, the brightest ink becomes 1 too (pen,
    pencil and chalk alike)."""
    background = float(np.median(_border(gray)))
    ink = np.clip((gray - background) / max(1.0 - background, 1e-6), 0.0, 1.0)
    peak = float(ink.max())
    if peak <= FASHION_THRESHOLD:
        raise DataError(f"{where}: the image is blank (nothing stands out from its background)")
    return ink / peak if normalize else ink


def _crop(ink: np.ndarray, threshold: float) -> np.ndarray:
    """The bounding box of the pixels above `threshold` times the brightest one."""
    mask = ink > threshold * float(ink.max())
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _fit(crop: np.ndarray, box: tuple[int, int]) -> np.ndarray:
    """`crop` scaled (aspect ratio kept) to fit a (height, width) box, touching two sides."""
    scale = min(box[0] / crop.shape[0], box[1] / crop.shape[1])
    size = (max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale)))
    return _resized(crop, (min(size[0], box[0]), min(size[1], box[1])))


def _resized(gray: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Lanczos resampling (antialiased when shrinking) in float; its overshoot clipped."""
    height, width = shape
    if gray.shape == (height, width):
        return gray.astype(np.float32, copy=True)
    picture = Image.fromarray(np.ascontiguousarray(gray, dtype=np.float32), mode="F")
    resized = picture.resize((width, height), Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def _place(glyph: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """`glyph` in the middle of a black canvas of `shape`."""
    canvas = np.zeros(shape, dtype=np.float32)
    top, left = (shape[0] - glyph.shape[0]) // 2, (shape[1] - glyph.shape[1]) // 2
    canvas[top : top + glyph.shape[0], left : left + glyph.shape[1]] = glyph
    return canvas


def _center_of_mass(canvas: np.ndarray) -> np.ndarray:
    """The canvas shifted by whole pixels so that its center of mass is at its center."""
    total = float(canvas.sum())
    ys, xs = np.indices(canvas.shape)
    height, width = canvas.shape
    dy = round((height - 1) / 2 - float((ys * canvas).sum()) / total)
    dx = round((width - 1) / 2 - float((xs * canvas).sum()) / total)
    shifted = np.zeros_like(canvas)
    shifted[max(0, dy) : height + min(0, dy), max(0, dx) : width + min(0, dx)] = canvas[
        max(0, -dy) : height - max(0, dy), max(0, -dx) : width - max(0, dx)
    ]
    return shifted


# ---------------------------------------------------------------- recording a dataset's style


def preprocess_meta(dataset: Dataset) -> dict:
    """What dataset.json records of how the training images were made: {"preprocess": style,
    "background": "dark" | "light"}; measured on (up to) the first 1,000 training images."""
    sample = np.asarray(dataset.x_train[:1000], dtype=np.float32) / np.float32(dataset.pixel_max)
    border = np.concatenate([sample[:, 0], sample[:, -1], sample[:, :, 0], sample[:, :, -1]], 1)
    background = "light" if float(np.median(border)) > 0.5 else "dark"
    style = NAMED_STYLES.get(dataset.name) or measure_style(sample, background)
    return {"preprocess": style, "background": background}


def measure_style(images: np.ndarray, background: str = "dark") -> str:
    """The style that fits images of unknown origin: (n, h, w) in [0, 1]. "mnist" when the ink
    of a typical image spans about 20/28 of the side on a dark background, "fashion" when it
    fills the frame, "resize" otherwise."""
    ink = 1.0 - images if background == "light" else images
    mask = ink > INK_THRESHOLD * ink.max(axis=(1, 2), keepdims=True)
    height, width = images.shape[1:]
    rows, cols = mask.any(axis=2), mask.any(axis=1)
    extent = np.maximum(rows.sum(1) / height, cols.sum(1) / width)
    span = float(np.median(extent))
    if background == "dark" and abs(span - MNIST_BOX) < 0.08:
        return "mnist"
    if background == "dark" and span > 0.93:
        return "fashion"
    return "resize"

"""The image shape behind an estimator's rows of pixels.

The estimators take images as rows of pixels (n, height * width * channels) or as arrays of
images: (n, height, width), (n, height, width, channels) channels last, or (n, channels,
height, width) channels first as PyTorch writes them. A model that works on images (a
convolutional network, or any network trained with augmentation) needs their shape back; rows
of a square number of pixels are read as square single-channel images (784 -> 28 x 28, 64 ->
8 x 8).
"""

from __future__ import annotations

import math

import numpy as np

from mnistlab.errors import UsageError

#: channel counts that an axis of a 4-D array of images may be (grey, RGB, RGBA)
CHANNEL_COUNTS = (1, 3, 4)


def channels_last(X):
    """A 4-D array of images channels first, (n, channels, height, width), as channels last;
    anything else as it is. For one channel it is the same memory, so no copy is made."""
    if (
        isinstance(X, np.ndarray)
        and X.ndim == 4
        and X.shape[1] in CHANNEL_COUNTS
        and X.shape[3] not in CHANNEL_COUNTS
    ):
        return np.moveaxis(X, 1, -1)
    return X


def image_shape_of(X, n_features: int) -> tuple[int, int, int] | None:
    """(height, width, channels) of the images in X (already channels last), or for rows of
    pixels the square single-channel shape with `n_features` pixels; None when rows are not a
    square number of pixels."""
    if isinstance(X, np.ndarray) and X.ndim == 3:
        return int(X.shape[1]), int(X.shape[2]), 1
    if isinstance(X, np.ndarray) and X.ndim == 4:
        return int(X.shape[1]), int(X.shape[2]), int(X.shape[3])
    side = math.isqrt(n_features)
    return (side, side, 1) if side * side == n_features else None


def require_image_shape(shape, n_features: int, what: str) -> tuple[int, int, int]:
    """`shape`, or a UsageError saying that `what` needs X as images."""
    if shape is None:
        raise UsageError(
            f"{what} needs images: X has rows of {n_features} pixels, not a square number; pass "
            "X as images of shape (n, height, width) or (n, height, width, channels)"
        )
    return shape

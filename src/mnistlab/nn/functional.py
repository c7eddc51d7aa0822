"""Small array functions shared by layers, losses and models.

The network's matrix products and bias additions are methods of the model's BLAS setting
(mnistlab.backend.blas.Blas: gemm, add_rows), which decides which BLAS library runs them.
"""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in a new array, stable for any finite input (the row maximum is
    subtracted before exp, so every term lies in (0, 1])."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def image_chunks(batch: int, bytes_per_image: int, budget: int) -> list[slice]:
    """Slices of range(batch), each of as many images as fit in `budget` bytes at
    `bytes_per_image` (at least one): a memory-bound layer works through the batch a chunk at a
    time, so that what one pass writes is still in the core's cache when the next reads it."""
    step = max(1, budget // max(bytes_per_image, 1))
    return [slice(start, min(start + step, batch)) for start in range(0, batch, step)]


def new_work_array(shape: tuple[int, ...], dtype, fill=None) -> np.ndarray:
    """A work array: uninitialized (fill None), or filled once with a number."""
    if fill is None:
        return np.empty(shape, dtype=dtype)
    return np.full(shape, fill, dtype=dtype)

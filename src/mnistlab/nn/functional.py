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


def new_work_array(shape: tuple[int, ...], dtype, fill=None) -> np.ndarray:
    """A work array: uninitialized (fill None), or filled once with a number."""
    if fill is None:
        return np.empty(shape, dtype=dtype)
    return np.full(shape, fill, dtype=dtype)

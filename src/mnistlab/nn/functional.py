"""Small array functions shared by layers, losses and models."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in a new array, stable for any finite input (the row maximum is
    subtracted before exp, so every term lies in (0, 1])."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def cached(store: dict, key, shape: tuple[int, ...], dtype, fill=None) -> np.ndarray:
    """A work array kept in `store` under (key, shape, dtype) and reused on later calls.

    fill: None leaves it uninitialized; a number fills it once at creation; "arange" numbers it.
    """
    slot = (key, shape, dtype)  # dtype as the caller passes it: no conversion per step
    array = store.get(slot)
    if array is None:
        if fill is None:
            array = np.empty(shape, dtype=dtype)
        elif fill == "arange":
            array = np.arange(shape[0], dtype=dtype)
        else:
            array = np.full(shape, fill, dtype=dtype)
        store[slot] = array
    return array

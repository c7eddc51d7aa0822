"""Looking inside models: principal components from scratch and a layer's activations."""

from __future__ import annotations

import numpy as np


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project rows of x onto their first two principal components.

    x: (n, features). Returns (points (n, 2), explained variance ratio (2,)). The components are the
    top right-singular vectors of the centered data; signs are fixed so that the largest loading of
    each component is positive, which makes the picture reproducible.
    """
    x = np.asarray(x, dtype=np.float64)
    centered = x - x.mean(axis=0)
    _, singular, vt = np.linalg.svd(centered, full_matrices=False)
    components = vt[:2]
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    components = components * signs[:, None]
    total = float(np.sum(singular**2)) or 1.0
    return centered @ components.T, singular[:2] ** 2 / total


def layer_activations(model, x: np.ndarray, layer_index: int, batch_size: int = 4096):
    """Outputs of layer `layer_index` of a Sequential model in inference mode: (n, width)."""
    x = np.asarray(x, dtype=model.dtype).reshape(len(x), -1)
    width = model.layers[layer_index].output_shape[0]
    out = np.empty((x.shape[0], width), dtype=model.dtype)
    for start in range(0, x.shape[0], batch_size):
        h = x[start : start + batch_size]
        for layer in model.layers[: layer_index + 1]:
            h = layer.forward(h, training=False)
        out[start : start + batch_size] = h
    return out


def last_hidden_index(model) -> int:
    """Index of the last layer before the output Dense layer (the last hidden representation)."""
    return max(0, len(model.layers) - 2)

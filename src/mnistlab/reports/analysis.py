"""Looking inside models: principal components from scratch, a layer's activations, the
names the network's summary gives its layers, and one image's path through the first layers."""

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


def _inputs(model, x: np.ndarray) -> np.ndarray:
    """x as a Sequential model's first layer takes it: rows of features, or images of the
    model's input shape (a convolution's (height, width, channels))."""
    x = np.asarray(x, dtype=model.dtype)
    shape = tuple(getattr(model, "input_shape", ()) or ())
    if len(shape) > 1:
        return x.reshape(len(x), *shape)
    return x.reshape(len(x), -1)


def layer_activations(model, x: np.ndarray, layer_index: int, batch_size: int | None = None):
    """Outputs of layer `layer_index` of a Sequential model in inference mode, each flattened:
    (n, width). batch_size: the model's inference chunk by default (smaller for images, whose
    convolutions copy every window)."""
    x = _inputs(model, x)
    if batch_size is None:
        chunk = getattr(model, "inference_batch_size", None)  # Sequential's property
        batch_size = int(chunk) if isinstance(chunk, (int, np.integer)) else 4096
    width = int(np.prod(model.layers[layer_index].output_shape))
    out = np.empty((x.shape[0], width), dtype=model.dtype)
    for start in range(0, x.shape[0], batch_size):
        h = x[start : start + batch_size]
        for layer in model.layers[: layer_index + 1]:
            h = layer.forward(h, training=False)
        out[start : start + batch_size] = h.reshape(len(h), -1)
    return out


def layer_outputs(model, example: np.ndarray, indices) -> dict[int, np.ndarray]:
    """One example's outputs after each layer in `indices` (inference mode), unflattened:
    ``{index: array of layer.output_shape}``. Copies, since a layer may reuse its output
    buffer."""
    h = _inputs(model, np.asarray(example)[None])
    wanted = set(indices)
    outputs = {}
    for index, layer in enumerate(model.layers[: max(wanted) + 1]):
        h = layer.forward(h, training=False)
        if index in wanted:
            outputs[index] = np.array(h[0], copy=True)
    return outputs


def last_hidden_index(model) -> int:
    """Index of the last layer before the output Dense layer (the last hidden representation)."""
    return max(0, len(model.layers) - 2)


def layer_names(model) -> list[str]:
    """Each layer's name as the model's summary shows it (dense_0, re_lu_1, ...): one source, so
    that every figure and caption names a layer as the summary does."""
    return [label.rsplit(" (", 1)[0] for label, _, _ in model.summary_rows()]


def conv_indices(model) -> list[int]:
    """Indices of the network's Conv2D layers, in order."""
    return [i for i, layer in enumerate(model.layers) if layer.kind == "Conv2D"]


def relu_past_pool(model, index: int) -> int | None:
    """The index of a ReLU that comes right after a MaxPool2D right after layer `index`, or
    None. build_cnn puts a ReLU after the pool (the same values as before it): applied to layer
    `index`'s output, that ReLU gives the maps as the textbook order has them."""
    kinds = [layer.kind for layer in model.layers[index + 1 : index + 3]]
    return index + 2 if kinds == ["MaxPool2D", "ReLU"] else None


def through_activation(model, index: int) -> int:
    """The index of the last layer that keeps layer `index`'s output shape and has no weights
    right after it (its activation, BatchNorm): a convolution's feature maps as the next layer
    sees them."""
    shape = model.layers[index].output_shape
    while index + 1 < len(model.layers):
        following = model.layers[index + 1]
        if following.output_shape != shape or hasattr(following, "weight"):
            break
        index += 1
    return index

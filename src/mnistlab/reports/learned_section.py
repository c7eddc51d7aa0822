"""A report's look inside the model: what it learned (weights as images and their
distributions, a convolution's kernels and feature maps, or what a classical model keeps) and a
2-D map of its representation of the test images.

Layers are named as the model's summary names them (`analysis.layer_names`: dense_0, dense_3),
in every figure and caption. A network is read through the fitted estimator's ``model_`` (a
Sequential), whatever the estimator: an MLP or a convolutional network.
"""

from __future__ import annotations

import html

import numpy as np

from mnistlab.errors import UsageError
from mnistlab.reports import plots
from mnistlab.reports.analysis import (
    conv_indices,
    last_hidden_index,
    layer_activations,
    layer_names,
    layer_outputs,
    pca_2d,
    relu_past_pool,
    through_activation,
)
from mnistlab.reports.conv_plots import conv_kernels, feature_maps
from mnistlab.reports.html import Figures

#: test images whose activations are mapped
MAPPED_IMAGES = 3000


def learned(content, figures: Figures) -> str:
    """Weights as images and weight distributions (networks), a convolution's kernels and one
    image's feature maps (networks starting with one), or what each classical model keeps."""
    model, shape, names = content.model, content.image_shape, content.class_names
    if hasattr(model, "model_"):
        network = model.model_
        if network.layers[0].kind == "Conv2D":
            front = _conv_front(network, content, figures)
        else:
            front = _dense_tiles(network, shape, figures)
        return front + "\n" + _distributions(network, content.initial_weights, figures)
    if hasattr(model, "coef_"):  # softmax / one-vs-all: one weight image per class
        images, title, alt = model.coef_, "weights of each class", "class weights"
    elif hasattr(model, "means_"):  # Gaussian: the class means
        images = model.means_ - model.means_.mean(axis=0)
        title, alt = "class means minus the overall mean", "class means"
    elif content.x_train is not None:  # k-NN keeps the training set: show its class means
        x_train, y_train = content.x_train, content.y_train
        means = np.array([x_train[y_train == k].mean(axis=0) for k in range(len(names))])
        images = means - means.mean(axis=0)
        title = "k-NN stores the training images; their class means minus the overall mean"
        alt = "training class means"
    else:
        return "<p>This model keeps its training images; give them to see their class means.</p>"
    return figures.embed(plots.weight_images(images, shape, titles=names, title=title), alt)


def weighted_layers(network) -> list[tuple[str, object]]:
    """(summary name, layer) of each layer with a weight matrix or kernel, in order."""
    names = layer_names(network)
    return [(names[i], layer) for i, layer in enumerate(network.layers) if hasattr(layer, "weight")]


def _dense_tiles(network, shape: tuple, figures: Figures) -> str:
    """The first Dense layer's weights, one tile per unit, as images of the input."""
    name, first = weighted_layers(network)[0]
    return figures.embed(
        plots.weight_images(
            first.weight.data.T,
            shape,
            max_tiles=32,
            title=f"{name} weights, one tile per unit",
        ),
        "first-layer weights",
    )


def _distributions(network, initial: dict | None, figures: Figures) -> str:
    """Every weighted layer's weight distribution now and, where known, at initialization."""
    now = {name: layer.weight.data for name, layer in weighted_layers(network)}
    if initial is not None and set(initial) != set(now):
        initial = None  # saved under other names: not comparable layer by layer
    return figures.embed(plots.weight_distributions(now, initial), "weight distributions")


def _conv_front(network, content, figures: Figures) -> str:
    """The first convolution's kernels, then the first test image's feature maps after the
    first convolution (and the second, where there is one), each through its activation."""
    names = layer_names(network)
    convs = conv_indices(network)
    first = network.layers[convs[0]]
    kh, kw, channels, filters = first.weight.data.shape
    out = [
        f"<p>{names[convs[0]]}: {filters} filters of {kh}x{kw}"
        + (f" over {channels} input channels" if channels > 1 else "")
        + ".</p>",
        figures.embed(
            conv_kernels(
                first.weight.data, title=f"{names[convs[0]]} kernels, one tile per filter"
            ),
            "first convolution kernels",
        ),
    ]
    ends = [through_activation(network, index) for index in convs[:2]]
    maps = layer_outputs(network, content.x_test[0], ends)
    shown = content.class_names[int(content.y_test[0])]
    for index, end in zip(convs[:2], ends, strict=True):
        after = names[index] + (f" and {names[end]}" if end != index else "")
        shown_maps, relu = maps[end], relu_past_pool(network, end)
        if relu is not None:
            shown_maps = np.maximum(shown_maps, 0)
            after += f" and {names[relu]}"
        height, width, count = shown_maps.shape
        title = f"test image 0 ({shown}) after {after}: {count} maps of {height}x{width}"
        out.append(figures.embed(feature_maps(shown_maps, title), f"feature maps {names[index]}"))
    return "\n".join(out)


def activation_map(content, layer: int | None, figures: Figures) -> str:
    """A 2-D map of the test images: a network layer's activations, or the input pixels for a
    model without hidden layers; directly when 2 wide, otherwise their first two principal
    components, the axes named with the variance each explains."""
    model, x_test, y_test = content.model, content.x_test, content.y_test
    sample = np.arange(min(MAPPED_IMAGES, x_test.shape[0]))
    if hasattr(model, "model_"):
        network = model.model_
        count = len(network.layers)
        if layer is not None and not -count <= layer < count:
            raise UsageError(
                f"--layer must be a layer index from 0 to {count - 1} (or -1 to -{count} from "
                f"the end), got {layer}"
            )
        index = last_hidden_index(network) if layer is None else layer % count
        values = layer_activations(network, x_test[sample], index)
        layer_name = layer_names(network)[index]
        what = f"the activations of layer {index}, {layer_name} ({values.shape[1]} wide)"
    else:
        values = np.asarray(x_test[sample], dtype=np.float64)
        what = (
            f"the input pixels ({values.shape[1]} per image; a {type(model).__name__} has no "
            "hidden layer to map)"
        )
    if values.shape[1] == 2:
        points, caption, axes = values, f"{what}: its two units directly", ("unit 0", "unit 1")
    else:
        points, ratio = pca_2d(values)
        caption = (
            f"{what}: their first two principal components (computed from scratch), "
            f"{ratio.sum():.0%} of the variance"
        )
        axes = (f"PC1 ({ratio[0]:.1%} of the variance)", f"PC2 ({ratio[1]:.1%})")
    title = "test images mapped by their " + ("pixels" if "pixels" in what else "activations")
    fig = plots.activation_map(points, y_test[sample], content.class_names, title, axes)
    text = f"<p>What is shown: {html.escape(caption)}; the first {sample.size} test images, "
    text += "coloured by their true class.</p>"
    return text + figures.embed(fig, "activation map")


__all__ = ["MAPPED_IMAGES", "activation_map", "learned", "weighted_layers"]

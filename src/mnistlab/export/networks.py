"""A Sequential network as ONNX nodes, layer by layer, in the network's own dtype.

Each layer kind has one exporter, found by the layer's `kind` in LAYER_EXPORTERS (a network
holding a kind without one is refused by name). Dense is a Gemm; a BatchNorm right after a
Dense is folded into it (W' = W * s, b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps)),
or, with fold_batchnorm=False or anywhere else, exported as BatchNormalization; Dropout,
SpatialDropout2D and Identity vanish at inference. The network's outputs are logits; the
estimator's probabilities are their softmax (mnistlab.export.onnx adds it).

Images: mnistlab's image layers work on NHWC arrays, ONNX's Conv and pooling on NCHW. The input
rows are reshaped to the network's (height, width, channels) and transposed to NCHW once;
Conv2D's kernel (kh, kw, in, out) becomes (out, in, kh, kw); Flatten transposes back to NHWC
before flattening, so that the Dense layers after it see the features in mnistlab's order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from mnistlab.errors import UsageError

if TYPE_CHECKING:  # only for the annotations: this module needs no onnx
    from mnistlab.export.graph import GraphBuilder


def _dense(graph: GraphBuilder, layer, value: str, index: int) -> str:
    bias = layer.bias.data if layer.bias is not None else None
    return graph.affine(value, layer.weight.data, bias, f"dense{index}")


def _batchnorm(graph: GraphBuilder, layer, value: str, index: int) -> str:
    dtype = layer.gamma.data.dtype
    arrays = [layer.gamma.data, layer.beta.data, layer.running_mean, layer.running_var]
    names = [
        graph.constant(array, f"batchnorm{index}_{part}", dtype=dtype)
        for array, part in zip(arrays, ("scale", "bias", "mean", "var"), strict=True)
    ]
    return graph.node(
        "BatchNormalization", value, *names, epsilon=float(layer.eps), name=f"batchnorm{index}"
    )


def _conv2d(graph: GraphBuilder, layer, value: str, index: int) -> str:
    height, width, _ = layer.input_shape
    (top, bottom), (left, right) = conv_paddings(layer, height, width)
    kernel = graph.constant(layer.weight.data.transpose(3, 2, 0, 1), f"conv{index}_weight")
    inputs = [value, kernel]
    if layer.bias is not None:
        inputs.append(graph.constant(layer.bias.data, f"conv{index}_bias"))
    return graph.node(
        "Conv",
        *inputs,
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.stride),
        pads=[top, left, bottom, right],
        name=f"conv{index}",
    )


def conv_paddings(layer, height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, bottom), (left, right)) zeros, as Conv2D pads: "same" gives ceil(size / stride)
    outputs with the odd zero below and to the right."""
    if layer.padding == "valid":
        return (0, 0), (0, 0)
    if layer.padding == "same":
        sides = []
        sizes = zip((height, width), layer.kernel_size, layer.stride, strict=True)
        for size, kernel, stride in sizes:
            total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
            sides.append((total // 2, total - total // 2))
        return sides[0], sides[1]
    rows, columns = layer.padding
    return (rows, rows), (columns, columns)


def _pool(op: str) -> Callable[[GraphBuilder, object, str, int], str]:
    def export(graph: GraphBuilder, layer, value: str, index: int) -> str:
        return graph.node(
            op,
            value,
            kernel_shape=list(layer.pool_size),
            strides=list(layer.stride),
            name=f"{op.lower()}{index}",
        )

    return export


def _flatten(graph: GraphBuilder, layer, value: str, index: int) -> str:
    if len(layer.input_shape) == 3:  # NCHW back to mnistlab's NHWC order first
        value = graph.node("Transpose", value, perm=[0, 2, 3, 1], name=f"to_nhwc{index}")
    return graph.node("Flatten", value, axis=1, name=f"flatten{index}")


def _passthrough(graph: GraphBuilder, layer, value: str, index: int) -> str:
    return value


def _elementwise(op: str) -> Callable[[GraphBuilder, object, str, int], str]:
    def export(graph: GraphBuilder, layer, value: str, index: int) -> str:
        return graph.node(op, value, name=f"{op.lower()}{index}")

    return export


def _leaky_relu(graph: GraphBuilder, layer, value: str, index: int) -> str:
    return graph.node("LeakyRelu", value, alpha=float(layer.slope), name=f"leakyrelu{index}")


def _softmax(graph: GraphBuilder, layer, value: str, index: int) -> str:
    if len(layer.input_shape) != 1:
        raise UsageError(f"cannot export to ONNX: layer {index} is a Softmax over images")
    return graph.node("Softmax", value, axis=1, name=f"softmax{index}")


#: layer kind -> exporter(graph, layer, input name, layer index) -> output name
LAYER_EXPORTERS: dict[str, Callable[[GraphBuilder, object, str, int], str]] = {
    "Dense": _dense,
    "BatchNorm": _batchnorm,
    "Dropout": _passthrough,
    "Identity": _passthrough,
    "ReLU": _elementwise("Relu"),
    "Sigmoid": _elementwise("Sigmoid"),
    "Tanh": _elementwise("Tanh"),
    "LeakyReLU": _leaky_relu,
    "Softmax": _softmax,
    "Conv2D": _conv2d,
    "MaxPool2D": _pool("MaxPool"),
    "AvgPool2D": _pool("AveragePool"),
    "Flatten": _flatten,
    "SpatialDropout2D": _passthrough,
}


def _kind(layer) -> str | None:
    return getattr(layer, "kind", type(layer).__name__) if layer is not None else None


def check_exportable(layers) -> None:
    """UsageError naming the first layer whose kind has no ONNX exporter."""
    for index, layer in enumerate(layers):
        kind = _kind(layer)
        if kind not in LAYER_EXPORTERS:
            raise UsageError(
                f"cannot export to ONNX: layer {index} is a {kind}, which has no ONNX export "
                f"yet (exportable layers: {', '.join(LAYER_EXPORTERS)})"
            )


def folded_dense(dense, batchnorm) -> tuple[np.ndarray, np.ndarray]:
    """(W', b') of Dense followed by BatchNorm at inference, as one affine map (float64)."""
    scale = batchnorm.gamma.data.astype(np.float64) / np.sqrt(
        batchnorm.running_var.astype(np.float64) + batchnorm.eps
    )
    weight = dense.weight.data.astype(np.float64) * scale
    bias = dense.bias.data.astype(np.float64) if dense.bias is not None else 0.0
    bias = (bias - batchnorm.running_mean) * scale + batchnorm.beta.data
    return weight, bias


def network_logits(graph: GraphBuilder, network, value: str, *, fold_batchnorm: bool) -> str:
    """The nodes of `network` (a built Sequential) applied to `value`, already in the network's
    dtype; returns the name of its output."""
    layers = list(network.layers)
    check_exportable(layers)
    shape = tuple(getattr(network, "input_shape", None) or (network.input_features,))
    if len(shape) == 3:  # rows -> NHWC images -> NCHW
        dims = graph.constant(np.array([-1, *shape], dtype=np.int64), "image_shape")
        value = graph.node("Reshape", value, dims, name="images")
        value = graph.node("Transpose", value, perm=[0, 3, 1, 2], name="nchw")
    elif len(shape) != 1:
        raise UsageError(f"cannot export to ONNX: a network over inputs of shape {shape}")
    index = 0
    while index < len(layers):
        layer = layers[index]
        following = layers[index + 1] if index + 1 < len(layers) else None
        if fold_batchnorm and layer.kind == "Dense" and _kind(following) == "BatchNorm":
            weight, bias = folded_dense(layer, following)
            dtype = layer.weight.data.dtype
            value = graph.affine(value, weight.astype(dtype), bias.astype(dtype), f"dense{index}")
            index += 2
            continue
        value = LAYER_EXPORTERS[layer.kind](graph, layer, value, index)
        index += 1
    return value

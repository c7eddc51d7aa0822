"""Layers with parameters or state: Dense, BatchNorm, Dropout, SpatialDropout2D; the registry
of every layer kind.

The layer protocol is mnistlab.nn.base.Layer; activations live in mnistlab.nn.activations, the
image layers in mnistlab.nn.conv (Conv2D), mnistlab.nn.pooling (MaxPool2D, AvgPool2D) and
mnistlab.nn.reshape (Flatten); all are re-exported here. Dense also offers backward_into_sink,
where its weight-gradient GEMM applies an optimizer's update as it computes the gradient
(nn.parameters.GradientSink); Sequential.backward calls it when an optimizer gives a sink.
"""

from __future__ import annotations

import numpy as np

from mnistlab.errors import UsageError
from mnistlab.nn.activations import (
    ACTIVATIONS,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    get_activation,
)
from mnistlab.nn.base import Layer
from mnistlab.nn.conv import Conv2D, check_image_input
from mnistlab.nn.init import Initializer, get_initializer
from mnistlab.nn.parameters import GradientSink, Parameter
from mnistlab.nn.pooling import AvgPool2D, MaxPool2D
from mnistlab.nn.reshape import Flatten

__all__ = [
    "ACTIVATIONS",
    "LAYERS",
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "Identity",
    "Layer",
    "LeakyReLU",
    "MaxPool2D",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "SpatialDropout2D",
    "Tanh",
    "get_activation",
    "layer_from_config",
]


class Dense(Layer):
    """y = x @ W + b with W: (in_features, units), b: (units,).

    For g = dL/dy: (batch, units), backward computes

        dL/dx = g @ W.T        dL/dW = x.T @ g        dL/db = the sum of g's rows
    """

    kind = "Dense"

    def __init__(
        self,
        units: int,
        *,
        init: str | Initializer | dict | None = None,
        bias_init: str | Initializer | dict = "zeros",
        use_bias: bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units <= 0:
            raise UsageError(f"Dense units must be a positive integer, got units={units!r}")
        self.units = int(units)
        self.init = get_initializer(init) if init is not None else None
        self.bias_init = get_initializer(bias_init)
        self.use_bias = use_bias

    def forward(self, x, training=False):
        self._x = x
        y = self._buffer("out", (x.shape[0], self.units))
        self.blas.gemm(x, self.weight.data, y)  # y = x @ W
        if self.bias is not None:
            ones = self._buffer("ones", (x.shape[0],), fill=1)
            self.blas.add_rows(y, self.bias.data, ones)  # y += b
        return y

    def backward(self, grad_out):
        grad_in = self._input_gradient(grad_out)  # g @ W.T
        self.blas.gemm(self._x.T, grad_out, self.weight.grad)  # dL/dW = x.T @ g
        self._bias_gradient(grad_out)
        return grad_in

    def backward_into_sink(self, grad_out: np.ndarray, sink: GradientSink) -> np.ndarray | None:
        """backward(), with dL/dW applied to the sink's target instead of stored in .grad:
        target <- alpha * x.T @ g + beta * target, in the same GEMM (see GradientSink). The
        input's gradient is computed first, while W is still the W of the forward pass."""
        grad_in = self._input_gradient(grad_out)
        target = sink.target(self.weight)
        self.blas.gemm(self._x.T, grad_out, target, sink.alpha, sink.beta)
        self._bias_gradient(grad_out)
        return grad_in

    def _input_gradient(self, grad_out: np.ndarray) -> np.ndarray | None:
        """g @ W.T in a work buffer, or None for the first layer."""
        if not self.needs_input_grad:
            return None
        grad_in = self._buffer("grad_in", self._x.shape)
        self.blas.gemm(grad_out, self.weight.data.T, grad_in)
        return grad_in

    def _bias_gradient(self, grad_out: np.ndarray) -> None:
        """The column sums of g into b.grad, as ones @ g: one BLAS call, several times faster
        than np.sum(axis=0) on minibatch-sized arrays."""
        if self.bias is not None:
            ones = self._buffer("ones", (grad_out.shape[0],), fill=1)
            np.dot(ones, grad_out, out=self.bias.grad)

    def build(self, input_shape, rng, dtype, blas=None):
        super().build(input_shape, rng, dtype, blas)
        (in_features,) = input_shape
        init = self.init or get_initializer("glorot_uniform")
        self.weight = Parameter(
            init((in_features, self.units), rng, dtype), "W", decay=True, gemm_gradient=True
        )
        self.bias = (
            Parameter(self.bias_init((self.units,), rng, dtype), "b", decay=False)
            if self.use_bias
            else None
        )
        self.output_shape = (self.units,)
        return self.output_shape

    def parameters(self):
        return [self.weight] + ([self.bias] if self.bias is not None else [])

    def multiply_adds(self):
        return self.weight.size

    def config(self):
        return {
            "type": self.kind,
            "units": self.units,
            "init": self.init.config() if self.init else None,
            "bias_init": self.bias_init.config(),
            "use_bias": self.use_bias,
        }


class BatchNorm(Layer):
    """Batch normalization over features: y = gamma * (x - mean) / sqrt(var + eps) + beta.

    x: (batch, features), or images (batch, height, width, channels), whose statistics are per
    channel, over the batch and every position (BatchNorm2d's), computed on the
    (batch * height * width, channels) view of x with the same code.

    Training uses the batch's mean and (biased) variance and updates the running statistics as
    running = momentum * running + (1 - momentum) * batch (Keras's convention; PyTorch's
    momentum m corresponds to 1 - m here). Inference uses the running statistics. gamma and beta
    are trainable; running_mean and running_var are not.
    """

    kind = "BatchNorm"

    def __init__(self, momentum: float = 0.99, eps: float = 1e-3, name: str | None = None):
        super().__init__(name)
        if not 0.0 <= momentum < 1.0:
            raise UsageError(f"BatchNorm momentum must be in [0, 1), got momentum={momentum}")
        if not eps > 0:
            raise UsageError(f"BatchNorm eps must be positive, got eps={eps}")
        self.momentum, self.eps = float(momentum), float(eps)

    def build(self, input_shape, rng, dtype, blas=None):
        super().build(input_shape, rng, dtype, blas)
        features = input_shape[-1]
        self.gamma = Parameter(np.ones(features, dtype), "gamma", decay=False)
        self.beta = Parameter(np.zeros(features, dtype), "beta", decay=False)
        self.running_mean = np.zeros(features, dtype)
        self.running_var = np.ones(features, dtype)
        return self.output_shape

    def parameters(self):
        return [self.gamma, self.beta]

    def state(self):
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def config(self):
        return {"type": self.kind, "momentum": self.momentum, "eps": self.eps}

    def forward(self, x, training=False):
        if x.ndim != 2:  # images: one row per (image, position), one column per channel
            return self.forward(x.reshape(-1, x.shape[-1]), training).reshape(x.shape)
        out = self._buffer("out", x.shape)
        xhat = self._buffer("xhat", x.shape)
        features = (x.shape[1],)
        if training:
            # the batch's mean and biased variance as x.mean(0) and x.var(0) compute them (same
            # operations, so the same bits), in work buffers instead of full-size temporaries
            mean = np.mean(x, axis=0, out=self._buffer("mean", features))
            np.subtract(x, mean, out=xhat)
            squares = np.multiply(xhat, xhat, out=self._buffer("scratch", x.shape))
            var = np.mean(squares, axis=0, out=self._buffer("var", features))
            self.running_mean *= self.momentum
            self.running_mean += (1.0 - self.momentum) * mean
            self.running_var *= self.momentum
            self.running_var += (1.0 - self.momentum) * var
        else:
            mean, var = self.running_mean, self.running_var
            np.subtract(x, mean, out=xhat)
        inv_std = 1.0 / np.sqrt(var + self.eps)
        xhat *= inv_std
        np.multiply(xhat, self.gamma.data, out=out)
        out += self.beta.data
        self._inv_std = inv_std.astype(self.dtype, copy=False)
        self._xhat = xhat
        self._training = training
        return out

    def backward(self, grad_out):
        if grad_out.ndim != 2:
            grad_in = self.backward(grad_out.reshape(-1, grad_out.shape[-1]))
            return None if grad_in is None else grad_in.reshape(grad_out.shape)
        xhat, inv_std = self._xhat, self._inv_std
        n = grad_out.shape[0]
        np.sum(grad_out, axis=0, out=self.beta.grad)
        scratch = self._buffer("scratch", grad_out.shape)
        np.multiply(grad_out, xhat, out=scratch)
        np.sum(scratch, axis=0, out=self.gamma.grad)
        if not self.needs_input_grad:
            return None
        grad_in = self._buffer("grad_in", grad_out.shape)
        if not self._training:
            # The running statistics are constants: the layer is affine in x.
            np.multiply(grad_out, self.gamma.data * inv_std, out=grad_in)
            return grad_in
        # The batch statistics depend on x too:
        # dx = gamma * inv_std / n * (n * g - sum(g) - xhat * sum(g * xhat))
        np.multiply(xhat, self.gamma.grad, out=grad_in)
        np.subtract(np.multiply(grad_out, n, out=scratch), grad_in, out=grad_in)
        grad_in -= self.beta.grad
        grad_in *= self.gamma.data * inv_std / n
        return grad_in


class Dropout(Layer):
    """Inverted dropout: in training, zero each unit with probability `rate` and scale the rest
    by 1 / (1 - rate); at inference, the identity. The mask comes from the model's dropout
    Generator, so a seed fixes it. Setting `fixed_mask` (for gradient checks) replaces the draw.
    """

    kind = "Dropout"
    passthrough = True

    def __init__(self, rate: float = 0.5, name: str | None = None) -> None:
        super().__init__(name)
        if not 0.0 <= rate < 1.0:
            raise UsageError(f"{self.kind} rate must be in [0, 1), got rate={rate}")
        self.rate = float(rate)
        self.fixed_mask: np.ndarray | None = None
        self.rng: np.random.Generator | None = None

    def config(self):
        return {"type": self.kind, "rate": self.rate}

    def build(self, input_shape, rng, dtype, blas=None):
        out = super().build(input_shape, rng, dtype, blas)
        if self.rng is None:
            self.rng = rng
        return out

    def forward(self, x, training=False):
        if not training or self.rate == 0.0:
            self._scale = None
            return x
        if self.fixed_mask is not None:
            scale = self.fixed_mask.astype(self.dtype) / (1.0 - self.rate)
        else:
            scale = self._draw_scale(x.shape)
        self._scale = scale
        out = self._out(x)
        np.multiply(x, scale, out=out)
        return out

    def _draw_scale(self, shape: tuple[int, ...]) -> np.ndarray:
        """0 with probability `rate`, else 1 / (1 - rate): a fresh draw into a work buffer."""
        scale = self._buffer("scale", shape)
        self.rng.random(out=scale, dtype=self.dtype)
        np.greater_equal(scale, self.rate, out=scale, casting="unsafe")
        scale *= 1.0 / (1.0 - self.rate)
        return scale

    def backward(self, grad_out):
        if self._scale is None:
            return grad_out
        np.multiply(grad_out, self._scale, out=grad_out)
        return grad_out


class SpatialDropout2D(Dropout):
    """Dropout of whole channels: in training, each image's channel is zeroed (at every
    position) with probability `rate`, the others scaled by 1 / (1 - rate); at inference, the
    identity. Neighbouring positions of a feature map are strongly correlated, so dropping
    single values barely regularizes a convolution; dropping a map does.

    x: (batch, height, width, channels); the mask is (batch, 1, 1, channels), and so is a
    `fixed_mask`.
    """

    kind = "SpatialDropout2D"

    def build(self, input_shape, rng, dtype, blas=None):
        check_image_input(self.kind, tuple(input_shape))
        return super().build(input_shape, rng, dtype, blas)

    def _draw_scale(self, shape):
        return super()._draw_scale((shape[0], 1, 1, shape[-1]))


LAYERS: dict[str, type[Layer]] = {
    cls.kind: cls
    for cls in (
        Dense,
        Identity,
        ReLU,
        LeakyReLU,
        Sigmoid,
        Tanh,
        Softmax,
        BatchNorm,
        Dropout,
        SpatialDropout2D,
        Conv2D,
        MaxPool2D,
        AvgPool2D,
        Flatten,
    )
}


def layer_from_config(config: dict) -> Layer:
    """Rebuild a layer from its config() dict."""
    config = dict(config)
    kind = config.pop("type")
    if kind not in LAYERS:
        raise UsageError(f"unknown layer type {kind!r}; valid: {', '.join(LAYERS)}")
    return LAYERS[kind](**{k: v for k, v in config.items() if v is not None})

"""Activation layers (ReLU, LeakyReLU, Sigmoid, Tanh, Identity) and Softmax, and the registry
of activations by name. Each works elementwise (Softmax row-wise) and has no parameters."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from mnistlab.errors import UsageError
from mnistlab.nn.base import Layer


class Identity(Layer):
    kind = "Identity"
    passthrough = True

    def forward(self, x, training=False):
        return x

    def backward(self, grad_out):
        return grad_out


class ReLU(Layer):
    """max(x, 0); the backward pass zeroes the gradient where the output is zero."""

    kind = "ReLU"
    needs_output = True
    #: arrays up to this many elements are compared with an array of zeros, larger ones with 0
    ZEROS_ARRAY_UP_TO = 1 << 17

    def forward(self, x, training=False):
        out = self._out(x)
        # np.maximum(x, 0) takes NumPy's scalar-operand loop; against an array of zeros it takes
        # the faster two-array SIMD loop, as long as the zeros stay in cache: past
        # ZEROS_ARRAY_UP_TO elements their memory traffic costs more than the loop saves. Same
        # result either way (NaN stays NaN).
        if x.size <= self.ZEROS_ARRAY_UP_TO:
            np.maximum(x, self._buffer("zeros", x.shape, fill=0), out=out)
        else:
            np.maximum(x, 0, out=out)
        self._y = out
        return out

    def backward(self, grad_out):
        mask = self._buffer("mask", grad_out.shape, dtype=bool)
        np.greater(self._y, 0, out=mask)
        # A float mask: multiplying by the boolean one would convert it element by element
        # inside the multiplication's loop; a separate cast to 0.0 / 1.0 and a float-by-float
        # multiplication are two fast loops instead.
        factor = self._buffer("factor", grad_out.shape)
        np.copyto(factor, mask)
        # grad_out is the next layer's work buffer: scaling it in place allocates nothing.
        np.multiply(grad_out, factor, out=grad_out)
        return grad_out


class LeakyReLU(Layer):
    """x where x > 0, slope * x elsewhere."""

    kind = "LeakyReLU"

    def __init__(self, slope: float = 0.01, name: str | None = None) -> None:
        super().__init__(name)
        if not np.isfinite(slope) or slope < 0:
            raise UsageError(f"LeakyReLU slope must be a finite number >= 0, got slope={slope}")
        self.slope = float(slope)

    def config(self):
        return {"type": self.kind, "slope": self.slope}

    def forward(self, x, training=False):
        factor = self._buffer("factor", x.shape)
        # factor = 1 where x > 0, slope elsewhere: one array serves forward and backward.
        np.greater(x, 0, out=factor, casting="unsafe")
        factor *= 1.0 - self.slope
        factor += self.slope
        out = self._out(x)
        np.multiply(x, factor, out=out)
        self._factor = factor
        return out

    def backward(self, grad_out):
        np.multiply(grad_out, self._factor, out=grad_out)
        return grad_out


class Sigmoid(Layer):
    """1 / (1 + exp(-x)), computed without overflow (scipy.special.expit)."""

    kind = "Sigmoid"
    needs_output = True

    def forward(self, x, training=False):
        out = self._out(x)
        expit(x, out=out)
        self._y = out
        return out

    def backward(self, grad_out):
        y = self._y
        scratch = self._buffer("scratch", y.shape)
        np.subtract(1, y, out=scratch)
        scratch *= y
        np.multiply(grad_out, scratch, out=grad_out)
        return grad_out


class Tanh(Layer):
    kind = "Tanh"
    needs_output = True

    def forward(self, x, training=False):
        out = self._out(x)
        np.tanh(x, out=out)
        self._y = out
        return out

    def backward(self, grad_out):
        scratch = self._buffer("scratch", self._y.shape)
        np.multiply(self._y, self._y, out=scratch)
        np.subtract(1, scratch, out=scratch)
        np.multiply(grad_out, scratch, out=grad_out)
        return grad_out


class Softmax(Layer):
    """Class probabilities from logits, row-wise; stable (the row maximum is subtracted first).

    Use it for probabilities at inference; for training, the fused softmax cross-entropy loss on
    logits is both faster and more accurate.
    """

    kind = "Softmax"
    needs_output = True

    def forward(self, x, training=False):
        out = self._buffer("out", x.shape)
        np.subtract(x, x.max(axis=1, keepdims=True), out=out)
        np.exp(out, out=out)
        out /= out.sum(axis=1, keepdims=True)
        self._y = out
        return out

    def backward(self, grad_out):
        # dL/dx = y * (g - sum(g * y)) row by row (the softmax Jacobian-vector product).
        y = self._y
        grad_in = self._buffer("grad_in", y.shape)
        np.multiply(grad_out, y, out=grad_in)
        dot = grad_in.sum(axis=1, keepdims=True)
        np.subtract(grad_out, dot, out=grad_in)
        grad_in *= y
        return grad_in


ACTIVATIONS: dict[str, type[Layer]] = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "identity": Identity,
    "linear": Identity,
}


def get_activation(name: str, **kwargs) -> Layer:
    """An activation layer by name: relu, leaky_relu, sigmoid, tanh, identity."""
    key = name.lower().replace("-", "_").replace("leakyrelu", "leaky_relu")
    if key not in ACTIVATIONS:
        raise UsageError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[key](**kwargs)

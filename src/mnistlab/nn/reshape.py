"""Flatten: images to rows, for the Dense layers after the convolutions."""

from __future__ import annotations

import math

from mnistlab.nn.base import Layer

__all__ = ["Flatten"]


class Flatten(Layer):
    """(batch, d1, d2, ...) -> (batch, d1 * d2 * ...), in C order (for NHWC images: position
    by position, the channels of each position together). The output is a view of the input,
    and the input's gradient a view of the output's: nothing is copied."""

    kind = "Flatten"
    #: the output is the input, reshaped: as writable as the input was
    passthrough = True

    def build(self, input_shape, rng, dtype, blas=None):
        super().build(input_shape, rng, dtype, blas)
        self.output_shape = (math.prod(self.input_shape),)
        return self.output_shape

    def forward(self, x, training=False):
        return x.reshape(x.shape[0], *self.output_shape)

    def backward(self, grad_out):
        if not self.needs_input_grad:
            return None
        return grad_out.reshape(grad_out.shape[0], *self.input_shape)

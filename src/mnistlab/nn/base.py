"""Layer: what every layer of a Sequential model is.

A layer has forward(x, training) and backward(grad_out), kept separate: backward fills the
gradients of its parameters (`param.grad`) and returns the gradient for its input; it never
changes `param.data`. Only an optimizer does.

Outputs are work buffers owned by the layer and reused by the next call with the same shape, so
the training loop allocates nothing per step; copy an output if you need it after the next call.
Matrix products go through the model's BLAS setting (`self.blas`, mnistlab.backend.blas.Blas),
handed to every layer at build.

Shapes: x is (batch, features) float32 (or float64); grad_out has the shape of the output.
"""

from __future__ import annotations

import numpy as np

from mnistlab.backend.blas import Blas
from mnistlab.nn.functional import new_work_array
from mnistlab.nn.parameters import Parameter


class Layer:
    """Base class. Subclasses set `kind` and implement build/forward/backward."""

    kind = "Layer"
    #: False for the first layer: nobody needs the gradient with respect to the data.
    needs_input_grad = True
    #: True when the layer may overwrite its input array (decided by the model at build time).
    inplace = False
    #: whether backward() reads this layer's own output (then the next layer must not overwrite it)
    needs_output = False
    #: whether forward() may return its input array itself (Identity, Dropout at inference)
    passthrough = False

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        self._buffers: dict[str, np.ndarray] = {}  # work arrays by name, see _buffer
        self.dtype = np.dtype(np.float32)

    def build(
        self,
        input_shape: tuple[int, ...],
        rng: np.random.Generator,
        dtype,
        blas: Blas | None = None,
    ) -> tuple:
        """Create parameters for inputs of `input_shape` (without batch); return output shape.
        blas: the model's BLAS setting, which the layer's products follow (a layer built on its
        own gets one of its own, with nothing set)."""
        self.dtype = np.dtype(dtype)
        self.blas = blas if blas is not None else Blas()
        self._buffers.clear()  # work arrays of an earlier build may have another dtype
        self.input_shape = tuple(input_shape)
        self.output_shape = self.input_shape
        return self.output_shape

    def parameters(self) -> list[Parameter]:
        return []

    def state(self) -> dict[str, np.ndarray]:
        """Non-trainable arrays saved with the weights (BatchNorm's running statistics)."""
        return {}

    def config(self) -> dict:
        return {"type": self.kind}

    def multiply_adds(self) -> int:
        """The multiply-adds of one example's forward pass through the built layer: the work of
        its matrix products (0 for a layer without any)."""
        return 0

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        """Fill the parameters' gradients and return the input's (None for the first layer)."""
        raise NotImplementedError

    def _buffer(self, key: str, shape: tuple[int, ...], dtype=None, fill=None) -> np.ndarray:
        """A reusable work array named `key` of `shape`, in the layer's dtype unless told (a name
        always has the same dtype).

        One array per name: a call with another shape replaces it. Training steps and inference
        chunks each repeat one shape (the epoch's last, smaller minibatch and the last chunk
        cost one allocation each), and keeping every shape ever seen would hold a set of work
        arrays for every batch size a model met: hundreds of megabytes for a convolution's
        window copies."""
        array = self._buffers.get(key)
        if array is None or array.shape != shape:
            array = self._buffers[key] = new_work_array(shape, dtype or self.dtype, fill)
        return array

    def _out(self, x: np.ndarray) -> np.ndarray:
        return x if self.inplace else self._buffer("out", x.shape)

    def __repr__(self) -> str:
        return f"{self.kind}({self.name or ''})"

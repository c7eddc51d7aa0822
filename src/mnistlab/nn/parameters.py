"""Parameters and the flat buffers that hold them.

Every trainable array of a model is a view into one flat `data` buffer, and its gradient a view into
a second flat `grad` buffer, so that an optimizer updates all of them in a handful of vectorized
calls while each layer still sees plain `W` and `b`. Arrays that weight decay applies to (the
weights, not biases or BatchNorm's scale and shift) come first, so decay is one contiguous slice.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class Parameter:
    """A trainable array and its gradient.

    Parameters
    ----------
    data : numpy.ndarray
        The values; a view into its ParameterSet's flat ``data`` buffer once the model is built.
    name : str
        The name its layer gives it ("W", "b", "gamma", ...), used in saved arrays' keys.
    decay : bool
        Whether L2 and weight decay apply to it (True for weights, False for biases and
        BatchNorm's scale and shift).
    gemm_gradient : bool
        Whether the owning layer computes its gradient with a GEMM that can write to a
        GradientSink (a Dense layer's weights).

    Attributes
    ----------
    grad : numpy.ndarray
        The gradient, of data's shape, filled by the owning layer's backward(); a view into the
        flat ``grad`` buffer once the model is built.
    offset : int
        Where the parameter starts in its ParameterSet's flat buffers (set by the set).
    """

    def __init__(
        self, data: np.ndarray, name: str = "", decay: bool = True, gemm_gradient: bool = False
    ) -> None:
        self.data = data
        self.grad = np.zeros_like(data)
        self.name = name
        self.decay = decay
        self.gemm_gradient = gemm_gradient
        self.offset = 0

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def size(self) -> int:
        return int(self.data.size)

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, shape={self.shape}, dtype={self.data.dtype})"


class ParameterSet:
    """All trainable parameters of a model laid out in two flat buffers (values and gradients).

    data, grad: (n_params,) arrays; each Parameter's .data/.grad is rebound to a view into them.
    n_decay: the first n_decay entries are the parameters that weight decay applies to.
    """

    def __init__(self, parameters: list[Parameter], dtype=np.float32) -> None:
        ordered = [p for p in parameters if p.decay] + [p for p in parameters if not p.decay]
        self.parameters = ordered
        self.dtype = np.dtype(dtype)
        total = sum(p.size for p in ordered)
        self.data = np.empty(total, dtype=self.dtype)
        self.grad = np.zeros(total, dtype=self.dtype)
        self.n_decay = sum(p.size for p in ordered if p.decay)
        offset = 0
        for p in ordered:
            view = self.data[offset : offset + p.size].reshape(p.shape)
            view[...] = p.data
            p.data = view
            p.grad = self.grad[offset : offset + p.size].reshape(p.shape)
            p.offset = offset
            offset += p.size
        #: whether every weight's gradient comes from a GEMM that can write to a GradientSink
        self.weights_take_sink = all(p.gemm_gradient for p in ordered if p.decay)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self.parameters)

    def __len__(self) -> int:
        return len(self.parameters)

    @property
    def size(self) -> int:
        return int(self.data.size)

    def zero_grad(self) -> None:
        self.grad.fill(0)


class GradientSink:
    """Where a backward pass writes the weights' gradients: given by an optimizer for one step.

    For each weight W (the decay=True parameters: Dense layers' matrices), the layer's
    weight-gradient GEMM computes

        target(W) <- alpha * dL/dW + beta * target(W)

    where target(W) is W's place in `buffer`, a flat array laid out like the ParameterSet's data.
    With buffer = data, alpha = -lr and beta = 1 - lr * decay, that is plain SGD's update, applied
    by the product that computes the gradient: no gradient array written and read back, no pass
    of its own (optim.SGD). With buffer = velocity, alpha = 1, beta = momentum, it is momentum's
    accumulation. Every other parameter's gradient goes to its .grad as usual. A layer must
    compute everything that reads W (its input's gradient) before writing to the sink
    (Dense.backward_into_sink).

    An optimizer may hand out the same sink object step after step with new alpha and beta: the
    views of `buffer` are made once, since slicing and reshaping them anew would add a fixed cost
    per layer to every step.
    """

    def __init__(self, buffer: np.ndarray, alpha: float, beta: float) -> None:
        self.buffer, self.alpha, self.beta = buffer, float(alpha), float(beta)
        self._views: dict[int, np.ndarray] = {}

    def target(self, param: Parameter) -> np.ndarray:
        """The view of `buffer` that stands for `param`."""
        view = self._views.get(param.offset)
        if view is None or view.shape != param.shape:
            view = self.buffer[param.offset : param.offset + param.size].reshape(param.shape)
            self._views[param.offset] = view
        return view

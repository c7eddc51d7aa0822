"""Losses: softmax cross-entropy on logits (fused gradient) and mean squared error.

Each loss has forward(outputs, labels) -> mean loss (a Python float) and backward() -> the
gradient with respect to `outputs`, already divided by the batch size.
"""

from __future__ import annotations

import numpy as np

from mnistlab.errors import UsageError
from mnistlab.nn.functional import new_work_array


class Loss:
    name = "loss"

    def __init__(self) -> None:
        self._buffers: dict[tuple, np.ndarray] = {}

    def _buffer(self, key: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """A reusable work array named `key` of `shape` and `dtype`."""
        array = self._buffers.get((key, shape, dtype))
        if array is None:
            array = self._buffers[key, shape, dtype] = new_work_array(shape, dtype)
        return array

    def forward(self, outputs: np.ndarray, labels: np.ndarray) -> float:
        raise NotImplementedError

    def backward(self) -> np.ndarray:
        raise NotImplementedError

    def count_correct(self, outputs: np.ndarray, labels: np.ndarray) -> int:
        """How many rows of the last forward()'s `outputs` have their largest value at the label."""
        return int(np.count_nonzero(outputs.argmax(axis=1) == labels))


class SoftmaxCrossEntropy(Loss):
    """Mean of -log softmax(z)[y] over the batch, from logits z: (batch, classes), y: (batch,).

    log softmax(z)_k = z_k - logsumexp(z); subtracting the row maximum before exp keeps every term
    in (0, 1], so no finite logit overflows or yields NaN. The gradient is the fused
    (softmax(z) - onehot(y)) / batch, computed from the same exponentials as the loss.

    Labels are trusted to lie in [0, classes): the trainer checks them once per fit/evaluate,
    not at every step (an out-of-range label would read and write another row's entry).
    """

    name = "softmax_cross_entropy"

    def forward(self, logits, labels):
        n, k = logits.shape
        work = self._buffers.get((n, k, logits.dtype))
        if work is None:
            work = self._buffers[n, k, logits.dtype] = _CrossEntropyWork(n, k, logits.dtype)
        # The row maxima, read at each row's argmax: argmax along the short rows is several
        # times faster than a max-reduction there, and the trainer counts correct predictions
        # with the same argmax (count_correct). mode="clip" (the indices are in range by
        # construction) spares NumPy's buffered copy.
        logits.argmax(axis=1, out=work.predicted)
        np.add(work.row_offsets, work.predicted, out=work.flat_index)
        logits.reshape(-1).take(work.flat_index, out=work.row_max, mode="clip")
        shifted = np.subtract(logits, work.row_max_column, out=work.probs)
        # shifted_i,y_i, read where each row's label sits in the flattened (n * k) array
        np.add(work.row_offsets, labels, out=work.label_index)
        work.probs_flat.take(work.label_index, out=work.picked, mode="clip")
        np.exp(shifted, out=work.probs)
        np.dot(work.probs, work.ones, out=work.sums)  # row sums, one BLAS call
        # loss_i = log(sum_k exp(shifted_ik)) - shifted_i,y_i, summed in the model's dtype
        # (float32 overflow to inf is how a diverging float32 run shows itself to
        # TerminateOnNaN) by a dot product with ones: one BLAS call, quicker than
        # np.add.reduce's loop on a vector of batch size
        losses = np.log(work.sums, out=work.losses)
        np.subtract(losses, work.picked, out=losses)
        loss = float(np.dot(losses, work.ones_n)) / n
        # softmax / n: the gradient's 1/batch folded into the normalization
        np.multiply(work.sums, n, out=work.sums)
        np.divide(work.probs, work.sums_column, out=work.probs)
        self._work, self._logits = work, logits
        return loss

    def count_correct(self, outputs, labels):
        if outputs is not getattr(self, "_logits", None):
            return super().count_correct(outputs, labels)
        return int(np.count_nonzero(self._work.predicted == labels))

    def backward(self):
        work = self._work
        # (softmax(z) - onehot(y)) / n, in the probabilities' buffer, which holds softmax / n
        work.probs_flat[work.label_index] -= work.inverse_n
        return work.probs


class _CrossEntropyWork:
    """The work arrays of SoftmaxCrossEntropy for one (batch, classes, dtype), with the views
    the step uses, made once."""

    def __init__(self, n: int, k: int, dtype) -> None:
        self.row_offsets = np.arange(n, dtype=np.intp) * k  # where row i starts in (n * k)
        self.predicted = np.empty(n, dtype=np.intp)
        self.flat_index = np.empty(n, dtype=np.intp)
        self.label_index = np.empty(n, dtype=np.intp)
        self.row_max = np.empty(n, dtype=dtype)
        self.row_max_column = self.row_max.reshape(n, 1)
        self.probs = np.empty((n, k), dtype=dtype)
        self.probs_flat = self.probs.reshape(-1)
        self.ones = np.ones(k, dtype=dtype)
        self.ones_n = np.ones(n, dtype=dtype)
        self.inverse_n = dtype.type(1.0 / n)
        self.sums = np.empty(n, dtype=dtype)
        self.sums_column = self.sums.reshape(n, 1)
        self.picked = np.empty(n, dtype=dtype)
        self.losses = np.empty(n, dtype=dtype)


class MeanSquaredError(Loss):
    """Mean over batch and classes of (outputs - onehot(y))^2, as Keras computes it.

    outputs: (batch, classes), usually softmax probabilities or raw scores; y: (batch,) labels.
    """

    name = "mse"

    def forward(self, outputs, labels):
        n, k = outputs.shape
        diff = self._buffer("diff", (n, k), outputs.dtype)
        np.copyto(diff, outputs)
        diff[np.arange(n), labels] -= 1.0
        self._diff = diff
        return float(np.einsum("ij,ij->", diff, diff)) / (n * k)

    def backward(self):
        n, k = self._diff.shape
        grad = self._buffer("grad", (n, k), self._diff.dtype)
        np.multiply(self._diff, 2.0 / (n * k), out=grad)
        return grad


LOSSES = {"cross_entropy": SoftmaxCrossEntropy, "mse": MeanSquaredError}


def get_loss(name: str) -> Loss:
    key = name.lower().replace("-", "_")
    if key in {"softmax_cross_entropy", "crossentropy", "ce"}:
        key = "cross_entropy"
    if key not in LOSSES:
        raise UsageError(f"unknown loss {name!r}; valid: {', '.join(LOSSES)}")
    return LOSSES[key]()

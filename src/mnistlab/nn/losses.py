"""Losses: softmax cross-entropy on logits (fused gradient) and mean squared error.

Each loss has forward(outputs, labels) -> mean loss (a Python float) and backward() -> the
gradient with respect to `outputs`, already divided by the batch size.
"""

from __future__ import annotations

import numpy as np

from mnistlab.errors import UsageError
from mnistlab.nn.functional import cached


class Loss:
    name = "loss"

    def __init__(self) -> None:
        self._buffers: dict[tuple, np.ndarray] = {}

    def _buffer(self, key: str, shape: tuple[int, ...], dtype, fill=None) -> np.ndarray:
        return cached(self._buffers, key, shape, dtype, fill)

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
    """

    name = "softmax_cross_entropy"

    def forward(self, logits, labels):
        n, k = logits.shape
        dtype = logits.dtype
        buffer = self._buffer
        # The row maxima, read at each row's argmax: argmax along the short rows is several
        # times faster than a max-reduction there, and the trainer counts correct predictions
        # with the same argmax (count_correct).
        predicted = buffer("predicted", (n,), np.intp)
        np.argmax(logits, axis=1, out=predicted)
        flat_max = buffer("flat_max", (n,), np.intp)
        np.add(self._row_offsets(n, k), predicted, out=flat_max)
        row_max = buffer("row_max", (n,), dtype)
        # mode="clip" (the indices are in range by construction) spares NumPy's buffered copy
        np.take(logits.reshape(-1), flat_max, out=row_max, mode="clip")
        shifted = buffer("shifted", (n, k), dtype)
        np.subtract(logits, row_max.reshape(n, 1), out=shifted)
        probs = buffer("probs", (n, k), dtype)
        np.exp(shifted, out=probs)
        sums = buffer("sums", (n,), dtype)
        np.dot(probs, buffer("ones", (k,), dtype, fill=1), out=sums)  # row sums, one BLAS call
        # where each row's label sits in the flattened (n * k) array: i * k + y_i
        flat = buffer("flat", (n,), np.intp)
        np.add(self._row_offsets(n, k), labels, out=flat)
        picked = buffer("picked", (n,), dtype)
        np.take(shifted.reshape(-1), flat, out=picked)
        log_sums = buffer("log_sums", (n,), dtype)
        np.log(sums, out=log_sums)
        # loss_i = log(sum_k exp(shifted_ik)) - shifted_i,y_i
        loss = (
            # summed in the model's dtype, as before: float32 overflow to inf is how a
            # diverging float32 run shows itself to TerminateOnNaN
            float(np.add.reduce(log_sums) - np.add.reduce(picked)) / n
        )
        np.divide(probs, sums.reshape(n, 1), out=probs)
        self._probs, self._flat = probs, flat
        self._logits, self._predicted = logits, predicted
        return loss

    def count_correct(self, outputs, labels):
        if outputs is not getattr(self, "_logits", None):
            return super().count_correct(outputs, labels)
        return int(np.count_nonzero(self._predicted == labels))

    def _row_offsets(self, n: int, k: int) -> np.ndarray:
        offsets = self._buffers.get(("row_offsets", n, k))
        if offsets is None:
            offsets = self._buffers["row_offsets", n, k] = np.arange(n, dtype=np.intp) * k
        return offsets

    def backward(self):
        grad = self._probs  # softmax(z), reused in place as the gradient buffer
        grad.reshape(-1)[self._flat] -= 1.0
        grad *= 1.0 / grad.shape[0]
        return grad


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

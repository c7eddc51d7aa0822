"""When training has diverged, and which weights to keep then.

A run has diverged when a minibatch loss is not finite, or passes DIVERGENCE_FACTOR times the
run's first finite loss (plain SGD at a huge learning rate drives the weights to 1e16 while every
loss stays finite), or when its weights are no longer finite at the end of an epoch. The trainer
then stops and keeps the last finite weights: the current ones if finite (the step that saw the
loss has not been applied), else those the epoch began with.
"""

from __future__ import annotations

import math

import numpy as np

#: a loss past this many times the run's first one (or past this many, when the first was
#: below 1) means training has diverged
DIVERGENCE_FACTOR = 1000.0


class DivergenceGuard:
    """The divergence rule of one Trainer, and the weights it falls back to.

    `first_loss` travels in checkpoints (so that a resumed run judges its losses by the same
    threshold as the run it continues).
    """

    def __init__(self) -> None:
        self.first_loss: float | None = None
        self.limit = math.inf
        self._epoch_start: dict[str, np.ndarray] = {}

    def set_first_loss(self, loss: float | None) -> None:
        """Take `loss` as the run's first finite loss (None: none yet), which sets the limit."""
        self.first_loss = loss
        self.limit = math.inf if loss is None else DIVERGENCE_FACTOR * max(loss, 1.0)

    def loss_ok(self, loss: float) -> bool:
        """False for a loss that means divergence (called once per step, before the update)."""
        if self.first_loss is None and math.isfinite(loss):
            self.set_first_loss(loss)
        return loss < self.limit  # NaN and inf fail it too

    def loss_reason(self, loss: float, epoch: int, step: int) -> str:
        """Why `loss` stopped the run, at `epoch` (0-based) after `step` steps."""
        reason = f"loss became {loss:.4g} at epoch {epoch + 1}, step {step}"
        if math.isfinite(loss):
            reason += f", over {DIVERGENCE_FACTOR:g} times the first loss ({self.first_loss:.4g})"
        return reason

    def epoch_begins(self, model) -> None:
        """Keep a copy of the model's state arrays as an epoch begins."""
        self._epoch_start = {k: v.copy() for k, v in model.state_arrays().items()}

    @staticmethod
    def weights_finite(model) -> bool:
        """Whether every array of the model's state is finite."""
        return all(np.isfinite(a).all() for a in model.state_arrays().values())

    def keep_finite_weights(self, model, epoch: int) -> str:
        """Put back the epoch's starting weights if the current ones are not finite; returns
        which weights the model now holds, for the stop reason."""
        if self.weights_finite(model):
            return "the weights before that step"
        model.load_state_arrays(self._epoch_start)
        return f"the weights from the start of epoch {epoch + 1}"

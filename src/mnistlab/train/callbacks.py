"""Training callbacks: behaviour added to the loop without flags in it.

Hooks (all optional): on_train_begin(trainer), on_epoch_begin(trainer, epoch),
on_loss(trainer, loss), on_epoch_end(trainer, epoch, logs), on_train_end(trainer).
A callback stops training by setting trainer.stop_training = True (and trainer.stop_reason).
Callbacks with state that matters for an exact resume implement get_state()/set_state().
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from mnistlab.errors import UsageError


class Callback:
    def on_train_begin(self, trainer) -> None: ...
    def on_epoch_begin(self, trainer, epoch: int) -> None: ...
    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None: ...
    def on_train_end(self, trainer) -> None: ...

    # on_loss(trainer, loss) runs after each forward pass, before the update; it is looked up
    # only on callbacks that define it, to keep the step loop lean.

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(JSON-able values, arrays) needed to resume exactly."""
        return {}, {}

    def set_state(self, values: dict, arrays: dict[str, np.ndarray]) -> None: ...


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` epochs.

    mode: "min" for losses, "max" for accuracies ("auto" decides from the name).
    restore_best_weights: at the end, put back the weights of the best epoch.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = True,
    ) -> None:
        if patience < 0:
            raise UsageError(f"early stopping patience must be >= 0, got patience={patience}")
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        if mode not in ("min", "max"):
            raise UsageError(f"early stopping mode must be min, max or auto, got mode={mode!r}")
        self.monitor, self.patience, self.min_delta = monitor, int(patience), abs(min_delta)
        self.mode, self.restore_best_weights = mode, restore_best_weights
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = -1
        self.wait = 0
        self.best_weights: dict[str, np.ndarray] | None = None

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, trainer, epoch, logs):
        if self.monitor not in logs:
            raise UsageError(
                f"early stopping monitors {self.monitor!r}, which the run does not record "
                f"(recorded: {', '.join(sorted(logs))}); give a validation split or monitor 'loss'"
            )
        value = float(logs[self.monitor])
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = {k: v.copy() for k, v in trainer.model.state_arrays().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            trainer.stop_training = True
            trainer.stop_reason = (
                f"early stopping: {self.monitor} did not improve for {self.patience} epochs "
                f"(best {self.best:.4f} at epoch {self.best_epoch + 1})"
            )

    def on_train_end(self, trainer):
        if self.restore_best_weights and self.best_weights is not None and trainer.stop_training:
            trainer.model.load_state_arrays(self.best_weights)
            trainer.restored_epoch = self.best_epoch

    def get_state(self):
        values = {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}
        arrays = {f"best.{k}": v for k, v in (self.best_weights or {}).items()}
        return values, arrays

    def set_state(self, values, arrays):
        self.best, self.best_epoch, self.wait = values["best"], values["best_epoch"], values["wait"]
        best = {k.removeprefix("best."): v for k, v in arrays.items() if k.startswith("best.")}
        self.best_weights = best or None


class TerminateOnNaN(Callback):
    """Stop at the first non-finite loss and keep the last finite weights.

    The weights at the start of each epoch are kept; if the weights themselves have become
    non-finite when the loss does, they are put back.
    """

    def on_epoch_begin(self, trainer, epoch):
        self._snapshot = {k: v.copy() for k, v in trainer.model.state_arrays().items()}

    def on_loss(self, trainer, loss):
        if math.isfinite(loss):
            return
        trainer.stop_training = True
        where = f"epoch {trainer.epoch + 1}, step {trainer.step}"
        if np.isfinite(trainer.model.params.data).all():
            kept = "the weights before that step"
        else:
            trainer.model.load_state_arrays(self._snapshot)
            kept = f"the weights from the start of epoch {trainer.epoch + 1}"
        trainer.stop_reason = f"loss became {loss} at {where}; kept {kept}"
        trainer.diverged = True


class ModelCheckpoint(Callback):
    """Save a full training checkpoint (exact resume) every `every` epochs."""

    def __init__(self, path, every: int = 1) -> None:
        if every <= 0:
            raise UsageError(f"checkpoint every must be positive, got every={every}")
        self.path, self.every = path, int(every)

    def on_epoch_end(self, trainer, epoch, logs):
        if (epoch + 1) % self.every == 0:
            trainer.save_checkpoint(self.path)


class ProgressBar(Callback):
    """A tqdm bar per epoch on stderr with samples/s and the running loss.

    Off when stderr is not a terminal (or enabled=False).
    """

    def __init__(self, enabled: bool | None = None, update_every: int = 25) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.update_every = update_every

    def on_epoch_begin(self, trainer, epoch):
        if not self.enabled:
            return
        from tqdm import tqdm

        self._bar = tqdm(
            total=trainer.steps_per_epoch,
            desc=f"epoch {epoch + 1}/{trainer.epochs}",
            leave=False,
            file=sys.stderr,
            unit="step",
        )
        self._pending = 0
        self._start = time.perf_counter()
        self._loss_sum = 0.0

    def on_loss(self, trainer, loss):
        if not self.enabled:
            return
        self._pending += 1
        self._loss_sum += loss
        if self._pending >= self.update_every:
            elapsed = time.perf_counter() - self._start
            seen = (self._bar.n + self._pending) * trainer.batch_size
            self._bar.set_postfix_str(
                f"loss {self._loss_sum / (self._bar.n + self._pending):.4f}, "
                f"{seen / max(elapsed, 1e-9):,.0f} samples/s",
                refresh=False,
            )
            self._bar.update(self._pending)
            self._pending = 0

    def on_epoch_end(self, trainer, epoch, logs):
        if self.enabled:
            self._bar.close()


class LambdaCallback(Callback):
    """Wrap plain functions as hooks (on_epoch_end=..., on_loss=...)."""

    def __init__(self, **hooks) -> None:
        for name, function in hooks.items():
            setattr(self, name, function)

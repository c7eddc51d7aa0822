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
    """The base of every callback: hooks the trainer calls, each doing nothing here.

    ``on_loss(trainer, loss)`` is a further hook, defined by the callbacks that want it (it
    runs after each forward pass, before the update, and is looked up only on callbacks that
    define it, to keep the step loop lean).
    """

    def on_train_begin(self, trainer) -> None:
        """Called once by `Trainer.fit` before the first step (also on resume)."""

    def on_epoch_begin(self, trainer, epoch: int) -> None:
        """Called before epoch `epoch` (0-based) runs its first step."""

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        """Called after epoch `epoch` (0-based) with its record, the dict the history holds."""

    def on_train_end(self, trainer) -> None:
        """Called once when fit ends, stopped early or not."""

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(JSON-able values, arrays) needed to resume exactly; a checkpoint stores them."""
        return {}, {}

    def set_state(self, values: dict, arrays: dict[str, np.ndarray]) -> None:
        """Put back what `get_state` returned (loading a checkpoint)."""


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` epochs.

    Parameters
    ----------
    monitor : str
        The record's key to watch (``val_loss``, ``val_accuracy``, ``loss``, ...).
    patience : int
        Epochs without improvement before training stops.
    min_delta : float
        The smallest change that counts as an improvement.
    mode : {"auto", "min", "max"}
        "min" for losses, "max" for accuracies; "auto" decides from the name.
    restore_best_weights : bool
        When training stops early, put back the weights of the best epoch.
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
        """Note an improvement (and keep its weights) or count one more epoch without."""
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
        """Put back the best weights if training stopped early."""
        if self.restore_best_weights and self.best_weights is not None and trainer.stop_training:
            trainer.model.load_state_arrays(self.best_weights)
            trainer.restored_epoch = self.best_epoch

    def get_state(self):
        """The best value, its epoch, the epochs waited, and the best weights."""
        values = {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}
        arrays = {f"best.{k}": v for k, v in (self.best_weights or {}).items()}
        return values, arrays

    def set_state(self, values, arrays):
        """Put back what `get_state` returned."""
        self.best, self.best_epoch, self.wait = values["best"], values["best_epoch"], values["wait"]
        best = {k.removeprefix("best."): v for k, v in arrays.items() if k.startswith("best.")}
        self.best_weights = best or None


class TerminateOnNaN(Callback):
    """Stop at the first non-finite loss and keep the last finite weights.

    The weights at the start of each epoch are kept; if the weights themselves have become
    non-finite when the loss does, they are put back.
    """

    def on_epoch_begin(self, trainer, epoch):
        """Keep a copy of the weights as the epoch starts."""
        self._snapshot = {k: v.copy() for k, v in trainer.model.state_arrays().items()}

    def on_loss(self, trainer, loss):
        """Stop training at a non-finite loss, before the step's update."""
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
    """Save a full training checkpoint (exact resume) to `path` every `every` epochs."""

    def __init__(self, path, every: int = 1) -> None:
        if every <= 0:
            raise UsageError(f"checkpoint every must be positive, got every={every}")
        self.path, self.every = path, int(every)

    def on_epoch_end(self, trainer, epoch, logs):
        """Save the checkpoint after every `every`-th epoch."""
        if (epoch + 1) % self.every == 0:
            trainer.save_checkpoint(self.path)


#: ProgressBar's ``enabled`` value that shows a bar in a Jupyter kernel only (the estimators'
#: default: on in notebooks, as Keras's fit is; quiet in terminals and pipes)
NOTEBOOK = "notebook"


def in_notebook() -> bool:
    """True inside a Jupyter kernel (an IPython kernel app), False in a terminal, in a plain
    or terminal-IPython interpreter, and in a worker process.

    IPython is only looked up where it is already imported: a kernel has imported it.
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    # the test tqdm.autonotebook makes: a kernel's configuration names its IPKernelApp
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def progress_enabled(enabled: bool | str | None, stream=None) -> bool:
    """Whether a progress bar is shown for the setting `enabled`.

    True: always; False: never; None: where someone watches, a terminal on `stream`
    (default sys.stderr) or a Jupyter kernel, and never into a pipe or a file; "notebook": in
    a Jupyter kernel only.
    """
    if enabled is None:
        stream = sys.stderr if stream is None else stream
        return in_notebook() or bool(getattr(stream, "isatty", lambda: False)())
    if enabled == NOTEBOOK:
        return in_notebook()
    if isinstance(enabled, bool):
        return enabled
    raise UsageError(
        f"progress must be True, False, None or {NOTEBOOK!r}, got progress={enabled!r}"
    )


def bar_class(notebook: bool | None = None):
    """The tqdm class to draw a bar with, chosen as `tqdm.auto` chooses it.

    In a Jupyter kernel (`notebook` None asks `in_notebook`) with ipywidgets installed: the
    notebook widget, ``tqdm.notebook.tqdm``. Elsewhere, and in a kernel without ipywidgets:
    the text bar ``tqdm.std.tqdm``, which a notebook shows as one line redrawn in place.
    Unlike importing tqdm.auto, the choice is made at each call and without a warning.
    """
    if in_notebook() if notebook is None else notebook:
        from tqdm import notebook as tqdm_notebook

        if getattr(tqdm_notebook, "IProgress", None) is not None:
            return tqdm_notebook.tqdm
    from tqdm.std import tqdm

    return tqdm


class ProgressBar(Callback):
    """A tqdm bar per epoch with the running loss and samples/s, drawn by `bar_class`: a
    widget in a notebook, a text bar on stderr in a terminal.

    Parameters
    ----------
    enabled : bool, None or "notebook"
        True: always; False: never; None: in a terminal or a notebook, not into a pipe;
        "notebook": in a Jupyter kernel only (see `progress_enabled`).
    update_every : int
        Steps between two redraws (a redraw per step would cost more than a small step).
    file : file object, optional
        Where the text bar goes (default: sys.stderr at each epoch's start).
    """

    def __init__(
        self, enabled: bool | str | None = None, update_every: int = 25, file=None
    ) -> None:
        self.enabled = progress_enabled(enabled, file)
        self.update_every = update_every
        self.file = file

    def on_epoch_begin(self, trainer, epoch):
        """Open the epoch's bar (steps of the epoch as its total)."""
        if not self.enabled:
            return
        self._bar = bar_class()(
            total=trainer.steps_per_epoch,
            desc=f"epoch {epoch + 1}/{trainer.epochs}",
            leave=False,
            file=self.file if self.file is not None else sys.stderr,
            unit="step",
        )
        self._pending = 0
        self._start = time.perf_counter()
        self._loss_sum = 0.0

    def on_loss(self, trainer, loss):
        """Count the step; every `update_every` steps, advance the bar and its postfix."""
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
        """Close the epoch's bar (it leaves no line behind)."""
        if self.enabled:
            self._bar.close()


class LambdaCallback(Callback):
    """Plain functions as hooks: ``LambdaCallback(on_epoch_end=print_row, on_loss=...)``.

    Each keyword names a hook (see `Callback`) and takes the function it calls, with the
    hook's arguments.
    """

    def __init__(self, **hooks) -> None:
        for name, function in hooks.items():
            setattr(self, name, function)

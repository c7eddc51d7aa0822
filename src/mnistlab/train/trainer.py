"""The training loop: minibatches, forward, loss, backward, update.

One step (Trainer._train_step):

    logits = model.forward(x_batch, training=True)
    loss = loss_fn.forward(logits, y_batch)
    sink = optimizer.gradient_sink(l2)          # None unless the optimizer is fused SGD
    model.backward(loss_fn.backward(), sink)    # fills every .grad (or the sink)
    optimizer.step(sink, l2)

The loop allocates nothing per step for a fixed batch shape: the batch is gathered into a
preallocated buffer (train.batches), every layer writes into its own work buffers, the loss
gradient is fused, and the optimizer updates the flat parameter buffer in place. A fit runs
inside the model's training BLAS setting (mnistlab.backend.blas), with subnormal floats computed
as zero (mnistlab.backend.fpu) and Ctrl-C or SIGTERM turned into a request to stop between two
steps (train.interrupts); a loss or weights that run away stop it as diverged (train.divergence).
History lives in train.history, checkpoint contents in train.state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from typing import TYPE_CHECKING

import numpy as np

from mnistlab.backend.blas import available_threads
from mnistlab.backend.fpu import flush_subnormals
from mnistlab.errors import DataError, MnistlabError, TrainingInterrupted, UsageError
from mnistlab.nn.losses import Loss, get_loss
from mnistlab.nn.model import Sequential
from mnistlab.optim.optimizers import Optimizer
from mnistlab.optim.schedules import Constant, Schedule
from mnistlab.train.batches import PrefetchedBatches
from mnistlab.train.callbacks import Callback
from mnistlab.train.checkpoint import load_npz, save_npz
from mnistlab.train.divergence import DivergenceGuard
from mnistlab.train.history import HISTORY_KEYS, History
from mnistlab.train.interrupts import InterruptFlag
from mnistlab.train.parallel import HalfBatches, check_data_parallel, half_batches
from mnistlab.train.state import EpochPosition, check_checkpoint, restore_trainer, trainer_state

if TYPE_CHECKING:  # the trainer only calls it: training does not depend on the data package
    from mnistlab.data.augment import Augmenter

__all__ = ["HISTORY_KEYS", "WORK_PER_THREAD", "History", "Trainer", "auto_blas_threads"]

#: the first word of every augmentation seed, keeping its streams apart from any other use of
#: (seed, epoch, step) sequences
AUGMENT_STREAM = 0x61756773

#: forward-pass multiply-adds per step (batch size x weights) that make a BLAS thread worth it
WORK_PER_THREAD = 8_000_000


def auto_blas_threads(batch_size: int, multiply_adds: int, cores: int | None = None) -> int:
    """BLAS threads for minibatch training: one per WORK_PER_THREAD multiply-adds of a step's
    forward pass (batch_size x the network's multiply-adds per example, Sequential.multiply_adds:
    for an MLP, its Dense layers' weights; a convolution counts each weight once per output
    position), at least one and at
    most `cores` (the machine's; the trainer passes what the model's BLAS may use at the time).

    Between the small GEMMs of a small network a second thread mostly waits, and its start-up
    and synchronization make the step longer; past a few million multiply-adds per thread the
    split work pays for them (benchmarks/engine_speed.py --blas-threads compares settings).
    With a thread per core the minibatches are gathered between steps rather than by a helper
    thread (see PrefetchedBatches).
    """
    cores = cores or os.cpu_count() or 1
    return max(1, min(cores, round(batch_size * multiply_adds / WORK_PER_THREAD)))


class Trainer:
    """Trains a built Sequential model with an optimizer on integer-labelled data.

    Parameters
    ----------
    model : Sequential
        A built model whose output layer gives logits.
    optimizer : Optimizer
        Built over ``model.parameters()``.
    loss : Loss or str
        A Loss or its name ("cross_entropy" by default, "mse").
    schedule : Schedule, optional
        The learning rate by step or epoch (default: constant at the optimizer's).
    l2 : float
        L2 penalty coupled to the loss, ``0.5 * l2 * sum(W^2)`` over the weights.
    callbacks : list of Callback
        Early stopping, checkpoints, the NaN guard, the progress bar, ...
    blas_threads : int, optional
        Threads for the model's matrix products (None: `auto_blas_threads`, by the work of a
        step).
    augment : Augmenter, optional
        Random transforms of each training minibatch (mnistlab.data.augment), applied where the
        minibatches are gathered; None (the default) trains on the rows as they are.
    data_parallel : bool, optional
        Whether each minibatch's two halves run at once, on a replica of the network and a
        worker thread, one BLAS thread each (train.parallel.HalfBatches). None (the default):
        for a network with convolutions whose step would otherwise run its products on two
        threads (`train.parallel.worth_it`), where the network allows it; True: whenever a
        second core is free and a minibatch has two rows (a UsageError when the network, loss
        or optimizer cannot be split); False: never. A run reproduces itself either way, but
        the two ways differ in the last bits, and the choice follows the cores a fit finds.

    Attributes
    ----------
    history : History
        One record per completed epoch.
    epoch : int
        Completed epochs (a checkpoint restores it, as it does `step`).
    step : int
        Completed optimizer steps.
    stop_training : bool
        Set by a callback to stop after the current step or epoch; ``stop_reason`` says why.
    diverged : bool
        Whether training stopped because it diverged (see `train.divergence`).
    """

    def __init__(
        self,
        model: Sequential,
        optimizer: Optimizer,
        *,
        loss: Loss | str = "cross_entropy",
        schedule: Schedule | None = None,
        l2: float = 0.0,
        callbacks: list[Callback] | tuple = (),
        blas_threads: int | None = None,
        augment: Augmenter | None = None,
        data_parallel: bool | None = None,
    ) -> None:
        if not model.built:
            raise UsageError("build the model before training it")
        if not (math.isfinite(l2) and l2 >= 0):
            raise UsageError(f"l2 must be >= 0, got l2={l2!r}")
        self.model = model
        self.optimizer = optimizer
        self.loss = get_loss(loss) if isinstance(loss, str) else loss
        self.schedule = schedule or Constant(optimizer.learning_rate)
        self.l2 = float(l2)
        self.callbacks = list(callbacks)
        self.blas_threads = blas_threads
        self.augment = augment
        self.data_parallel = check_data_parallel(data_parallel, model, self.loss, optimizer)
        #: the HalfBatches of the current fit, or None when its steps run whole
        self._halves: HalfBatches | None = None
        #: fit's seed: with the epoch and the step, it seeds each minibatch's augmentation
        self.seed = 0
        self._gather_in_background = True
        self.history = History()
        self.epoch = 0  # completed epochs
        self.step = 0  # completed optimizer steps
        self.shuffle_rng: np.random.Generator | None = None
        #: where to continue inside an epoch (None between epochs)
        self.position: EpochPosition | None = None
        self.checkpoint_path = None
        self.stop_training = False
        self.stop_reason = ""
        self.diverged = False
        self.restored_epoch: int | None = None
        self._interrupt = InterruptFlag()
        self._divergence = DivergenceGuard()
        #: a stop (early stopping) that the loaded checkpoint had already decided
        self._restored_stop: dict | None = None

    # ------------------------------------------------------------------ fit

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        validation: tuple[np.ndarray, np.ndarray] | None = None,
        epochs: int = 10,
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int = 0,
    ) -> History:
        """Train until `epochs` epochs are complete (counting epochs done before a resume).

        x: (n, features) in the model's dtype; y: (n,) integer labels.
        validation: (x_val, y_val) evaluated after every epoch.
        Returns the History (also self.history).
        Subnormal floats are computed as zero on this thread meanwhile, callbacks included
        (mnistlab.backend.fpu: they make the arithmetic that meets them tens of times slower).
        """
        _check_count("batch_size", batch_size)
        _check_count("epochs", epochs)
        x, y = self._training_data(x, y)
        if validation is not None:  # checked now, not after the first epoch
            validation = self._validation(validation)
        self.epochs, self.batch_size, self.shuffle = int(epochs), int(batch_size), shuffle
        self.steps_per_epoch = math.ceil(x.shape[0] / self.batch_size)
        if self.shuffle_rng is None:
            self.shuffle_rng = np.random.default_rng(seed)
        self.seed = seed
        self.stop_training, self.stop_reason, self.diverged = False, "", False
        restored, self._restored_stop = self._restored_stop, None
        if restored is not None and restored.get("epochs") == self.epochs:
            # the checkpoint was saved by a run that had decided to stop (early stopping): a
            # resume of it stops there too, as the run it continues did
            self.stop_training, self.stop_reason = True, str(restored.get("reason", ""))
        # never more threads than an enclosing limit allows (a sweep runs one trial per core)
        threads = self.blas_threads or auto_blas_threads(
            self.batch_size, self.model.multiply_adds(), cores=available_threads()
        )
        halves = half_batches(self, threads, available_threads())
        cores_busy = 2 if halves is not None else threads
        if halves is not None:
            threads = 1  # per half: each core runs one half's products
        # a helper thread gathers (and augments) the minibatches only while the BLAS leaves a
        # core free for it; with every core in the GEMMs, augmentation runs between steps, which
        # costs a large network less than giving up a BLAS thread for it would
        self._gather_in_background = cores_busy < (os.cpu_count() or 1)
        blas = self.model.blas.training(
            threads, scaled_gemms=self.optimizer.uses_gradient_sink, cores=cores_busy
        )
        # Overflow is not an error here: the NaN guard reports a non-finite loss in one line.
        with (
            blas,
            flush_subnormals(),
            self._interrupt,
            np.errstate(over="ignore", invalid="ignore"),
            halves if halves is not None else contextlib.nullcontext(),
        ):
            self._halves = halves
            try:
                for callback in self.callbacks:
                    callback.on_train_begin(self)
                while self.epoch < self.epochs and not self.stop_training:
                    self._run_epoch(x, y, validation)
                for callback in self.callbacks:
                    callback.on_train_end(self)
            finally:
                self._halves = None
        return self.history

    def _run_epoch(self, x, y, validation) -> None:
        """One epoch (or its rest, after a resume), its log, and the callbacks around it."""
        epoch = self.epoch
        self._divergence.epoch_begins(self.model)
        for callback in self.callbacks:
            callback.on_epoch_begin(self, epoch)
        if self.position is None:
            n = x.shape[0]
            self.position = EpochPosition(
                self.shuffle_rng.permutation(n) if self.shuffle else np.arange(n)
            )
        if self.schedule.per != "step":
            self.optimizer.learning_rate = self.schedule(epoch)
        done = self._run_steps(x, y, self.position)
        self.position = None
        if not self.diverged and not self._divergence.weights_finite(self.model):
            self._diverge(f"the weights became non-finite in epoch {epoch + 1}")
        if self.stop_training and self.diverged:
            return
        logs = self._epoch_logs(done, validation)
        self.history.append(logs)
        self.epoch += 1
        for callback in self.callbacks:
            callback.on_epoch_end(self, epoch, logs)

    def _run_steps(self, x, y, start: EpochPosition) -> EpochPosition:
        """The epoch's steps from `start` on; returns the position after the last one, its
        seconds included. On Ctrl-C, self.position becomes the position reached, then
        TrainingInterrupted is raised (after a checkpoint where there is a path)."""
        progress = dataclasses.replace(start)
        per_step = self.schedule.per == "step"
        loss_hooks = [c.on_loss for c in self.callbacks if hasattr(c, "on_loss")]
        started = time.perf_counter()
        with PrefetchedBatches(
            x,
            y,
            progress.order,
            self.batch_size,
            start.batch,
            self.steps_per_epoch,
            self._gather_in_background,
            transform=self._augmentation(self.epoch),
        ) as batches:
            for batch, (x_batch, y_batch) in enumerate(batches, start=start.batch):
                if self._interrupt.is_set():
                    progress.batch = batch
                    progress.seconds = progress.seconds + time.perf_counter() - started
                    self.position = progress
                    self._handle_interrupt()
                if per_step:
                    self.optimizer.learning_rate = self.schedule(self.step)
                if not self._train_step(x_batch, y_batch, progress, loss_hooks):
                    break
        progress.seconds = progress.seconds + time.perf_counter() - started
        return progress

    def _augmentation(self, epoch: int):
        """The transform PrefetchedBatches applies to each minibatch of `epoch` (None without
        augmentation): the augmenter, in place, with a Generator of its own per minibatch.

        Seeded by (AUGMENT_STREAM, seed, epoch, step in the epoch) rather than drawn from one
        running stream: a minibatch's transforms are then a function of where it stands in the
        run alone, the same whichever thread gathers it, however the epoch is cut into chunks
        and wherever a resumed run starts, so a resume needs no generator state to be exact.
        """
        augment = self.augment
        if augment is None:
            return None
        seed = self.seed

        def transform(x_batch: np.ndarray, step: int) -> None:
            augment(x_batch, np.random.default_rng([AUGMENT_STREAM, seed, epoch, step]), x_batch)

        return transform

    def _train_step(self, x_batch, y_batch, progress: EpochPosition, loss_hooks) -> bool:
        """One minibatch: forward, loss, backward, update (counted in `progress`). False, and no
        update, when a callback stops training on seeing the loss."""
        model, loss_fn, optimizer, halves = self.model, self.loss, self.optimizer, self._halves
        if halves is not None:
            # both halves' backward too: they run at once, so the gradients come with the loss
            loss, correct = halves.forward_backward(x_batch, y_batch)
        else:
            logits = model.forward(x_batch, training=True)
            loss = loss_fn.forward(logits, y_batch)
        for hook in loss_hooks:
            hook(self, loss)
        if self.stop_training:
            return False
        if not self._divergence.loss_ok(loss):
            self._diverge(self._divergence.loss_reason(loss, self.epoch, self.step))
            return False
        if halves is None:
            correct = loss_fn.count_correct(logits, y_batch)
        progress.count(loss, correct, x_batch.shape[0])
        # fused SGD hands out a sink: the weights' update then rides in their gradient GEMMs
        # (never with halves: train.parallel.unsupported_reason rules it out)
        sink = optimizer.gradient_sink(self.l2)
        if halves is None:
            model.backward(loss_fn.backward(), sink)
        optimizer.step(sink, self.l2)
        self.step += 1
        return True

    def _epoch_logs(self, done: EpochPosition, validation) -> dict:
        """The epoch's record: mean training loss (with the L2 penalty) and accuracy, the
        validation scores, the learning rate and the seconds its steps took."""
        logs = {
            "epoch": self.epoch + 1,
            "loss": done.loss_sum / max(done.seen, 1) + self.l2_penalty(),
            "accuracy": done.correct / max(done.seen, 1),
        }
        if validation is not None:
            val_loss, val_accuracy = self.evaluate(*validation)
            logs["val_loss"], logs["val_accuracy"] = val_loss, val_accuracy
        logs["learning_rate"] = self.optimizer.learning_rate
        logs["seconds"] = done.seconds
        return logs

    def _diverge(self, what: str) -> None:
        """Stop training as diverged (train.divergence), keeping the last finite weights."""
        kept = self._divergence.keep_finite_weights(self.model, self.epoch)
        self.stop_training, self.diverged = True, True
        self.stop_reason = f"{what}; kept {kept}"

    # ------------------------------------------------------------------ inputs

    def _training_data(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """x as C-contiguous rows in the model's dtype, y as checked labels."""
        x = np.ascontiguousarray(x, dtype=self.model.dtype).reshape(len(x), -1)
        y = self._labels(y)
        if x.shape[1] != self.model.input_features:
            raise UsageError(
                f"x has {x.shape[1]} features, the model expects {self.model.input_features}"
            )
        if x.shape[0] != y.shape[0]:
            raise UsageError(f"x has {x.shape[0]} rows but y has {y.shape[0]} labels")
        return x, y

    def _validation(self, validation) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise UsageError(
                f"validation must be a pair (x_val, y_val), got {type(validation).__name__}"
            )
        x_val = np.asarray(validation[0], dtype=self.model.dtype)
        x_val = x_val.reshape(x_val.shape[0], -1) if x_val.ndim > 2 else x_val
        if x_val.ndim != 2 or x_val.shape[1] != self.model.input_features:
            raise UsageError(
                f"validation x must be (n, {self.model.input_features}), got shape {x_val.shape}"
            )
        y_val = self._labels(validation[1])
        if y_val.shape != (x_val.shape[0],):
            raise UsageError(
                f"validation x has {x_val.shape[0]} rows but y has shape {y_val.shape}"
            )
        return x_val, y_val

    def _labels(self, y) -> np.ndarray:
        """y as int64 class indices the output layer has a unit for (the loss trusts them at
        every step); a label that is not a whole number is refused, not truncated."""
        y = np.asarray(y)
        if y.dtype.kind not in "iu":
            if y.dtype.kind != "f" or not np.array_equal(y, np.floor(y)):  # (NaN fails too)
                bad = y[y != np.floor(y)][0] if y.dtype.kind == "f" else y.flat[0]
                raise UsageError(f"labels must be integer class indices, got {bad.item()!r}")
        y = np.ascontiguousarray(y, dtype=np.int64)
        if y.size and (y.min() < 0 or y.max() >= self.model.output_features):
            raise UsageError(
                f"labels must lie in [0, {self.model.output_features}), got [{y.min()}, {y.max()}]"
            )
        return y

    # ------------------------------------------------------------------ scores

    def l2_penalty(self) -> float:
        """The L2 penalty's current value, ``0.5 * l2 * ||W||^2`` over the weights."""
        if not self.l2:
            return 0.0
        weights = self.model.params.data[: self.model.params.n_decay]
        return 0.5 * self.l2 * float(np.dot(weights, weights))

    def evaluate(
        self, x: np.ndarray, y: np.ndarray, batch_size: int | None = None
    ) -> tuple[float, float]:
        """(mean loss, accuracy) in inference mode; loss without the L2 penalty. Runs under the
        model's inference BLAS setting (mnistlab.backend.blas.Blas.inference), in chunks of
        `batch_size` rows (default: the model's inference_batch_size, smaller for images)."""
        batch_size = batch_size or self.model.inference_batch_size
        x = np.asarray(x, dtype=self.model.dtype).reshape(len(x), -1)
        y = self._labels(y)
        if y.shape != (x.shape[0],):
            raise UsageError(f"x has {x.shape[0]} rows but y has shape {y.shape}")
        # A loss object of its own: the training loss's buffers hold the current step's state.
        loss_fn = type(self.loss)()
        total, correct = 0.0, 0
        with self.model.blas.inference(), flush_subnormals():
            for start in range(0, x.shape[0], batch_size):
                logits = self.model.forward(x[start : start + batch_size], training=False)
                labels = y[start : start + batch_size]
                total += loss_fn.forward(logits, labels) * labels.shape[0]
                correct += loss_fn.count_correct(logits, labels)
        return total / x.shape[0], correct / x.shape[0]

    # ------------------------------------------------------------------ interrupts

    def interrupt(self) -> None:
        """Stop as Ctrl-C does: before the next step, saving a checkpoint if there is a path,
        then raise TrainingInterrupted (for callbacks and tests; Ctrl-C calls nothing else)."""
        self._interrupt.set()

    def _handle_interrupt(self):
        saved = ""
        if self.checkpoint_path is not None:
            self.save_checkpoint(self.checkpoint_path)
            saved = f"; checkpoint saved to {self.checkpoint_path}"
        self._interrupt.clear()
        raise TrainingInterrupted(
            f"interrupted in epoch {self.epoch + 1} after {self.step} steps{saved}"
        )

    # ------------------------------------------------------------------ checkpoints

    def checkpoint_state(self) -> tuple[dict[str, np.ndarray], dict]:
        """(arrays, metadata): everything a resume needs (mnistlab.train.state), with the
        divergence threshold's first loss and a stop already decided (early stopping)."""
        arrays, meta = trainer_state(self)
        meta["first_loss"] = self._divergence.first_loss
        if self.stop_training and not self.diverged:
            meta["stopped"] = {"reason": self.stop_reason, "epochs": getattr(self, "epochs", None)}
        return arrays, meta

    def save_checkpoint(self, path) -> None:
        """Write everything an exact resume needs to `path` (a .npz; see `train.state`)."""
        arrays, meta = self.checkpoint_state()
        save_npz(path, arrays, meta)

    def load_checkpoint(self, path) -> None:
        """Restore everything save_checkpoint wrote; fit() then continues where it stopped."""
        arrays, meta = load_npz(path)
        check_checkpoint(path, meta)
        try:
            restore_trainer(self, arrays, meta, path)
        except MnistlabError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise DataError(f"{path}: damaged checkpoint ({type(exc).__name__}: {exc})") from None
        first = meta.get("first_loss")
        if isinstance(first, (int, float)) and not isinstance(first, bool) and math.isfinite(first):
            self._divergence.set_first_loss(float(first))
        stopped = meta.get("stopped")
        self._restored_stop = stopped if isinstance(stopped, dict) else None


def _check_count(name: str, value) -> None:
    """Refuse anything but a positive whole number (bool included) for `name`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise UsageError(f"{name} must be a positive integer, got {name}={value!r}")

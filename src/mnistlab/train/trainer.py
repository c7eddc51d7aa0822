"""The training loop: minibatches, forward, loss, backward, update; history and checkpoints.

The loop allocates nothing per step for a fixed batch shape: the batch is gathered into a
preallocated buffer, every layer writes into its own work buffers, the loss gradient is fused, and
the optimizer updates the flat parameter buffer in place. A checkpoint holds everything the loop
depends on (weights, optimizer slots, step and epoch counters, both random generators, the
position inside the current epoch, callback state and history), so a resumed run ends with exactly
the weights of an uninterrupted one.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

import numpy as np

from mnistlab.backend.blas import available_threads, blas_threads, inference_blas
from mnistlab.backend.fpu import flush_subnormals
from mnistlab.errors import TrainingInterrupted, UsageError
from mnistlab.nn.losses import Loss, get_loss
from mnistlab.nn.model import Sequential
from mnistlab.optim.optimizers import Optimizer
from mnistlab.optim.schedules import Constant, Schedule
from mnistlab.train.batches import PrefetchedBatches
from mnistlab.train.callbacks import Callback
from mnistlab.train.checkpoint import FORMAT_VERSION, load_npz, save_npz
from mnistlab.train.interrupts import InterruptFlag

HISTORY_KEYS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds")


@dataclass
class History:
    """Per-epoch records: epoch, loss, accuracy, val_loss, val_accuracy, learning_rate, seconds."""

    records: list[dict] = field(default_factory=list)

    def append(self, record: dict) -> None:
        self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def column(self, key: str) -> list:
        return [r.get(key) for r in self.records]

    def to_csv(self) -> str:
        keys = [k for k in HISTORY_KEYS if any(k in r for r in self.records)]
        lines = [",".join(keys)]
        for record in self.records:
            lines.append(",".join(_fmt(record.get(k)) for k in keys))
        return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


#: forward-pass multiply-adds per step (batch size x weights) per BLAS thread, measured below
WORK_PER_THREAD = 8_000_000


def auto_blas_threads(batch_size: int, n_weights: int, cores: int | None = None) -> int:
    """BLAS threads for minibatch training: one per WORK_PER_THREAD multiply-adds of a step's
    forward pass (batch_size x n_weights, the weights of the Dense layers), at least one and at
    most `cores` (the machine's; the trainer passes what the model's BLAS may use at the time).
    With a thread per core the minibatches are gathered between steps rather than by a helper
    thread (see PrefetchedBatches).

    Measured on the 2-core machine, one setting against the other in alternating epochs: two
    threads made epochs of 784-100-200-10 12-14% longer at batch 32 and 64 (3.2M and 6.4M
    multiply-adds) but 5-9% shorter at batch 128 (12.8M) and 14% at 256; 25% shorter for
    784-600-100-10 at batch 32 (17M), and 31-36% for 784-1024-512-10 at batch 32 to 128
    (43M-170M). Between the small GEMMs of a small network the second thread mostly spins.
    """
    cores = cores or os.cpu_count() or 1
    return max(1, min(cores, round(batch_size * n_weights / WORK_PER_THREAD)))


class Trainer:
    """Trains a built Sequential model with an optimizer on integer-labelled data.

    model: a built Sequential whose output layer gives logits.
    optimizer: built over model.parameters().
    loss: a Loss or its name ("cross_entropy" by default, "mse").
    schedule: a Schedule (default: constant at the optimizer's learning rate).
    l2: L2 penalty coupled to the loss, 0.5 * l2 * sum(W^2) over the weights (seed 002's alpha).
    callbacks: Callback objects (early stopping, checkpoints, NaN guard, progress).
    blas_threads: threads for the model's matrix products (None: auto_blas_threads, by the work
        of a step).
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
        self._gather_in_background = True
        self.history = History()
        self.epoch = 0  # completed epochs
        self.step = 0  # completed optimizer steps
        self.shuffle_rng: np.random.Generator | None = None
        self._position: dict | None = None  # where to continue inside an epoch
        self.checkpoint_path = None
        self.stop_training = False
        self.stop_reason = ""
        self.diverged = False
        self.restored_epoch: int | None = None
        self._interrupt = InterruptFlag()

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
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, (int, np.integer))
            or batch_size <= 0
        ):
            raise UsageError(
                f"batch_size must be a positive integer, got batch_size={batch_size!r}"
            )
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs <= 0:
            raise UsageError(f"epochs must be a positive integer, got epochs={epochs!r}")
        x = np.ascontiguousarray(x, dtype=self.model.dtype).reshape(len(x), -1)
        y = self._labels(y)
        if x.shape[1] != self.model.input_features:
            raise UsageError(
                f"x has {x.shape[1]} features, the model expects {self.model.input_features}"
            )
        if x.shape[0] != y.shape[0]:
            raise UsageError(f"x has {x.shape[0]} rows but y has {y.shape[0]} labels")
        if validation is not None:  # checked now, not after the first epoch
            validation = self._validation(validation)
        n = x.shape[0]
        self.epochs, self.batch_size, self.shuffle = int(epochs), int(batch_size), shuffle
        self.steps_per_epoch = math.ceil(n / self.batch_size)
        if self.shuffle_rng is None:
            self.shuffle_rng = np.random.default_rng(seed)
        self.stop_training, self.stop_reason, self.diverged = False, "", False
        # never more threads than an enclosing limit allows (a sweep runs one trial per core)
        threads = self.blas_threads or auto_blas_threads(
            self.batch_size, self.model.params.n_decay, cores=available_threads()
        )
        # An optimizer that applies its step in the weight-gradient GEMMs needs GEMM's beta,
        # which only SciPy's BLAS offers; with more than one thread, all the products go there
        # (two multi-threaded pools fight over the cores: mnistlab.backend.blas).
        sink = self.optimizer.gradient_sink(self.l2) is not None
        library = "scipy" if sink and threads > 1 else "numpy"
        # a helper thread gathers the minibatches only while the BLAS leaves a core free for it
        self._gather_in_background = threads < (os.cpu_count() or 1)
        # Overflow is not an error here: the NaN guard reports a non-finite loss in one line.
        with (
            blas_threads(threads, library),
            flush_subnormals(),
            self._interrupt,
            np.errstate(over="ignore", invalid="ignore"),
        ):
            for callback in self.callbacks:
                callback.on_train_begin(self)
            while self.epoch < self.epochs and not self.stop_training:
                self._run_epoch(x, y, validation)
            for callback in self.callbacks:
                callback.on_train_end(self)
        return self.history

    def _run_epoch(self, x, y, validation) -> None:
        n, batch_size, model, loss_fn, optimizer = (
            x.shape[0],
            self.batch_size,
            self.model,
            self.loss,
            self.optimizer,
        )
        epoch = self.epoch
        for callback in self.callbacks:
            callback.on_epoch_begin(self, epoch)
        loss_hooks = [c.on_loss for c in self.callbacks if hasattr(c, "on_loss")]
        if self._position is None:
            order = self.shuffle_rng.permutation(n) if self.shuffle else np.arange(n)
            self._position = {
                "order": order,
                "batch": 0,
                "loss_sum": 0.0,
                "correct": 0,
                "seen": 0,
                "seconds": 0.0,
            }
        position = self._position
        order = position["order"]
        schedule = self.schedule
        per_step = schedule.per == "step"
        if not per_step:
            optimizer.learning_rate = schedule(epoch)
        started = time.perf_counter()
        loss_sum, correct, seen = position["loss_sum"], position["correct"], position["seen"]
        first = position["batch"]
        with PrefetchedBatches(
            x, y, order, batch_size, first, self.steps_per_epoch, self._gather_in_background
        ) as batches:
            for batch, (x_batch, y_batch) in enumerate(batches, start=first):
                if self._interrupt.is_set():
                    position.update(
                        batch=batch,
                        loss_sum=loss_sum,
                        correct=correct,
                        seen=seen,
                        seconds=position["seconds"] + time.perf_counter() - started,
                    )
                    self._handle_interrupt()
                size = x_batch.shape[0]
                if per_step:
                    optimizer.learning_rate = schedule(self.step)
                logits = model.forward(x_batch, training=True)
                loss = loss_fn.forward(logits, y_batch)
                for hook in loss_hooks:
                    hook(self, loss)
                if self.stop_training:
                    break
                correct += loss_fn.count_correct(logits, y_batch)
                loss_sum += loss * size
                seen += size
                # plain SGD and momentum: the weights' update rides in their gradient GEMMs
                sink = optimizer.gradient_sink(self.l2)
                model.backward(loss_fn.backward(), sink)
                if self.l2 and sink is None:
                    # d/dW of 0.5 * l2 * ||W||^2 is l2 * W, on the weights only.
                    params = model.params
                    optimizer._axpy(
                        params.data[: params.n_decay], params.grad[: params.n_decay], a=self.l2
                    )
                optimizer.step(sink)
                self.step += 1
        seconds = position["seconds"] + time.perf_counter() - started
        self._position = None
        if self.stop_training and self.diverged:
            return
        logs = {
            "epoch": epoch + 1,
            "loss": loss_sum / max(seen, 1) + self.l2_penalty(),
            "accuracy": correct / max(seen, 1),
        }
        if validation is not None:
            val_loss, val_accuracy = self.evaluate(*validation)
            logs["val_loss"], logs["val_accuracy"] = val_loss, val_accuracy
        logs["learning_rate"] = optimizer.learning_rate
        logs["seconds"] = seconds
        self.history.append(logs)
        self.epoch += 1
        for callback in self.callbacks:
            callback.on_epoch_end(self, epoch, logs)

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

    def l2_penalty(self) -> float:
        if not self.l2:
            return 0.0
        weights = self.model.params.data[: self.model.params.n_decay]
        return 0.5 * self.l2 * float(np.dot(weights, weights))

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = 8192) -> tuple[float, float]:
        """(mean loss, accuracy) in inference mode; loss without the L2 penalty."""
        x = np.asarray(x, dtype=self.model.dtype).reshape(len(x), -1)
        y = self._labels(y)
        if y.shape != (x.shape[0],):
            raise UsageError(f"x has {x.shape[0]} rows but y has shape {y.shape}")
        # A loss object of its own: the training loss's buffers hold the current step's state.
        loss_fn = type(self.loss)()
        total, correct = 0.0, 0
        with inference_blas(), flush_subnormals():
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
        arrays = {f"model.{k}": v for k, v in self.model.state_arrays().items()}
        optimizer_state = self.optimizer.state_dict()
        for key, value in optimizer_state.items():
            if isinstance(value, np.ndarray):
                arrays[f"optimizer.{key}"] = value
        callbacks = []
        for index, callback in enumerate(self.callbacks):
            values, callback_arrays = callback.get_state()
            callbacks.append(values)
            for key, value in callback_arrays.items():
                arrays[f"callback{index}.{key}"] = value
        position = None
        if self._position is not None:
            arrays["position.order"] = self._position["order"]
            position = {k: v for k, v in self._position.items() if k != "order"}
        meta = {
            "format_version": FORMAT_VERSION,
            "kind": "checkpoint",
            "epoch": self.epoch,
            "step": self.step,
            "optimizer": {
                "name": self.optimizer.name,
                "iterations": self.optimizer.iterations,
                "learning_rate": self.optimizer.learning_rate,
            },
            "shuffle_rng": self.shuffle_rng.bit_generator.state if self.shuffle_rng else None,
            "dropout_rng": self.model.dropout_rng.bit_generator.state,
            "position": position,
            "callbacks": callbacks,
            "history": self.history.records,
        }
        return arrays, meta

    def save_checkpoint(self, path) -> None:
        arrays, meta = self.checkpoint_state()
        save_npz(path, arrays, meta)

    def load_checkpoint(self, path) -> None:
        """Restore everything save_checkpoint wrote; fit() then continues where it stopped."""
        arrays, meta = load_npz(path)
        if not meta or meta.get("kind") != "checkpoint":
            raise UsageError(f"{path}: not an mnistlab checkpoint")
        if meta.get("format_version") != FORMAT_VERSION:
            raise UsageError(
                f"{path}: checkpoint format {meta.get('format_version')} is not "
                f"supported (this version reads {FORMAT_VERSION})"
            )
        model_arrays = {k[6:]: v for k, v in arrays.items() if k.startswith("model.")}
        self.model.load_state_arrays(model_arrays, where=str(path))
        optimizer_state = {k[10:]: v for k, v in arrays.items() if k.startswith("optimizer.")}
        optimizer_state["iterations"] = meta["optimizer"]["iterations"]
        self.optimizer.load_state_dict(optimizer_state)
        self.optimizer.learning_rate = meta["optimizer"]["learning_rate"]
        self.epoch, self.step = meta["epoch"], meta["step"]
        if meta["shuffle_rng"] is not None:
            self.shuffle_rng = np.random.default_rng()
            self.shuffle_rng.bit_generator.state = meta["shuffle_rng"]
        self.model.dropout_rng.bit_generator.state = meta["dropout_rng"]
        if meta["position"] is not None:
            self._position = {**meta["position"], "order": arrays["position.order"]}
        for index, (callback, values) in enumerate(
            zip(self.callbacks, meta["callbacks"], strict=False)
        ):
            prefix = f"callback{index}."
            callback.set_state(
                values, {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            )
        self.history = History(list(meta["history"]))

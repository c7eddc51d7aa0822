"""A Trainer's state as a checkpoint holds it, and putting it back.

A checkpoint holds everything the loop depends on: weights, optimizer slots, step and epoch
counters, both random generators (shuffling and dropout), the position inside the current
epoch, callback state and history; so a resumed run ends with exactly the weights of an
uninterrupted one. Arrays are stored under prefixed names ("model.", "optimizer.",
"callback<i>.", "position.order"), everything else in the JSON metadata; both travel in one
.npz file (mnistlab.train.checkpoint).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnistlab.errors import DataError, UsageError
from mnistlab.train.checkpoint import FORMAT_VERSION
from mnistlab.train.history import History


@dataclass
class EpochPosition:
    """Where an epoch stands: the order of its rows, the next minibatch, and what its log will
    be computed from (loss summed over the rows seen, correct predictions, rows seen, seconds
    spent), so that an interrupted epoch resumes where it stopped."""

    order: np.ndarray
    batch: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0

    def count(self, loss: float, correct: int, rows: int) -> None:
        """Add one minibatch of `rows` rows: its mean loss and its correct predictions."""
        self.correct += correct
        self.loss_sum += loss * rows
        self.seen += rows

    def meta(self) -> dict:
        """Everything but the order (which is stored as an array), for the JSON metadata."""
        return {
            "batch": self.batch,
            "loss_sum": self.loss_sum,
            "correct": self.correct,
            "seen": self.seen,
            "seconds": self.seconds,
        }


def trainer_state(trainer) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, metadata) of `trainer`'s state, as save_npz writes them."""
    arrays = {f"model.{k}": v for k, v in trainer.model.state_arrays().items()}
    optimizer_state = trainer.optimizer.state_dict()
    for key, value in optimizer_state.items():
        if isinstance(value, np.ndarray):
            arrays[f"optimizer.{key}"] = value
    callbacks = []
    for index, callback in enumerate(trainer.callbacks):
        values, callback_arrays = callback.get_state()
        callbacks.append(values)
        for key, value in callback_arrays.items():
            arrays[f"callback{index}.{key}"] = value
    position = None
    if trainer.position is not None:
        arrays["position.order"] = trainer.position.order
        position = trainer.position.meta()
    optimizer = trainer.optimizer
    meta = {
        "format_version": FORMAT_VERSION,
        "kind": "checkpoint",
        "epoch": trainer.epoch,
        "step": trainer.step,
        "optimizer": {
            "name": optimizer.name,
            "iterations": optimizer.iterations,
            "learning_rate": optimizer.learning_rate,
        },
        "shuffle_rng": trainer.shuffle_rng.bit_generator.state if trainer.shuffle_rng else None,
        "dropout_rng": trainer.model.dropout_rng.bit_generator.state,
        "position": position,
        "callbacks": callbacks,
        "history": trainer.history.records,
    }
    return arrays, meta


def check_checkpoint(path, meta: dict | None) -> None:
    """Refuse metadata that is not an mnistlab checkpoint of the format this version reads, and
    (DataError naming the field) one whose epoch or step is not a count."""
    if not meta or meta.get("kind") != "checkpoint":
        raise UsageError(f"{path}: not an mnistlab checkpoint")
    if meta.get("format_version") != FORMAT_VERSION:
        raise UsageError(
            f"{path}: checkpoint format {meta.get('format_version')} is not "
            f"supported (this version reads {FORMAT_VERSION})"
        )
    for key in ("epoch", "step"):
        value = meta.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise DataError(
                f"{path}: the checkpoint's {key} is {value!r}, not a whole number >= 0 (a "
                f"damaged checkpoint: remove it to train the run from the start)"
            )


def restore_trainer(trainer, arrays: dict[str, np.ndarray], meta: dict, path) -> None:
    """Put the state that trainer_state() gave back into `trainer` (built like the one saved)."""
    model_arrays = {k[6:]: v for k, v in arrays.items() if k.startswith("model.")}
    trainer.model.load_state_arrays(model_arrays, where=str(path))
    optimizer_state = {k[10:]: v for k, v in arrays.items() if k.startswith("optimizer.")}
    optimizer_state["iterations"] = meta["optimizer"]["iterations"]
    trainer.optimizer.load_state_dict(optimizer_state)
    trainer.optimizer.learning_rate = meta["optimizer"]["learning_rate"]
    trainer.epoch, trainer.step = meta["epoch"], meta["step"]
    if meta["shuffle_rng"] is not None:
        trainer.shuffle_rng = np.random.default_rng()
        trainer.shuffle_rng.bit_generator.state = meta["shuffle_rng"]
    trainer.model.dropout_rng.bit_generator.state = meta["dropout_rng"]
    if meta["position"] is not None:
        trainer.position = EpochPosition(order=arrays["position.order"], **meta["position"])
    for index, (callback, values) in enumerate(
        zip(trainer.callbacks, meta["callbacks"], strict=False)
    ):
        prefix = f"callback{index}."
        callback.set_state(
            values, {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        )
    trainer.history = History(list(meta["history"]))

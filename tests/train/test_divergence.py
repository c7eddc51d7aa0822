"""Divergence (a loss that runs away, weights that stop being finite), SIGTERM as Ctrl-C, and
checkpoints whose counters are not numbers: each stops in one line, never silently."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from mnistlab.data import flatten, load_dataset, to_float
from mnistlab.errors import DataError, TrainingInterrupted
from mnistlab.models import MLPClassifier
from mnistlab.train import EarlyStopping, LambdaCallback
from mnistlab.train.checkpoint import load_npz, save_npz
from mnistlab.train.divergence import DIVERGENCE_FACTOR
from mnistlab.train.interrupts import InterruptFlag, terminate_as_interrupt


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits")
    return flatten(to_float(data.x_train, data.pixel_max)), data.y_train


def _mlp(**overrides) -> MLPClassifier:
    settings = dict(hidden_layer_sizes=(16,), batch_size=64, epochs=3, random_state=0)
    return MLPClassifier(**{**settings, **overrides})


def test_plain_sgd_at_a_huge_learning_rate_stops_as_diverged(digits):
    # before: every loss stayed finite, the weights reached 1e16 and the run "finished"
    x, y = digits
    model = _mlp(optimizer="sgd", learning_rate=1e6).fit(x, y)
    assert model.diverged_
    assert f"over {DIVERGENCE_FACTOR:g} times the first loss" in model.stop_reason_
    assert "kept the weights before that step" in model.stop_reason_
    weights = model.model_.params.data
    assert np.isfinite(weights).all() and np.abs(weights).max() < 1e10


def test_a_healthy_run_is_not_called_diverged(digits):
    x, y = digits
    model = _mlp(learning_rate=1e-2).fit(x, y)
    assert not model.diverged_ and model.n_epochs_run_ == 3


def test_weights_that_stop_being_finite_put_back_the_epochs_start(digits):
    x, y = digits
    kept = {}

    def poison(trainer, loss):
        if trainer.epoch == 1:  # the epoch's only step: its loss is finite, its update is not
            kept.update({k: v.copy() for k, v in trainer.model.state_arrays().items()})
            trainer.model.params.data[0] = np.inf

    model = _mlp(batch_size=len(x)).fit(x, y, callbacks=[LambdaCallback(on_loss=poison)])
    assert model.diverged_ and model.n_epochs_run_ == 1
    assert model.stop_reason_ == (
        "the weights became non-finite in epoch 2; kept the weights from the start of epoch 2"
    )
    for key, value in model.model_.state_arrays().items():
        np.testing.assert_array_equal(value, kept[key])


def test_the_divergence_threshold_travels_in_the_checkpoint(digits, tmp_path):
    x, y = digits
    checkpoint = tmp_path / "checkpoint.npz"
    first = _mlp(epochs=1).fit(x, y, checkpoint=checkpoint)
    _, meta = load_npz(checkpoint)
    assert meta["first_loss"] == first.trainer_._divergence.first_loss > 0
    resumed = _mlp(epochs=2).fit(x, y, checkpoint=checkpoint, resume_from=checkpoint)
    assert resumed.trainer_._divergence.first_loss == meta["first_loss"]


@pytest.mark.parametrize(
    "field, value", [("epoch", "three"), ("epoch", -1), ("step", 2.5), ("epoch", True)]
)
def test_a_checkpoint_whose_counter_is_not_a_count_is_one_line(digits, tmp_path, field, value):
    x, y = digits
    checkpoint = tmp_path / "checkpoint.npz"
    _mlp(epochs=1).fit(x, y, checkpoint=checkpoint)
    arrays, meta = load_npz(checkpoint)
    save_npz(checkpoint, arrays, {**meta, field: value})
    with pytest.raises(DataError) as error:
        _mlp(epochs=2).fit(x, y, resume_from=checkpoint)
    message = str(error.value)
    assert f"checkpoint's {field} is {value!r}, not a whole number" in message
    assert str(checkpoint) in message and "\n" not in message


def test_checkpoint_metadata_that_is_not_an_object_is_one_line(digits, tmp_path):
    x, y = digits
    checkpoint = tmp_path / "checkpoint.npz"
    _mlp(epochs=1).fit(x, y, checkpoint=checkpoint)
    arrays, _ = load_npz(checkpoint)
    save_npz(checkpoint, arrays, [1, 2, 3])
    with pytest.raises(DataError, match="corrupt metadata .a JSON list where an object"):
        _mlp(epochs=2).fit(x, y, resume_from=checkpoint)


def test_damaged_checkpoint_fields_are_one_line(digits, tmp_path):
    x, y = digits
    checkpoint = tmp_path / "checkpoint.npz"
    _mlp(epochs=1).fit(x, y, checkpoint=checkpoint)
    arrays, meta = load_npz(checkpoint)
    save_npz(checkpoint, arrays, {**meta, "history": 7})
    with pytest.raises(DataError, match="damaged checkpoint"):
        _mlp(epochs=2).fit(x, y, resume_from=checkpoint)


def test_a_full_disk_while_saving_a_checkpoint_names_the_file(tmp_path, monkeypatch):
    def full(_descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as error:
        save_npz(tmp_path / "checkpoint.npz", {"w": np.zeros(3)})
    assert error.value.filename == str(tmp_path / "checkpoint.npz")
    assert error.value.strerror == "No space left on device"
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


# ---------------------------------------------------------------------- SIGTERM


def test_sigterm_sets_the_flag_and_a_second_one_gives_up():
    before = signal.getsignal(signal.SIGTERM)
    with InterruptFlag() as flag:
        os.kill(os.getpid(), signal.SIGTERM)
        assert flag.is_set()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_foreign_sigterm_handler_is_left_in_place():
    seen = []

    def foreign(signum, frame):
        seen.append(signum)

    previous = signal.signal(signal.SIGTERM, foreign)
    try:
        with InterruptFlag() as flag, terminate_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            assert not flag.is_set()
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_terminate_as_interrupt_raises_keyboard_interrupt():
    with pytest.raises(KeyboardInterrupt), terminate_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_sigterm_mid_fit_saves_a_checkpoint_that_resumes_exactly(digits, tmp_path):
    x, y = digits
    reference = _mlp(epochs=4, dropout=0.2).fit(x, y)
    checkpoint = tmp_path / "checkpoint.npz"

    def terminate(trainer, loss):
        if trainer.epoch == 2 and trainer.step % trainer.steps_per_epoch == 5:
            os.kill(os.getpid(), signal.SIGTERM)

    stopped = _mlp(epochs=4, dropout=0.2)
    with pytest.raises(TrainingInterrupted, match="interrupted in epoch 3"):
        stopped.fit(x, y, callbacks=[LambdaCallback(on_loss=terminate)], checkpoint=checkpoint)
    resumed = _mlp(epochs=4, dropout=0.2).fit(x, y, checkpoint=checkpoint, resume_from=checkpoint)
    np.testing.assert_array_equal(resumed.model_.params.data, reference.model_.params.data)


def test_an_early_stopped_checkpoint_resumes_stopped(digits, tmp_path):
    # a run killed between its early stop and its model files must end as it would have
    x, y = digits
    validation = (x[:200], y[:200])
    settings = dict(epochs=40, learning_rate=0.05)
    checkpoint = tmp_path / "checkpoint.npz"
    stopper = EarlyStopping(monitor="val_loss", patience=1)
    done = _mlp(**settings).fit(
        x[200:], y[200:], validation_data=validation, callbacks=[stopper], checkpoint=checkpoint
    )
    assert done.n_epochs_run_ < 40 and done.stop_reason_.startswith("early stopping")
    again = _mlp(**settings).fit(
        x[200:],
        y[200:],
        validation_data=validation,
        callbacks=[EarlyStopping(monitor="val_loss", patience=1)],
        checkpoint=tmp_path / "again.npz",
        resume_from=checkpoint,
    )
    assert again.n_epochs_run_ == done.n_epochs_run_ and again.stop_reason_ == done.stop_reason_
    np.testing.assert_array_equal(again.model_.params.data, done.model_.params.data)

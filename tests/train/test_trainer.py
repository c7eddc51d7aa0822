"""The training loop: learning, determinism, callbacks, and exact resume from checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from mnistlab.data import flatten, load_dataset, to_float
from mnistlab.errors import DataError, UsageError
from mnistlab.models import MLPClassifier
from mnistlab.train import EarlyStopping, LambdaCallback, TerminateOnNaN, TrainingInterrupted


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits")
    x = flatten(to_float(data.x_train, data.pixel_max))
    xt = flatten(to_float(data.x_test, data.pixel_max))
    return x, data.y_train, xt, data.y_test


FULL = dict(
    hidden_layer_sizes=(32, 16),
    batchnorm=True,
    dropout=0.2,
    optimizer="adam",
    learning_rate=3e-3,
    batch_size=50,
    epochs=4,
    schedule="cosine",
    random_state=3,
)


def test_digits_learns_to_97_percent(digits):
    x, y, xt, yt = digits
    model = MLPClassifier(
        hidden_layer_sizes=(256,),
        dropout=0.2,
        batch_size=16,
        epochs=60,
        learning_rate=1e-3,
        random_state=0,
    ).fit(x, y)
    assert model.score(xt, yt) >= 0.97
    losses = model.history_.column("loss")
    assert losses[-1] < losses[0] / 5


def test_same_seed_gives_bit_identical_weights(digits):
    x, y, _, _ = digits
    a = MLPClassifier(**FULL).fit(x, y)
    b = MLPClassifier(**FULL).fit(x, y)
    c = MLPClassifier(**{**FULL, "random_state": 4}).fit(x, y)
    np.testing.assert_array_equal(a.model_.params.data, b.model_.params.data)
    assert not np.array_equal(a.model_.params.data, c.model_.params.data)


def test_history_records_every_epoch(digits):
    x, y, xt, yt = digits
    model = MLPClassifier(**FULL).fit(x, y, validation_data=(xt, yt))
    assert len(model.history_) == 4
    record = model.history_.records[-1]
    assert set(record) == {
        "epoch",
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "learning_rate",
        "seconds",
    }
    csv = model.history_.to_csv().splitlines()
    assert csv[0] == "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds"
    assert len(csv) == 5


def test_interrupt_mid_epoch_then_resume_is_exact(digits, tmp_path):
    """Ctrl-C in the middle of epoch 3 (dropout, BatchNorm, Adam, cosine schedule all active)."""
    x, y, xt, yt = digits
    reference = MLPClassifier(**FULL).fit(x, y, validation_data=(xt, yt))

    def interrupt(trainer, loss):
        if trainer.step == 2 * 29 + 7:  # 29 steps per epoch: step 7 of the third epoch
            trainer.interrupt()

    checkpoint = tmp_path / "checkpoint.npz"
    with pytest.raises(TrainingInterrupted, match="checkpoint saved to"):
        MLPClassifier(**FULL).fit(
            x,
            y,
            validation_data=(xt, yt),
            callbacks=[LambdaCallback(on_loss=interrupt)],
            checkpoint=checkpoint,
        )
    resumed = MLPClassifier(**FULL).fit(x, y, validation_data=(xt, yt), resume_from=checkpoint)
    np.testing.assert_array_equal(resumed.model_.params.data, reference.model_.params.data)
    for key, value in reference.model_.state_arrays().items():
        np.testing.assert_array_equal(resumed.model_.state_arrays()[key], value)
    assert resumed.history_.column("val_loss") == reference.history_.column("val_loss")


def test_resume_from_an_epoch_checkpoint_after_a_crash(digits, tmp_path):
    """A crash (here an exception) after epoch 2's checkpoint: resuming replays epoch 3 exactly."""
    x, y, _, _ = digits
    reference = MLPClassifier(**FULL).fit(x, y)

    class Crash(Exception):
        pass

    def crash(trainer, loss):
        if trainer.step == 2 * 29 + 11:
            raise Crash

    checkpoint = tmp_path / "checkpoint.npz"
    with pytest.raises(Crash):
        MLPClassifier(**FULL).fit(
            x, y, callbacks=[LambdaCallback(on_loss=crash)], checkpoint=checkpoint
        )
    resumed = MLPClassifier(**FULL).fit(x, y, resume_from=checkpoint)
    np.testing.assert_array_equal(resumed.model_.params.data, reference.model_.params.data)


def test_early_stopping_restores_the_best_weights(digits):
    x, y, xt, yt = digits
    recorded = {}

    def remember(trainer, epoch, logs):
        recorded[epoch] = trainer.model.params.data.copy()

    model = MLPClassifier(
        hidden_layer_sizes=(64,),
        learning_rate=0.05,
        epochs=40,
        batch_size=16,
        early_stopping=2,
        random_state=0,
    )
    model.fit(x, y, validation_data=(xt, yt), callbacks=[LambdaCallback(on_epoch_end=remember)])
    assert model.n_epochs_run_ < 40
    assert "early stopping: val_loss did not improve for 2 epochs" in model.stop_reason_
    val_losses = model.history_.column("val_loss")
    best = int(np.argmin(val_losses))
    np.testing.assert_array_equal(model.model_.params.data, recorded[best])


def test_early_stopping_needs_its_metric(digits):
    x, y, _, _ = digits
    with pytest.raises(UsageError, match="monitors 'val_accuracy', which the run does not record"):
        MLPClassifier(hidden_layer_sizes=(8,), epochs=2).fit(
            x, y, callbacks=[EarlyStopping(monitor="val_accuracy")]
        )


def test_nan_guard_stops_and_keeps_finite_weights(digits):
    x, y, _, _ = digits
    model = MLPClassifier(
        hidden_layer_sizes=(64,),
        optimizer="sgd",
        learning_rate=1e36,
        activation="tanh",
        epochs=5,
        batch_size=16,
        random_state=0,
    ).fit(x, y)
    assert model.diverged_
    assert "loss became" in model.stop_reason_ and "kept" in model.stop_reason_
    assert np.isfinite(model.model_.params.data).all()


def test_nan_guard_is_a_callback_that_can_be_listed():
    assert isinstance(TerminateOnNaN(), object)


def test_save_load_identical_predictions(digits, tmp_path):
    from mnistlab.models import load_model

    x, y, xt, _ = digits
    model = MLPClassifier(**FULL).fit(x, y)
    model.save(tmp_path / "run")
    loaded = load_model(tmp_path / "run")
    np.testing.assert_array_equal(loaded.predict_proba(xt), model.predict_proba(xt))
    np.testing.assert_array_equal(loaded.predict(xt), model.predict(xt))
    assert loaded.get_params() == model.get_params()


@pytest.mark.parametrize("damage", ["truncated", "text"])
def test_corrupted_weights_file_gets_a_clear_error(digits, tmp_path, damage):
    from mnistlab.models import load_model

    x, y, _, _ = digits
    MLPClassifier(hidden_layer_sizes=(8,), epochs=1).fit(x, y).save(tmp_path / "run")
    weights = tmp_path / "run" / "weights.npz"
    weights.write_bytes(weights.read_bytes()[:100] if damage == "truncated" else b"junk\n")
    with pytest.raises(DataError, match=r"weights.npz: corrupt or unreadable weights file") as e:
        load_model(tmp_path / "run")
    assert "pickle" not in str(e.value)  # NumPy's own message advises unpickling the file


def test_float64_training(digits):
    x, y, xt, yt = digits
    model = MLPClassifier(hidden_layer_sizes=(32,), epochs=3, dtype="float64").fit(x, y)
    assert model.model_.params.data.dtype == np.float64
    assert model.predict_proba(xt).dtype == np.float64


def test_fit_rejects_bad_input(digits):
    x, y, _, _ = digits
    with pytest.raises(UsageError, match="need at least two classes"):
        MLPClassifier(epochs=1).fit(x[:5], np.zeros(5, int))
    with pytest.raises(UsageError, match="inconsistent numbers of samples"):
        MLPClassifier(epochs=1).fit(x, y[:-1])
    with pytest.raises(UsageError, match="batch_size must be a positive integer, got 0"):
        MLPClassifier(epochs=1, batch_size=0).fit(x, y)
    with pytest.raises(UsageError, match="not fitted yet"):
        MLPClassifier().predict(x)


def test_labels_need_not_be_0_to_k(digits):
    x, y, xt, yt = digits
    model = MLPClassifier(hidden_layer_sizes=(32,), epochs=10, learning_rate=1e-2).fit(x, y + 10)
    assert set(model.predict(xt)) <= set(range(10, 20))
    assert model.score(xt, yt + 10) > 0.8


def test_trainer_evaluate_rejects_labels_the_output_layer_has_no_unit_for():
    from mnistlab.nn import build_mlp
    from mnistlab.optim import get_optimizer
    from mnistlab.train import Trainer

    model = build_mlp([4], 3).build(5, seed=0)
    trainer = Trainer(model, get_optimizer("sgd", model.parameters()))
    x = np.zeros((4, 5), np.float32)
    with pytest.raises(UsageError, match=r"labels must lie in \[0, 3\), got \[0, 3\]"):
        trainer.evaluate(x, np.array([0, 1, 2, 3]))
    with pytest.raises(UsageError, match="x has 4 rows but y has shape"):
        trainer.evaluate(x, np.array([0, 1]))
    loss, accuracy = trainer.evaluate(x, np.array([0, 1, 2, 0]))
    assert np.isfinite(loss) and 0 <= accuracy <= 1


def test_trainer_refuses_labels_and_validation_data_it_cannot_use_before_training():
    from mnistlab.nn import build_mlp
    from mnistlab.optim import get_optimizer
    from mnistlab.train import Trainer

    model = build_mlp([4], 3).build(5, seed=0)
    trainer = Trainer(model, get_optimizer("sgd", model.parameters()))
    x, y = np.zeros((8, 5), np.float32), np.zeros(8, int)
    before = model.params.data.copy()
    cases = [
        ({"y": np.full(8, 0.5)}, "labels must be integer class indices, got 0.5"),  # not 0
        ({"y": np.full(8, np.nan)}, "labels must be integer class indices, got nan"),
        ({"y": np.array(["a"] * 8)}, "labels must be integer class indices, got 'a'"),
        ({"validation": x}, "validation must be a pair \\(x_val, y_val\\), got ndarray"),
        ({"validation": (x[:, :2], y)}, "validation x must be \\(n, 5\\), got shape \\(8, 2\\)"),
        ({"validation": (x, y[:3])}, "validation x has 8 rows but y has shape \\(3,\\)"),
        ({"validation": (x, np.full(8, 7))}, "labels must lie in \\[0, 3\\), got \\[7, 7\\]"),
    ]
    for arguments, message in cases:
        arguments = {"y": y, **arguments}
        with pytest.raises(UsageError, match=message):
            trainer.fit(x, arguments.pop("y"), epochs=1, batch_size=4, **arguments)
    np.testing.assert_array_equal(model.params.data, before)  # not one step was taken
    assert trainer.fit(x, y.astype(float), epochs=1, batch_size=4, validation=(x, y))

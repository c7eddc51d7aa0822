"""Training with augmentation: seeded per minibatch, so runs repeat bit for bit and a run killed
with SIGKILL resumes to the uninterrupted run's weights; the configuration and the CLI refuse bad
specifications in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from mnistlab.cli import main
from mnistlab.data import flatten, load_dataset, to_float
from mnistlab.data.augment import parse_augment
from mnistlab.errors import UsageError
from mnistlab.experiments.config import DEFAULTS, resolve_config
from mnistlab.experiments.presets import PRESETS
from mnistlab.models import MLPClassifier
from mnistlab.models.cnn import CNNClassifier
from mnistlab.train import LambdaCallback, TrainingInterrupted

#: digits (8 x 8): 29 steps an epoch at batch 50
MLP = dict(
    hidden_layer_sizes=(32,),
    dropout=0.1,
    batch_size=50,
    epochs=3,
    schedule="cosine",
    random_state=5,
    progress=False,
    augment="shift=1,rotate=10,scale=0.1,elastic=2",
)
CNN = dict(
    conv=(4,),
    hidden_layer_sizes=(16,),
    batch_size=50,
    epochs=2,
    random_state=5,
    progress=False,
    augment="shift=1,rotate=10",
)
#: the CNN with each minibatch's halves on two threads at once (mnistlab.train.parallel)
CNN_HALVES = {**CNN, "data_parallel": True}
MODELS = {
    "mlp": (MLPClassifier, MLP),
    "cnn": (CNNClassifier, CNN),
    "cnn-halves": (CNNClassifier, CNN_HALVES),
}


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits")
    return flatten(to_float(data.x_train, data.pixel_max)), data.y_train


def test_augmentation_repeats_exactly_and_changes_training(digits):
    x, y = digits
    a = MLPClassifier(**MLP).fit(x, y)
    b = MLPClassifier(**MLP).fit(x, y)
    plain = MLPClassifier(**{**MLP, "augment": None}).fit(x, y)
    np.testing.assert_array_equal(a.model_.params.data, b.model_.params.data)
    assert not np.array_equal(a.model_.params.data, plain.model_.params.data)
    assert a.trainer_.augment is not None and plain.trainer_.augment is None


def test_each_minibatch_has_its_own_seed(digits):
    x, y = digits
    trainer = MLPClassifier(**MLP).fit(x[:100], y[:100]).trainer_
    rows = x[:50].astype(np.float32)

    def augmented(epoch, step):
        batch = rows.copy()
        trainer._augmentation(epoch)(batch, step)
        return batch

    np.testing.assert_array_equal(augmented(1, 3), augmented(1, 3))
    assert not np.array_equal(augmented(1, 3), augmented(2, 3))  # another epoch
    assert not np.array_equal(augmented(1, 3), augmented(1, 4))  # another step


def test_interrupt_mid_epoch_then_resume_is_exact(digits, tmp_path):
    """Ctrl-C at step 7 of epoch 2: the resumed epoch starts in the middle of a chunk of
    minibatches, and still augments each minibatch as the uninterrupted run did."""
    x, y = digits
    reference = MLPClassifier(**MLP).fit(x, y)

    def interrupt(trainer, loss):
        if trainer.step == 29 + 7:
            trainer.interrupt()

    checkpoint = tmp_path / "checkpoint.npz"
    with pytest.raises(TrainingInterrupted):
        MLPClassifier(**MLP).fit(
            x, y, callbacks=[LambdaCallback(on_loss=interrupt)], checkpoint=checkpoint
        )
    resumed = MLPClassifier(**MLP).fit(x, y, resume_from=checkpoint)
    np.testing.assert_array_equal(resumed.model_.params.data, reference.model_.params.data)


#: a process that trains with a checkpoint each epoch and SIGKILLs itself at step 11 of its
#: last epoch: nothing of that epoch reaches the checkpoint
KILLED = r"""
import json, os, signal, sys
from mnistlab.data import flatten, load_dataset, to_float
from mnistlab.data.augment import parse_augment
from mnistlab.models import MLPClassifier
from mnistlab.models.cnn import CNNClassifier
from mnistlab.train import LambdaCallback

name, params, checkpoint = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
data = load_dataset("digits")
x = flatten(to_float(data.x_train, data.pixel_max))
model = {"mlp": MLPClassifier, "cnn": CNNClassifier, "cnn-halves": CNNClassifier}[name](**params)

def kill(trainer, loss):
    if trainer.step == 29 * (model.epochs - 1) + 11:
        os.kill(os.getpid(), signal.SIGKILL)

model.fit(x, data.y_train, callbacks=[LambdaCallback(on_loss=kill)], checkpoint=checkpoint)
"""


@pytest.mark.parametrize("name", ["mlp", "cnn", "cnn-halves"])
def test_killed_with_sigkill_resumes_to_identical_weights(digits, tmp_path, name):
    x, y = digits
    estimator, params = MODELS[name]
    checkpoint = tmp_path / "checkpoint.npz"
    params = {**params, "hidden_layer_sizes": list(params["hidden_layer_sizes"])}
    if "conv" in params:
        params["conv"] = list(params["conv"])
    killed = subprocess.run(
        [sys.executable, "-c", KILLED, name, json.dumps(params), str(checkpoint)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert checkpoint.is_file()
    resumed = estimator(**MODELS[name][1]).fit(x, y, resume_from=checkpoint)
    reference = estimator(**MODELS[name][1]).fit(x, y)
    np.testing.assert_array_equal(resumed.model_.params.data, reference.model_.params.data)


def test_rows_that_are_not_images_cannot_be_augmented():
    x = np.random.default_rng(0).random((20, 10))
    with pytest.raises(UsageError, match=r"augment='shift=1' needs images: X has rows of 10"):
        MLPClassifier(augment="shift=1", progress=False).fit(x, np.arange(20) % 2)


def test_a_bad_specification_is_refused_when_the_estimator_is_checked():
    with pytest.raises(UsageError, match="--augment: unknown key 'spin'"):
        CNNClassifier(augment="spin=3").fit(np.zeros((4, 8, 8)), [0, 1, 0, 1])


# ------------------------------------------------------------------ configuration and CLI


def test_augmentation_is_off_by_default_and_in_every_other_preset():
    assert DEFAULTS["augment"] is None
    for name, preset in PRESETS.items():
        model = preset["config"].get("model")
        if model in ("mlp", "cnn") and name != "fashion-augment":
            assert resolve_config({"preset": name}).get("augment") is None, name
    config = resolve_config({"preset": "fashion-augment"})
    assert parse_augment(config["augment"])["flip"]
    assert config.sources["augment"] == "preset"


def test_train_help_lists_augment(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--augment KEY=V,..." in capsys.readouterr().out


@pytest.mark.parametrize(
    ("augment", "message"),
    [
        ("shfit=2", "--augment: unknown key 'shfit' (valid: shift, rotate, scale, elastic, "),
        ("rotate=400", "--augment rotate=400: must be in [0, 180] degrees"),
        ("flip=1", "--augment flip=1: flip is not for --dataset digits"),
        ("shift=1,flip", "--augment shift=1,flip: flip is not for --dataset digits"),
        ("shift=8", "--augment shift=8: must be smaller than the images (8 x 8)"),
    ],
)
def test_cli_refuses_in_one_line_with_exit_2(tmp_path, capsys, augment, message):
    out = tmp_path / "run"
    argv = ["train", "--dataset", "digits", "--epochs", "1", "--quiet", "--out", str(out)]
    assert main([*argv, "--augment", augment]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mnistlab: error: ") and message in err
    assert "\n" not in err
    if "flip" in augment:  # refused before the run folder is made
        assert not out.exists()

"""CNNClassifier: the images it takes, what it learns, saving and loading, its bad input, and
`mnistlab train --model cnn`."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from mnistlab.cli import main
from mnistlab.data import load_dataset
from mnistlab.errors import UsageError
from mnistlab.experiments.config import make_model, resolve_config
from mnistlab.models import CNNClassifier, load_model


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits")
    x_train = (data.x_train / 16.0).astype(np.float32)
    x_test = (data.x_test / 16.0).astype(np.float32)
    return x_train, data.y_train, x_test, data.y_test


def small(**params) -> CNNClassifier:
    settings = {"conv": (4, 8), "hidden_layer_sizes": (16,), "epochs": 3, "progress": False}
    return CNNClassifier(**{**settings, **params})


def test_a_small_cnn_learns_digits(digits):
    x_train, y_train, x_test, y_test = digits
    model = small(conv=(8, 16), hidden_layer_sizes=(32,), epochs=20, learning_rate=3e-3)
    model.fit(x_train, y_train)
    assert model.score(x_test, y_test) >= 0.9
    assert model.image_shape_ == (8, 8, 1)
    assert [layer.kind for layer in model.model_.layers][:3] == ["Conv2D", "MaxPool2D", "ReLU"]


def test_rows_images_and_channels_first_train_the_same_network(digits):
    """(n, 64), (n, 8, 8), (n, 8, 8, 1) and (n, 1, 8, 8) are the same images: same weights."""
    x_train, y_train, x_test, _ = digits
    forms = [
        x_train.reshape(len(x_train), 64),
        x_train,
        x_train[..., None],
        x_train[:, None],
    ]
    models = [small().fit(x, y_train) for x in forms]
    reference = models[0].model_.params.data
    for model in models[1:]:
        np.testing.assert_array_equal(model.model_.params.data, reference)
    proba = models[0].predict_proba(x_test)
    for x in (x_test.reshape(len(x_test), 64), x_test, x_test[..., None], x_test[:, None]):
        np.testing.assert_array_equal(models[1].predict_proba(x), proba)


def test_colour_images_channels_first_are_moved_channels_last(digits):
    x_train, y_train, x_test, _ = digits
    rgb = np.stack([x_train, x_train[:, ::-1], 1 - x_train], axis=-1)
    last = small(conv=(4,)).fit(rgb, y_train)
    first = small(conv=(4,)).fit(np.moveaxis(rgb, -1, 1), y_train)
    assert last.image_shape_ == first.image_shape_ == (8, 8, 3)
    np.testing.assert_array_equal(last.model_.params.data, first.model_.params.data)


def test_images_of_another_shape_are_refused_in_one_line(digits):
    x_train, y_train, x_test, _ = digits
    model = small().fit(x_train, y_train)
    with pytest.raises(UsageError, match=r"images of shape \(4, 16, 1\).*trained on images of "):
        model.predict(x_test.reshape(len(x_test), 4, 16))
    with pytest.raises(UsageError, match="X has 63 features, but CNNClassifier is expecting 64"):
        model.predict(x_test.reshape(len(x_test), 64)[:, :63])


def test_rows_that_are_not_square_images_are_one_row_of_pixels():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 7)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    model = CNNClassifier(conv=(2,), kernel_size=1, pool=1, hidden_layer_sizes=(4,), epochs=2)
    model.set_params(progress=False).fit(x, y)
    assert model.image_shape_ == (1, 7, 1)
    with pytest.raises(UsageError, match=r"pool 2 is larger than the 1x7 maps"):
        CNNClassifier(conv=(2,), epochs=1, progress=False).fit(x, y)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"kernel_size": 9, "padding": "valid"},
            "kernel_size 9 with padding valid leaves no output for images of 8x8",
        ),
        ({"pool": 9}, "pool 9 is larger than the 8x8 maps after convolution 1 of 2"),
        ({"conv": (4, 4, 4, 4)}, "pool 2 is larger than the 1x1 maps after convolution 4 of 4"),
        ({"conv": (4, 0)}, r"conv must be positive filter counts like 32,64, got \(4, 0\)"),
        ({"conv": ()}, "conv must be positive filter counts"),
        ({"kernel_size": 0}, "kernel_size must be a positive integer"),
        ({"padding": "full"}, "padding must be one of same, valid, got 'full'"),
        ({"conv_dropout": 1.0}, r"conv_dropout must be in \[0, 1\), got 1.0"),
        ({"init": ["he_normal", "he_normal"]}, "init of a CNNClassifier is one initializer"),
    ],
)
def test_bad_parameters_are_one_line_naming_the_parameter(digits, params, message):
    x_train, y_train, _, _ = digits
    with pytest.raises(UsageError, match=message) as caught:
        small(**params).fit(x_train, y_train)
    assert "\n" not in str(caught.value)


def test_save_load_and_pickle_keep_the_network_and_its_image_shape(digits, tmp_path):
    x_train, y_train, x_test, _ = digits
    model = small(batchnorm=True, conv_dropout=0.1).fit(x_train, y_train)
    proba = model.predict_proba(x_test)
    loaded = load_model(model.save(tmp_path / "cnn"))
    assert isinstance(loaded, CNNClassifier) and loaded.image_shape_ == (8, 8, 1)
    np.testing.assert_array_equal(loaded.predict_proba(x_test), proba)
    np.testing.assert_array_equal(loaded.predict_proba(x_test[:, None]), proba)
    unpickled = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(unpickled.predict_proba(x_test), proba)
    assert unpickled.get_params() == model.get_params()


def test_onnx_export_gives_the_cnns_probabilities(digits):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    x_train, y_train, x_test, _ = digits
    model = small(batchnorm=True).fit(x_train, y_train)
    proto = model.to_onnx()
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    rows = x_test.reshape(len(x_test), 64)
    proba, labels = session.run(["probabilities", "label"], {"input": rows})
    np.testing.assert_allclose(proba, model.predict_proba(rows), atol=1e-5)
    np.testing.assert_array_equal(model.classes_[labels], model.predict(rows))


@pytest.mark.parametrize(
    ("preset", "shapes"),
    [
        (
            "lenet5",
            ["28, 28, 6", "14, 14, 6", "14, 14, 16", "7, 7, 16", "784", "120", "84", "10"],
        ),
        ("cnn", ["28, 28, 32", "14, 14, 32", "14, 14, 64", "7, 7, 64", "3136", "256", "10"]),
    ],
)
def test_presets_build_their_networks_on_28_by_28_images(preset, shapes):
    model = make_model(resolve_config({"preset": preset}))
    assert isinstance(model, CNNClassifier)
    model.image_shape_ = (28, 28, 1)
    summary = model._build(784, 10).summary()
    seen = [
        line.split("(None, ")[1].split(")")[0] for line in summary.splitlines() if "(None" in line
    ]
    deduplicated = [shape for i, shape in enumerate(seen) if i == 0 or shape != seen[i - 1]]
    assert deduplicated == shapes


def test_lenet5_fits_digits(digits):
    config = resolve_config({"preset": "lenet5", "epochs": 1})
    model = make_model(config)
    x_train, y_train, _, _ = digits
    model.fit(x_train, y_train)
    assert model.model_.layers[0].output_shape == (8, 8, 6)


def test_train_command_runs_a_cnn_and_prints_its_layers(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "cnn", "--dataset", "digits", "--conv", "4,8", "--hidden", "16"]
    assert main([*args, "--epochs", "2", "--kernel", "3", "--pool", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "conv2d_0 (Conv2D)" in printed and "(None, 8, 8, 4)" in printed
    assert "maxpool2d_" in printed and "(None, 2, 2, 8)" in printed
    model = load_model(out)
    assert model.conv == (4, 8) and model.image_shape_ == (8, 8, 1)
    assert (out / "report.html").is_file()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--conv", "0,64"], "--conv must be positive filter counts like 32,64, got [0, 64]"),
        (["--conv", "-3"], "--conv must be positive filter counts like 32,64, got [-3]"),
        (["--kernel", "9", "--padding", "valid"], "--kernel 9 with --padding valid leaves no"),
        (["--pool", "9"], "--pool 9 is larger than the 8x8 maps after convolution 1 of 2"),
        (["--padding", "full"], "--padding must be one of same, valid, got 'full'"),
    ],
)
def test_train_command_bad_cnn_options_are_one_line_and_exit_2(tmp_path, capsys, options, message):
    args = ["train", "--model", "cnn", "--dataset", "digits", "--epochs", "1"]
    assert main([*args, *options, "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"])
def test_every_optimizer_trains_a_cnn(digits, optimizer):
    """SGD's fused update reaches the Dense layers only (a convolution's kernel takes its
    gradient the plain way): every optimizer must still lower the loss of every layer kind."""
    x_train, y_train, _, _ = digits
    rates = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "rmsprop": 1e-3}
    model = small(optimizer=optimizer, learning_rate=rates.get(optimizer, 3e-3), epochs=4)
    before = small(epochs=1).fit(x_train, y_train).model_.layers[0].weight.data.copy()
    model.fit(x_train, y_train)
    losses = model.history_.to_dict()["loss"]
    assert losses[-1] < losses[0]
    assert not np.array_equal(model.model_.layers[0].weight.data, before)


def test_early_stopping_and_a_schedule_apply_to_a_cnn(digits):
    """120 training images overfit within a few dozen epochs: the validation loss turns up."""
    x_train, y_train, _, _ = digits
    model = small(epochs=80, early_stopping=2, learning_rate=1e-2, dropout=0.0, batch_size=16)
    model.set_params(schedule="cosine")
    model.fit(x_train[:120], y_train[:120], validation_data=(x_train[-300:], y_train[-300:]))
    assert model.n_epochs_run_ < 80 and "val_loss" in model.stop_reason_
    rates = model.history_.to_dict()["learning_rate"]
    assert rates[0] > rates[-1]

"""Image layers in a Sequential: building from an image shape, the summary, configs, inputs as
rows or images, BLAS settings, dropout on images, the messages for bad options and shapes, and a
small convolutional network that learns the 8x8 digits."""

from __future__ import annotations

import re

import numpy as np
import pytest

from mnistlab.data import load_dataset, to_float
from mnistlab.errors import UsageError
from mnistlab.nn import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    ReLU,
    Sequential,
    SoftmaxCrossEntropy,
    SpatialDropout2D,
    conv,
    pooling,
)
from mnistlab.nn import model as model_module
from mnistlab.nn.layers import layer_from_config
from mnistlab.optim import Adam
from mnistlab.train import Trainer


def small_cnn(**conv_options) -> list:
    return [
        Conv2D(32, 3, padding="same", **conv_options),
        ReLU(),
        MaxPool2D(2),
        Conv2D(64, 3, padding="same"),
        BatchNorm(),
        ReLU(),
        MaxPool2D(2),
        Flatten(),
        Dropout(0.25),
        Dense(10),
    ]


def test_summary_shows_every_output_shape_and_counts_like_keras():
    model = Sequential(small_cnn()).build((28, 28, 1))
    text = model.summary()
    for label, shape, count in [
        ("conv2d_0 (Conv2D)", "(None, 28, 28, 32)", "320"),  # 3*3*1*32 + 32
        ("maxpool2d_2 (MaxPool2D)", "(None, 14, 14, 32)", "0"),
        ("conv2d_3 (Conv2D)", "(None, 14, 14, 64)", "18,496"),  # 3*3*32*64 + 64
        ("batchnorm_4 (BatchNorm)", "(None, 14, 14, 64)", "256"),  # 2 trainable + 2 running
        ("flatten_7 (Flatten)", "(None, 3136)", "0"),
        ("dense_9 (Dense)", "(None, 10)", "31,370"),
    ]:
        assert re.search(rf"{re.escape(label)}\s+{re.escape(shape)}\s+{count}\n", text), label
    assert "Total params: 50,442" in text
    assert "Non-trainable params: 128" in text
    assert model.input_shape == (28, 28, 1) and model.input_features == 784
    assert model.output_features == 10
    # what a BLAS thread count is sized by: 28*28*288 + 14*14*18432 + 3136*10
    assert model.multiply_adds() == 28 * 28 * 288 + 14 * 14 * 18432 + 31360
    mlp = Sequential([Dense(100), BatchNorm(), ReLU(), Dense(10)]).build(784)
    assert mlp.multiply_adds() == mlp.params.n_decay  # the weights, as the Trainer counts them


def test_forward_takes_rows_or_images_and_names_a_wrong_shape():
    model = Sequential([Conv2D(2, 3), Flatten(), Dense(3)]).build((5, 4, 2), seed=0)
    x = np.random.default_rng(0).normal(size=(3, 5, 4, 2)).astype(np.float32)
    from_images = model.forward(x).copy()
    np.testing.assert_array_equal(model.forward(x.reshape(3, 40)), from_images)
    np.testing.assert_array_equal(model.predict_logits(x), from_images)
    for bad in (np.zeros((3, 5, 4, 1), np.float32), np.zeros((3, 39), np.float32)):
        message = re.escape(f"x must be (batch, 5, 4, 2) or (batch, 40), got shape {bad.shape}")
        with pytest.raises(UsageError, match=message):
            model.forward(bad)


def test_build_takes_a_number_of_features_or_a_shape():
    assert Sequential([Dense(3)]).build(6).input_shape == (6,)
    assert Sequential([Dense(3)]).build((6,))._example_shape is None  # rows, as before
    for bad in (0, (28, 0, 1), (28.0, 28), "784", ()):
        with pytest.raises(UsageError, match="input_shape must be a positive integer"):
            Sequential([Dense(3)]).build(bad)


def test_config_round_trip_rebuilds_the_same_network():
    model = Sequential(small_cnn(stride=(1, 1), init="he_normal")).build((12, 12, 1), seed=3)
    config = model.config()
    assert config["input_shape"] == [12, 12, 1] and config["input_features"] == 144
    rebuilt = Sequential.from_config(config, seed=99)
    rebuilt.load_state_arrays(model.state_arrays())
    x = np.random.default_rng(1).random((4, 144), dtype=np.float32)
    np.testing.assert_array_equal(rebuilt.predict_logits(x), model.predict_logits(x))
    assert [layer.config() for layer in rebuilt.layers] == config["layers"]
    for layer in (Conv2D(4, (3, 2), 2, (1, 0)), AvgPool2D((2, 3), 1), SpatialDropout2D(0.3)):
        assert layer_from_config(layer.config()).config() == layer.config()
    assert "input_shape" not in Sequential([Dense(3)]).build(6).config()  # an MLP's is as before


@pytest.mark.parametrize("library", ["numpy", "scipy"])
@pytest.mark.parametrize("channels, stride", [(3, 2), (1, 1)])  # either layout of the windows
def test_conv2d_gives_the_same_numbers_under_every_blas_setting(library, channels, stride):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 7, 7, channels)).astype(np.float32)
    results = {}
    for setting in (None, library):
        layer = Conv2D(5, 3, stride=stride, padding="same")
        layer.build(x.shape[1:], np.random.default_rng(0), np.float32)
        layer.bias.data[:] = 0.5
        grad = np.random.default_rng(3).normal(size=(4, *layer.output_shape)).astype(np.float32)
        if setting is None:
            out = layer.forward(x).copy()
            grad_in = layer.backward(grad.copy()).copy()
        else:
            with layer.blas.use(1, setting):
                out = layer.forward(x).copy()
                grad_in = layer.backward(grad.copy()).copy()
        results[setting] = out, grad_in, layer.weight.grad.copy(), layer.bias.grad.copy()
    for ours, plain in zip(results[library], results[None], strict=True):
        np.testing.assert_allclose(ours, plain, rtol=1e-5, atol=1e-5)


def test_relu_after_max_pool_works_out_of_place():
    # MaxPool2D.backward compares its inputs with its own output: a ReLU in place would have
    # overwritten the negative maxima (test_image_gradients checks this stack's gradients)
    model = Sequential([Conv2D(3, 3), MaxPool2D(2), ReLU(), Flatten(), Dense(2)]).build((6, 6, 1))
    assert not model.layers[2].inplace


@pytest.mark.parametrize("chunk_bytes", [pooling.CHUNK_BYTES, 1])
def test_max_pool_routes_ties_and_nan_alike_whether_or_not_its_windows_tile_the_input(
    chunk_bytes, monkeypatch
):
    """8x8 in 2x2 windows tiles the input (one comparison over the whole input); the same
    values with a ninth row and column of -inf, which the windows leave out, go through the
    per-offset route. Ties go to the first offset in row-major order, a NaN window to the last.
    chunk_bytes=1: the images go through one at a time."""
    monkeypatch.setattr(pooling, "CHUNK_BYTES", chunk_bytes)
    rng = np.random.default_rng(0)
    x = np.round(rng.normal(size=(3, 8, 8, 4)), 0).astype(np.float32)  # many ties
    x[0, :2, :2, 0] = 1.0  # a window of four equal maxima
    x[1, 2, 3, 1] = np.nan
    grad = rng.normal(size=(3, 4, 4, 4)).astype(np.float32)
    wide = np.full((3, 9, 9, 4), -np.inf, dtype=np.float32)
    wide[:, :8, :8] = x
    results = []
    for images in (x, wide):
        pool = MaxPool2D(2)
        pool.build(images.shape[1:], np.random.default_rng(0), np.float32)
        out = pool.forward(images, training=True).copy()
        results.append((out, pool.backward(grad.copy())[:, :8, :8].copy()))
    (out_tiled, grad_tiled), (out_wide, grad_wide) = results
    np.testing.assert_array_equal(out_tiled, out_wide)
    np.testing.assert_array_equal(grad_tiled, grad_wide)
    assert (
        grad_tiled[0, 0, 0, 0] == grad[0, 0, 0, 0]
        and not grad_tiled[0, :2, :2, 0].ravel()[1:].any()
    )
    assert (
        np.count_nonzero(grad_tiled[1, 2:4, 2:4, 1]) == 1
        and grad_tiled[1, 3, 3, 1] == grad[1, 1, 1, 1]
    )


@pytest.mark.parametrize("padding, stride", [("same", 1), ("valid", 1), (1, 2)])
def test_conv_input_gradient_is_the_same_whatever_the_chunk_of_images(padding, stride, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(13, 9, 9, 3)).astype(np.float32)
    results = []
    for chunk_bytes in (conv.COL2IM_CHUNK_BYTES, 1, 3 * 49 * 3 * 4):  # all, one image, three
        monkeypatch.setattr(conv, "COL2IM_CHUNK_BYTES", chunk_bytes)
        layer = Conv2D(5, 3, stride=stride, padding=padding)
        layer.build(x.shape[1:], np.random.default_rng(1), np.float32)
        out = layer.forward(x, training=True)
        grad = np.random.default_rng(2).normal(size=out.shape).astype(np.float32)
        results.append(layer.backward(grad).copy())
    for other in results[1:]:  # the same sums in the same order; BLAS may round rows apart
        np.testing.assert_allclose(other, results[0], rtol=1e-5, atol=1e-6)


def test_a_convolution_takes_an_empty_batch():
    layer = Conv2D(4, 3, padding="same")
    layer.build((6, 6, 2), np.random.default_rng(0), np.float32)
    out = layer.forward(np.zeros((0, 6, 6, 2), np.float32), training=True)
    assert out.shape == (0, 6, 6, 4)
    assert layer.backward(np.zeros_like(out)).shape == (0, 6, 6, 2)


def test_build_cnn_puts_relu_after_max_pooling_with_the_same_values_and_gradients():
    cnn = model_module.build_cnn([3], [5], 4, kernel_size=3)
    kinds = [layer.kind for layer in cnn.layers]
    assert kinds[:3] == ["Conv2D", "MaxPool2D", "ReLU"]
    textbook = Sequential([layer_from_config(layer.config()) for layer in cnn.layers])
    textbook.layers[1], textbook.layers[2] = textbook.layers[2], textbook.layers[1]
    x = np.random.default_rng(1).normal(size=(6, 8, 8, 1)).astype(np.float32)
    y = np.array([0, 1, 2, 3, 0, 1])
    grads = []
    for network in (cnn, textbook):
        network.build((8, 8, 1), seed=3)
        loss = SoftmaxCrossEntropy()
        loss.forward(network.forward(x, training=True), y)
        network.backward(loss.backward())
        grads.append(network.params.grad.copy())
    np.testing.assert_array_equal(grads[0], grads[1])
    tanh = model_module.build_cnn([3], [5], 4, activation="tanh")
    assert [layer.kind for layer in tanh.layers][:3] == ["Conv2D", "Tanh", "MaxPool2D"]


def test_forward_never_modifies_the_callers_images():
    x = np.random.default_rng(0).normal(size=(4, 6, 6, 2)).astype(np.float32)
    before = x.copy()
    model = Sequential([Dropout(0.5), ReLU(), MaxPool2D(2), BatchNorm(), Flatten(), Dense(3)])
    model.build((6, 6, 2))
    loss = SoftmaxCrossEntropy()
    loss.forward(model.forward(x, training=True), np.array([0, 1, 2, 0]))
    model.backward(loss.backward())
    np.testing.assert_array_equal(x, before)


def test_spatial_dropout_zeroes_whole_channels_and_is_seeded():
    x = np.ones((40, 5, 5, 8), np.float32)
    out = Sequential([SpatialDropout2D(0.5)]).build((5, 5, 8), seed=0).forward(x, training=True)
    per_channel = out.reshape(40, 25, 8)
    assert np.all(per_channel == per_channel[:, :1])  # one value per image and channel
    assert set(np.unique(out)) == {0.0, 2.0}
    assert (per_channel[:, 0] == 0).mean() == pytest.approx(0.5, abs=0.1)
    again = Sequential([SpatialDropout2D(0.5)]).build((5, 5, 8), seed=0).forward(x, training=True)
    np.testing.assert_array_equal(out, again)
    dropout = Sequential([Dropout(0.5)]).build((5, 5, 8), seed=0).forward(x, training=True)
    assert (dropout == 0).mean() == pytest.approx(0.5, abs=0.02)


def test_batchnorm_keeps_running_statistics_per_channel():
    rng = np.random.default_rng(0)
    layer = BatchNorm(momentum=0.9)
    model = Sequential([layer]).build((4, 4, 3), dtype=np.float64)
    x = rng.normal([1.0, -2.0, 5.0], [1.0, 2.0, 3.0], size=(16, 4, 4, 3))
    out = model.forward(x, training=True)
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(layer.running_mean, 0.1 * x.mean(axis=(0, 1, 2)))
    np.testing.assert_allclose(layer.running_var, 0.9 + 0.1 * x.var(axis=(0, 1, 2)))


def test_inference_chunks_bound_an_image_models_work_arrays(monkeypatch):
    mlp = Sequential([Dense(3)]).build(784)
    assert mlp.inference_batch_size == 8192  # as before for rows of features
    cnn = Sequential(small_cnn()).build((28, 28, 1))
    # the widest output is 28 * 28 * 32 values per image: 2**23 of them are 334 images
    assert cnn.inference_batch_size == 256
    monkeypatch.setattr(model_module, "INFERENCE_CHUNK_VALUES", 1000)  # 6 x 6 x 4 = 144 each
    small = Sequential([Conv2D(4, 3, padding="same"), Flatten(), Dense(3)]).build((6, 6, 1))
    assert small.inference_batch_size == 32  # the smallest chunk
    x = np.random.default_rng(0).random((70, 36), dtype=np.float32)
    np.testing.assert_allclose(
        small.predict_logits(x), small.predict_logits(x, batch_size=70), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Conv2D(0, 3), "Conv2D filters must be a positive integer, got filters=0"),
        (lambda: Conv2D(4, (3,)), "Conv2D kernel_size must be a positive integer or a pair of"),
        (lambda: Conv2D(4, 3, stride=0), "Conv2D stride must be a positive integer or a pair"),
        (lambda: Conv2D(4, 3, padding="full"), "Conv2D padding must be 'valid', 'same' or a"),
        (lambda: Conv2D(4, 3, padding=-1), "got padding=-1"),
        (lambda: MaxPool2D(0), "MaxPool2D pool_size must be a positive integer or a pair"),
        (lambda: AvgPool2D(2, stride=(1, 0)), "AvgPool2D stride must be a positive integer"),
        (lambda: SpatialDropout2D(1.0), "SpatialDropout2D rate must be in [0, 1), got rate=1.0"),
    ],
)
def test_bad_options_name_the_layer_option_and_value(make, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        make()


@pytest.mark.parametrize(
    "layers, input_shape, message",
    [
        (
            [Conv2D(4, 5)],
            (4, 8, 1),
            "Conv2D kernel_size=(5, 5) does not fit its input of (4, 8) with padding='valid': "
            "no output position is left",
        ),
        (
            [Conv2D(4, 7, padding=1)],
            (4, 4, 1),
            "Conv2D kernel_size=(7, 7) does not fit its input of (4, 4) with padding=(1, 1)",
        ),
        (
            [MaxPool2D(3)],
            (2, 6, 1),
            "MaxPool2D pool_size=(3, 3) is larger than its input of (2, 6)",
        ),
        (
            [Dense(4), Conv2D(2, 3)],
            (10,),
            "Conv2D needs images of shape (height, width, channels), got input_shape=(4,)",
        ),
        ([AvgPool2D(2)], (6, 6), "AvgPool2D needs images of shape (height, width, channels)"),
        ([SpatialDropout2D(0.1)], (6,), "SpatialDropout2D needs images of shape"),
    ],
)
def test_shapes_that_leave_no_output_or_have_the_wrong_rank(layers, input_shape, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        Sequential(layers).build(input_shape)


def test_a_layer_called_with_another_channel_count_says_so():
    layer = Conv2D(2, 3)
    layer.build((5, 5, 3), np.random.default_rng(0), np.float32)
    with pytest.raises(UsageError, match=re.escape("Conv2D was built for inputs (5, 5, 3), got")):
        layer.forward(np.zeros((2, 5, 5, 1), np.float32))
    pool = MaxPool2D(2)
    pool.build((4, 4, 2), np.random.default_rng(0), np.float32)
    with pytest.raises(UsageError, match=re.escape("MaxPool2D was built for inputs (4, 4, 2)")):
        pool.forward(np.zeros((2, 4, 4), np.float32))


def test_a_small_cnn_learns_the_8x8_digits_in_four_epochs():
    data = load_dataset("digits")
    x = to_float(data.x_train, data.pixel_max)[..., None]  # (n, 8, 8, 1)
    x_test = to_float(data.x_test, data.pixel_max)[..., None]
    model = Sequential(
        [
            Conv2D(16, 3, padding="same", init="he_normal"),
            ReLU(),
            MaxPool2D(2),
            Conv2D(32, 3, padding="same", init="he_normal"),
            BatchNorm(),
            ReLU(),
            MaxPool2D(2),
            Flatten(),
            Dropout(0.2),
            Dense(10),
        ]
    ).build((8, 8, 1), seed=0)
    trainer = Trainer(model, Adam(model.parameters(), learning_rate=3e-3))
    history = trainer.fit(x, data.y_train, epochs=4, batch_size=32, seed=0)
    losses = history.column("loss")
    assert losses[-1] < losses[0] / 5
    _, accuracy = trainer.evaluate(x_test, data.y_test)
    assert accuracy >= 0.93

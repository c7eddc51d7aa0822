"""Central-difference gradient checks (float64) for every layer, activation and loss."""

from __future__ import annotations

import numpy as np
import pytest

from mnistlab.nn import (
    BatchNorm,
    Dense,
    Dropout,
    Identity,
    LeakyReLU,
    MeanSquaredError,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    SoftmaxCrossEntropy,
    Tanh,
)

EPS = 1e-6


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / (|a| + |b|); gradients that are truly zero (a bias before BatchNorm) are
    compared absolutely, since their central differences are rounding noise of ~1e-10."""
    return float(np.max(np.abs(a - b) / np.maximum(1e-4, np.abs(a) + np.abs(b))))


def numeric_gradient(f, array: np.ndarray) -> np.ndarray:
    """d f / d array by central differences, perturbing `array` in place."""
    grad = np.zeros_like(array)
    flat, out = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + EPS
        plus = f()
        flat[i] = old - EPS
        minus = f()
        flat[i] = old
        out[i] = (plus - minus) / (2 * EPS)
    return grad


def check_model(layers, x, labels, loss=None, training=True, tolerance=1e-6):
    """Compare analytic parameter and input gradients of loss(model(x)) with numeric ones.
    x: (batch, features) or a batch of images (batch, height, width, channels)."""
    loss = loss or SoftmaxCrossEntropy()
    model = Sequential([Identity(), *layers]).build(x.shape[1:], seed=1, dtype=np.float64)
    # The leading Identity makes the first real layer compute its input gradient too.

    def objective():
        out = model.forward(x, training=training)
        return loss.forward(out.copy(), labels)

    objective()
    model.params.zero_grad()
    out = model.forward(x, training=training)
    loss.forward(out, labels)
    grad_out = loss.backward().copy()
    input_grad = grad_out
    for layer in reversed(model.layers[1:]):
        input_grad = layer.backward(input_grad)
    input_grad = input_grad.copy()
    for param in model.params:
        analytic = param.grad.copy()
        numeric = numeric_gradient(objective, param.data)
        assert relative_error(analytic, numeric) < tolerance, param.name
    numeric_x = numeric_gradient(objective, x)
    assert relative_error(input_grad, numeric_x) < tolerance


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 5)), rng.integers(0, 3, size=6)


def test_dense(data):
    x, y = data
    check_model([Dense(3)], x, y)


def test_dense_without_bias(data):
    x, y = data
    check_model([Dense(3, use_bias=False)], x, y)


@pytest.mark.parametrize("activation", [ReLU, lambda: LeakyReLU(0.1), Sigmoid, Tanh, Identity])
def test_activations_between_dense_layers(data, activation):
    x, y = data
    check_model([Dense(4), activation(), Dense(3)], x, y)


def test_batchnorm_with_a_layer_before_it(data):
    x, y = data
    check_model([Dense(4), BatchNorm(), ReLU(), Dense(3)], x, y)


def test_batchnorm_inference_mode(data):
    x, y = data
    check_model([Dense(4), BatchNorm(), Dense(3)], x, y, training=False)


def test_dropout_with_a_fixed_mask(data):
    x, y = data
    dropout = Dropout(0.5)
    dropout.fixed_mask = np.random.default_rng(3).random((6, 4)) >= 0.5
    check_model([Dense(4), Tanh(), dropout, Dense(3)], x, y)


def test_softmax_layer_with_mse(data):
    x, y = data
    check_model([Dense(3), Softmax()], x, y, loss=MeanSquaredError())


def test_mse_on_raw_outputs(data):
    x, y = data
    check_model([Dense(3)], x, y, loss=MeanSquaredError())


def test_cross_entropy_is_finite_for_huge_logits():
    loss = SoftmaxCrossEntropy()
    logits = np.array([[1e30, -1e30, 0.0], [800.0, 0.0, -800.0]], dtype=np.float32)
    value = loss.forward(logits, np.array([1, 0]))
    grad = loss.backward()
    assert np.isfinite(value) and value > 1e29
    assert np.all(np.isfinite(grad))


def test_cross_entropy_matches_the_definition():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(4, 5))
    labels = np.array([0, 4, 2, 2])
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(probs[np.arange(4), labels]))
    assert SoftmaxCrossEntropy().forward(logits, labels) == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_counts_correct_predictions_from_its_own_argmax():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(50, 7)).astype(np.float32)
    labels = rng.integers(0, 7, 50)
    loss = SoftmaxCrossEntropy()
    loss.forward(logits, labels)
    expected = int(np.sum(logits.argmax(axis=1) == labels))
    assert loss.count_correct(logits, labels) == expected
    other = rng.normal(size=(50, 7)).astype(np.float32)  # not the last forward's outputs
    assert loss.count_correct(other, labels) == int(np.sum(other.argmax(axis=1) == labels))
    assert SoftmaxCrossEntropy().count_correct(logits, labels) == expected  # before any forward


def test_cross_entropy_of_non_finite_logits_is_not_finite():
    loss = SoftmaxCrossEntropy()
    for bad in (np.nan, np.inf):
        logits = np.array([[0.0, bad, 1.0], [1.0, 2.0, 3.0]], dtype=np.float32)
        with np.errstate(invalid="ignore"):
            assert not np.isfinite(loss.forward(logits, np.array([0, 2])))


def test_l2_penalty_gradient():
    """The trainer adds l2 * W to the weight gradient: check against 0.5 * l2 * ||W||^2."""
    from mnistlab.optim import SGD
    from mnistlab.train import Trainer

    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(5, 4)), rng.integers(0, 2, size=5)
    model = Sequential([Dense(2)]).build(4, seed=0, dtype=np.float64)
    weights_before = model.layers[0].weight.data.copy()
    bias_before = model.layers[0].bias.data.copy()
    trainer = Trainer(model, SGD(model.parameters(), learning_rate=1.0), l2=0.3)
    trainer.fit(x, y, epochs=1, batch_size=5, shuffle=False)
    # One full-batch step with lr 1: W_new = W - (dCE/dW + 0.3 W); bias is not penalized.
    reference = Sequential([Dense(2)]).build(4, seed=0, dtype=np.float64)
    loss = SoftmaxCrossEntropy()
    loss.forward(reference.forward(x, training=True), y)
    reference.backward(loss.backward())
    expected_w = weights_before - (reference.layers[0].weight.grad + 0.3 * weights_before)
    expected_b = bias_before - reference.layers[0].bias.grad
    np.testing.assert_allclose(model.layers[0].weight.data, expected_w, rtol=1e-12)
    np.testing.assert_allclose(model.layers[0].bias.data, expected_b, rtol=1e-12)

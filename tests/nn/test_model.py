"""Sequential: summary counts, flat buffers, in-place safety, and agreement with PyTorch."""

from __future__ import annotations

import re

import numpy as np
import pytest

from mnistlab.errors import UsageError
from mnistlab.nn import (
    BatchNorm,
    Dense,
    Dropout,
    ReLU,
    Sequential,
    SoftmaxCrossEntropy,
    Tanh,
    build_mlp,
    get_initializer,
)


def test_summary_counts_like_keras_for_seed_001s_batchnorm_network():
    # Seed 001's 784-500-250-125-10 with BatchNorm: Keras reported 553,885 / 552,135 / 1,750.
    model = build_mlp([500, 250, 125], 10, batchnorm=True).build(784)
    text = model.summary()
    assert "Total params: 553,885" in text
    assert "Trainable params: 552,135" in text
    assert "Non-trainable params: 1,750" in text
    assert "dense_0 (Dense)" in text and "(None, 500)" in text


def test_parameters_are_views_into_two_flat_buffers():
    model = build_mlp([4], 3).build(5)
    params = model.parameters()
    assert params.size == 5 * 4 + 4 + 4 * 3 + 3
    for param in params:
        assert np.shares_memory(param.data, params.data)
        assert np.shares_memory(param.grad, params.grad)
    # the weights come first, so decay is one slice
    assert params.n_decay == 5 * 4 + 4 * 3
    assert params.data.dtype == np.float32


def test_default_initializers_follow_the_activation():
    relu = build_mlp([300], 10, activation="relu").build(784, seed=0)
    tanh = build_mlp([300], 10, activation="tanh").build(784, seed=0)
    assert relu.layers[0].weight.data.std() == pytest.approx(np.sqrt(2 / 784), rel=0.02)
    assert tanh.layers[0].weight.data.std() == pytest.approx(np.sqrt(2 / (784 + 300)), rel=0.02)


@pytest.mark.parametrize(
    "name, expected_std",
    [
        ("he_normal", np.sqrt(2 / 400)),
        ("he_uniform", np.sqrt(2 / 400)),
        ("glorot_normal", np.sqrt(2 / 600)),
        ("glorot_uniform", np.sqrt(2 / 600)),
        ("lecun_normal", np.sqrt(1 / 400)),
        ({"name": "normal", "std": 0.062}, 0.062),
        ({"name": "uniform", "low": -0.1, "high": 0.1}, 0.2 / np.sqrt(12)),
    ],
)
def test_initializers(name, expected_std):
    weights = get_initializer(name)((400, 200), np.random.default_rng(0))
    assert weights.std() == pytest.approx(expected_std, rel=0.02)
    assert abs(weights.mean()) < 0.01


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(UsageError, match="unknown initializer 'zeroes'; valid:"):
        get_initializer("zeroes")
    with pytest.raises(UsageError, match="Dense units must be a positive integer, got units=0"):
        Dense(0)
    with pytest.raises(UsageError, match="Dropout rate must be in \\[0, 1\\), got rate=1.0"):
        Dropout(1.0)
    with pytest.raises(UsageError, match="hidden sizes must be positive integers"):
        build_mlp([10, 0], 3)


def test_forward_and_predict_logits_name_a_wrong_input():
    with pytest.raises(UsageError, match="this Sequential is not built yet; call build"):
        build_mlp([4], 3).forward(np.zeros((2, 6), np.float32))
    model = build_mlp([4], 3).build(6, seed=0)
    for x in (np.zeros((2, 5), np.float32), np.zeros(6, np.float32)):
        message = re.escape(f"x must be (batch, 6), got shape {x.shape}")
        with pytest.raises(UsageError, match=message):
            model.forward(x)
        with pytest.raises(UsageError, match=message):
            model.predict_logits(x)
    assert model.predict_logits(np.zeros((0, 6), np.float32)).shape == (0, 3)
    assert model.predict_logits(np.zeros((2, 2, 3), np.float32)).shape == (2, 3)


def test_forward_never_modifies_the_callers_data():
    x = np.random.default_rng(0).normal(size=(8, 5)).astype(np.float32)
    before = x.copy()
    for layers in ([ReLU(), Dense(3)], [Dropout(0.5), Tanh(), Dense(3)], [Tanh(), Dropout(0.5)]):
        model = Sequential(layers).build(5)
        model.forward(x, training=True)
        model.forward(x, training=False)
        np.testing.assert_array_equal(x, before)


def test_dropout_is_inverted_seeded_and_off_at_inference():
    model = Sequential([Dropout(0.25)]).build(1000, seed=0)
    x = np.ones((50, 1000), np.float32)
    out = model.forward(x, training=True).copy()
    assert set(np.unique(out)) == {0.0, np.float32(1 / 0.75)}
    assert (out == 0).mean() == pytest.approx(0.25, abs=0.01)
    assert out.mean() == pytest.approx(1.0, abs=0.01)
    np.testing.assert_array_equal(model.forward(x, training=False), x)
    again = Sequential([Dropout(0.25)]).build(1000, seed=0).forward(x, training=True)
    np.testing.assert_array_equal(out, again)


def test_batchnorm_running_statistics_and_inference():
    rng = np.random.default_rng(0)
    layer = BatchNorm(momentum=0.9)
    model = Sequential([layer]).build(3, dtype=np.float64)
    x = rng.normal(5.0, 2.0, size=(64, 3))
    out = model.forward(x, training=True)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(layer.running_mean, 0.1 * x.mean(axis=0))
    np.testing.assert_allclose(layer.running_var, 0.9 + 0.1 * x.var(axis=0))
    inference = model.forward(x, training=False)
    expected = (x - layer.running_mean) / np.sqrt(layer.running_var + layer.eps)
    np.testing.assert_allclose(inference, expected)


def test_batchnorm_step_allocates_no_full_size_array():
    import tracemalloc

    rng = np.random.default_rng(0)
    model = Sequential([Dense(500), BatchNorm(), Dense(10)]).build(20, seed=0)
    x = rng.standard_normal((1024, 20)).astype(np.float32)
    grad = rng.standard_normal((1024, 10)).astype(np.float32)
    model.forward(x, training=True)
    model.backward(grad)  # the work buffers exist from here on
    tracemalloc.start()
    try:
        model.forward(x, training=True)
        model.backward(grad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # a (1024, 500) float32 activation is 2 MB; NumPy's broadcasting loops buffer ~30 KB
    assert peak < 1024 * 500 * 4 / 10


torch = pytest.importorskip("torch")


def test_forward_and_gradients_equal_pytorch_on_the_same_weights():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 12))
    y = rng.integers(0, 4, size=16)
    model = Sequential([Dense(9), ReLU(), Dense(7), Tanh(), Dense(4)]).build(
        12, seed=0, dtype=np.float64
    )
    loss = SoftmaxCrossEntropy()
    logits = model.forward(x, training=True).copy()
    value = loss.forward(logits, y)
    model.backward(loss.backward())

    dense = [layer for layer in model.layers if isinstance(layer, Dense)]
    reference = torch.nn.Sequential(
        torch.nn.Linear(12, 9),
        torch.nn.ReLU(),
        torch.nn.Linear(9, 7),
        torch.nn.Tanh(),
        torch.nn.Linear(7, 4),
    ).double()
    linear = [m for m in reference if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for ours, theirs in zip(dense, linear, strict=True):
            theirs.weight.copy_(torch.from_numpy(ours.weight.data.T.copy()))
            theirs.bias.copy_(torch.from_numpy(ours.bias.data.copy()))
    torch_logits = reference(torch.from_numpy(x))
    torch_loss = torch.nn.functional.cross_entropy(torch_logits, torch.from_numpy(y))
    torch_loss.backward()
    np.testing.assert_allclose(logits, torch_logits.detach().numpy(), rtol=1e-12)
    assert value == pytest.approx(torch_loss.item(), rel=1e-12)
    for ours, theirs in zip(dense, linear, strict=True):
        np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy().T, rtol=1e-10)
        np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), rtol=1e-10)


def test_batchnorm_training_forward_and_gradients_equal_pytorch():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 6))
    y = rng.integers(0, 3, size=10)
    model = Sequential([Dense(5), BatchNorm(eps=1e-5), ReLU(), Dense(3)]).build(
        6, seed=0, dtype=np.float64
    )
    loss = SoftmaxCrossEntropy()
    value = loss.forward(model.forward(x, training=True), y)
    model.backward(loss.backward())
    d1, bn, d2 = model.layers[0], model.layers[1], model.layers[3]
    reference = torch.nn.Sequential(
        torch.nn.Linear(6, 5),
        torch.nn.BatchNorm1d(5, eps=1e-5),
        torch.nn.ReLU(),
        torch.nn.Linear(5, 3),
    ).double()
    with torch.no_grad():
        for ours, index in ((d1, 0), (d2, 3)):
            reference[index].weight.copy_(torch.from_numpy(ours.weight.data.T.copy()))
            reference[index].bias.copy_(torch.from_numpy(ours.bias.data.copy()))
    torch_loss = torch.nn.functional.cross_entropy(
        reference(torch.from_numpy(x)), torch.from_numpy(y)
    )
    torch_loss.backward()
    assert value == pytest.approx(torch_loss.item(), rel=1e-10)
    np.testing.assert_allclose(
        d1.weight.grad, reference[0].weight.grad.numpy().T, rtol=1e-8, atol=1e-12
    )
    np.testing.assert_allclose(
        bn.gamma.grad, reference[1].weight.grad.numpy(), rtol=1e-8, atol=1e-12
    )
    np.testing.assert_allclose(bn.beta.grad, reference[1].bias.grad.numpy(), rtol=1e-8)

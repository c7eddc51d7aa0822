"""SGD's update applied in the weight-gradient GEMMs (GradientSink) is the unfused update: the
same weights, velocities and losses, with weight decay, coupled L2, momentum, BatchNorm, dropout
and a per-step schedule; other optimizers keep the gradients; fused=False gives gradients to
check; a resume stays bit-exact."""

from __future__ import annotations

import numpy as np
import pytest

from mnistlab.data import flatten, load_dataset, to_float
from mnistlab.errors import UsageError
from mnistlab.models import MLPClassifier
from mnistlab.nn import Dense, ReLU, Sequential, build_mlp
from mnistlab.nn.losses import SoftmaxCrossEntropy
from mnistlab.nn.parameters import GradientSink, Parameter, ParameterSet
from mnistlab.optim import get_optimizer
from mnistlab.optim.schedules import CosineDecay
from mnistlab.train import LambdaCallback, Trainer, TrainingInterrupted


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits")
    return flatten(to_float(data.x_train, data.pixel_max)), data.y_train


def _train(x, y, fused: bool, *, optimizer: str, options: dict, l2: float, batchnorm: bool):
    model = build_mlp([24, 16], 10, batchnorm=batchnorm, dropout=0.1)
    model.build(64, seed=5, dtype=np.float64)
    opt = get_optimizer(optimizer, model.parameters(), learning_rate=0.05, fused=fused, **options)
    assert opt.uses_gradient_sink == fused
    losses = []
    trainer = Trainer(
        model,
        opt,
        l2=l2,
        schedule=CosineDecay(0.05, per="step", total=200),
        callbacks=[LambdaCallback(on_loss=lambda trainer, loss: losses.append(loss))],
    )
    trainer.fit(x, y, epochs=3, batch_size=32)
    return model, opt, losses


@pytest.mark.parametrize(
    "optimizer, options, l2, batchnorm",
    [
        ("sgd", {}, 0.0, False),
        ("sgd", {"weight_decay": 0.01}, 0.003, False),
        ("sgd", {}, 0.003, True),
        ("momentum", {}, 0.0, False),
        ("momentum", {"momentum": 0.8, "weight_decay": 0.01}, 0.003, True),
    ],
)
def test_the_sink_gives_the_unfused_update(digits, optimizer, options, l2, batchnorm):
    x, y = digits
    fused, fused_opt, fused_losses = _train(
        x, y, True, optimizer=optimizer, options=options, l2=l2, batchnorm=batchnorm
    )
    plain, plain_opt, plain_losses = _train(
        x, y, False, optimizer=optimizer, options=options, l2=l2, batchnorm=batchnorm
    )
    assert len(fused_losses) == 3 * 45
    np.testing.assert_allclose(fused_losses, plain_losses, rtol=1e-10)
    np.testing.assert_allclose(fused.params.data, plain.params.data, rtol=1e-9, atol=1e-12)
    for key, value in plain_opt.state_dict().items():
        np.testing.assert_allclose(fused_opt.state_dict()[key], value, rtol=1e-9, atol=1e-12)
    assert not np.array_equal(
        fused.params.data,
        _train(x, y, True, optimizer=optimizer, options=options, l2=l2 + 0.01, batchnorm=batchnorm)[
            0
        ].params.data,
    )  # l2 reaches the fused update


def test_which_optimizers_give_a_sink():
    model = build_mlp([8], 3).build(5, seed=0)
    for name in ("sgd", "momentum"):
        optimizer = get_optimizer(name, model.parameters())
        assert optimizer.uses_gradient_sink
        assert isinstance(optimizer.gradient_sink(), GradientSink)
        unfused = get_optimizer(name, model.parameters(), fused=False)
        assert not unfused.uses_gradient_sink and unfused.gradient_sink() is None
    for name in ("nesterov", "rmsprop", "adam", "adamw"):
        optimizer = get_optimizer(name, model.parameters())
        assert not optimizer.uses_gradient_sink and optimizer.gradient_sink() is None
    # a weight whose layer does not compute its gradient with a GEMM: no sink
    params = ParameterSet([Parameter(np.ones((2, 2)), "W", decay=True)], dtype=np.float64)
    assert get_optimizer("sgd", params).gradient_sink() is None
    assert not get_optimizer("sgd", params).uses_gradient_sink
    with pytest.raises(UsageError, match="'adam' does not take a gradient sink"):
        opt = get_optimizer("adam", model.parameters())
        opt.step(GradientSink(model.params.data, -0.1, 1.0))


def test_the_plain_sink_is_the_step_and_the_input_gradient_uses_the_old_weights():
    rng = np.random.default_rng(0)
    model = Sequential([Dense(6), ReLU(), Dense(3)]).build(4, seed=1, dtype=np.float64)
    x, y = rng.standard_normal((10, 4)), rng.integers(0, 3, 10)
    loss = SoftmaxCrossEntropy()
    loss.forward(model.forward(x, training=True), y)
    grad_logits = loss.backward().copy()
    before = model.params.data.copy()
    model.backward(grad_logits.copy())
    grads = model.params.grad.copy()
    grad_in_plain = model.layers[2]._buffer("grad_in", (10, 6)).copy()

    opt = get_optimizer("sgd", model.parameters(), learning_rate=0.1)
    model.forward(x, training=True)
    sink = opt.gradient_sink()
    model.backward(grad_logits.copy(), sink)
    # the second layer's input gradient was computed with its weights before the update
    np.testing.assert_allclose(model.layers[2]._buffer("grad_in", (10, 6)), grad_in_plain)
    opt.step(sink)
    np.testing.assert_allclose(model.params.data, before - 0.1 * grads, rtol=1e-12, atol=1e-15)


def test_momentum_with_l2_resumes_bit_exactly_after_an_interrupt(digits, tmp_path):
    x, y = digits
    settings = dict(
        hidden_layer_sizes=(32, 16),
        batchnorm=True,
        dropout=0.2,
        optimizer="momentum",
        learning_rate=0.05,
        l2=1e-3,
        weight_decay=1e-3,
        batch_size=50,
        epochs=3,
        schedule="cosine",
        random_state=3,
    )
    reference = MLPClassifier(**settings).fit(x, y)

    def interrupt(trainer, loss):
        if trainer.step == 29 + 7:
            trainer.interrupt()

    checkpoint = tmp_path / "checkpoint.npz"
    with pytest.raises(TrainingInterrupted):
        MLPClassifier(**settings).fit(
            x, y, callbacks=[LambdaCallback(on_loss=interrupt)], checkpoint=checkpoint
        )
    resumed = MLPClassifier(**settings).fit(x, y, resume_from=checkpoint)
    np.testing.assert_array_equal(resumed.model_.params.data, reference.model_.params.data)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"])
def test_the_trainer_step_gives_every_optimizer_gradients_to_check(optimizer):
    """With fused=False (SGD's option) every optimizer's step() sees the weights' gradients in
    .grad: dL/dW of the loss plus the coupled L2 term, checked by central differences."""
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(12, 5)), rng.integers(0, 3, size=12)
    l2 = 0.02
    model = Sequential([Dense(4), ReLU(), Dense(3)]).build(5, seed=2, dtype=np.float64)
    options = {"fused": False} if optimizer in ("sgd", "momentum", "nesterov") else {}
    opt = get_optimizer(optimizer, model.parameters(), learning_rate=0.1, **options)
    before = model.params.data.copy()
    seen = []
    real_step = opt.step

    def step(sink=None, l2=0.0):
        assert sink is None
        seen.append(model.params.grad.copy())  # what step() reads, L2 term not yet added
        real_step(sink, l2)

    opt.step = step
    Trainer(model, opt, l2=l2, blas_threads=1).fit(x, y, epochs=1, batch_size=12, shuffle=False)

    def objective():
        loss = SoftmaxCrossEntropy().forward(model.forward(x, training=True).copy(), y)
        weights = model.params.data[: model.params.n_decay]
        return loss + 0.5 * l2 * float(weights @ weights)

    model.params.data[:] = before
    numeric = np.zeros_like(before)
    for i in range(before.size):
        model.params.data[i] = before[i] + 1e-6
        plus = objective()
        model.params.data[i] = before[i] - 1e-6
        numeric[i] = (plus - objective()) / 2e-6
        model.params.data[i] = before[i]
    (analytic,) = seen
    n = model.params.n_decay
    analytic[:n] += l2 * before[:n]
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_a_fused_step_leaves_the_weights_gradients_unwritten():
    # why a gradient check needs fused=False: the sink takes the weights' gradients
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(8, 5)), rng.integers(0, 3, size=8)
    model = Sequential([Dense(4), ReLU(), Dense(3)]).build(5, seed=2, dtype=np.float64)
    opt = get_optimizer("sgd", model.parameters(), learning_rate=0.1)
    Trainer(model, opt).fit(x, y, epochs=1, batch_size=8)
    n = model.params.n_decay
    assert not model.params.grad[:n].any() and model.params.grad[n:].any()

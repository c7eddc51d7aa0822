"""SGD's update applied in the weight-gradient GEMMs (GradientSink) is the unfused update: the
same weights, velocities and losses, with weight decay, coupled L2, momentum, BatchNorm, dropout
and a per-step schedule; other optimizers keep the gradients; a resume stays bit-exact."""

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
    opt = get_optimizer(optimizer, model.parameters(), learning_rate=0.05, **options)
    if not fused:
        opt.gradient_sink = lambda l2=0.0: None  # the trainer's unfused path
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
        assert isinstance(get_optimizer(name, model.parameters()).gradient_sink(), GradientSink)
    for name in ("nesterov", "rmsprop", "adam", "adamw"):
        assert get_optimizer(name, model.parameters()).gradient_sink() is None
    # a weight whose layer does not compute its gradient with a GEMM: no sink
    params = ParameterSet([Parameter(np.ones((2, 2)), "W", decay=True)], dtype=np.float64)
    assert get_optimizer("sgd", params).gradient_sink() is None
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
        hidden=(32, 16),
        batchnorm=True,
        dropout=0.2,
        optimizer="momentum",
        learning_rate=0.05,
        l2=1e-3,
        weight_decay=1e-3,
        batch_size=50,
        epochs=3,
        schedule="cosine",
        seed=3,
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

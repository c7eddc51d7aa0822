"""Optimizer steps: hand-computed golden values, and agreement with torch.optim step for step."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mnistlab.errors import UsageError
from mnistlab.nn.parameters import Parameter, ParameterSet
from mnistlab.optim import SGD, Adam, AdamW, RMSprop, get_optimizer


def make_params(values, grads=None, dtype=np.float64):
    param = Parameter(np.array(values, dtype=dtype), "w")
    params = ParameterSet([param], dtype=dtype)
    if grads is not None:
        params.grad[:] = grads
    return params


def test_sgd_one_step_by_hand():
    params = make_params([1.0, -2.0], [0.5, 0.25])
    SGD(params, learning_rate=0.1).step()
    # 1 - 0.1 * 0.5 = 0.95; -2 - 0.1 * 0.25 = -2.025
    np.testing.assert_allclose(params.data, [0.95, -2.025])


def test_momentum_two_steps_by_hand():
    params = make_params([1.0], [1.0])
    opt = SGD(params, learning_rate=0.1, momentum=0.9)
    opt.step()  # v = 1;            w = 1 - 0.1 * 1 = 0.9
    opt.step()  # v = 0.9 + 1 = 1.9; w = 0.9 - 0.19 = 0.71
    np.testing.assert_allclose(params.data, [0.71])


def test_nesterov_one_step_by_hand():
    params = make_params([1.0], [2.0])
    SGD(params, learning_rate=0.1, momentum=0.5, nesterov=True).step()
    # v = 2; w = 1 - 0.1 * (2 + 0.5 * 2) = 0.7
    np.testing.assert_allclose(params.data, [0.7])


def test_rmsprop_one_step_by_hand():
    params = make_params([1.0], [2.0])
    RMSprop(params, learning_rate=0.01, rho=0.9, eps=1e-7).step()
    # s = 0.1 * 4 = 0.4; w = 1 - 0.01 * 2 / (sqrt(0.4) + 1e-7)
    np.testing.assert_allclose(params.data, [1 - 0.02 / (math.sqrt(0.4) + 1e-7)])


def test_adam_first_step_is_lr_times_sign():
    # With bias correction the first step is lr * g / (|g| + eps) ~ lr * sign(g).
    params = make_params([1.0, 1.0], [3.0, -0.001])
    Adam(params, learning_rate=0.01, eps=1e-8).step()
    np.testing.assert_allclose(params.data, [0.99, 1.01], rtol=1e-6)


def test_adam_two_steps_by_hand():
    params = make_params([0.0], [1.0])
    opt = Adam(params, learning_rate=0.1, beta1=0.9, beta2=0.999, eps=1e-8)
    opt.step()
    params.grad[:] = [0.5]
    opt.step()
    m = 0.9 * 0.1 + 0.1 * 0.5  # 0.14
    v = 0.999 * 0.001 + 0.001 * 0.25  # 0.001249
    m_hat, v_hat = m / (1 - 0.9**2), v / (1 - 0.999**2)
    first = -0.1 * 1.0 / (1.0 + 1e-8)  # m_hat = 1, v_hat = 1 after step one
    expected = first - 0.1 * m_hat / (math.sqrt(v_hat) + 1e-8)
    np.testing.assert_allclose(params.data, [expected], rtol=1e-9)


def test_adamw_decays_weights_not_biases():
    weight = Parameter(np.array([2.0]), "W", decay=True)
    bias = Parameter(np.array([2.0]), "b", decay=False)
    params = ParameterSet([bias, weight], dtype=np.float64)
    params.grad[:] = 0.0
    AdamW(params, learning_rate=0.1, weight_decay=0.5).step()
    # zero gradient: the Adam step is 0; the weight decays by lr * wd = 5%
    assert weight.data[0] == pytest.approx(1.9)
    assert bias.data[0] == pytest.approx(2.0)


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        (
            "sgd",
            {"learning_rate": -1},
            "learning_rate must be a positive number, got learning_rate=-1",
        ),
        ("sgd", {"learning_rate": 0}, "learning_rate=0"),
        ("adam", {"beta1": 1.0}, "beta1 must be in [0, 1), got beta1=1.0"),
        ("sgd", {"nesterov": True}, "nesterov=True needs momentum > 0"),
        ("lion", {}, "unknown optimizer 'lion'; valid: sgd, rmsprop, adam, adamw"),
    ],
)
def test_bad_settings_are_refused(name, kwargs, message):
    with pytest.raises(UsageError) as info:
        get_optimizer(name, make_params([1.0]), **kwargs)
    assert message in str(info.value)


def test_tiny_slot_values_are_flushed_before_they_become_subnormal():
    params = make_params([1.0], dtype=np.float32)
    opt = Adam(params, learning_rate=0.01)
    params.grad[:] = 1e-3
    opt.step()
    params.grad[:] = 0.0
    for _ in range(2000):
        opt.step()
    tiny = np.finfo(np.float32).tiny
    assert opt.m[0] == 0.0 or abs(opt.m[0]) >= tiny


def _adam_by_the_book(start, grads, lr, b1, b2, eps):
    """Adam as the paper and torch.optim write it, the decay applied every step: (w, m, v)."""
    w, m, v = np.array(start, dtype=np.float64), np.zeros(len(start)), np.zeros(len(start))
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return w, m, v


@pytest.mark.parametrize("steps", [1, 31, 32, 33, 100])
@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.9), (0.0, 0.999), (0.99, 0.0)])
def test_adam_with_scaled_moments_is_adam(steps, betas):
    # The moments are kept scaled between applications of the decay (every FLUSH_EVERY steps,
    # or every step for small betas); the parameters and the moments are Adam's all the same.
    rng = np.random.default_rng(1)
    start = rng.normal(size=9)
    grads = rng.normal(size=(steps, 9)) * np.logspace(-3, 1, 9)
    params = make_params(start)
    opt = Adam(params, learning_rate=0.01, beta1=betas[0], beta2=betas[1], eps=1e-8)
    for g in grads:
        params.grad[:] = g
        opt.step()
    w, m, v = _adam_by_the_book(start, grads, 0.01, *betas, 1e-8)
    np.testing.assert_allclose(params.data, w, rtol=1e-12)
    np.testing.assert_allclose(opt.m, m, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(opt.v, v, rtol=1e-12, atol=1e-300)
    assert opt.decay_period == (1 if min(betas) < 0.8 else 32)


def _steps(grads, *pairs):
    """One optimizer step per gradient, for each (params, optimizer) pair alike."""
    for g in grads:
        for params, optimizer in pairs:
            params.grad[:] = g
            optimizer.step()


def test_adam_state_resumes_exactly_between_two_applications_of_the_decay():
    rng = np.random.default_rng(2)
    grads = rng.normal(size=(45, 5)).astype(np.float32)
    params = make_params(rng.normal(size=5), dtype=np.float32)
    opt = Adam(params, learning_rate=0.01)
    _steps(grads[:13], (params, opt))  # 13 steps: the scaled moments lack 13 steps of decay
    state = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in opt.state_dict().items()}
    assert set(state) == {"iterations", "m_scaled", "v_scaled"}
    copy = make_params(params.data.copy(), dtype=np.float32)
    resumed = Adam(copy, learning_rate=0.01)
    resumed.load_state_dict(state)
    _steps(grads[13:], (params, opt), (copy, resumed))
    np.testing.assert_array_equal(copy.data, params.data)


def test_the_coupled_l2_term_joins_the_weights_gradients_in_step():
    weight = Parameter(np.array([2.0]), "W", decay=True)
    bias = Parameter(np.array([2.0]), "b", decay=False)
    params = ParameterSet([bias, weight], dtype=np.float64)
    params.grad[:] = [0.5, 0.5]  # weight first: [W, b]
    SGD(params, learning_rate=0.1).step(l2=0.3)
    # W: 2 - 0.1 * (0.5 + 0.3 * 2) = 1.89; b is not penalized: 2 - 0.1 * 0.5 = 1.95
    np.testing.assert_allclose([weight.data[0], bias.data[0]], [1.89, 1.95])


torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda p: SGD(p, learning_rate=0.1), lambda w: torch.optim.SGD(w, lr=0.1)),
        (
            lambda p: get_optimizer("momentum", p, learning_rate=0.05, momentum=0.9),
            lambda w: torch.optim.SGD(w, lr=0.05, momentum=0.9),
        ),
        (
            lambda p: get_optimizer("nesterov", p, learning_rate=0.05, momentum=0.8),
            lambda w: torch.optim.SGD(w, lr=0.05, momentum=0.8, nesterov=True),
        ),
        (
            lambda p: RMSprop(p, learning_rate=0.01, rho=0.9, eps=1e-7),
            lambda w: torch.optim.RMSprop(w, lr=0.01, alpha=0.9, eps=1e-7),
        ),
        (
            lambda p: Adam(p, learning_rate=0.01, beta1=0.8, beta2=0.99, eps=1e-8),
            lambda w: torch.optim.Adam(w, lr=0.01, betas=(0.8, 0.99), eps=1e-8),
        ),
        (
            lambda p: AdamW(p, learning_rate=0.01, weight_decay=0.1),
            lambda w: torch.optim.AdamW(w, lr=0.01, weight_decay=0.1),
        ),
    ],
    ids=["sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"],
)
def test_matches_torch_optim_for_a_few_steps(ours, theirs):
    rng = np.random.default_rng(0)
    start = rng.normal(size=7)
    params = make_params(start)
    optimizer = ours(params)
    weight = torch.tensor(start.copy(), dtype=torch.float64, requires_grad=True)
    reference = theirs([weight])
    for _ in range(70):  # past two applications of Adam's decay (see Adam)
        grad = rng.normal(size=7)
        params.grad[:] = grad
        optimizer.step()
        weight.grad = torch.tensor(grad, dtype=torch.float64)
        reference.step()
    np.testing.assert_allclose(params.data, weight.detach().numpy(), rtol=1e-6, atol=1e-9)

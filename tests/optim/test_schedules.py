import math

import pytest

from mnistlab.errors import UsageError
from mnistlab.optim import (
    Constant,
    CosineDecay,
    ExponentialDecay,
    LinearDecay,
    StepDecay,
    make_schedule,
)


def test_constant():
    assert Constant(0.1)(0) == Constant(0.1)(1000) == 0.1


def test_linear_decay_as_seed_003():
    schedule = LinearDecay(0.03, tau=100, final_learning_rate=0.0003)
    assert schedule(0) == pytest.approx(0.03)
    # halfway: (1 - 0.5) * 0.03 + 0.5 * 0.0003 = 0.01515
    assert schedule(50) == pytest.approx(0.01515)
    assert schedule(100) == pytest.approx(0.0003)
    assert schedule(5000) == pytest.approx(0.0003)


def test_step_decay():
    schedule = StepDecay(1.0, step_size=3, gamma=0.5)
    assert [schedule(t) for t in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]


def test_exponential_decay():
    assert ExponentialDecay(2.0, gamma=0.9)(2) == pytest.approx(2.0 * 0.81)


def test_cosine_decay():
    schedule = CosineDecay(1.0, total=10, min_learning_rate=0.1)
    assert schedule(0) == pytest.approx(1.0)
    assert schedule(5) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 2)) / 2)
    assert schedule(10) == pytest.approx(0.1)
    assert schedule(20) == pytest.approx(0.1)


def test_make_schedule_spans_the_run():
    schedule = make_schedule("linear", 0.1, steps_per_epoch=10, epochs=5)
    assert schedule.tau == 50 and schedule(50) == pytest.approx(0.001)
    assert make_schedule("step", 0.1, steps_per_epoch=10, epochs=9).per == "epoch"


def test_unknown_schedule():
    with pytest.raises(UsageError, match="unknown schedule 'warp'; valid: constant, linear"):
        make_schedule("warp", 0.1, steps_per_epoch=1, epochs=1)


def test_bad_values():
    with pytest.raises(UsageError, match="tau must be positive, got tau=0"):
        LinearDecay(0.1, tau=0)
    with pytest.raises(UsageError, match="learning_rate must be positive, got learning_rate=-0.1"):
        Constant(-0.1)

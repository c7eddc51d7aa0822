"""Learning-rate schedules: lr as a function of the step (or epoch) counter t = 0, 1, 2, ...

Each schedule is applied per step or per epoch (`per`). `LinearDecay` goes from lr0
down to lr_tau over tau steps, then stays constant.
"""

from __future__ import annotations

import math

from mnistlab.errors import UsageError


class Schedule:
    """The base of every schedule: ``schedule(t)`` is the learning rate at counter t.

    Parameters
    ----------
    learning_rate : float
        The initial learning rate (> 0).
    per : {"step", "epoch"}
        What t counts: optimizer steps or completed epochs.
    """

    name = "schedule"

    def __init__(self, learning_rate: float, per: str = "step") -> None:
        if not (math.isfinite(learning_rate) and learning_rate > 0):
            raise UsageError(f"learning_rate must be positive, got learning_rate={learning_rate!r}")
        if per not in ("step", "epoch"):
            raise UsageError(f"schedule per must be 'step' or 'epoch', got per={per!r}")
        self.learning_rate = float(learning_rate)
        self.per = per

    def __call__(self, t: int) -> float:
        """The learning rate at step or epoch t (0-based)."""
        raise NotImplementedError

    def config(self) -> dict:
        """The schedule's name and settings, JSON-ready."""
        return {"name": self.name, **vars(self)}


class Constant(Schedule):
    """The same learning rate at every t."""

    name = "constant"

    def __call__(self, t):
        return self.learning_rate


class LinearDecay(Schedule):
    """lr(t) = (1 - a) * lr0 + a * lr_tau with a = t / tau, then lr_tau for t >= tau."""

    name = "linear"

    def __init__(
        self, learning_rate, tau: int, final_learning_rate: float | None = None, per: str = "step"
    ) -> None:
        super().__init__(learning_rate, per)
        if tau <= 0:
            raise UsageError(f"linear decay tau must be positive, got tau={tau}")
        self.tau = int(tau)
        self.final_learning_rate = (
            float(final_learning_rate)
            if final_learning_rate is not None
            else self.learning_rate / 100
        )

    def __call__(self, t):
        alpha = min(t / self.tau, 1.0)
        return (1 - alpha) * self.learning_rate + alpha * self.final_learning_rate


class StepDecay(Schedule):
    """lr * gamma ** (t // step_size)."""

    name = "step"

    def __init__(self, learning_rate, step_size: int, gamma: float = 0.1, per: str = "epoch"):
        super().__init__(learning_rate, per)
        if step_size <= 0 or not 0 < gamma <= 1:
            raise UsageError(
                f"step decay needs step_size > 0 and 0 < gamma <= 1, got "
                f"step_size={step_size}, gamma={gamma}"
            )
        self.step_size, self.gamma = int(step_size), float(gamma)

    def __call__(self, t):
        return self.learning_rate * self.gamma ** (t // self.step_size)


class ExponentialDecay(Schedule):
    """lr * gamma ** t."""

    name = "exponential"

    def __init__(self, learning_rate, gamma: float = 0.95, per: str = "epoch"):
        super().__init__(learning_rate, per)
        if not 0 < gamma <= 1:
            raise UsageError(f"exponential decay gamma must be in (0, 1], got gamma={gamma}")
        self.gamma = float(gamma)

    def __call__(self, t):
        return self.learning_rate * self.gamma**t


class CosineDecay(Schedule):
    """lr_min + (lr - lr_min) * (1 + cos(pi * t / total)) / 2, then lr_min."""

    name = "cosine"

    def __init__(
        self, learning_rate, total: int, min_learning_rate: float = 0.0, per: str = "step"
    ):
        super().__init__(learning_rate, per)
        if total <= 0:
            raise UsageError(f"cosine decay total must be positive, got total={total}")
        self.total, self.min_learning_rate = int(total), float(min_learning_rate)

    def __call__(self, t):
        progress = min(t / self.total, 1.0)
        span = self.learning_rate - self.min_learning_rate
        return self.min_learning_rate + span * (1 + math.cos(math.pi * progress)) / 2


SCHEDULES = {
    cls.name: cls for cls in (Constant, LinearDecay, StepDecay, ExponentialDecay, CosineDecay)
}


def make_schedule(
    name: str, learning_rate: float, *, steps_per_epoch: int, epochs: int, **kwargs
) -> Schedule:
    """A schedule by name with defaults that span the whole run.

    linear: tau = all steps, down to lr/100; cosine: over all steps; step: x0.1 every third of
    the epochs; exponential: x0.95 per epoch.
    """
    key = name.lower()
    total_steps = max(1, steps_per_epoch * epochs)
    if key == "constant":
        return Constant(learning_rate)
    if key == "linear":
        kwargs.setdefault("tau", total_steps)
        return LinearDecay(learning_rate, **kwargs)
    if key == "cosine":
        kwargs.setdefault("total", total_steps)
        return CosineDecay(learning_rate, **kwargs)
    if key == "step":
        kwargs.setdefault("step_size", max(1, epochs // 3))
        return StepDecay(learning_rate, **kwargs)
    if key == "exponential":
        return ExponentialDecay(learning_rate, **kwargs)
    raise UsageError(f"unknown schedule {name!r}; valid: {', '.join(SCHEDULES)}")

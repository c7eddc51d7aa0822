"""Optimizers and learning-rate schedules."""

from mnistlab.optim.optimizers import (
    OPTIMIZER_NAMES,
    SGD,
    Adam,
    AdamW,
    Optimizer,
    RMSprop,
    get_optimizer,
)
from mnistlab.optim.schedules import (
    Constant,
    CosineDecay,
    ExponentialDecay,
    LinearDecay,
    Schedule,
    StepDecay,
    make_schedule,
)

__all__ = [
    "OPTIMIZER_NAMES",
    "SGD",
    "Adam",
    "AdamW",
    "Constant",
    "CosineDecay",
    "ExponentialDecay",
    "LinearDecay",
    "Optimizer",
    "RMSprop",
    "Schedule",
    "StepDecay",
    "get_optimizer",
    "make_schedule",
]

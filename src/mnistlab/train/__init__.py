"""Training: the loop, callbacks, history and checkpoints."""

from mnistlab.errors import TrainingInterrupted
from mnistlab.train.callbacks import (
    Callback,
    EarlyStopping,
    LambdaCallback,
    ModelCheckpoint,
    ProgressBar,
    TerminateOnNaN,
)
from mnistlab.train.history import History
from mnistlab.train.trainer import Trainer

__all__ = [
    "Callback",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "ModelCheckpoint",
    "ProgressBar",
    "TerminateOnNaN",
    "Trainer",
    "TrainingInterrupted",
]

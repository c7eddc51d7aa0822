"""Training: the loop, callbacks, history and checkpoints."""

from mnistlab.train.callbacks import (
    Callback,
    EarlyStopping,
    LambdaCallback,
    ModelCheckpoint,
    ProgressBar,
    TerminateOnNaN,
)
from mnistlab.train.trainer import History, Trainer, TrainingInterrupted

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

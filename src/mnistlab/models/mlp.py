"""The multilayer perceptron as a scikit-learn-style estimator over the NumPy engine."""

from __future__ import annotations

import numpy as np

from mnistlab.models.base import Classifier
from mnistlab.nn.functional import softmax
from mnistlab.nn.model import Sequential, build_mlp
from mnistlab.optim.optimizers import get_optimizer
from mnistlab.optim.schedules import make_schedule
from mnistlab.train.callbacks import EarlyStopping, ProgressBar, TerminateOnNaN
from mnistlab.train.trainer import Trainer


class MLPClassifier(Classifier):
    """A multilayer perceptron trained with minibatch gradient methods.

    hidden: sizes of the hidden layers, e.g. (256, 128).
    activation: relu, leaky_relu, sigmoid, tanh.
    init: initializer name or config for every Dense layer, or a list with one per Dense layer;
        None chooses He for the ReLU family and Glorot otherwise.
    batchnorm, dropout: BatchNorm after each hidden Dense; dropout rate after each activation.
    optimizer: sgd, momentum, nesterov, rmsprop, adam, adamw; learning_rate; momentum for the
        SGD family (default 0.9 for momentum and nesterov), beta1 and beta2 for Adam and AdamW,
        rho for RMSprop (None: the optimizer's default).
    l2: penalty 0.5 * l2 * ||W||^2 coupled to the loss; weight_decay: decoupled decay.
    schedule: constant, linear, step, exponential, cosine.
    early_stopping: patience in epochs (monitors val_loss when there is validation data).
    validation: hold out this many (int) or this share (float) of the training rows when fit
        gets no validation_data; the last rows, as seeds 000 and 002 do.
    seed: initialization, shuffling and dropout all derive from it; same seed, same weights.
    """

    model_name = "mlp"

    def __init__(
        self,
        hidden=(256, 128),
        activation: str = "relu",
        init=None,
        batchnorm: bool = False,
        dropout: float = 0.0,
        leaky_slope: float = 0.01,
        optimizer: str = "adam",
        learning_rate: float = 1e-3,
        momentum: float | None = None,
        beta1: float | None = None,
        beta2: float | None = None,
        rho: float | None = None,
        batch_size: int = 128,
        epochs: int = 20,
        l2: float = 0.0,
        weight_decay: float | None = None,
        schedule: str = "constant",
        early_stopping: int | None = None,
        validation: int | float | None = None,
        seed: int = 0,
        dtype: str = "float32",
        progress: bool | None = False,
        blas_threads: int | None = None,
    ) -> None:
        self.hidden = hidden
        self.activation = activation
        self.init = init
        self.batchnorm = batchnorm
        self.dropout = dropout
        self.leaky_slope = leaky_slope
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.beta1 = beta1
        self.beta2 = beta2
        self.rho = rho
        self.batch_size = batch_size
        self.epochs = epochs
        self.l2 = l2
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.early_stopping = early_stopping
        self.validation = validation
        self.seed = seed
        self.dtype = dtype
        self.progress = progress
        self.blas_threads = blas_threads

    # ------------------------------------------------------------------ building

    def _build(self, n_features: int, n_classes: int) -> Sequential:
        model = build_mlp(
            list(self.hidden),
            n_classes,
            activation=self.activation,
            init=self.init,
            batchnorm=self.batchnorm,
            dropout=self.dropout,
            leaky_slope=self.leaky_slope,
        )
        return model.build(n_features, seed=self.seed, dtype=self.dtype)

    def _make_trainer(self, model: Sequential, n_train: int, callbacks=()) -> Trainer:
        options = {}
        for key in ("momentum", "beta1", "beta2", "rho"):
            if getattr(self, key) is not None:
                options[key] = getattr(self, key)
        if self.weight_decay is not None:
            options["weight_decay"] = self.weight_decay
        optimizer = get_optimizer(
            self.optimizer, model.parameters(), learning_rate=self.learning_rate, **options
        )
        steps = -(-n_train // int(self.batch_size))
        schedule = make_schedule(
            self.schedule, self.learning_rate, steps_per_epoch=steps, epochs=int(self.epochs)
        )
        every = [TerminateOnNaN(), ProgressBar(enabled=self.progress), *callbacks]
        if self.early_stopping is not None:
            monitor = "val_loss" if self._has_validation else "loss"
            every.insert(0, EarlyStopping(monitor=monitor, patience=int(self.early_stopping)))
        return Trainer(
            model,
            optimizer,
            schedule=schedule,
            l2=self.l2,
            callbacks=every,
            blas_threads=self.blas_threads,
        )

    def _validate_params(self) -> None:
        from mnistlab.experiments.config import validate_config

        validate_config(
            {
                "model": "mlp",
                "hidden": list(self.hidden),
                "activation": self.activation,
                "leaky_slope": self.leaky_slope,
                "batchnorm": self.batchnorm,
                "optimizer": self.optimizer,
                "schedule": self.schedule,
                "init": self.init,
                "lr": self.learning_rate,
                "batch_size": self.batch_size,
                "epochs": self.epochs,
                "checkpoint_every": 1,
                "l2": self.l2,
                "weight_decay": self.weight_decay,
                "dropout": self.dropout,
                "momentum": self.momentum,
                "beta1": self.beta1,
                "beta2": self.beta2,
                "rho": self.rho,
                "early_stopping": self.early_stopping,
                "validation": self.validation,
                "dtype": self.dtype,
            },
            style="python",
        )

    def _prepare(self, X, y, validation_data):
        self._validate_params()
        X = self._check_X(X, fitting=True)
        y = self._check_y(X, y)
        self.classes_ = np.unique(y)
        self.n_features_in_ = X.shape[1]
        y_index = np.searchsorted(self.classes_, y)
        if validation_data is None and self.validation is not None:
            from mnistlab.data.prepare import train_validation_split

            X, y_index, x_val, y_val = train_validation_split(X, y_index, self.validation)
            validation_data = (x_val, self.classes_[y_val])
        if validation_data is not None:
            validation_data = self._check_validation(X, validation_data)
        self._has_validation = validation_data is not None
        return X, y_index, validation_data

    # ------------------------------------------------------------------ fitting

    def fit(self, X, y, validation_data=None, callbacks=(), checkpoint=None, resume_from=None):
        """Train on X: (n, features), y: (n,) labels. Returns self.

        validation_data: (X_val, y_val) evaluated after every epoch.
        callbacks: extra Callback objects.
        checkpoint: a path; the trainer saves there every epoch and on Ctrl-C.
        resume_from: a checkpoint path to continue from (same data and parameters).
        """
        from mnistlab.train.callbacks import ModelCheckpoint

        X, y_index, validation_data = self._prepare(X, y, validation_data)
        self.model_ = self._build(X.shape[1], self.classes_.size)
        extra = list(callbacks)
        if checkpoint is not None:
            extra.append(ModelCheckpoint(checkpoint))
        self.trainer_ = self._make_trainer(self.model_, X.shape[0], extra)
        self.trainer_.checkpoint_path = checkpoint
        if resume_from is not None:
            self.trainer_.load_checkpoint(resume_from)
        self.trainer_.fit(
            X,
            y_index,
            validation=validation_data,
            epochs=int(self.epochs),
            batch_size=int(self.batch_size),
            seed=self.seed,
        )
        self.history_ = self.trainer_.history
        self.n_epochs_run_ = len(self.history_)
        self.stop_reason_ = self.trainer_.stop_reason
        self.diverged_ = self.trainer_.diverged
        return self

    # ------------------------------------------------------------------ inference

    def decision_function(self, X) -> np.ndarray:
        """Logits: (n, n_classes)."""
        X = self._check_X(X)
        return self.model_.predict_logits(X)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities: (n, n_classes), rows sum to 1."""
        return softmax(self.decision_function(X))

    def summary(self) -> str:
        self._check_fitted()
        return self.model_.summary()

    # ------------------------------------------------------------------ persistence

    def _extra_meta(self):
        return {"architecture": self.model_.config()}

    def _arrays(self):
        return self.model_.state_arrays()

    def _restore(self, meta, arrays):
        self.model_ = Sequential.from_config(meta["architecture"], seed=self.seed)
        self.model_.load_state_arrays(arrays, where="weights.npz")

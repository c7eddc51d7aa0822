"""The multilayer perceptron as a scikit-learn-style estimator over the NumPy engine."""

from __future__ import annotations

import numpy as np

from mnistlab.data.prepare import train_validation_split
from mnistlab.errors import UsageError
from mnistlab.models.base import Classifier
from mnistlab.models.params import (
    BATCH_SIZE,
    DTYPE,
    EPOCHS,
    L2,
    LEARNING_RATE,
    SEED,
    VALIDATION,
    ParamSpec,
)
from mnistlab.nn.functional import softmax
from mnistlab.nn.init import get_initializer
from mnistlab.nn.layers import get_activation
from mnistlab.nn.model import Sequential, build_mlp
from mnistlab.optim.optimizers import OPTIMIZER_NAMES, get_optimizer
from mnistlab.optim.schedules import SCHEDULES, make_schedule
from mnistlab.train.callbacks import EarlyStopping, ModelCheckpoint, ProgressBar, TerminateOnNaN
from mnistlab.train.trainer import Trainer

#: the optimizer settings, and the optimizers that take each
OPTIMIZER_SETTINGS = {
    "momentum": ("sgd", "momentum", "nesterov"),
    "beta1": ("adam", "adamw"),
    "beta2": ("adam", "adamw"),
    "rho": ("rmsprop",),
}


def check_initializers(init) -> None:
    """Refuse an unknown initializer name or config, alone or in a per-layer list."""
    for spec in init if isinstance(init, (list, tuple)) else [init]:
        get_initializer(spec)


def _decay_rate(name: str, help: str) -> ParamSpec:
    """An optimizer's decay rate in [0, 1) (None: the optimizer's default)."""
    return ParamSpec(name, "float", low=0, high=1, closed="left", none=True, help=help)


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
        gets no validation_data: the last rows, so that the split is the same for every seed.
    seed: initialization, shuffling and dropout all derive from it; same seed, same weights.
    """

    model_name = "mlp"
    # its errors read like the run configuration's, which quote the bare value
    error_style = "python"
    param_specs = (
        ParamSpec(
            "hidden",
            "sizes",
            requirement="positive layer sizes like 256,128",
            metavar="N,N,...",
            help="hidden layer sizes",
        ),
        ParamSpec(
            "activation", "name", check=get_activation, help="relu, leaky_relu, sigmoid, tanh"
        ),
        ParamSpec("leaky_slope", "float", low=0, metavar="A"),
        ParamSpec(
            "init",
            "any",
            none=True,
            check=check_initializers,
            help="normal, uniform, glorot_normal (xavier), glorot_uniform, he_normal (he), "
            "he_uniform, lecun_normal",
        ),
        ParamSpec("batchnorm", "bool"),
        ParamSpec("dropout", "float", low=0, high=1, closed="left", metavar="RATE"),
        ParamSpec("optimizer", "name", choices=OPTIMIZER_NAMES, help="{choices}"),
        LEARNING_RATE,
        _decay_rate("momentum", "sgd, momentum, nesterov (default 0.9)"),
        _decay_rate("beta1", "adam, adamw: first-moment decay (0.9)"),
        _decay_rate("beta2", "adam, adamw: second-moment decay (0.999)"),
        _decay_rate("rho", "rmsprop: squared-gradient decay (0.9)"),
        BATCH_SIZE,
        EPOCHS,
        L2,
        ParamSpec(
            "weight_decay", "float", low=0, none=True, metavar="WD", help="decoupled weight decay"
        ),
        ParamSpec("schedule", "name", choices=tuple(SCHEDULES), help="{choices}"),
        ParamSpec(
            "early_stopping",
            "int",
            low=1,
            none=True,
            requirement="a patience of at least 1 epoch",
            metavar="PATIENCE",
        ),
        VALIDATION,
        SEED,
        DTYPE,
        ParamSpec("progress", "bool", none=True, key=None),
        ParamSpec("blas_threads", "int", low=1, none=True, key=None),
    )

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

    @classmethod
    def _check_param_combinations(cls, values: dict, style: str) -> None:
        """An optimizer setting is refused for an optimizer that does not take it."""
        optimizer = values.get("optimizer")
        for name, optimizers in OPTIMIZER_SETTINGS.items():
            if values.get(name) is not None and optimizer not in optimizers:
                raise UsageError(
                    f"{cls.param_spec(name).display(style)} is for the "
                    f"{' and '.join(optimizers)} optimizers, not {optimizer!r}"
                )

    def _prepare(self, X, y, validation_data):
        self._validate_params()
        X = self._check_X(X, fitting=True)
        y = self._check_y(X, y)
        self.classes_ = np.unique(y)
        self.n_features_in_ = X.shape[1]
        y_index = np.searchsorted(self.classes_, y)
        if validation_data is None and self.validation is not None:
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

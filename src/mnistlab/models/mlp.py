"""The multilayer perceptron as a scikit-learn estimator over the NumPy engine."""

from __future__ import annotations

import numpy as np

from mnistlab.data.augment import Augmenter, parse_augment
from mnistlab.data.prepare import train_validation_split
from mnistlab.errors import DataError, UsageError
from mnistlab.models.base import LogScoreClassifier
from mnistlab.models.images import channels_last, image_shape_of
from mnistlab.models.params import (
    BATCH_SIZE,
    DTYPE,
    EPOCHS,
    L2,
    LEARNING_RATE,
    RANDOM_STATE,
    VALIDATION,
    ParamSpec,
)
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
    "beta_1": ("adam", "adamw"),
    "beta_2": ("adam", "adamw"),
    "rho": ("rmsprop",),
}


def check_initializers(init) -> None:
    """Refuse an unknown initializer name or config, alone or in a per-layer list."""
    for spec in init if isinstance(init, (list, tuple)) else [init]:
        get_initializer(spec)


def _decay_rate(name: str, help: str, key: str = "") -> ParamSpec:
    """An optimizer's decay rate in [0, 1) (None: the optimizer's default)."""
    return ParamSpec(name, "float", low=0, high=1, closed="left", none=True, key=key, help=help)


#: the optimizers' names for the estimator's optimizer settings
OPTIMIZER_ARGUMENTS = {"momentum": "momentum", "beta_1": "beta1", "beta_2": "beta2", "rho": "rho"}


class MLPClassifier(LogScoreClassifier):
    """A multilayer perceptron trained with minibatch gradient methods.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(256, 128)
        Sizes of the hidden layers (configuration key and option: ``hidden``).
    activation : str, default="relu"
        relu, leaky_relu, sigmoid or tanh.
    init : str, dict, list or None, default=None
        Initializer name or config for every Dense layer, or a list with one per Dense layer;
        None chooses He for the ReLU family and Glorot otherwise.
    batchnorm : bool, default=False
        BatchNorm after each hidden Dense layer.
    dropout : float, default=0.0
        Dropout rate after each activation, in [0, 1).
    leaky_slope : float, default=0.01
        The slope of leaky_relu below zero.
    optimizer : str, default="adam"
        sgd, momentum, nesterov, rmsprop, adam or adamw.
    learning_rate : float, default=1e-3
        The initial learning rate (option ``--lr``); ``schedule`` changes it during training.
    momentum : float or None, default=None
        Momentum of the SGD family, in [0, 1) (None: 0.9 for momentum and nesterov).
    beta_1, beta_2 : float or None, default=None
        Adam's and AdamW's moment decays, in [0, 1) (None: 0.9 and 0.999; options
        ``--beta1``, ``--beta2``).
    rho : float or None, default=None
        RMSprop's squared-gradient decay, in [0, 1) (None: 0.9).
    batch_size : int, default=128
        Rows per minibatch.
    epochs : int, default=20
        Passes over the training data.
    l2 : float, default=0.0
        Penalty ``0.5 * l2 * ||W||^2`` coupled to the mean loss.
    weight_decay : float or None, default=None
        Decoupled weight decay.
    schedule : str, default="constant"
        constant, linear, step, exponential or cosine.
    early_stopping : int or None, default=None
        Patience in epochs (monitors val_loss when there is validation data, else loss).
    validation : int, float or None, default=None
        Hold out this many (int) or this share (float) of the training rows when fit gets no
        ``validation_data``: the last rows, so that the split is the same for every seed.
    random_state : int, default=0
        Initialization, shuffling and dropout all derive from it: same seed, same weights
        (configuration key and option: ``seed``).
    dtype : str, default="float32"
        float32 or float64: the weights' and the computation's type.
    progress : bool, None or "notebook", default="notebook"
        A progress bar while training: True always, False never, None in a terminal or a
        notebook (never into a pipe), "notebook" in a Jupyter kernel only (on in notebooks, as
        Keras's fit is, and quiet in scripts, terminals and pipes).
    blas_threads : int or None, default=None
        Threads for the matrix products (None: chosen by the work of a step).
    data_parallel : bool or None, default=None
        Whether each minibatch's two halves train at once, one per core, on a copy of the
        network (mnistlab.train.parallel): None for networks with convolutions that would run
        their products on two threads, True whenever a second core is free (not with batchnorm
        or plain SGD's fused update), False never.
    augment : str, dict or None, default=None
        Random transforms of each training minibatch (mnistlab.data.augment.parse_augment:
        ``"shift=2,rotate=10,scale=0.1,elastic=34,flip=1"`` or a dict of those keys); the
        training rows must be images (or rows of a square number of pixels). Seeded by
        ``random_state``, the epoch and the step, so that a resumed fit stays exact.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in fit, sorted; output k of the network is ``classes_[k]``.
    n_features_in_ : int
        Features (pixels) of each row.
    model_ : mnistlab.nn.Sequential
        The trained network (its config and state arrays are what pickle and save keep).
    trainer_ : mnistlab.train.Trainer
        The trainer of the last fit (its optimizer state); not kept by pickle.
    history_ : mnistlab.train.History
        One record per epoch: loss, accuracy, validation metrics, learning rate, seconds.
    n_epochs_run_ : int
        Epochs trained (fewer than ``epochs`` after early stopping).
    stop_reason_ : str
        Why training stopped before ``epochs`` ("" if it did not).
    diverged_ : bool
        Whether training stopped at a non-finite loss.

    Examples
    --------
    >>> from mnistlab.data import load_dataset
    >>> digits = load_dataset("digits")
    >>> x = digits.x_train.reshape(len(digits.x_train), -1) / digits.pixel_max
    >>> model = MLPClassifier(hidden_layer_sizes=(32,), epochs=5).fit(x, digits.y_train)
    >>> model.predict(x[:3]).shape
    (3,)
    """

    model_name = "mlp"
    # its errors read like the run configuration's, which quote the bare value
    error_style = "python"
    learned_attributes = ("classes_", "model_")
    param_specs = (
        ParamSpec(
            "hidden_layer_sizes",
            "sizes",
            key="hidden",
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
        _decay_rate("beta_1", "adam, adamw: first-moment decay (0.9)", key="beta1"),
        _decay_rate("beta_2", "adam, adamw: second-moment decay (0.999)", key="beta2"),
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
        RANDOM_STATE,
        DTYPE,
        ParamSpec("progress", "bool", none=True, also=("notebook",), key=None),
        ParamSpec("blas_threads", "int", low=1, none=True, key=None),
        ParamSpec("data_parallel", "bool", none=True, key=None),
        # augmentation (issue 24): off unless asked for
        ParamSpec(
            "augment",
            "any",
            none=True,
            check=parse_augment,
            metavar="KEY=V,...",
            help="augment training images: shift=PIXELS, rotate=DEGREES, scale=ZOOM, "
            "elastic=ALPHA[,elastic_sigma=S], flip=1, pixel_dropout=P (e.g. shift=2,rotate=10)",
        ),
    )

    def __init__(
        self,
        hidden_layer_sizes=(256, 128),
        activation: str = "relu",
        init=None,
        batchnorm: bool = False,
        dropout: float = 0.0,
        leaky_slope: float = 0.01,
        optimizer: str = "adam",
        learning_rate: float = 1e-3,
        momentum: float | None = None,
        beta_1: float | None = None,
        beta_2: float | None = None,
        rho: float | None = None,
        batch_size: int = 128,
        epochs: int = 20,
        l2: float = 0.0,
        weight_decay: float | None = None,
        schedule: str = "constant",
        early_stopping: int | None = None,
        validation: int | float | None = None,
        random_state: int = 0,
        dtype: str = "float32",
        progress: bool | str | None = "notebook",
        blas_threads: int | None = None,
        augment: str | dict | None = None,
        data_parallel: bool | None = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.init = init
        self.batchnorm = batchnorm
        self.dropout = dropout
        self.leaky_slope = leaky_slope
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.rho = rho
        self.batch_size = batch_size
        self.epochs = epochs
        self.l2 = l2
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.early_stopping = early_stopping
        self.validation = validation
        self.random_state = random_state
        self.dtype = dtype
        self.progress = progress
        self.blas_threads = blas_threads
        self.augment = augment
        self.data_parallel = data_parallel

    # ------------------------------------------------------------------ building

    def _build(self, n_features: int, n_classes: int) -> Sequential:
        model = build_mlp(
            list(self.hidden_layer_sizes),
            n_classes,
            activation=self.activation,
            init=self.init,
            batchnorm=self.batchnorm,
            dropout=self.dropout,
            leaky_slope=self.leaky_slope,
        )
        try:
            return model.build(n_features, seed=self.random_state, dtype=self.dtype)
        except MemoryError:
            sizes = [n_features, *self.hidden_layer_sizes, n_classes]
            weights = sum(a * b for a, b in zip(sizes, sizes[1:], strict=False))
            gib = weights * np.dtype(self.dtype).itemsize / 2**30
            raise UsageError(
                f"hidden_layer_sizes={tuple(self.hidden_layer_sizes)}: a network of "
                f"{weights:,} weights ({gib:,.1f} GiB, before its gradients and optimizer "
                "state) does not fit in this machine's memory"
            ) from None

    def _make_trainer(self, model: Sequential, n_train: int, callbacks=()) -> Trainer:
        options = {
            argument: getattr(self, name)
            for name, argument in OPTIMIZER_ARGUMENTS.items()
            if getattr(self, name) is not None
        }
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
            augment=self._augmenter(),
            data_parallel=self.data_parallel,
        )

    def _augmenter(self) -> Augmenter | None:
        """The Augmenter of `augment` for the training images (None when off); a UsageError
        when the rows are not images."""
        spec = parse_augment(self.augment)
        if spec is None:
            return None
        shape = getattr(self, "image_shape_", None)
        if shape is None:
            raise UsageError(
                f"augment={self.augment!r} needs images: X has rows of {self.n_features_in_} "
                "pixels, not a square number; pass X as images of shape (n, height, width) or "
                "(n, height, width, channels)"
            )
        return Augmenter(spec, shape)

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
        X = channels_last(X)
        images = X
        X, y_index = self._validate_training_data(X, y)
        #: (height, width, channels) of the training images (None: rows that are not images)
        self.image_shape_ = image_shape_of(images, X.shape[1])
        if validation_data is None and self.validation not in (None, 0):
            X, y_index, x_val, y_val = train_validation_split(X, y_index, self.validation)
            validation_data = (x_val, self.classes_[y_val])
        if isinstance(validation_data, (tuple, list)) and len(validation_data) == 2:
            validation_data = (channels_last(validation_data[0]), validation_data[1])
        if validation_data is not None:
            validation_data = self._check_validation(X, validation_data)
        self._has_validation = validation_data is not None
        return X, y_index, validation_data

    # ------------------------------------------------------------------ fitting

    def fit(self, X, y, validation_data=None, callbacks=(), checkpoint=None, resume_from=None):
        """Train on X (n, features) and y (n,) labels. Returns self.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows (images are flattened to rows of pixels).
        y : array-like of shape (n_samples,)
            Labels: any sortable values.
        validation_data : tuple (X_val, y_val) or None
            Evaluated after every epoch (and watched by early stopping).
        callbacks : sequence of mnistlab.train.Callback
            Extra callbacks.
        checkpoint : path or None
            Where the trainer saves a checkpoint every epoch and on Ctrl-C.
        resume_from : path or None
            A checkpoint to continue from (same data and parameters).
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
            seed=self.random_state,
        )
        self.history_ = self.trainer_.history
        self.n_epochs_run_ = len(self.history_)
        self.stop_reason_ = self.trainer_.stop_reason
        self.diverged_ = self.trainer_.diverged
        return self

    # ------------------------------------------------------------------ inference

    def _log_scores(self, X) -> np.ndarray:
        """The network's logits: (n, n_classes) in the model's dtype."""
        X = self._validate_X(channels_last(X))
        return self.model_.predict_logits(X)

    def summary(self) -> str:
        """The network's layers, output shapes and parameter counts (a Keras-style table)."""
        self._check_fitted()
        return self.model_.summary()

    # ------------------------------------------------------------------ pickle

    def __getstate__(self) -> dict:
        # the trainer holds SciPy's BLAS handles and the optimizer's buffers, which only fit
        # needs; the network travels as its config and arrays, without BLAS settings or the
        # layers' work buffers (a forward pass makes them again)
        state = dict(super().__getstate__())
        state.pop("trainer_", None)
        network = state.pop("model_", None)
        if network is not None:
            state["model_"] = {"config": network.config(), "arrays": network.state_arrays()}
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        network = state.pop("model_", None)
        super().__setstate__(state)
        if network is not None:
            self.model_ = self._network(network["config"], network["arrays"], "the pickle")

    # ------------------------------------------------------------------ persistence

    def _network(self, config: dict, arrays: dict, where: str) -> Sequential:
        network = Sequential.from_config(config, seed=self.random_state)
        # copied into the network's float buffers, integers would load truncated weights
        wrong = {k: a.dtype for k, a in arrays.items() if a.dtype != network.dtype}
        if wrong:
            name, dtype = next(iter(wrong.items()))
            raise DataError(
                f"{where}: array {name!r} holds {dtype} values; the network was saved with "
                f"{network.dtype} ones"
            )
        network.load_state_arrays(arrays, where=where)
        return network

    def _extra_meta(self):
        meta = {"architecture": self.model_.config()}
        if getattr(self, "image_shape_", None) is not None:
            meta["image_shape"] = list(self.image_shape_)
        return meta

    def _arrays(self):
        return self.model_.state_arrays()

    def _restore(self, meta, arrays):
        self.model_ = self._network(meta["architecture"], arrays, "weights.npz")
        shape = meta.get("image_shape")
        self.image_shape_ = tuple(shape) if shape else None

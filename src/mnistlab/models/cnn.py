"""The convolutional network as a scikit-learn estimator: the MLP's training, a convolutional
front."""

from __future__ import annotations

import numpy as np

from mnistlab.errors import UsageError
from mnistlab.models.images import channels_last
from mnistlab.models.mlp import MLPClassifier
from mnistlab.models.params import ParamSpec
from mnistlab.nn.model import Sequential, build_cnn

#: the network's own parameters, before the MLP's (those of its dense head and its training)
CONV_SPECS = (
    ParamSpec(
        "conv",
        "sizes",
        requirement="positive filter counts like 32,64",
        metavar="N,N,...",
        help="cnn: filters of each convolution layer",
    ),
    ParamSpec(
        "kernel_size",
        "int",
        low=1,
        key="kernel",
        metavar="K",
        help="cnn: the convolutions' kernel height and width",
    ),
    ParamSpec(
        "pool",
        "int",
        low=1,
        metavar="P",
        help="cnn: max-pooling window (and stride) after each convolution; 1 for none",
    ),
    ParamSpec(
        "padding",
        "choice",
        choices=("same", "valid"),
        help="cnn: same (output as large as the input) or valid (no padding)",
    ),
    ParamSpec(
        "conv_dropout",
        "float",
        low=0,
        high=1,
        closed="left",
        metavar="RATE",
        help="cnn: spatial dropout (whole feature maps) after each convolution block",
    ),
)


class CNNClassifier(MLPClassifier):
    """A convolutional network trained with minibatch gradient methods.

    Per entry of ``conv``: Conv2D(filters, kernel_size, padding) -> [BatchNorm] -> activation ->
    MaxPool2D(pool) -> [SpatialDropout2D(conv_dropout)]; then Flatten, the Dense blocks of
    ``hidden_layer_sizes`` (Dense -> [BatchNorm] -> activation -> [Dropout(dropout)]) and the
    output Dense layer. Training, optimizers, schedules, early stopping, checkpoints and resume
    are the MLP's (every parameter below the first six is MLPClassifier's).

    X may be rows of pixels (n, height * width), read as square single-channel images (784:
    28 x 28, 64: 8 x 8), or images (n, height, width), (n, height, width, channels) or
    (n, channels, height, width); the network works channels last (NHWC). Rows of a number of
    features that is not a square are one row of pixels each, images of 1 x n_features (so any
    table of numbers fits a network whose windows fit it: pool=1, say).

    Parameters
    ----------
    conv : tuple of int, default=(32, 64)
        Filters of each convolution layer (option ``--conv``).
    kernel_size : int, default=3
        Kernel height and width (option ``--kernel``).
    pool : int, default=2
        Max-pooling window and stride after each convolution; 1 for no pooling.
    padding : {"same", "valid"}, default="same"
        "same" keeps each convolution's output as large as its input (so 8 x 8 digits survive
        two 2 x 2 poolings); "valid" pads nothing.
    conv_dropout : float, default=0.0
        Spatial dropout rate after each convolution block, in [0, 1).
    hidden_layer_sizes : tuple of int, default=(128,)
        The dense layers between the convolutions and the output (option ``--hidden``).
    dropout : float, default=0.5
        Dropout rate after each dense hidden layer, in [0, 1).
    (the rest) : as MLPClassifier.

    Attributes
    ----------
    image_shape_ : tuple (height, width, channels)
        The images' shape the network was built for.
    (the rest) : as MLPClassifier.

    Examples
    --------
    >>> from mnistlab.data import load_dataset
    >>> digits = load_dataset("digits")
    >>> model = CNNClassifier(conv=(8,), hidden_layer_sizes=(32,), epochs=2, progress=False)
    >>> model.fit(digits.x_train / 16.0, digits.y_train).image_shape_
    (8, 8, 1)
    """

    model_name = "cnn"
    param_specs = CONV_SPECS + MLPClassifier.param_specs

    def __init__(
        self,
        conv=(32, 64),
        kernel_size: int = 3,
        pool: int = 2,
        padding: str = "same",
        conv_dropout: float = 0.0,
        hidden_layer_sizes=(128,),
        activation: str = "relu",
        init=None,
        batchnorm: bool = False,
        dropout: float = 0.5,
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
        self.conv = conv
        self.kernel_size = kernel_size
        self.pool = pool
        self.padding = padding
        self.conv_dropout = conv_dropout
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            init=init,
            batchnorm=batchnorm,
            dropout=dropout,
            leaky_slope=leaky_slope,
            optimizer=optimizer,
            learning_rate=learning_rate,
            momentum=momentum,
            beta_1=beta_1,
            beta_2=beta_2,
            rho=rho,
            batch_size=batch_size,
            epochs=epochs,
            l2=l2,
            weight_decay=weight_decay,
            schedule=schedule,
            early_stopping=early_stopping,
            validation=validation,
            random_state=random_state,
            dtype=dtype,
            progress=progress,
            blas_threads=blas_threads,
            augment=augment,
            data_parallel=data_parallel,
        )

    def _build(self, n_features: int, n_classes: int) -> Sequential:
        if self.image_shape_ is None:  # one row of pixels per example (see the class docstring)
            self.image_shape_ = (1, n_features, 1)
        self.check_geometry(self.image_shape_, self.error_style)
        model = build_cnn(
            list(self.conv),
            list(self.hidden_layer_sizes),
            n_classes,
            kernel_size=self.kernel_size,
            pool=self.pool,
            padding=self.padding,
            activation=self.activation,
            init=self.init,
            batchnorm=self.batchnorm,
            conv_dropout=self.conv_dropout,
            dropout=self.dropout,
            leaky_slope=self.leaky_slope,
        )
        return model.build(self.image_shape_, seed=self.random_state, dtype=self.dtype)

    def check_geometry(self, image_shape, style: str = "python") -> None:
        """UsageError, naming the parameters in `style` (see mnistlab.models.params), when a
        convolution's kernel or a pooling window is larger than what reaches it from images of
        `image_shape` (height, width[, channels])."""
        height, width = image_shape[:2]
        kernel = self.param_spec("kernel_size").display(style)
        padding = self.param_spec("padding").display(style)
        pool = self.param_spec("pool").display(style)
        for index in range(len(self.conv)):
            at = f"convolution {index + 1} of {len(self.conv)} gets {height}x{width} maps"
            if self.padding == "valid":
                height, width = height - self.kernel_size + 1, width - self.kernel_size + 1
                if height < 1 or width < 1:
                    raise UsageError(
                        f"{kernel} {self.kernel_size} with {padding} valid leaves no output for "
                        f"images of {image_shape[0]}x{image_shape[1]} ({at})"
                    )
            if self.pool > height or self.pool > width:
                raise UsageError(
                    f"{pool} {self.pool} is larger than the {height}x{width} maps after "
                    f"convolution {index + 1} of {len(self.conv)} (images of "
                    f"{image_shape[0]}x{image_shape[1]}): fewer convolutions or {pool} 1"
                )
            height, width = height // self.pool, width // self.pool

    @classmethod
    def _check_param_combinations(cls, values: dict, style: str) -> None:
        super()._check_param_combinations(values, style)
        if "conv" in values and not values["conv"]:
            spec = cls.param_spec("conv")
            raise UsageError(
                f"{spec.display(style)} must be {spec.requirement} (at least one), got "
                f"{values['conv']!r}"
            )
        init = values.get("init")
        if isinstance(init, (list, tuple)):
            raise UsageError(
                f"{cls.param_spec('init').display(style)} of a CNNClassifier is one initializer "
                f"for every layer, not a list, got {init!r}"
            )

    def _log_scores(self, X) -> np.ndarray:
        X = channels_last(X)
        self._check_image_shape(X)
        return super()._log_scores(X)

    def _check_image_shape(self, X) -> None:
        """UsageError when X holds images of another shape than the network's (rows of pixels
        are judged by their count, as every estimator's are)."""
        if not isinstance(X, np.ndarray) or X.ndim not in (3, 4) or not hasattr(self, "model_"):
            return
        shape = tuple(X.shape[1:]) + ((1,) if X.ndim == 3 else ())
        if shape != tuple(self.image_shape_):
            raise UsageError(
                f"X holds images of shape {shape} (height, width, channels); this "
                f"{type(self).__name__} was trained on images of shape {tuple(self.image_shape_)}"
            )

    def _restore(self, meta, arrays):
        super()._restore(meta, arrays)
        self.image_shape_ = tuple(self.model_.input_shape)

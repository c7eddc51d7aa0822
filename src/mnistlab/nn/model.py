"""Sequential: an ordered stack of layers, and a builder from a compact MLP spec."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mnistlab.backend.blas import Blas
from mnistlab.backend.fpu import flush_subnormals
from mnistlab.errors import UsageError
from mnistlab.nn.activations import LeakyReLU, get_activation
from mnistlab.nn.base import Layer
from mnistlab.nn.conv import Conv2D
from mnistlab.nn.init import get_initializer
from mnistlab.nn.layers import BatchNorm, Dense, Dropout, SpatialDropout2D, layer_from_config
from mnistlab.nn.parameters import GradientSink, ParameterSet
from mnistlab.nn.pooling import MaxPool2D
from mnistlab.nn.reshape import Flatten

#: values per layer output that bound an image model's inference chunk (32 MB in float32)
INFERENCE_CHUNK_VALUES = 1 << 23


class Sequential:
    """Layers applied in order. build() creates parameters in two flat buffers.

    forward(x, training) -> outputs; backward(grad) fills every parameter's .grad.
    The first layer never computes a gradient for the input data. Inputs are rows of features
    or, for a model built on an example shape such as (28, 28, 1), images (see build()).
    blas: the BLAS setting the model's products follow (mnistlab.backend.blas.Blas), shared with
    its layers at build; the Trainer and predict_logits set it for their duration.
    """

    def __init__(self, layers: Sequence[Layer] = ()) -> None:
        self.layers: list[Layer] = list(layers)
        self.blas = Blas()
        self.built = False

    def build(
        self,
        input_shape: int | Sequence[int],
        *,
        seed: int | np.random.Generator | None = 0,
        dtype=np.float32,
    ) -> Sequential:
        """Create all parameters for inputs of `input_shape`; initialization uses `seed`.

        input_shape: the number of features (rows of features, an MLP's input), or the shape of
        one example without the batch, such as (28, 28, 1) for images (height, width,
        channels: the image layers work channels last). An image model's forward also takes
        the images as rows of input_features values (what the Trainer hands it), and
        reshapes them, without a copy, into ``(batch, *input_shape)``.

        Dropout layers draw their masks from a separate Generator (`dropout_rng`), seeded from
        the same seed, so that a checkpoint can save and restore it.
        """
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise UsageError(f"dtype must be float32 or float64, got dtype={dtype}")
        shape = _input_shape(input_shape)
        self.input_shape = shape
        self.input_features = math.prod(shape)
        #: the example shape that forward reshapes rows into; None for rows of features
        self._example_shape = shape if len(shape) > 1 else None
        self.dropout_rng = np.random.default_rng(rng.integers(2**63))
        # Whether the array flowing into the next layer may be overwritten: never the caller's
        # data; a layer's own buffer unless its backward reads it; a passthrough layer's output
        # only if its input could be.
        writable = False
        for index, layer in enumerate(self.layers):
            if isinstance(layer, Dropout):
                layer.rng = self.dropout_rng
            shape = layer.build(shape, rng, self.dtype, self.blas)
            layer.needs_input_grad = index > 0
            layer.inplace = writable
            writable = writable if layer.passthrough else not layer.needs_output
        self.params = ParameterSet(
            [p for layer in self.layers for p in layer.parameters()], dtype=self.dtype
        )
        self.output_shape = shape
        self.output_features = math.prod(shape)
        self.built = True
        return self

    def parameters(self) -> ParameterSet:
        return self.params

    def multiply_adds(self) -> int:
        """The multiply-adds of one example's forward pass: a Dense layer's weights, a
        convolution's kernel times its output positions. For an MLP, the number of weights."""
        return sum(layer.multiply_adds() for layer in self.layers)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Outputs (batch, output_features) for x: (batch, input_features), or for an image
        model also ``(batch, *input_shape)``."""
        x = self._check_input(x)
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        """x as the first layer takes it (an image model's rows reshaped into images), or a
        UsageError that names the shapes."""
        if not self.built:
            raise UsageError("this Sequential is not built yet; call build(input_shape) first")
        if x.ndim == 2 and x.shape[1] == self.input_features:
            if self._example_shape is None:
                return x
            return x.reshape(x.shape[0], *self._example_shape)
        if self._example_shape is not None and x.shape[1:] == self._example_shape:
            return x
        expected = f"(batch, {self.input_features})"
        if self._example_shape is not None:
            expected = f"(batch, {_dims(self._example_shape)}) or {expected}"
        raise UsageError(f"x must be {expected}, got shape {x.shape}")

    def backward(self, grad: np.ndarray, sink: GradientSink | None = None) -> None:
        """Fill every parameter's .grad from the loss's gradient `grad`: (batch, outputs).

        sink: a GradientSink from the optimizer, or None. With one, the Dense layers apply the
        optimizer's update to their weights in their weight-gradient GEMMs
        (Dense.backward_into_sink) instead of filling the weights' .grad."""
        for layer in reversed(self.layers):
            if sink is not None and isinstance(layer, Dense):
                grad = layer.backward_into_sink(grad, sink)
            else:
                grad = layer.backward(grad)
            if grad is None:
                break

    def predict_logits(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Outputs in inference mode, computed in chunks of `batch_size` examples (None: the
        model's inference_batch_size); a fresh array (n, outputs).

        Runs under the model's inference setting, `self.blas.inference()`: SciPy's BLAS runs
        the products and bias additions, the process's BLAS thread pools set for the call and
        restored after it (mnistlab.backend.blas). Subnormal floats are computed as zero on this
        thread meanwhile (mnistlab.backend.fpu)."""
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim > 2:  # images: one row of pixels each (an empty x has no -1 to infer)
            x = x.reshape(x.shape[0], math.prod(x.shape[1:]))
        self._check_input(x)
        batch_size = batch_size or self.inference_batch_size
        out = np.empty((x.shape[0], self.output_features), dtype=self.dtype)
        with self.blas.inference(), flush_subnormals():
            for start in range(0, x.shape[0], batch_size):
                out[start : start + batch_size] = self.forward(x[start : start + batch_size])
        return out

    @property
    def inference_batch_size(self) -> int:
        """Examples per chunk for inference (predict_logits, evaluations): 8192 for a model of
        rows of features; for an image model, as many as keep the largest layer output of a
        chunk within INFERENCE_CHUNK_VALUES values (a power of two, at least 32): a
        convolution's outputs and window copies are tens of thousands of values per image."""
        if self._example_shape is None:
            return 8192
        widest = max(math.prod(layer.output_shape) for layer in self.layers)
        widest = max(widest, self.input_features)
        return max(32, 1 << max(0, (INFERENCE_CHUNK_VALUES // widest).bit_length() - 1))

    # ------------------------------------------------------------------ persistence

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every array needed to restore the model: parameters and non-trainable state."""
        arrays: dict[str, np.ndarray] = {}
        for index, layer in enumerate(self.layers):
            for param in layer.parameters():
                arrays[f"layer{index}.{param.name}"] = param.data
            for key, value in layer.state().items():
                arrays[f"layer{index}.{key}"] = value
        return arrays

    def load_state_arrays(self, arrays: dict[str, np.ndarray], *, where: str = "weights") -> None:
        """Copy arrays saved by state_arrays() into the built model (shapes must match)."""
        expected = self.state_arrays()
        missing = sorted(set(expected) - set(arrays))
        if missing:
            raise UsageError(f"{where}: missing arrays {missing[:5]}")
        for key, target in expected.items():
            source = arrays[key]
            if source.shape != target.shape:
                raise UsageError(
                    f"{where}: array {key} has shape {source.shape}, the model needs {target.shape}"
                )
            if not np.all(np.isfinite(source)):
                raise UsageError(f"{where}: array {key} contains NaN or infinite values")
            target[...] = source

    def config(self) -> dict:
        """The layers' configs, the input's size (and, for an image model, its shape) and the
        dtype: what from_config needs to rebuild the model (its weights come separately)."""
        config = {
            "input_features": getattr(self, "input_features", None),
            "dtype": str(getattr(self, "dtype", np.dtype(np.float32))),
            "layers": [layer.config() for layer in self.layers],
        }
        if getattr(self, "_example_shape", None) is not None:
            config["input_shape"] = list(self._example_shape)
        return config

    @classmethod
    def from_config(cls, config: dict, *, seed: int = 0) -> Sequential:
        model = cls([layer_from_config(c) for c in config["layers"]])
        shape = config.get("input_shape") or config.get("input_features")
        if shape:
            model.build(shape, seed=seed, dtype=config.get("dtype", "float32"))
        return model

    # ------------------------------------------------------------------ summary

    def summary_rows(self) -> list[tuple[str, str, int]]:
        rows = []
        for index, layer in enumerate(self.layers):
            count = sum(p.size for p in layer.parameters()) + sum(
                a.size for a in layer.state().values()
            )
            label = f"{layer.name or layer.kind.lower() + '_' + str(index)} ({layer.kind})"
            rows.append((label, f"(None, {_dims(layer.output_shape)})", count))
        return rows

    def summary(self) -> str:
        """A Keras-style table: layer (type), output shape, parameters; then the totals."""
        if not self.built:
            raise UsageError("build the model before asking for its summary")
        rows = self.summary_rows()
        trainable = self.params.size
        non_trainable = sum(a.size for layer in self.layers for a in layer.state().values())
        w0 = max(24, *(len(r[0]) for r in rows))
        w1 = max(18, *(len(r[1]) + 1 for r in rows))
        line = "-" * (w0 + w1 + 14)
        out = [
            line,
            f"{'Layer (type)':<{w0}} {'Output Shape':<{w1}} {'Param #':>12}",
            "=" * len(line),
        ]
        for label, shape, count in rows:
            out.append(f"{label:<{w0}} {shape:<{w1}} {count:>12,}")
        out += [
            "=" * len(line),
            f"Total params: {trainable + non_trainable:,}",
            f"Trainable params: {trainable:,}",
            f"Non-trainable params: {non_trainable:,}",
            line,
        ]
        return "\n".join(out)


def _input_shape(value) -> tuple[int, ...]:
    """A model's input shape from a number of features or a shape; UsageError otherwise."""
    dims = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if not dims or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in dims
    ):
        raise UsageError(
            "input_shape must be a positive integer (features) or a tuple of them (an "
            f"example's shape), got input_shape={value!r}"
        )
    return tuple(int(d) for d in dims)


def _dims(shape: tuple[int, ...]) -> str:
    """'28, 28, 1' for (28, 28, 1): a shape inside a (batch, ...) tuple."""
    return ", ".join(str(d) for d in shape)


def default_init(activation: str) -> str:
    """He for the ReLU family, Glorot otherwise (what the activation's variance argument wants)."""
    relu_family = activation.lower().replace("-", "_") in {"relu", "leaky_relu"}
    return "he_normal" if relu_family else "glorot_uniform"


def build_mlp(
    hidden: Sequence[int],
    n_classes: int,
    *,
    activation: str = "relu",
    init: str | dict | None = None,
    batchnorm: bool = False,
    dropout: float = 0.0,
    leaky_slope: float = 0.01,
) -> Sequential:
    """Dense -> [BatchNorm] -> activation -> [Dropout] per hidden size, then Dense(n_classes).

    The output layer gives logits (train with softmax cross-entropy). `init` is one initializer
    for every Dense layer or a list with one per Dense layer (a normal std of its own for each,
    say); by default He for ReLU/LeakyReLU hidden layers, Glorot otherwise.
    """
    hidden = list(hidden)
    for size in hidden:
        if not isinstance(size, (int, np.integer)) or size <= 0:
            raise UsageError(f"hidden sizes must be positive integers, got hidden={hidden}")
    if not 0.0 <= dropout < 1.0:
        raise UsageError(f"dropout must be in [0, 1), got dropout={dropout}")
    n_dense = len(hidden) + 1
    if isinstance(init, (list, tuple)):
        if len(init) != n_dense:
            raise UsageError(
                f"init lists one initializer per Dense layer ({n_dense}), got {len(init)}: {init!r}"
            )
        inits = list(init)
    else:
        default = default_init(activation)
        # The output layer feeds a softmax, not the hidden activation: Glorot unless told.
        inits = [init or default] * len(hidden) + [init or "glorot_uniform"]
    for spec in inits:
        get_initializer(spec)  # validate names and values now
    get_activation(activation)
    layers: list[Layer] = []
    for size, layer_init in zip(hidden, inits, strict=False):
        layers += [Dense(int(size), init=layer_init), *_after(activation, leaky_slope, batchnorm)]
        if dropout > 0:
            layers.append(Dropout(dropout))
    layers.append(Dense(int(n_classes), init=inits[-1]))
    return Sequential(layers)


def _after(activation: str, leaky_slope: float, batchnorm: bool) -> list[Layer]:
    """What follows a Dense or Conv2D layer: [BatchNorm,] the activation."""
    get_activation(activation)  # validate the name now
    leaky = activation.lower().replace("-", "_") == "leaky_relu"
    return [
        *([BatchNorm()] if batchnorm else []),
        LeakyReLU(leaky_slope) if leaky else get_activation(activation),
    ]


def build_cnn(
    filters: Sequence[int],
    hidden: Sequence[int],
    n_classes: int,
    *,
    kernel_size: int = 3,
    pool: int = 2,
    padding: str | int = "same",
    activation: str = "relu",
    init: str | dict | None = None,
    batchnorm: bool = False,
    conv_dropout: float = 0.0,
    dropout: float = 0.0,
    leaky_slope: float = 0.01,
) -> Sequential:
    """A convolutional network: per entry of `filters`, Conv2D(kernel_size, padding) ->
    [BatchNorm] -> activation -> [MaxPool2D(pool)] -> [SpatialDropout2D(conv_dropout)] (with
    ReLU, the same network as Conv2D -> [BatchNorm] -> MaxPool2D -> ReLU, built so); then
    Flatten and build_mlp's Dense blocks for `hidden`, and Dense(n_classes) for the logits.

    pool=1 leaves the pooling out. `init` is one initializer for every Conv2D and Dense layer
    (by default He for the ReLU family, Glorot otherwise; the output layer Glorot).
    """
    filters = list(filters)
    if not filters or not all(
        isinstance(f, (int, np.integer)) and not isinstance(f, bool) and f > 0 for f in filters
    ):
        raise UsageError(f"conv filters must be positive integers, got conv={filters}")
    if not 0.0 <= conv_dropout < 1.0:
        raise UsageError(f"conv_dropout must be in [0, 1), got conv_dropout={conv_dropout}")
    conv_init = init or default_init(activation)
    get_initializer(conv_init)
    # ReLU commutes with max pooling, values and gradients alike (both keep the largest input;
    # a window whose maximum is not positive passes no gradient either way), so the ReLU goes
    # after the pool, where it touches a quarter of the values. Other activations keep their
    # textbook place: in floating point a saturating one can tie inputs that differ.
    relu_after_pool = pool != 1 and activation.lower() == "relu"
    layers: list[Layer] = []
    for count in filters:
        layers.append(Conv2D(int(count), kernel_size, padding=padding, init=conv_init))
        block = _after(activation, leaky_slope, batchnorm)
        if relu_after_pool:
            layers += [*block[:-1], MaxPool2D(pool), block[-1]]
        else:
            layers += block
            if pool != 1:
                layers.append(MaxPool2D(pool))
        if conv_dropout > 0:
            layers.append(SpatialDropout2D(conv_dropout))
    head = build_mlp(
        hidden,
        n_classes,
        activation=activation,
        init=init,
        batchnorm=batchnorm,
        dropout=dropout,
        leaky_slope=leaky_slope,
    )
    return Sequential([*layers, Flatten(), *head.layers])

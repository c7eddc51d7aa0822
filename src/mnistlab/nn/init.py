"""Weight initializers, looked up by name: normal, uniform, Glorot/Xavier, He, LeCun, zeros.

An initializer is called as init(shape, rng, dtype) with shape (fan_in, fan_out) for a Dense
weight and (kernel_height, kernel_width, in_channels, filters) for a Conv2D kernel, whose fans
count every input and output a weight touches (in_channels or filters times the kernel's area,
as Keras and PyTorch count them). Glorot and He use plain (not truncated) normal distributions.
"""

from __future__ import annotations

import math

import numpy as np

from mnistlab.errors import UsageError


class Initializer:
    """Base class: __call__(shape, rng, dtype) -> array."""

    def __call__(self, shape, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
        raise NotImplementedError

    def config(self) -> dict:
        return {"name": INITIALIZER_NAMES[type(self)], **vars(self)}


def _fans(shape) -> tuple[int, int]:
    if len(shape) == 1:
        return int(shape[0]), int(shape[0])
    receptive_field = math.prod(shape[:-2])  # 1 for a Dense weight
    return int(shape[-2]) * receptive_field, int(shape[-1]) * receptive_field


class Zeros(Initializer):
    def __call__(self, shape, rng, dtype=np.float32):
        return np.zeros(shape, dtype=dtype)


class Ones(Initializer):
    def __call__(self, shape, rng, dtype=np.float32):
        return np.ones(shape, dtype=dtype)


class Normal(Initializer):
    """N(mean, std^2), with a std of its own for each layer if wanted."""

    def __init__(self, mean: float = 0.0, std: float = 0.05) -> None:
        if not std > 0:
            raise UsageError(f"normal initializer std must be positive, got std={std}")
        self.mean, self.std = float(mean), float(std)

    def __call__(self, shape, rng, dtype=np.float32):
        return rng.normal(self.mean, self.std, size=shape).astype(dtype)


class Uniform(Initializer):
    """U(low, high)."""

    def __init__(self, low: float = -0.05, high: float = 0.05) -> None:
        if not low < high:
            raise UsageError(f"uniform initializer needs low < high, got low={low}, high={high}")
        self.low, self.high = float(low), float(high)

    def __call__(self, shape, rng, dtype=np.float32):
        return rng.uniform(self.low, self.high, size=shape).astype(dtype)


class _Scaled(Initializer):
    """Variance scaling: std = sqrt(scale / fan), normal or uniform."""

    scale = 1.0
    mode = "fan_in"
    distribution = "normal"

    def __call__(self, shape, rng, dtype=np.float32):
        fan_in, fan_out = _fans(shape)
        fan = {"fan_in": fan_in, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / fan
        if self.distribution == "normal":
            return rng.normal(0.0, math.sqrt(variance), size=shape).astype(dtype)
        limit = math.sqrt(3.0 * variance)
        return rng.uniform(-limit, limit, size=shape).astype(dtype)

    def config(self) -> dict:
        return {"name": INITIALIZER_NAMES[type(self)]}


class GlorotNormal(_Scaled):
    mode = "fan_avg"


class GlorotUniform(_Scaled):
    mode, distribution = "fan_avg", "uniform"


class HeNormal(_Scaled):
    scale = 2.0


class HeUniform(_Scaled):
    scale, distribution = 2.0, "uniform"


class LeCunNormal(_Scaled):
    pass


INITIALIZERS: dict[str, type[Initializer]] = {
    "zeros": Zeros,
    "ones": Ones,
    "normal": Normal,
    "uniform": Uniform,
    "glorot_normal": GlorotNormal,
    "glorot_uniform": GlorotUniform,
    "he_normal": HeNormal,
    "he_uniform": HeUniform,
    "lecun_normal": LeCunNormal,
}
ALIASES = {
    "xavier": "glorot_normal",
    "xavier_normal": "glorot_normal",
    "xavier_uniform": "glorot_uniform",
    "glorot": "glorot_normal",
    "he": "he_normal",
    "kaiming": "he_normal",
    "lecun": "lecun_normal",
}
INITIALIZER_NAMES = {cls: name for name, cls in INITIALIZERS.items()}


def get_initializer(spec) -> Initializer:
    """An Initializer from an instance, a name ('he', 'glorot_uniform', ...) or a config dict."""
    if isinstance(spec, Initializer):
        return spec
    if isinstance(spec, dict):
        spec = dict(spec)
        name = spec.pop("name")
        return _lookup(name)(**spec)
    if isinstance(spec, str):
        return _lookup(spec)()
    raise UsageError(f"initializer must be a name or an Initializer, got {spec!r}")


def _lookup(name: str) -> type[Initializer]:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in INITIALIZERS:
        valid = ", ".join(sorted(set(INITIALIZERS) | set(ALIASES)))
        raise UsageError(f"unknown initializer {name!r}; valid: {valid}")
    return INITIALIZERS[key]

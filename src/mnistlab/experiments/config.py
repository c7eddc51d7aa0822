"""Run configurations: every key with its default, presets applied, values validated.

A configuration is what `mnistlab train` takes as options and writes as config.json; the same keys
make up the base of a study file. Errors name the option and quote the value.
"""

from __future__ import annotations

import math

import numpy as np

from mnistlab.errors import UsageError
from mnistlab.experiments.presets import DEFAULT_PRESETS, get_preset
from mnistlab.models import (
    GaussianClassifier,
    KNeighborsClassifier,
    MLPClassifier,
    OneVsAllLogistic,
    SoftmaxRegression,
)
from mnistlab.nn.init import get_initializer
from mnistlab.nn.layers import get_activation
from mnistlab.optim.optimizers import OPTIMIZER_NAMES
from mnistlab.optim.schedules import SCHEDULES

#: every key of a run configuration, with its default
DEFAULTS: dict = {
    "dataset": "fashion-mnist",
    "data_dir": None,
    "model": "mlp",
    "preset": None,
    "hidden": [256, 128],
    "activation": "relu",
    "leaky_slope": 0.01,
    "init": None,
    "batchnorm": False,
    "dropout": 0.0,
    "optimizer": "adam",
    "lr": 1e-3,
    "momentum": None,
    "beta1": None,
    "beta2": None,
    "rho": None,
    "batch_size": 128,
    "epochs": 20,
    "l2": 0.0,
    "weight_decay": None,
    "schedule": "constant",
    "early_stopping": None,
    "validation": None,
    "seed": 0,
    "dtype": "float32",
    "checkpoint_every": 1,
    # softmax regression
    "solver": "sgd",
    "iterations": 1000,
    "final_lr": None,
    # one-vs-all logistic regression
    "C": 1.0,
    "max_iter": 100,
    # Gaussian generative classifier
    "smoothing": "auto",
    "shrinkage": None,
    "diagonal": False,
    # k-nearest neighbours
    "k": 5,
    "weights": "uniform",
    "metric": "l2",
    "block_size": 1024,
}
#: optimizer settings, and the optimizers that have them
OPTIMIZER_OPTIONS = {
    "momentum": ("sgd", "momentum", "nesterov"),
    "beta1": ("adam", "adamw"),
    "beta2": ("adam", "adamw"),
    "rho": ("rmsprop",),
}
MODEL_NAMES = ("mlp", "softmax", "logistic-ova", "gaussian", "knn")


def resolve_config(options: dict, style: str = "cli") -> dict:
    """Defaults, then the preset (the default preset for an MLP without one), then `options`.

    style: how errors name keys, "cli" (--batch-size) or "python" (batch_size).
    """
    config = dict(DEFAULTS)
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise UsageError(f"unknown configuration keys {unknown}; valid: {', '.join(DEFAULTS)}")
    preset = given.get("preset")
    if preset is None:
        preset = DEFAULT_PRESETS.get(given.get("model", "mlp"))
    if preset is not None:
        config.update(get_preset(preset))
        config["preset"] = preset
    config.update(given)
    validate_config(config, style)
    return {k: v for k, v in config.items() if k in relevant_keys(config["model"])}


COMMON_KEYS = ("dataset", "data_dir", "model", "preset", "validation", "seed", "dtype")
MODEL_KEYS = {
    "mlp": (
        "hidden",
        "activation",
        "leaky_slope",
        "init",
        "batchnorm",
        "dropout",
        "optimizer",
        "lr",
        "momentum",
        "beta1",
        "beta2",
        "rho",
        "batch_size",
        "epochs",
        "l2",
        "weight_decay",
        "schedule",
        "early_stopping",
        "checkpoint_every",
    ),
    "softmax": ("solver", "lr", "final_lr", "epochs", "iterations", "batch_size", "l2"),
    "logistic-ova": ("C", "max_iter"),
    "gaussian": ("smoothing", "shrinkage", "diagonal"),
    "knn": ("k", "weights", "metric", "block_size"),
}


def relevant_keys(model: str) -> tuple[str, ...]:
    """The configuration keys that matter for `model` (what config.json records)."""
    return COMMON_KEYS + MODEL_KEYS.get(model, ())


def check_applicable(keys, model: str, style: str = "cli") -> None:
    """Refuse options given for a model that does not use them (--hidden with --model knn), as
    a Keras layer or a scikit-learn estimator refuses an argument it does not take; a preset's
    or a configuration file's other keys are not checked (they are dropped)."""
    relevant = relevant_keys(model)
    stray = [key for key in keys if key not in relevant]
    if stray:
        names = ", ".join(_name(key, style) for key in stray)
        own = ", ".join(_name(key, style) for key in MODEL_KEYS.get(model, ()))
        verb = "does" if len(stray) == 1 else "do"
        raise UsageError(f"{names} {verb} not apply to the {model} model (its options: {own})")


#: configuration keys whose Python (estimator) name differs
PYTHON_NAMES = {"lr": "learning_rate"}


def _name(key: str, style: str) -> str:
    if style == "python":
        return PYTHON_NAMES.get(key, key)
    if style == "key":
        return key
    return "--" + key.replace("_", "-")


def _positive_number(config, key, style, *, allow_zero=False):
    value = config[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        kind = "non-negative" if allow_zero else "positive"
        raise UsageError(f"{_name(key, style)} must be a {kind} number, got {value!r}")


def _positive_int(config, key, style):
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise UsageError(f"{_name(key, style)} must be a positive integer, got {value!r}")


def validate_config(config: dict, style: str = "cli") -> None:
    """Refuse bad values with one line naming the option and the value.

    style: "cli" names options as --batch-size, "python" as batch_size.
    """

    def name(key):
        return _name(key, style)

    config = {**DEFAULTS, **config}  # an estimator checks only the keys it has

    if config["model"] not in MODEL_NAMES:
        raise UsageError(
            f"{name('model')} must be one of {', '.join(MODEL_NAMES)}, got {config['model']!r}"
        )
    hidden = config["hidden"]
    if not isinstance(hidden, list) or not all(
        isinstance(h, (int, np.integer)) and not isinstance(h, bool) and h > 0 for h in hidden
    ):
        raise UsageError(
            f"{name('hidden')} must be positive layer sizes like 256,128, got {hidden!r}"
        )
    for key in ("dataset", "activation", "optimizer", "schedule"):
        if not isinstance(config[key], str):
            raise UsageError(f"{name(key)} must be a name, got {config[key]!r}")
    for key in ("batchnorm", "diagonal"):
        if not isinstance(config[key], bool):
            raise UsageError(f"{name(key)} must be true or false, got {config[key]!r}")
    seed = config["seed"]
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UsageError(f"{name('seed')} must be a non-negative integer, got {seed!r}")
    _positive_number(config, "leaky_slope", style, allow_zero=True)
    get_activation(config["activation"])
    if config["optimizer"] not in OPTIMIZER_NAMES:
        raise UsageError(
            f"{name('optimizer')} must be one of {', '.join(OPTIMIZER_NAMES)}, "
            f"got {config['optimizer']!r}"
        )
    if config["schedule"] not in SCHEDULES:
        raise UsageError(
            f"{name('schedule')} must be one of {', '.join(SCHEDULES)}, got {config['schedule']!r}"
        )
    if config["init"] is not None:
        for spec in config["init"] if isinstance(config["init"], list) else [config["init"]]:
            get_initializer(spec)
    _positive_number(config, "lr", style)
    _positive_int(config, "batch_size", style)
    _positive_int(config, "epochs", style)
    _positive_int(config, "checkpoint_every", style)
    _positive_number(config, "l2", style, allow_zero=True)
    if config["weight_decay"] is not None:
        _positive_number(config, "weight_decay", style, allow_zero=True)
    dropout = config["dropout"]
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise UsageError(f"{name('dropout')} must be in [0, 1), got {dropout!r}")
    for key, optimizers in OPTIMIZER_OPTIONS.items():
        value = config[key]
        if value is None:
            continue
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1):
            raise UsageError(f"{name(key)} must be in [0, 1), got {value!r}")
        if config["model"] == "mlp" and config["optimizer"] not in optimizers:
            raise UsageError(
                f"{name(key)} is for the {' and '.join(optimizers)} optimizers, not "
                f"{config['optimizer']!r}"
            )
    if config["early_stopping"] is not None and (
        not isinstance(config["early_stopping"], int) or config["early_stopping"] < 1
    ):
        raise UsageError(
            f"{name('early_stopping')} must be a patience of at least 1 epoch, "
            f"got {config['early_stopping']!r}"
        )
    validation = config["validation"]
    if validation is not None and (
        isinstance(validation, bool)
        or not isinstance(validation, (int, float))
        or validation <= 0
        or (isinstance(validation, float) and validation >= 1 and not validation.is_integer())
    ):
        raise UsageError(
            f"{name('validation')} must be a count (10000) or a fraction (0.1), got {validation!r}"
        )
    if config["model"] != "mlp":
        _validate_classical(config, name, style)
    if config["dtype"] not in ("float32", "float64"):
        raise UsageError(f"{name('dtype')} must be float32 or float64, got {config['dtype']!r}")


def _validate_classical(config: dict, name, style: str) -> None:
    from mnistlab.models.knn import METRICS, WEIGHTS
    from mnistlab.models.softmax import SOLVERS

    if config["solver"] not in SOLVERS:
        raise UsageError(
            f"{name('solver')} must be one of {', '.join(SOLVERS)}, got {config['solver']!r}"
        )
    _positive_int(config, "iterations", style)
    _positive_int(config, "max_iter", style)
    _positive_int(config, "k", style)
    _positive_int(config, "block_size", style)
    _positive_number(config, "C", style)
    if config["final_lr"] is not None:
        _positive_number(config, "final_lr", style)
    smoothing = config["smoothing"]
    if smoothing != "auto" and not (
        isinstance(smoothing, (int, float))
        and not isinstance(smoothing, bool)
        and math.isfinite(smoothing)
        and smoothing >= 0
    ):
        raise UsageError(f"{name('smoothing')} must be a number >= 0 or 'auto', got {smoothing!r}")
    shrinkage = config["shrinkage"]
    if shrinkage is not None and not (isinstance(shrinkage, (int, float)) and 0 <= shrinkage < 1):
        raise UsageError(f"{name('shrinkage')} must be in [0, 1), got {shrinkage!r}")
    if config["weights"] not in WEIGHTS:
        raise UsageError(
            f"{name('weights')} must be one of {', '.join(WEIGHTS)}, got {config['weights']!r}"
        )
    if config["metric"] not in METRICS:
        raise UsageError(
            f"{name('metric')} must be one of {', '.join(METRICS)}, got {config['metric']!r}"
        )


def make_model(config: dict, *, progress: bool | None = False):
    """The estimator a configuration describes."""
    model = config["model"]
    if model == "softmax":
        return SoftmaxRegression(
            solver=config["solver"],
            learning_rate=config["lr"],
            final_learning_rate=config["final_lr"],
            epochs=config["epochs"],
            iterations=config["iterations"],
            batch_size=config["batch_size"],
            l2=config["l2"],
            seed=config["seed"],
            dtype=config["dtype"],
        )
    if model == "logistic-ova":
        return OneVsAllLogistic(C=config["C"], max_iter=config["max_iter"], dtype=config["dtype"])
    if model == "gaussian":
        return GaussianClassifier(
            smoothing=config["smoothing"],
            shrinkage=config["shrinkage"],
            diagonal=config["diagonal"],
            seed=config["seed"],
        )
    if model == "knn":
        return KNeighborsClassifier(
            k=config["k"],
            weights=config["weights"],
            metric=config["metric"],
            block_size=config["block_size"],
        )

    return MLPClassifier(
        hidden=tuple(config["hidden"]),
        activation=config["activation"],
        init=config["init"],
        batchnorm=config["batchnorm"],
        dropout=config["dropout"],
        leaky_slope=config["leaky_slope"],
        optimizer=config["optimizer"],
        learning_rate=config["lr"],
        momentum=config["momentum"],
        beta1=config.get("beta1"),
        beta2=config.get("beta2"),
        rho=config.get("rho"),
        batch_size=config["batch_size"],
        epochs=config["epochs"],
        l2=config["l2"],
        weight_decay=config["weight_decay"],
        schedule=config["schedule"],
        early_stopping=config["early_stopping"],
        seed=config["seed"],
        dtype=config["dtype"],
        progress=progress,
    )

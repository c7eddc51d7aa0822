"""Run configurations: defaults, presets and options resolved; every kind of value checked in each
error style; which keys a model uses; the estimator a configuration builds; and the agreement of
the estimators' parameter tables, the configuration keys and the `mnistlab train` options."""

from __future__ import annotations

import inspect
import json
import pickle

import pytest

from mnistlab.cli import build_parser
from mnistlab.errors import UsageError
from mnistlab.experiments.config import (
    COMMON_KEYS,
    CONFIG_PARAMS,
    DEFAULTS,
    MODEL_KEYS,
    check_applicable,
    make_model,
    relevant_keys,
    resolve_config,
    validate_config,
)
from mnistlab.experiments.presets import DEFAULT_PRESETS, PRESETS
from mnistlab.models import (
    MODELS,
    GaussianClassifier,
    KNeighborsClassifier,
    MLPClassifier,
    OneVsAllLogistic,
    SoftmaxRegression,
)

# ---------------------------------------------------------------------------- resolve_config


def test_defaults_then_the_default_preset():
    config = resolve_config({})
    assert config["model"] == "mlp" and config["preset"] == "fashion"
    assert config["hidden"] == PRESETS["fashion"]["config"]["hidden"]  # the preset over DEFAULTS
    assert config["seed"] == DEFAULTS["seed"] and config["checkpoint_every"] == 1
    assert list(config) == [key for key in DEFAULTS if key in relevant_keys("mlp")]


@pytest.mark.parametrize("model", list(MODELS))
def test_each_model_gets_its_default_preset_and_only_its_keys(model):
    config = resolve_config({"model": model})
    assert config["preset"] == DEFAULT_PRESETS[model]
    assert list(config) == [key for key in DEFAULTS if key in relevant_keys(model)]


def test_options_override_the_preset_and_none_means_not_given():
    config = resolve_config({"preset": "seed000", "lr": 0.5, "epochs": None, "seed": 3})
    assert config["lr"] == 0.5 and config["seed"] == 3
    assert config["epochs"] == PRESETS["seed000"]["config"]["epochs"]
    assert config["validation"] == 10000


def test_validation_0_turns_the_presets_split_off():
    assert resolve_config({})["validation"] == PRESETS["fashion"]["config"]["validation"]
    for off in (0, 0.0):
        config = resolve_config({"validation": off})
        # recorded as 0, not None: a resume must not take the preset's split again
        assert config["validation"] == 0 and isinstance(config["validation"], int)
        assert config.sources["validation"] == "user"
    validate_config({"validation": 0})
    assert resolve_config({"preset": "seed000", "validation": 0})["validation"] == 0


def test_the_default_and_seed_presets_hold_out_a_validation_split():
    for name in ("fashion", "seed000", "seed001-relu", "seed001-bn-dropout", "seed004-leaky"):
        assert PRESETS[name]["config"]["validation"], name


def test_resolved_configuration_records_where_each_value_came_from():
    config = resolve_config({"epochs": 3, "lr": 1e-3})
    assert config.sources["epochs"] == "user" and config.sources["lr"] == "user"
    assert config.sources["hidden"] == "preset"  # fashion's [1024, 512]
    assert config.sources["seed"] == "default" and config.sources["preset"] == "default"
    assert set(config.sources) == set(config)
    assert json.loads(json.dumps(config)) == dict(config)  # still a plain dict to JSON
    assert pickle.loads(pickle.dumps(config)).sources == config.sources  # to sweep workers
    named = resolve_config({"preset": "seed000"})
    assert named.sources["preset"] == "user" and named.sources["validation"] == "preset"


def test_keys_of_another_model_are_dropped():
    config = resolve_config({"model": "knn", "hidden": [16], "lr": 0.1, "k": 3})
    assert config["k"] == 3 and "hidden" not in config and "lr" not in config


def test_unknown_keys_and_presets():
    with pytest.raises(UsageError, match=r"unknown configuration keys \['learning_rate'\]"):
        resolve_config({"learning_rate": 0.1})
    with pytest.raises(UsageError, match="unknown preset 'nope'; valid: fashion, seed000"):
        resolve_config({"preset": "nope"})


# ---------------------------------------------------------------------------- validate_config

# (key, bad value, the message in the cli, python and key styles)
BAD_VALUES = [
    ("batch_size", 0, "{} must be a positive integer, got 0"),
    ("batch_size", "big", "{} must be a positive integer, got 'big'"),
    ("batch_size", True, "{} must be a positive integer, got True"),
    ("seed", -1, "{} must be a non-negative integer, got -1"),
    ("lr", 0.0, "{} must be a positive number, got 0.0"),
    ("lr", float("inf"), "{} must be a positive number, got inf"),
    ("l2", -1, "{} must be a non-negative number, got -1"),
    ("dropout", 1.5, "{} must be in [0, 1), got 1.5"),
    ("dropout", -0.2, "{} must be in [0, 1), got -0.2"),
    ("momentum", 1.0, "{} must be in [0, 1), got 1.0"),
    ("shrinkage", 1.0, "{} must be in [0, 1), got 1.0"),
    ("batchnorm", 1, "{} must be true or false, got 1"),
    ("optimizer", 5, "{} must be a name, got 5"),
    ("optimizer", "lion", "{} must be one of sgd, momentum, nesterov, rmsprop, adam, adamw, got"),
    ("schedule", "warp", "{} must be one of constant, linear, step, exponential, cosine, got"),
    ("solver", "lbfgs", "{} must be one of sgd, gd, got 'lbfgs'"),
    ("model", "svm", "{} must be one of mlp, cnn, softmax, logistic-ova, gaussian, knn, got 'svm'"),
    ("dtype", "float16", "{} must be float32 or float64, got 'float16'"),
    ("hidden", [128, 0], "{} must be positive layer sizes like 256,128, got [128, 0]"),
    ("validation", 1.5, "{} must be a count (10000), a fraction (0.1) or 0 (none), got 1.5"),
    ("validation", -1, "{} must be a count (10000), a fraction (0.1) or 0 (none), got -1"),
    ("smoothing", -1, "{} must be a number >= 0 or 'auto', got -1"),
    ("smoothing", "x", "{} must be a number >= 0 or 'auto', got 'x'"),
    ("early_stopping", 0, "{} must be a patience of at least 1 epoch, got 0"),
    ("final_lr", 0, "{} must be a positive number, got 0"),
    ("k", 0, "{} must be a positive integer, got 0"),
    ("C", -1.0, "{} must be a positive number, got -1.0"),
]
NAMES = {
    "cli": {"lr": "--lr", "final_lr": "--final-lr", "C": "--C"},
    # the estimators' names (scikit-learn's where it has one)
    "python": {
        "lr": "learning_rate",
        "final_lr": "final_learning_rate",
        "seed": "random_state",
        "hidden": "hidden_layer_sizes",
        "k": "n_neighbors",
    },
    "key": {},
}


def _named(key: str, style: str) -> str:
    default = "--" + key.replace("_", "-") if style == "cli" else key
    return NAMES[style].get(key, default)


@pytest.mark.parametrize("style", ["cli", "python", "key"])
@pytest.mark.parametrize(("key", "value", "message"), BAD_VALUES)
def test_every_kind_of_bad_value_gets_one_line_in_each_style(key, value, message, style):
    with pytest.raises(UsageError) as info:
        validate_config({key: value}, style)
    assert str(info.value).startswith(message.format(_named(key, style)))


def test_a_bad_value_is_refused_whichever_model_the_configuration_is_for():
    for model in MODELS:
        with pytest.raises(UsageError, match="--dropout must be in"):
            validate_config({"model": model, "dropout": 2.0})
        with pytest.raises(UsageError, match="--k must be a positive integer"):
            validate_config({"model": model, "k": 0})


def test_registries_name_their_valid_entries():
    with pytest.raises(UsageError, match="unknown activation 'swish'; valid: relu, leaky_relu"):
        validate_config({"activation": "swish"})
    with pytest.raises(UsageError, match="unknown initializer 'orthogonal'"):
        validate_config({"init": "orthogonal"})
    with pytest.raises(UsageError, match="unknown initializer 'orthogonal'"):
        validate_config({"hidden": [8], "init": ["he_normal", "orthogonal"]})


def test_none_is_valid_where_it_means_the_default():
    validate_config(
        {"momentum": None, "weight_decay": None, "early_stopping": None, "validation": None}
    )
    validate_config({"model": "gaussian", "shrinkage": None, "smoothing": "auto"})
    validate_config({"model": "softmax", "final_lr": None})


@pytest.mark.parametrize(
    ("style", "momentum", "beta1"),
    [
        ("cli", "--momentum", "--beta1"),
        ("python", "momentum", "beta_1"),
        ("key", "momentum", "beta1"),
    ],
)
def test_an_optimizer_setting_needs_an_optimizer_that_takes_it(style, momentum, beta1):
    with pytest.raises(UsageError) as info:
        validate_config({"optimizer": "adam", "momentum": 0.5}, style)
    assert str(info.value) == (
        f"{momentum} is for the sgd and momentum and nesterov optimizers, not 'adam'"
    )
    with pytest.raises(UsageError) as info:
        validate_config({"optimizer": "sgd", "beta1": 0.5}, style)
    assert str(info.value) == f"{beta1} is for the adam and adamw optimizers, not 'sgd'"
    # only the MLP has optimizers: the setting is dropped for another model
    validate_config({"model": "softmax", "optimizer": "adam", "momentum": 0.5}, style)


# ---------------------------------------------------------------------------- keys per model


def test_relevant_keys_are_the_common_keys_then_the_models_own():
    assert relevant_keys("knn") == COMMON_KEYS + ("k", "weights", "metric", "block_size")
    assert relevant_keys("softmax")[len(COMMON_KEYS) :] == (
        "solver",
        "lr",
        "final_lr",
        "epochs",
        "iterations",
        "batch_size",
        "l2",
    )
    assert relevant_keys("logistic-ova")[len(COMMON_KEYS) :] == ("C", "max_iter")
    assert relevant_keys("gaussian")[len(COMMON_KEYS) :] == ("smoothing", "shrinkage", "diagonal")
    mlp = relevant_keys("mlp")[len(COMMON_KEYS) :]
    assert mlp[:3] == ("hidden", "activation", "leaky_slope") and mlp[-1] == "checkpoint_every"
    assert relevant_keys("unknown") == COMMON_KEYS


def test_check_applicable():
    check_applicable(["hidden", "lr", "seed", "dataset"], "mlp")
    with pytest.raises(UsageError) as info:
        check_applicable(["hidden", "lr"], "knn")
    assert str(info.value) == (
        "--hidden, --lr do not apply to the knn model (its options: --k, --weights, "
        "--metric, --block-size)"
    )
    with pytest.raises(UsageError, match="^--k does not apply to the mlp model"):
        check_applicable(["k"], "mlp")
    with pytest.raises(UsageError) as info:
        check_applicable(["epochs"], "gaussian", style="python")
    assert str(info.value) == (
        "epochs does not apply to the gaussian model (its options: smoothing, shrinkage, diagonal)"
    )
    with pytest.raises(UsageError, match=r"its options: solver, learning_rate, final_learning_"):
        check_applicable(["k"], "softmax", style="python")


# ---------------------------------------------------------------------------- make_model


def test_make_model_maps_every_key_to_its_estimator_argument():
    mlp = make_model(
        resolve_config({"hidden": [16, 8], "lr": 0.01, "validation": 100, "momentum": None}),
        progress=None,
    )
    assert type(mlp) is MLPClassifier
    assert mlp.hidden_layer_sizes == (16, 8) and mlp.learning_rate == 0.01
    assert mlp.progress is None and mlp.random_state == 0
    assert mlp.validation is None  # the run holds out the validation split itself
    softmax = make_model(resolve_config({"model": "softmax", "lr": 0.2, "final_lr": 0.01}))
    assert type(softmax) is SoftmaxRegression
    assert softmax.learning_rate == 0.2 and softmax.final_learning_rate == 0.01
    assert softmax.record_every == 10  # an argument no configuration key sets keeps its default
    logistic = make_model(resolve_config({"model": "logistic-ova", "C": 0.5, "dtype": "float64"}))
    assert type(logistic) is OneVsAllLogistic and logistic.C == 0.5 and logistic.dtype == "float64"
    gaussian = make_model(resolve_config({"model": "gaussian", "smoothing": 0.1, "seed": 4}))
    assert type(gaussian) is GaussianClassifier
    assert (gaussian.smoothing, gaussian.random_state) == (0.1, 4)
    knn = make_model(resolve_config({"model": "knn", "k": 3, "metric": "l1", "seed": 2}))
    assert type(knn) is KNeighborsClassifier and (knn.n_neighbors, knn.metric) == (3, "l1")


def test_configuration_keys_keep_their_names_where_the_estimators_take_scikit_learns():
    renamed = {
        (model.model_name, spec.key): spec.name
        for model in MODELS.values()
        for spec in model.param_specs
        if spec.key is not None and spec.key != spec.name
    }
    assert renamed == {
        ("mlp", "hidden"): "hidden_layer_sizes",
        ("mlp", "lr"): "learning_rate",
        ("mlp", "beta1"): "beta_1",
        ("mlp", "beta2"): "beta_2",
        ("mlp", "seed"): "random_state",
        ("cnn", "kernel"): "kernel_size",
        ("cnn", "hidden"): "hidden_layer_sizes",
        ("cnn", "lr"): "learning_rate",
        ("cnn", "beta1"): "beta_1",
        ("cnn", "beta2"): "beta_2",
        ("cnn", "seed"): "random_state",
        ("softmax", "lr"): "learning_rate",
        ("softmax", "final_lr"): "final_learning_rate",
        ("softmax", "seed"): "random_state",
        ("gaussian", "seed"): "random_state",
        ("knn", "k"): "n_neighbors",
    }


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_builds_its_estimator_with_the_configured_values(preset):
    config = resolve_config({"preset": preset})
    model = make_model(config)
    assert type(model) is MODELS[config["model"]]
    params = model.get_params()
    for spec in model.param_specs:
        if spec.key in config and spec.key not in ("validation",):
            expected = config[spec.key]
            assert params[spec.name] == (tuple(expected) if spec.kind == "sizes" else expected)


# ---------------------------------------------------------------------------- tables agree


@pytest.mark.parametrize("model", list(MODELS.values()))
def test_each_estimator_describes_every_argument_once(model):
    arguments = [p for p in inspect.signature(model.__init__).parameters if p != "self"]
    names = [spec.name for spec in model.param_specs]
    assert sorted(names) == sorted(arguments) and len(set(names)) == len(names)


def test_every_configuration_key_has_one_spec_shared_by_the_models_that_use_it():
    assert list(CONFIG_PARAMS) == list(DEFAULTS)
    for model in MODELS.values():
        for spec in model.param_specs:
            if spec.key is not None:
                assert CONFIG_PARAMS[spec.key] == spec, (model.__name__, spec.key)
    for name, keys in MODEL_KEYS.items():
        assert set(keys) <= set(DEFAULTS), name


def _train_options() -> dict:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    train = commands.choices["train"]
    return {action.dest: action for action in train._actions if action.option_strings}


def test_every_train_option_is_a_configuration_key_and_every_key_an_option():
    options = _train_options()
    run_options = {"help", "config", "out", "resume", "quiet", "list_presets", "offline"}
    assert set(options) - run_options == set(DEFAULTS)
    for key, spec in CONFIG_PARAMS.items():
        action = options[key]
        assert action.option_strings == ["--" + key.replace("_", "-")]
        assert action.default is None  # not given: the preset's or the default value
        if spec.kind == "int":
            assert action.type is int
        if spec.kind == "bool":
            assert action.nargs == 0
        if spec.choices and action.choices is not None:
            assert list(action.choices) == list(spec.choices)
        if spec.metavar is not None:
            assert action.metavar == spec.metavar
        if spec.help:
            assert spec.help_text() in action.help


def test_the_train_help_lists_the_choices_of_the_tables():
    options = _train_options()
    assert options["optimizer"].help == "sgd, momentum, nesterov, rmsprop, adam, adamw"
    assert options["model"].help == "mlp, cnn, softmax, logistic-ova, gaussian, knn"
    assert options["metric"].help == "knn: l2 or l1"
    assert options["C"].help == "logistic-ova: inverse L2 strength"
    assert options["dtype"].choices == ["float32", "float64"]

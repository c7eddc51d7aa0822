"""Run configurations: every key with its default, presets applied, values validated.

A configuration is what `mnistlab train` takes as options and writes as config.json; the same keys
make up the base of a study file. Each key is described once, by a ParamSpec
(mnistlab.models.params): the run's own keys (dataset, model, preset, ...) in RUN_PARAMS here, a
model's keys in its estimator's `param_specs`, under their configuration key: the keys keep the
names of `mnistlab train`'s options where the estimators take scikit-learn's (seed for
random_state, k for n_neighbors, hidden for hidden_layer_sizes, beta1 for beta_1, lr for
learning_rate). Errors name the option and quote the value.
"""

from __future__ import annotations

from mnistlab.errors import UsageError
from mnistlab.experiments.presets import DEFAULT_PRESETS, PRESETS, get_preset
from mnistlab.models import MODELS, Classifier
from mnistlab.models.params import DTYPE, RANDOM_STATE, VALIDATION, ParamSpec, option_flag

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
    # data augmentation of the networks' training images (off unless asked for)
    "augment": None,
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
    # convolutional network (its dense head and training take the MLP's keys)
    "conv": [32, 64],
    "kernel": 3,
    "pool": 2,
    "padding": "same",
    "conv_dropout": 0.0,
}
MODEL_NAMES = tuple(MODELS)
#: the keys that describe the run rather than a model: its data, its folder, its checkpoints
RUN_PARAMS = (
    ParamSpec("dataset", "name", help="named dataset or path (default fashion-mnist)"),
    ParamSpec("data_dir", "any"),
    ParamSpec("model", "choice", choices=MODEL_NAMES, help="{choices}"),
    ParamSpec("preset", "any", help=f"named configuration: {', '.join(PRESETS)}"),
    VALIDATION,
    RANDOM_STATE,
    DTYPE,
    ParamSpec("checkpoint_every", "int", low=1, metavar="N"),
)
#: the keys every model's configuration records
COMMON_KEYS = ("dataset", "data_dir", "model", "preset", "validation", "seed", "dtype")
#: run keys that the run acts on itself, never passed to the estimator (it gets the split data)
RUN_ONLY_KEYS = ("dataset", "data_dir", "model", "preset", "validation", "checkpoint_every")
#: run keys that only some models use: only the MLP's training writes checkpoints
#: the models trained in epochs by the Trainer: their runs write checkpoints and resume
NETWORK_MODELS = ("mlp", "cnn")
MODEL_RUN_KEYS = {name: ("checkpoint_every",) for name in NETWORK_MODELS}


def _model_keys(model: type[Classifier]) -> tuple[str, ...]:
    own = tuple(spec.key for spec in model.param_specs if spec.key and spec.key not in COMMON_KEYS)
    return own + MODEL_RUN_KEYS.get(model.model_name, ())


#: each model's own keys, in the order its estimator lists them
MODEL_KEYS = {name: _model_keys(model) for name, model in MODELS.items()}


def _specs_by_key() -> dict[str, ParamSpec]:
    """Every configuration key's spec, in the order of DEFAULTS (a key that several models
    share, such as lr, has one spec that they all use)."""
    specs = {spec.key: spec for spec in RUN_PARAMS}
    for model in MODELS.values():
        for spec in model.param_specs:
            if spec.key is not None:
                specs.setdefault(spec.key, spec)
    return {key: specs[key] for key in DEFAULTS}


CONFIG_PARAMS = _specs_by_key()


def resolve_config(options: dict, style: str = "cli") -> dict:
    """Defaults, then the preset (the default preset for an MLP without one), then `options`.

    style: how errors name keys, "cli" (--batch-size), "python" (batch_size) or "key".
    """
    config = dict(DEFAULTS)
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise UsageError(f"unknown configuration keys {unknown}; valid: {', '.join(DEFAULTS)}")
    preset = given.get("preset")
    if preset is None:
        preset = DEFAULT_PRESETS.get(given.get("model", "mlp"))
    from_preset = get_preset(preset) if preset is not None else {}
    config.update(from_preset)
    if preset is not None:
        config["preset"] = preset
    config.update(given)
    if no_validation(config["validation"]) and config["validation"] is not None:
        config["validation"] = 0  # --validation 0.0 too
    validate_config(config, style)
    sources = {
        key: "user" if key in given else "preset" if key in from_preset else "default"
        for key in config
    }
    keys = relevant_keys(config["model"])
    return ResolvedConfig(
        {k: v for k, v in config.items() if k in keys}, {k: sources[k] for k in keys}
    )


class ResolvedConfig(dict):
    """A resolved configuration: a plain dict of key -> value (what config.json holds), which
    also says where each value came from: ``sources[key]`` is "user" (an option or a
    configuration file), "preset" or "default".

    A dict, so that everything that reads a configuration reads this one unchanged; the
    sources ride along to `experiments.runs.train_run`, which records them in run.json.
    """

    def __init__(self, values: dict, sources: dict[str, str]) -> None:
        super().__init__(values)
        self.sources = sources


def no_validation(value) -> bool:
    """Whether a configuration's validation value holds nothing out: None (no split asked for)
    or 0 (`--validation 0`, turning a preset's split off; recorded as 0 rather than None, which
    a resume would take as "not given" and fill from the preset again)."""
    return value is None or (value == 0 and not isinstance(value, bool))


def relevant_keys(model: str) -> tuple[str, ...]:
    """The configuration keys that matter for `model` (what config.json records)."""
    return COMMON_KEYS + MODEL_KEYS.get(model, ())


def models_using(key: str) -> list[str]:
    """The models whose own keys include `key` (every model for a common key)."""
    return [name for name in MODEL_NAMES if key in relevant_keys(name)]


def check_applicable(keys, model: str, style: str = "cli") -> None:
    """Refuse options given for a model that does not use them (--hidden with --model knn), as
    a Keras layer or a scikit-learn estimator refuses an argument it does not take; a preset's
    or a configuration file's other keys are not checked (they are dropped)."""
    relevant = relevant_keys(model)
    stray = [key for key in keys if key not in relevant]
    if stray:
        names = ", ".join(option_name(key, style) for key in stray)
        own = ", ".join(option_name(key, style) for key in MODEL_KEYS.get(model, ()))
        verb = "does" if len(stray) == 1 else "do"
        raise UsageError(f"{names} {verb} not apply to the {model} model (its options: {own})")


def option_name(key: str, style: str) -> str:
    """How errors name a configuration key: --batch-size (cli), batch_size (python, key)."""
    if key in CONFIG_PARAMS:
        return CONFIG_PARAMS[key].display(style)
    return key if style in ("python", "key") else option_flag(key)


def validate_config(config: dict, style: str = "cli") -> None:
    """Refuse bad values with one line naming the option and the value.

    Every key is checked against its spec, whichever model the configuration is for (a preset
    or a file may hold keys of another model, dropped once resolved), then the model's
    estimator checks how its parameters combine (--momentum with --optimizer adam).
    style: "cli" names options as --batch-size, "python" as batch_size, "key" as the key.
    """
    config = {**DEFAULTS, **config}  # a key not given has its default
    if no_validation(config["validation"]):
        config["validation"] = None  # 0 is checked as what it means: no split
    for spec in CONFIG_PARAMS.values():
        spec.validate(config[spec.key], style)
    model = MODELS[config["model"]]
    model.check_params(_estimator_values(model, config), style)


def _estimator_values(model: type[Classifier], config: dict) -> dict:
    """The estimator's arguments that `config` holds, by the estimator's names."""
    return {spec.name: config[spec.key] for spec in model.param_specs if spec.key in config}


def make_model(config: dict, *, progress: bool | None = False) -> Classifier:
    """The estimator a configuration describes (a resolved configuration: see resolve_config)."""
    model = MODELS[config["model"]]
    arguments = {
        spec.name: _estimator_value(spec, config[spec.key])
        for spec in model.param_specs
        if spec.key in config and spec.key not in RUN_ONLY_KEYS
    }
    if any(spec.name == "progress" for spec in model.param_specs):
        arguments["progress"] = progress
    return model(**arguments)


def _estimator_value(spec: ParamSpec, value):
    # layer sizes are a tuple on the estimator (as scikit-learn's hidden_layer_sizes), a list in
    # JSON and TOML
    return tuple(value) if spec.kind == "sizes" else value

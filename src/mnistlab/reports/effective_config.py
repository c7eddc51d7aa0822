"""The effective value of each configuration key of a run: what its model applied.

A config.json records None for a setting left to someone else's default (beta1 and momentum to
the optimizer's, init to the layers'), and a run from an older mnistlab may lack keys added
since. Runs compared key by key must compare what was applied: a blank beta1 under Adam is
beta1 = 0.9, the same as a run that set 0.9. A key that does not apply to a run (hidden for a
k-NN, momentum under Adam) is NOT_APPLICABLE.
"""

from __future__ import annotations

import functools
import json

import numpy as np

from mnistlab.experiments.config import DEFAULTS, relevant_keys
from mnistlab.models.mlp import OPTIMIZER_SETTINGS, MLPClassifier
from mnistlab.nn.model import build_mlp
from mnistlab.nn.parameters import Parameter
from mnistlab.optim.optimizers import get_optimizer

#: what a key that does not apply to a run shows
NOT_APPLICABLE = "—"

#: configuration key of each optimizer setting (beta1 for the estimator's beta_1)
_SETTING_KEYS = {
    spec.name: spec.key or spec.name
    for spec in MLPClassifier.param_specs
    if spec.name in OPTIMIZER_SETTINGS
}


def effective_config(config: dict) -> dict:
    """Every configuration key with the value its run applied, NOT_APPLICABLE where the key
    does not apply to the run's model (or, for an optimizer setting, to its optimizer).

    config: a run's config.json. Returns {key: value} in the order of DEFAULTS.
    """
    model = config.get("model", DEFAULTS["model"])
    relevant = set(relevant_keys(model))
    values = {
        key: (config.get(key, default) if key in relevant else NOT_APPLICABLE)
        for key, default in DEFAULTS.items()
    }
    if values["validation"] == 0 and not isinstance(values["validation"], bool):
        values["validation"] = None  # --validation 0 holds nothing out, as no split does
    if values.get("optimizer") not in (None, NOT_APPLICABLE):
        _resolve_optimizer_settings(values)
    if model == "mlp":
        if values["init"] is None:
            values["init"] = _default_initializers(values["hidden"], values["activation"])
        if values["activation"] != "leaky_relu":
            values["leaky_slope"] = NOT_APPLICABLE  # only LeakyReLU has a slope below zero
    return values


def same_value(a, b) -> bool:
    """Whether two effective values are equal (lists and dicts by content, 0.001 == 1e-3)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _resolve_optimizer_settings(values: dict) -> None:
    """A blank momentum, beta1, beta2, rho or weight_decay becomes the optimizer's own default;
    a setting the optimizer does not take becomes NOT_APPLICABLE (the estimator refuses it)."""
    optimizer = values["optimizer"]
    defaults = _optimizer_defaults(optimizer)
    for name, optimizers in OPTIMIZER_SETTINGS.items():
        key = _SETTING_KEYS[name]
        if optimizer not in optimizers:
            values[key] = NOT_APPLICABLE
        elif values[key] is None:
            values[key] = defaults[key]
    if values.get("weight_decay") is None:
        values["weight_decay"] = defaults["weight_decay"]


@functools.cache
def _optimizer_defaults(optimizer: str) -> dict:
    """The settings an optimizer applies when none is given, asked of the optimizer itself (on
    one throwaway parameter), so that get_optimizer's own choices (momentum 0.9 for
    "momentum" and "nesterov") count."""
    instance = get_optimizer(optimizer, [Parameter(np.zeros(1, np.float32))], learning_rate=1.0)
    return {
        key: getattr(instance, argument, None)
        for key, argument in (
            ("momentum", "momentum"),
            ("beta1", "beta1"),
            ("beta2", "beta2"),
            ("rho", "rho"),
            ("weight_decay", "weight_decay"),
        )
    }


def _default_initializers(hidden, activation: str) -> str:
    """The initializers a network without `init` gets, from the network builder itself:
    "he_normal" when every Dense layer has it, else the hidden layers' and the output's."""
    network = build_mlp(list(hidden), 10, activation=activation, init=None)
    names = [layer.init.config()["name"] for layer in network.layers if hasattr(layer, "init")]
    if len(set(names)) == 1:
        return names[0]
    return f"{names[0]} (output layer {names[-1]})"


__all__ = ["NOT_APPLICABLE", "effective_config", "same_value"]

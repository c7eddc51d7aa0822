"""A report's configuration section: the command that made the run, the code it ran, and every
configuration key with the value applied and where it came from.

A config.json leaves None where someone else's default applies (beta1 to Adam's 0.9, init to
the layers'); the table shows that value (`effective_config`, shared with the comparison of
runs) or says what None means, so that no cell is blank.
"""

from __future__ import annotations

import html
import inspect

from mnistlab import __version__
from mnistlab.reports.effective_config import NOT_APPLICABLE, effective_config
from mnistlab.reports.html import cell, table

#: what a None that no object applies stands for, by configuration key
NONE_MEANS = {
    "validation": "0: none held out, trains on every training image",
    "early_stopping": "off: every epoch runs",
    "data_dir": "the default data folder",
    "preset": "none",
    "final_lr": "none: a constant learning rate",
    "shrinkage": "0, or searched with smoothing auto",
    "init": "each layer's default",
    "weight_decay": "0",
    "augment": "off",
    "blas_threads": "chosen from the network's size and the free cores",
}
#: what the source column says, by run.json's word
SOURCE_WORDS = {"user": "user", "preset": "preset", "default": "default"}
#: keys whose value is not applicable to a run only because another key's value rules it out
RULED_OUT_BY = {
    "momentum": "optimizer",
    "beta1": "optimizer",
    "beta2": "optimizer",
    "rho": "optimizer",
    "leaky_slope": "activation",
}


def configuration(config: dict, run_record: dict | None, n_validation: int | None) -> str:
    """The section's HTML: the command and code of the run (from run.json, where the run folder
    has one), then the configuration table: key, value applied, source."""
    return _provenance(run_record) + table(
        config_rows(config, run_record, n_validation), header=["key", "value", "source"]
    )


def config_rows(config: dict, run_record: dict | None, n_validation: int | None) -> list:
    """(key, value applied, source) for each key of a run's config.json, in its order."""
    effective = effective_config(config)
    sources = (run_record or {}).get("sources") or {}
    rows = []
    for key, given in config.items():
        value = effective.get(key, given)
        if key == "leaky_slope" and config.get("activation") not in (None, "leaky_relu"):
            value = NOT_APPLICABLE  # only LeakyReLU has a slope below zero, whatever the model
        if isinstance(value, tuple):
            value = list(value)  # shown as JSON, as config.json holds it
        if value == NOT_APPLICABLE:
            ruler = RULED_OUT_BY.get(key)
            value = f"— (not used by {config[ruler]})" if ruler in config else "— (not used)"
        elif value is None:
            value = NONE_MEANS.get(key, "the estimator's default")
        elif key == "validation" and n_validation is not None:
            value = f"{cell(value)} ({n_validation} images held out)"
        source = sources.get(key)
        if source == "preset" and config.get("preset"):
            source = f"preset {config['preset']}"
        rows.append((key, value, SOURCE_WORDS.get(source, source) or "not recorded"))
    return rows


def estimator_configuration(model) -> str:
    """The configuration table of a model fitted in memory: each of its parameters by its
    configuration key where it has one (the `mnistlab train` option), the value applied, and
    whether it was set (differs from the estimator's default) or left at the default."""
    params = model.get_params()
    defaults = inspect.signature(type(model).__init__).parameters
    specs = {spec.name: spec for spec in getattr(model, "param_specs", ())}
    keys = {name: (specs[name].key if name in specs else None) or name for name in params}
    config = {"model": getattr(model, "model_name", type(model).__name__)}
    config.update({keys[name]: value for name, value in params.items()})
    sources = {"model": "user"}
    for name, value in params.items():
        default = defaults[name].default if name in defaults else inspect.Parameter.empty
        sources[keys[name]] = "default" if _same(value, default) else "user"
    note = (
        f"<p>{html.escape(type(model).__name__)} fitted in memory (mnistlab {__version__}): "
        "its parameters by their <code>mnistlab train</code> keys; source <em>user</em> "
        "where one differs from the estimator's default.</p>"
    )
    rows = config_rows(config, {"sources": sources}, None)
    return note + table(rows, header=["key", "value", "source"])


def _same(value, default) -> bool:
    # a tuple default (hidden_layer_sizes) against the list a fitted model may hold
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return list(value) == list(default)
    return value is default or (type(value) is type(default) and value == default)


def _provenance(record: dict | None) -> str:
    """The command line and the code of a run, or a line saying the run folder predates
    run.json."""
    if record is None:
        return (
            "<p>This run folder has no run.json (it predates it): its command line, the code "
            "it ran and where each value came from were not recorded.</p>"
        )
    rows = [
        ("mnistlab version", record.get("mnistlab") or "not recorded"),
        ("git commit", record.get("git_commit") or "none: mnistlab did not run from a checkout"),
        ("started", record.get("started") or "not recorded"),
    ]
    for resume in record.get("resumed") or []:
        rows.append(("resumed", f"{resume.get('at')}: {resume.get('command')}"))
    command = html.escape(record.get("command") or "")
    return f"<p>Command line:</p><pre>{command}</pre>" + table(rows, header=["run", "value"])


__all__ = ["configuration", "config_rows", "estimator_configuration"]

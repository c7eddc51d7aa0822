"""Study files: a base run configuration, what to vary, and the metric to rank by.

A study is a TOML file::

    [study]
    name = "learning-rate"          # default: the file's stem
    description = "What does the learning rate do to plain SGD?"
    metric = "val_accuracy"         # what trials are ranked by
    goal = "max"                    # default: max for accuracies, min for losses and seconds

    [base]                          # the keys of `mnistlab train` and config.json
    preset = "seed000"
    dataset = "fashion-mnist"

    [grid]                          # every combination of these values
    lr = [0.1, 0.01, 0.001, 0.0001]

    [random]                        # `trials` draws, seeded, from these distributions
    trials = 8
    seed = 0
    dropout = { uniform = [0.0, 0.5] }
    l2 = { log_uniform = [1e-5, 1e-3] }
    batch_size = { choice = [32, 64, 128] }
    epochs = { int_uniform = [5, 20] }

    [repeat]                        # every trial once per seed (error bars over seeds)
    seeds = [0, 1, 2]               # or: count = 3 (the seeds 0, 1, 2)

Grid and random combine as a product (each grid point with each random draw), then repeats.
Every error names the file, the section and key, and the bad value.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnistlab.errors import DataError, UsageError
from mnistlab.experiments.config import DEFAULTS, no_validation, relevant_keys, resolve_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SECTIONS = ("study", "base", "grid", "random", "repeat")
STUDY_KEYS = ("name", "description", "metric", "goal")
#: what a study may rank by, and whether more is better
METRICS = {
    "val_accuracy": "max",
    "test_accuracy": "max",
    "train_accuracy": "max",
    "val_loss": "min",
    "test_loss": "min",
    "train_loss": "min",
    "test_errors": "min",
    "train_seconds": "min",
}
DISTRIBUTIONS = ("uniform", "log_uniform", "int_uniform", "choice")


@dataclass
class Trial:
    """One run of a study: the values it varies (seed included when repeated) and its config."""

    label: str
    params: dict
    config: dict

    @property
    def folder_name(self) -> str:
        return trial_folder_name(self.label)


@dataclass
class Study:
    name: str
    path: Path | None
    description: str
    metric: str
    goal: str
    base: dict
    grid: dict = field(default_factory=dict)
    random: dict = field(default_factory=dict)  # key -> distribution
    random_trials: int = 0
    random_seed: int = 0
    seeds: list[int] | None = None
    trials: list[Trial] = field(default_factory=list)
    text: str = ""

    @property
    def varied(self) -> list[str]:
        """The configuration keys the study varies, in file order (seed last when repeated)."""
        keys = list(self.grid) + [k for k in self.random if k not in self.grid]
        if self.seeds is not None and "seed" not in keys:
            keys.append("seed")
        return keys


def trial_folder_name(label: str) -> str:
    """A file-system-safe folder name for a trial label (same label, same folder)."""
    name = re.sub(r"[^A-Za-z0-9._=,+-]+", "_", label).strip("._") or "trial"
    return name[:120]


def format_value(value) -> str:
    """A short, stable text for a parameter value (labels, tables, charts)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "-".join(format_value(v) for v in value) or "[]"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def load_study(path: str | os.PathLike) -> Study:
    """Read, validate and expand a study file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such study file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the study file ({exc})") from None
    return parse_study(text, name=path.stem, path=path)


def parse_study(text: str, *, name: str = "study", path: Path | None = None) -> Study:
    """Validate and expand a study file's text; `name` when [study] gives none."""
    where = str(path) if path is not None else "study"
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"{where}: not valid TOML ({exc})") from None

    def fail(message: str):
        raise UsageError(f"{where}: {message}")

    _check_sections(document, fail)
    head = _read_head(document.get("study", {}), name, fail)
    base = document.get("base", {})
    _check_keys(base, "base", fail)
    try:
        resolve_config(base, style="key")
    except UsageError as exc:
        fail(f"[base] {exc}")
    grid = _read_grid(document.get("grid", {}), fail)
    random, n_random, random_seed = _read_random(document.get("random", {}), grid, fail)
    study = Study(
        **head,
        path=path,
        base=base,
        grid=grid,
        random=random,
        random_trials=n_random,
        random_seed=random_seed,
        seeds=_read_repeat(document.get("repeat", {}), grid, fail),
        text=text,
    )
    study.trials = _expand(study, random, n_random, random_seed, fail)
    _check_trials(study, fail)
    return study


def _check_sections(document: dict, fail) -> None:
    """Only the known tables, and no key above the first of them."""
    for section, value in document.items():
        if section not in SECTIONS and not isinstance(value, dict):
            # a key above the first table: `name = "x"` meant for [study], or `lr` for [base]
            home = "study" if section in STUDY_KEYS else "base" if section in DEFAULTS else None
            fail(
                f"{section} = {value!r} lies outside any table"
                + (f"; put it under [{home}]" if home else "")
                + f"; a study file has the tables {', '.join(f'[{s}]' for s in SECTIONS)}"
            )
        if section not in SECTIONS:
            fail(
                f"unknown section [{section}]{_suggest(section, SECTIONS)}; valid: "
                f"{', '.join(f'[{s}]' for s in SECTIONS)}"
            )
        if not isinstance(value, dict):
            fail(f"{section} must be a [{section}] table, got {value!r}")


def _read_head(head: dict, default_name: str, fail) -> dict:
    """[study]: name, description, metric and goal (Study's keyword arguments)."""
    for key in head:
        if key not in STUDY_KEYS:
            fail(
                f"[study] unknown key {key!r}{_suggest(key, STUDY_KEYS)}; valid: "
                f"{', '.join(STUDY_KEYS)}"
            )
    study_name = head.get("name", default_name)
    if not isinstance(study_name, str) or not re.fullmatch(
        r"[A-Za-z0-9][A-Za-z0-9._-]*", study_name
    ):
        fail(f"[study] name must be letters, digits, '.', '_' or '-', got {study_name!r}")
    description = head.get("description", "")
    if not isinstance(description, str):
        fail(f"[study] description must be text, got {description!r}")
    metric = head.get("metric", "val_accuracy")
    if metric not in METRICS:
        fail(f"[study] metric must be one of {', '.join(METRICS)}, got {metric!r}")
    goal = head.get("goal", METRICS[metric])
    if goal not in ("max", "min"):
        fail(f"[study] goal must be 'max' or 'min', got {goal!r}")
    return {"name": study_name, "description": description, "metric": metric, "goal": goal}


def _read_grid(grid: dict, fail) -> dict:
    """[grid]: a non-empty list of distinct values per key."""
    _check_keys(grid, "grid", fail)
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            fail(f"[grid] {key} must be a non-empty list of values, got {values!r}")
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            fail(f"[grid] {key} lists a value twice: {values!r}")
    return grid


def _read_random(table: dict, grid: dict, fail) -> tuple[dict, int, int]:
    """[random]: (the distributions by key, the number of draws, the seed of the draws)."""
    random = dict(table)
    n_random = random.pop("trials", None)
    random_seed = random.pop("seed", 0)
    if not random:
        if n_random is not None:
            fail("[random] trials is set but no parameter has a distribution")
        return random, 0, random_seed
    if isinstance(n_random, bool) or not isinstance(n_random, int) or n_random < 1:
        fail(f"[random] trials must be a positive number of draws, got {n_random!r}")
    if isinstance(random_seed, bool) or not isinstance(random_seed, int) or random_seed < 0:
        fail(f"[random] seed must be a non-negative integer, got {random_seed!r}")
    _check_keys(random, "random", fail)
    for key, spec in random.items():
        if key in grid:
            fail(f"[random] {key} is also in [grid]; vary it in one of them")
        _check_distribution(key, spec, fail)
    return random, n_random, random_seed


def _read_repeat(repeat: dict, grid: dict, fail) -> list[int] | None:
    """[repeat]: the seeds every trial runs with (None: no repeats)."""
    for key in repeat:
        if key not in ("seeds", "count"):
            fail(f"[repeat] unknown key {key!r}; valid: seeds, count")
    if "seeds" in repeat and "count" in repeat:
        fail("[repeat] give seeds or count, not both")
    seeds = None
    if "seeds" in repeat:
        seeds = repeat["seeds"]
        if (
            not isinstance(seeds, list)
            or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
            or len(set(seeds)) != len(seeds)
        ):
            fail(f"[repeat] seeds must be distinct non-negative integers, got {seeds!r}")
    elif "count" in repeat:
        count = repeat["count"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            fail(f"[repeat] count must be a positive integer, got {count!r}")
        seeds = list(range(count))
    if seeds is not None and "seed" in grid:
        fail("[repeat] and [grid] seed both set the seed; use one")
    return seeds


def _check_trials(study: Study, fail) -> None:
    """Every varied key matters to some trial's model, and the metric can be computed."""
    models = sorted({t.config["model"] for t in study.trials})
    for section, keys in (("grid", study.grid), ("random", study.random)):
        for key in keys:
            if not any(key in relevant_keys(model) for model in models):
                fail(
                    f"[{section}] {key} does not apply to the {' or '.join(models)} model its "
                    "trials train; varying it would only repeat the same run"
                )
    if study.metric.startswith("val_") and any(
        no_validation(t.config.get("validation")) for t in study.trials
    ):
        fail(
            f"[study] metric {study.metric!r} needs a validation split: set [base] validation "
            f"(10000 images, or a fraction like 0.1), or rank by test_accuracy"
        )


def _suggest(key: str, valid) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_keys(table: dict, section: str, fail) -> None:
    for key in table:
        if key not in DEFAULTS:
            fail(
                f"[{section}] unknown key {key!r}{_suggest(key, DEFAULTS)}; valid: "
                f"{', '.join(DEFAULTS)}"
            )


def _check_distribution(key: str, spec, fail) -> None:
    if isinstance(spec, list):
        spec = {"choice": spec}
    if not isinstance(spec, dict) or len(spec) != 1:
        fail(
            f"[random] {key} must be one of {{ uniform = [a, b] }}, {{ log_uniform = [a, b] }}, "
            f"{{ int_uniform = [a, b] }}, {{ choice = [...] }} or a list, got {spec!r}"
        )
    ((kind, args),) = spec.items()
    if kind not in DISTRIBUTIONS:
        fail(f"[random] {key}: unknown distribution {kind!r}; valid: {', '.join(DISTRIBUTIONS)}")
    if kind == "choice":
        if not isinstance(args, list) or not args:
            fail(f"[random] {key}: choice needs a non-empty list, got {args!r}")
        return
    if (
        not isinstance(args, list)
        or len(args) != 2
        or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)
        or not all(math.isfinite(a) for a in args)
        or args[0] > args[1]
    ):
        fail(f"[random] {key}: {kind} needs [low, high] with low <= high, got {args!r}")
    if kind == "log_uniform" and args[0] <= 0:
        fail(f"[random] {key}: log_uniform needs low > 0, got {args!r}")
    if kind == "int_uniform" and not all(float(a).is_integer() for a in args):
        fail(f"[random] {key}: int_uniform needs integer bounds, got {args!r}")


def _draw(spec, rng: np.random.Generator):
    if isinstance(spec, list):
        spec = {"choice": spec}
    ((kind, args),) = spec.items()
    if kind == "choice":
        return args[int(rng.integers(len(args)))]
    low, high = args
    if kind == "uniform":
        return float(rng.uniform(low, high))
    if kind == "log_uniform":
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    return int(rng.integers(int(low), int(high) + 1))


def _expand(study: Study, random: dict, n_random: int, random_seed: int, fail) -> list[Trial]:
    grid_points = [
        dict(zip(study.grid, values, strict=True))
        for values in itertools.product(*study.grid.values())
    ]
    if random:
        rng = np.random.default_rng(random_seed)
        draws = [{k: _draw(spec, rng) for k, spec in random.items()} for _ in range(n_random)]
    else:
        draws = [{}]
    seeds = study.seeds if study.seeds is not None else [None]
    trials, labels = [], set()
    for point in grid_points:
        for draw in draws:
            for seed in seeds:
                params = {**point, **draw}
                if seed is not None:
                    params["seed"] = seed
                label = first = ",".join(f"{k}={format_value(v)}" for k, v in params.items())
                label = label or "base"
                n = 1
                while trial_folder_name(label) in labels:  # random draws that print alike
                    n += 1
                    label = f"{first}#{n}"
                labels.add(trial_folder_name(label))
                try:
                    config = resolve_config({**study.base, **params}, style="key")
                except UsageError as exc:
                    fail(f"trial {label}: {exc}")
                trials.append(Trial(label=label, params=params, config=config))
    return trials

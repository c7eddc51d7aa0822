"""What the sweep report summarises: the configurations over their seeds, and the metric's
marginal means per value of a parameter and per pair of values of two parameters.

A configuration is a trial's parameters other than the seed. A marginal mean for lr = 0.1 is
the mean, over the configurations with lr = 0.1, of each configuration's mean over its seeds:
an average over the other varied parameters, not a spread over seeds. The seeds' spread is
kept apart (`Marginal.per_seed`: the same mean on one seed's trials alone).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from mnistlab.experiments.study import format_value


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0


def configurations(trials: list[dict], metric: str, goal: str) -> list[dict]:
    """Finished trials grouped by their parameters other than the seed, best first.

    Each: params, trials, mean and std of `metric` over the seeds, n (the number of seeds),
    and the mean test_accuracy and train_seconds."""
    groups: dict[str, dict] = {}
    for trial in trials:
        if trial["status"] != "finished" or trial["metrics"].get(metric) is None:
            continue
        params = {k: v for k, v in trial["params"].items() if k != "seed"}
        key = json.dumps(params, sort_keys=True)
        group = groups.setdefault(key, {"params": params, "trials": []})
        group["trials"].append(trial)
    rows = []
    for group in groups.values():
        values = [t["metrics"][metric] for t in group["trials"]]
        mean, std = mean_std(values)
        tests = [t["metrics"].get("test_accuracy") for t in group["trials"]]
        seconds = [t["metrics"].get("train_seconds") or 0.0 for t in group["trials"]]
        rows.append(
            {
                **group,
                "mean": mean,
                "std": std,
                "n": len(values),
                "test_accuracy": float(np.mean(tests)) if None not in tests else None,
                "train_seconds": float(np.mean(seconds)),
            }
        )
    rows.sort(key=lambda r: r["mean"], reverse=goal == "max")
    return rows


def with_spread(mean: float, std: float, n: int) -> str:
    """ "0.9512 ± 0.0030" over two or more seeds; the bare "0.9512" over one (no spread)."""
    return f"{mean:.4f} ± {std:.4f}" if n > 1 else f"{mean:.4f}"


def seeds_text(n: int) -> str:
    return f"{n} seed" if n == 1 else f"{n} seeds"


@dataclass
class Marginal:
    """The metric at one value of a parameter, averaged over the other varied parameters."""

    label: str
    mean: float
    configurations: int
    #: the same mean on each seed's trials alone (the seeds' spread), by seed
    per_seed: dict = field(default_factory=dict)


def marginals(configs: list[dict], key: str, metric: str, order=None) -> list[Marginal]:
    """One Marginal per value of `key`, in the order of `order` (values as the study lists
    them) where given, else as first met."""
    groups: dict[str, list[dict]] = {}
    for label in [format_value(v) for v in order or ()]:
        groups[label] = []
    for config in configs:
        if key in config["params"]:
            groups.setdefault(format_value(config["params"][key]), []).append(config)
    result = []
    for label, members in groups.items():
        if not members:
            continue
        by_seed: dict = {}
        for config in members:
            for trial in config["trials"]:
                by_seed.setdefault(trial["params"].get("seed"), []).append(trial["metrics"][metric])
        result.append(
            Marginal(
                label=label,
                mean=float(np.mean([c["mean"] for c in members])),
                configurations=len(members),
                per_seed={seed: float(np.mean(v)) for seed, v in sorted(by_seed.items(), key=str)},
            )
        )
    return result


def pair_means(configs: list[dict], keys: tuple[str, str], orders: tuple[list, list]):
    """The marginal mean for every pair of values of two parameters.

    Returns (means, counts): arrays of shape (len(orders[0]), len(orders[1])), means NaN and
    counts 0 where no configuration finished."""
    labels = [[format_value(v) for v in order] for order in orders]
    sums = np.zeros((len(labels[0]), len(labels[1])))
    counts = np.zeros_like(sums, dtype=np.int64)
    for config in configs:
        params = config["params"]
        if keys[0] not in params or keys[1] not in params:
            continue
        i = labels[0].index(format_value(params[keys[0]]))
        j = labels[1].index(format_value(params[keys[1]]))
        sums[i, j] += config["mean"]
        counts[i, j] += 1
    means = np.divide(sums, counts, out=np.full_like(sums, np.nan), where=counts > 0)
    return means, counts


__all__ = [
    "Marginal",
    "configurations",
    "marginals",
    "mean_std",
    "pair_means",
    "seeds_text",
    "with_spread",
]

"""The sweep report: one self-contained HTML file for a study's output folder.

Sections: the ranking (configurations over their seeds: "±" only where there are two or more),
every trial, for each grid parameter the metric's marginal mean per value (the seeds' spread
drawn apart from it), a heatmap for every pair of grid parameters, the metric against each
randomly drawn parameter, every trial's curves in a style of its own, the best configuration
with the command that reruns it, and timing.
"""

from __future__ import annotations

import html
import json
import os
import shlex
from pathlib import Path

from mnistlab._io import write_text_atomic
from mnistlab.errors import DataError
from mnistlab.experiments.config import relevant_keys, resolve_config
from mnistlab.experiments.run_folder import read_history, read_json
from mnistlab.experiments.study import Study, format_value, load_study
from mnistlab.models.params import option_flag
from mnistlab.reports import sweep_plots
from mnistlab.reports.fitted_table import fitted_table
from mnistlab.reports.html import EMBEDDED, nav, page, section, table
from mnistlab.reports.sweep_summaries import (
    configurations,
    marginals,
    pair_means,
    seeds_text,
    with_spread,
)

SECTIONS = ("ranking", "trials", "parameters", "pairs", "draws", "curves", "best", "timing")


def rerun_command(config_path: Path, params: dict, base: dict) -> tuple[str, str | None]:
    """The exact rerun (--config) and, where every value has a flag, the same with options."""
    exact = f"mnistlab train --config {shlex.quote(str(config_path))}"
    options = {**base, **params}
    # train refuses options its model does not use (a base's epochs for a knn trial)
    relevant = relevant_keys(resolve_config(options, style="key")["model"])
    parts = ["mnistlab", "train"]
    for key, value in options.items():
        if key not in relevant:
            continue
        flag = option_flag(key)
        if value is None:
            continue
        if isinstance(value, bool):
            if not value:
                return exact, None  # no --no-batchnorm: only --config says it
            parts.append(flag)
        elif isinstance(value, list) and all(isinstance(v, int) for v in value):
            parts += [flag, ",".join(str(v) for v in value)]
        elif isinstance(value, (int, float, str)):
            parts += [flag, str(value)]
        else:
            return exact, None  # per-layer initializers and the like
    return exact, " ".join(shlex.quote(p) for p in parts)


def build_sweep_report(out: str | os.PathLike, study: Study | None = None) -> Path:
    """Write OUT/report.html from OUT/sweep.json, the trials' histories and OUT/study.toml.

    `build_sweep_report(out, study)` is the report hook `experiments.sweep.run_sweep` takes."""
    out = Path(out)
    summary = read_json(out / "sweep.json")
    if study is None:
        study = load_study(out / "study.toml")
    metric, goal = summary["metric"], summary["goal"]
    trials = summary["trials"]
    varied = [k for k in summary["varied"] if k != "seed"]
    configs = configurations(trials, metric, goal)
    finished = [t for t in trials if t["status"] == "finished"]
    grid = [k for k in study.grid if k != "seed"]
    drawn = [k for k in study.random if k != "seed"]
    parts = {
        "ranking": ("Ranking", _ranking(configs, varied, metric)),
        "trials": ("Every trial", _trial_table(trials, metric, goal)),
        "parameters": ("Each varied parameter", _parameter_charts(configs, study, varied)),
        "pairs": ("Pairs of parameters", _heatmaps(configs, study, grid) if len(grid) > 1 else ""),
        "draws": ("The metric against each drawn parameter", _scatter(configs, study, drawn)),
        "curves": ("Curves of all trials", _curves(finished)),
        "best": ("Best configuration", _best(configs, study)),
        "timing": ("Timing", _timing(trials, summary)),
    }
    shown = [key for key in SECTIONS if parts[key][1]]
    body = [_head(summary, trials, finished, shown)]
    body += [section(key, *parts[key]) for key in shown]
    path = out / "report.html"
    write_text_atomic(path, page(f"mnistlab sweep: {summary['study']}", "\n".join(body)))
    return path


def _head(summary: dict, trials: list[dict], finished: list[dict], shown: list[str]) -> str:
    """The title, the study's description, one line on the sweep, the links to the sections."""
    metric, goal = summary["metric"], summary["goal"]
    failed = len(trials) - len(finished)
    return (
        f"<h1>mnistlab sweep: {html.escape(summary['study'])}</h1>"
        + (f"<p>{html.escape(summary['description'])}</p>" if summary.get("description") else "")
        + "<p>"
        + html.escape(
            f"{len(trials)} trials: {len(finished)} finished, {failed} failed or not run; "
            f"ranked by {metric} ({'higher' if goal == 'max' else 'lower'} is better); "
            f"executor {summary['executor']}"
            + (f" with {summary['workers']} workers" if summary.get("workers") else "")
            + (f" at {summary['scheduler']}" if summary.get("scheduler") else "")
            + f"; wall time {summary.get('wall_seconds', 0.0):.1f} s."
        )
        + "</p>"
        + nav(shown)
    )


def _ranking(configs: list[dict], varied: list[str], metric: str) -> str:
    """One row per configuration, best first: its varied values and the metric over its seeds
    ("±" the standard deviation only where there are two seeds or more)."""
    if not configs:
        return "<p>No trial finished.</p>"
    rows = [
        [
            rank,
            *[format_value(c["params"].get(k)) for k in varied],
            with_spread(c["mean"], c["std"], c["n"]),
            seeds_text(c["n"]),
            c["test_accuracy"],
            c["train_seconds"],
        ]
        for rank, c in enumerate(configs, 1)
    ]
    repeated = any(c["n"] > 1 for c in configs)
    header = [
        "rank",
        *varied,
        f"{metric} (mean ± std over seeds)" if repeated else metric,
        "seeds",
        "test_accuracy",
        "train_seconds",
    ]
    return fitted_table(rows, header=header)


def _trial_table(trials: list[dict], metric: str, goal: str) -> str:
    """Every trial, best first, with its status, metrics, timing and error."""
    shown = [metric] + [k for k in ("test_accuracy", "val_accuracy") if k != metric]
    rows = []
    for t in sorted(trials, key=lambda t: _sort_key(t, metric, goal)):
        m = t.get("metrics") or {}
        rows.append(
            [
                t["label"],
                t["status"],
                *[m.get(k) for k in shown],
                m.get("epochs_run"),
                m.get("train_seconds"),
                t.get("seconds"),
                t.get("error") or "",
            ]
        )
    header = ["trial", "status", *shown, "epochs", "train_seconds", "wall_seconds", "error"]
    return fitted_table(rows, header=header) + (
        "<p>Each trial's run folder is <code>trials/&lt;trial&gt;</code> beside this report; "
        "<code>mnistlab report</code> on it writes that trial's own report.</p>"
    )


def _sort_key(trial, metric, goal):
    value = (trial.get("metrics") or {}).get(metric)
    if value is None:
        return (1, 0.0)
    return (0, -value if goal == "max" else value)


def _parameter_charts(configs: list[dict], study: Study, varied: list[str]) -> str:
    """For each grid parameter, the metric's marginal mean per value (over the other varied
    parameters), with each seed's own mean beside it: whether a value is better by more than
    the seeds' spread."""
    if not varied:
        return "<p>The study varies only the seed.</p>"
    if not configs:
        return "<p>No trial finished.</p>"
    parts = []
    for key in [k for k in study.grid if k != "seed"]:
        rows = marginals(configs, key, study.metric, order=study.grid[key])
        others = [k for k in varied if k != key]
        fig = sweep_plots.marginal_chart(key, rows, study.metric, others)
        parts.append(EMBEDDED.embed(fig, f"{study.metric} by {key}"))
    if study.random:
        parts.append(
            "<p>The randomly drawn parameters take a new value in every draw: see "
            '<a href="#draws">the metric against each drawn parameter</a>.</p>'
        )
    return "\n".join(parts)


def _heatmaps(configs: list[dict], study: Study, grid: list[str]) -> str:
    """A heatmap of the metric for every pair of grid parameters."""
    if not configs:
        return "<p>No trial finished.</p>"
    parts = []
    for i, first in enumerate(grid):
        for second in grid[i + 1 :]:
            orders = (study.grid[first], study.grid[second])
            means, counts = pair_means(configs, (first, second), orders)
            labels = [[format_value(v) for v in order] for order in orders]
            fig = sweep_plots.pair_heatmap(
                (first, second), labels, means, counts, study.metric, study.goal
            )
            parts.append(EMBEDDED.embed(fig, f"{study.metric} by {first} and {second}"))
    others = len(grid) > 2 or study.random or False
    caption = "Each cell: the mean over seeds of its configuration"
    if others:
        caption = "Each cell: the marginal mean over the other varied parameters"
    return "\n".join(parts) + f"<p>{caption}; the best cell outlined in red.</p>"


def _scatter(configs: list[dict], study: Study, drawn: list[str]) -> str:
    """For a random search, every trial's metric against each drawn parameter."""
    if not drawn or not configs:
        return ""
    trials = [t for c in configs for t in c["trials"]]
    values = [t["metrics"][study.metric] for t in trials]
    pick = max if study.goal == "max" else min
    best = values.index(pick(values))
    panels = [
        {
            "key": key,
            "values": [t["params"].get(key) for t in trials],
            "metric": values,
            "seeds": [t["params"].get("seed") for t in trials],
            "log": isinstance(study.random[key], dict) and "log_uniform" in study.random[key],
            "best": best,
        }
        for key in drawn
    ]
    fig = sweep_plots.parameter_scatter(panels, study.metric)
    return EMBEDDED.embed(fig, f"{study.metric} against each drawn parameter") + (
        "<p>One point per trial; the best trial circled in red. A parameter drawn "
        "log-uniformly has a log axis.</p>"
    )


def _curves(finished: list[dict]) -> str:
    """Every trial's loss and accuracy per epoch: validation where every trial has it."""
    curves = []
    for t in finished:
        try:
            history = read_history(Path(t["run_dir"]))
        except DataError:
            continue
        if history:
            group = json.dumps({k: v for k, v in t["params"].items() if k != "seed"})
            curves.append((t["label"], group, history))
    if not curves:
        return "<p>No trial recorded a per-epoch history (classical models fit in one go).</p>"
    prefix = "val_" if all("val_loss" in c[2][0] for c in curves) else ""
    fig = sweep_plots.trial_curves(curves, prefix)
    kind = "validation" if prefix else "training (not every trial held out a validation split)"
    return EMBEDDED.embed(fig, "curves of all trials") + (
        f"<p>{html.escape(kind.capitalize())} curves. One colour and marker per configuration, "
        "one line style per seed: every trial has a style of its own.</p>"
    )


def _best(configs: list[dict], study: Study) -> str:
    """The best configuration, its best trial, the commands that rerun it, its configuration."""
    if not configs:
        return "<p>No trial finished.</p>"
    best = configs[0]
    pick = max if study.goal == "max" else min
    trial = pick(best["trials"], key=lambda t: t["metrics"][study.metric])
    config_path = Path(trial["run_dir"]) / "config.json"
    config = read_json(config_path)
    exact, flags = rerun_command(config_path, trial["params"], study.base)
    what = ", ".join(f"{k}={format_value(v)}" for k, v in best["params"].items())
    text = (
        f"<p>{html.escape(what or 'the base configuration')}: "
        f"{study.metric} {with_spread(best['mean'], best['std'], best['n'])} "
        f"({seeds_text(best['n'])}); its best trial is {html.escape(trial['label'])}.</p>"
        f"<p>Rerun it exactly:</p><pre>{html.escape(exact)}</pre>"
    )
    if flags:
        text += f"<p>or with options:</p><pre>{html.escape(flags)}</pre>"
    text += f"<p>Its configuration:</p><pre>{html.escape(json.dumps(config, indent=2))}</pre>"
    return text


def _timing(trials: list[dict], summary: dict) -> str:
    """Wall time, worker time and the trials running at once; the sessions (a rerun of the
    study adds one); a bar per trial of its seconds."""
    rows = [t for t in trials if t.get("seconds") is not None]
    total = sum(t["seconds"] for t in rows)
    wall = summary.get("wall_seconds") or 0.0
    sessions = summary.get("sessions") or []
    text = f"<p>Wall time {wall:.1f} s"
    if len(sessions) > 1:
        text += f" over {len(sessions)} sessions (a rerun skips finished trials)"
    text += f"; the trials took {total:.1f} s of worker time in all"
    if wall > 0:
        text += f", {total / wall:.2f} trials running at once on average"
    text += ".</p>"
    if len(sessions) > 1:
        text += _sessions_table(sessions)
    if rows:
        fig = sweep_plots.seconds_per_trial(
            [t["label"] for t in rows], [t["seconds"] for t in rows]
        )
        text += EMBEDDED.embed(fig, "seconds per trial")
    return text


def _sessions_table(sessions: list[dict]) -> str:
    keys = ("started", "executor", "workers", "trials_run", "wall_seconds", "status")
    header = ["session started", "executor", "workers", "trials run", "wall_seconds", "status"]
    return table([[s.get(k) for k in keys] for s in sessions], header=header)


__all__ = ["build_sweep_report", "configurations", "rerun_command"]

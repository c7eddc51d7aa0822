"""The sweep report: one self-contained HTML file for a study's output folder.

Sections: the ranking (configurations averaged over seeds), every trial, for each varied parameter
a bar chart of the metric with error bars over seeds, the validation curves of all trials
overlaid, the best configuration with the command that reruns it, and timing.
"""

from __future__ import annotations

import html
import json
import os
import shlex
from pathlib import Path

import numpy as np

from mnistlab._io import write_text_atomic
from mnistlab.errors import DataError
from mnistlab.experiments.config import relevant_keys, resolve_config
from mnistlab.experiments.run_folder import read_history, read_json
from mnistlab.experiments.study import Study, format_value, load_study
from mnistlab.models.params import option_flag
from mnistlab.reports import plots
from mnistlab.reports.html import EMBEDDED, nav, page, section, table

SECTIONS = ("ranking", "trials", "parameters", "curves", "best", "timing")


def _mean_std(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0


def configurations(trials: list[dict], metric: str, goal: str) -> list[dict]:
    """Finished trials grouped by their parameters other than the seed, best first."""
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
        mean, std = _mean_std(values)
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
    body = [
        _head(summary, trials, finished),
        section("ranking", "Ranking", _ranking(configs, varied, metric)),
        section("trials", "Every trial", _trial_table(trials, metric, goal)),
        section("parameters", "Each varied parameter", _parameter_charts(finished, varied, metric)),
        section("curves", "Validation curves of all trials", _curves(finished)),
        section("best", "Best configuration", _best(configs, study)),
        section("timing", "Timing", _timing(trials, summary)),
    ]
    path = out / "report.html"
    write_text_atomic(path, page(f"mnistlab sweep: {summary['study']}", "\n".join(body)))
    return path


def _head(summary: dict, trials: list[dict], finished: list[dict]) -> str:
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
        + nav(SECTIONS)
    )


def _ranking(configs: list[dict], varied: list[str], metric: str) -> str:
    """One row per configuration, best first: its varied values and the metric over seeds."""
    if not configs:
        return "<p>No trial finished.</p>"
    rows = [
        [
            rank,
            *[format_value(c["params"].get(k)) for k in varied],
            f"{c['mean']:.4f} ± {c['std']:.4f}",
            c["n"],
            c["test_accuracy"],
            c["train_seconds"],
        ]
        for rank, c in enumerate(configs, 1)
    ]
    header = [
        "rank",
        *varied,
        f"{metric} (mean ± std over seeds)",
        "seeds",
        "test_accuracy",
        "train_seconds",
    ]
    return table(rows, header=header)


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
    return table(rows, header=header) + (
        "<p>Each trial's run folder is <code>trials/&lt;trial&gt;</code> beside this report; "
        "<code>mnistlab report</code> on it writes that trial's own report.</p>"
    )


def _sort_key(trial, metric, goal):
    value = (trial.get("metrics") or {}).get(metric)
    if value is None:
        return (1, 0.0)
    return (0, -value if goal == "max" else value)


def _parameter_charts(finished: list[dict], varied: list[str], metric: str) -> str:
    """For each varied parameter, horizontal bars of the metric's mean per value with error
    bars over seeds: whether a value is better by more than the seeds' own spread."""
    if not varied:
        return "<p>The study varies only the seed.</p>"
    if not finished:
        return "<p>No trial finished.</p>"
    parts = []
    for key in varied:
        by_value = _by_value_and_seed(finished, key, metric)
        if by_value:
            parts.append(
                EMBEDDED.embed(_parameter_chart(key, by_value, metric), f"{metric} by {key}")
            )
    return "\n".join(parts)


def _by_value_and_seed(finished: list[dict], key: str, metric: str) -> dict[str, dict]:
    """{value of `key` as shown: {seed: [the metric of each trial]}}, values in trial order."""
    by_value: dict[str, dict[int | None, list[float]]] = {}
    for t in finished:
        if metric not in t["metrics"] or key not in t["params"]:
            continue
        seeds = by_value.setdefault(format_value(t["params"][key]), {})
        seeds.setdefault(t["params"].get("seed"), []).append(t["metrics"][metric])
    return by_value


def _parameter_chart(key: str, by_value: dict[str, dict], metric: str):
    order = list(by_value)
    # per seed, the mean over everything else varied; then mean and spread over seeds
    stats = [_mean_std([float(np.mean(v)) for v in by_value[label].values()]) for label in order]
    fig = plots.figure((7, 0.6 + 0.45 * len(order)))
    ax = fig.subplots()
    means = [s[0] for s in stats]
    ax.barh(
        range(len(order)),
        means,
        xerr=[s[1] for s in stats],
        color="#4c72b0",
        capsize=4,
        alpha=0.85,
    )
    ax.set_yticks(range(len(order)), [f"{key}={label}" for label in order])
    ax.invert_yaxis()
    lo, hi = min(means), max(means)
    pad = max((hi - lo) * 0.5, 0.005)
    ax.set_xlim(max(0.0, lo - pad) if "accuracy" in metric else lo - pad, hi + pad)
    for i, (mean, std) in enumerate(stats):
        ax.text(mean, i, f" {mean:.4f}" + (f" ± {std:.4f}" if std else ""), va="center", fontsize=8)
    ax.set_xlabel(f"{metric} (mean over seeds; error bar: standard deviation)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def _curves(finished: list[dict]) -> str:
    fig = plots.figure((11, 4.2))
    ax_loss, ax_acc = fig.subplots(1, 2)
    drawn = 0
    kind = "validation"
    for t in finished:
        try:
            history = read_history(Path(t["run_dir"]))
        except DataError:
            continue
        if not history:
            continue
        prefix = "val_" if "val_accuracy" in history[0] else ""
        if not prefix:
            kind = "validation where recorded, else training"
        epochs = [h["epoch"] for h in history]
        ax_loss.plot(epochs, [h[f"{prefix}loss"] for h in history], lw=1.2, label=t["label"])
        ax_acc.plot(epochs, [h[f"{prefix}accuracy"] for h in history], lw=1.2, label=t["label"])
        drawn += 1
    if not drawn:
        return "<p>No trial recorded a per-epoch history (classical models fit in one go).</p>"
    for ax, label in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{label} ({kind})")
        ax.grid(alpha=0.3)
    ax_acc.legend(fontsize=7, loc="lower right", ncol=2 if drawn > 8 else 1)
    fig.tight_layout()
    return EMBEDDED.embed(fig, "validation curves of all trials")


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
        f"{study.metric} {best['mean']:.4f} ± {best['std']:.4f} over {best['n']} "
        f"seed{'s' if best['n'] != 1 else ''}; its best trial is {html.escape(trial['label'])}.</p>"
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
        text += EMBEDDED.embed(_seconds_per_trial(rows), "seconds per trial")
    return text


def _sessions_table(sessions: list[dict]) -> str:
    keys = ("started", "executor", "workers", "trials_run", "wall_seconds", "status")
    header = ["session started", "executor", "workers", "trials run", "wall_seconds", "status"]
    return table([[s.get(k) for k in keys] for s in sessions], header=header)


def _seconds_per_trial(rows: list[dict]):
    fig = plots.figure((7, 0.6 + 0.3 * len(rows)))
    ax = fig.subplots()
    ax.barh(range(len(rows)), [t["seconds"] for t in rows], color="#55a868")
    ax.set_yticks(range(len(rows)), [t["label"] for t in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("seconds per trial (loading, training and evaluation)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


__all__ = ["build_sweep_report", "configurations", "rerun_command"]

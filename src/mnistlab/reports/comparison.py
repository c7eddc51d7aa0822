"""The comparison of several runs: one self-contained HTML page with the runs as columns.

Sections: the metrics (each row's best in bold), bars of test accuracy and training time, the
settings whose effective values differ (the ones alike in every run folded away), and the
training and validation curves of every run that has them, with a line naming the runs that
have none. Runs are columns, as in `mnistlab runs compare`, so that two to six runs fit a
1280 px page however many settings differ.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path

from mnistlab._io import write_text_atomic
from mnistlab.experiments.config import DEFAULTS
from mnistlab.experiments.run_folder import read_history, read_json
from mnistlab.reports import comparison_plots
from mnistlab.reports.effective_config import NOT_APPLICABLE, effective_config, same_value
from mnistlab.reports.fitted_table import Markup, fitted_table, render
from mnistlab.reports.html import EMBEDDED, cell, nav, page, section
from mnistlab.reports.line_styles import color

SECTIONS = ("metrics", "bars", "settings", "curves")

#: the metric rows, in order: key, how a value is shown, which way is better
METRICS = (
    ("test_accuracy", "{:.2%}", "max"),
    ("test_errors", "{:d}", "min"),
    ("test_loss", "{:.4f}", "min"),
    ("val_accuracy", "{:.2%}", "max"),
    ("val_loss", "{:.4f}", "min"),
    ("train_accuracy", "{:.2%}", "max"),
    ("train_loss", "{:.4f}", "min"),
    ("epochs_run", "{:d}", None),
    ("train_seconds", "{:.3g} s", "min"),
)


@dataclass
class Run:
    """One run folder as the comparison reads it."""

    folder: Path
    name: str
    config: dict
    effective: dict
    metrics: dict
    history: list[dict]
    color: tuple


def load_runs(run_dirs: list[str | os.PathLike]) -> list[Run]:
    """Each run folder's configuration (and its effective values), metrics and history."""
    folders = [Path(r) for r in run_dirs]
    names = _short_names(folders)
    runs = []
    for index, (folder, name) in enumerate(zip(folders, names, strict=True)):
        config = read_json(folder / "config.json")
        runs.append(
            Run(
                folder=folder,
                name=name,
                config=config,
                effective=effective_config(config),
                metrics=read_json(folder / "metrics.json"),
                history=read_history(folder),
                color=color(index, len(folders)),
            )
        )
    return runs


def _short_names(folders: list[Path]) -> list[str]:
    """The folders' names, with their parents' where two names are alike."""
    names = [f.name or str(f) for f in folders]
    if len(set(names)) == len(names):
        return names
    return [
        str(Path(f.parent.name) / f.name) if names.count(f.name) > 1 else f.name for f in folders
    ]


def build_comparison(run_dirs: list[str | os.PathLike], out: str | os.PathLike) -> Path:
    """Write the comparison of `run_dirs` to `out` (an .html file) and return its path."""
    runs = load_runs(run_dirs)
    body = (
        "<h1>mnistlab: comparison of runs</h1>"
        + _introduction(runs)
        + nav(SECTIONS)
        + section("metrics", "Metrics", metrics_table(runs))
        + section("bars", "Test accuracy and training time", _bars(runs))
        + section("settings", "Settings that differ", settings_tables(runs))
        + section("curves", "Training and validation curves", _curves(runs))
    )
    out = Path(out)
    write_text_atomic(out, page("mnistlab: comparison", body))
    return out


def _introduction(runs: list[Run]) -> str:
    """Which folders the columns are, in order."""
    items = "".join(
        f"<li><strong>{html.escape(r.name)}</strong>: <code>{html.escape(str(r.folder))}</code> "
        f"({html.escape(str(r.config.get('model', '?')))} on "
        f"{html.escape(str(r.config.get('dataset', '?')))})</li>"
        for r in runs
    )
    return f"<p>{len(runs)} runs, one column each:</p><ol>{items}</ol>"


def metrics_table(runs: list[Run]) -> str:
    """One row per metric that some run recorded, one column per run; a row's best in bold
    (where the runs differ)."""
    rows = []
    for key, form, goal in METRICS:
        values = [r.metrics.get(key) for r in runs]
        if all(v is None for v in values):
            continue
        known = [v for v in values if v is not None]
        best = None
        if goal and len(known) > 1 and len(set(known)) > 1:
            best = max(known) if goal == "max" else min(known)
        shown = []
        for run, value in zip(runs, values, strict=True):
            text = NOT_APPLICABLE if value is None else form.format(value)
            if key == "test_errors" and value is not None and run.metrics.get("n_test"):
                text += f" of {run.metrics['n_test']}"
            escaped = html.escape(text)
            is_best = best is not None and value == best
            shown.append(Markup(f"<strong>{escaped}</strong>" if is_best else escaped))
        rows.append([key, *shown])
    return fitted_table(rows, header=["metric", *[r.name for r in runs]], row_headers=True) + (
        "<p>In bold: the best value of a row. val_ metrics are those of the last epoch on the "
        "validation split (a run without one has none).</p>"
    )


def settings_tables(runs: list[Run]) -> str:
    """The settings whose effective values differ, one row each; those alike in every run
    folded below. A blank setting counts as the value the run applied (Adam's beta1 0.9)."""
    keys = list(DEFAULTS) + sorted({k for r in runs for k in r.config} - set(DEFAULTS))
    differ, alike = [], []
    for key in keys:
        values = [r.effective.get(key, r.config.get(key)) for r in runs]
        if all(v == NOT_APPLICABLE for v in values):
            continue
        if all(same_value(v, values[0]) for v in values[1:]):
            alike.append([key, _setting_text(values[0])])
        else:
            differ.append([key, *[_setting_text(v) for v in values]])
    # the settings every run has first: those where runs of one model differ
    differ.sort(key=lambda row: NOT_APPLICABLE in row[1:])
    header = ["setting", *[r.name for r in runs]]
    text = (
        fitted_table(differ, header=header, row_headers=True)
        if differ
        else "<p>Every setting has the same effective value in all the runs.</p>"
    )
    text += (
        "<p>Effective values: a setting left blank shows what the run applied (the optimizer's "
        f"or the layers' default); {NOT_APPLICABLE} marks a setting that does not apply to that "
        "run's model or optimizer.</p>"
    )
    if alike:
        text += (
            f"<details><summary>The {len(alike)} settings alike in every run</summary>"
            + fitted_table(alike, header=["setting", "value"], row_headers=True)
            + "</details>"
        )
    return text


def _setting_text(value) -> str:
    """None as "none", booleans in lower case (as config.json writes them), else as a cell."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return cell(value)


def _bars(runs: list[Run]) -> str:
    fig = comparison_plots.metric_bars(
        [r.name for r in runs],
        [r.color for r in runs],
        [r.metrics.get("test_accuracy") for r in runs],
        [r.metrics.get("train_seconds") for r in runs],
    )
    return EMBEDDED.embed(fig, "test accuracy and training time per run")


def _curves(runs: list[Run]) -> str:
    """The curves of the runs with a history, and one line naming those without."""
    drawn = [r for r in runs if r.history]
    text = ""
    if drawn:
        fig = comparison_plots.overlaid_curves([(r.name, r.color, r.history) for r in drawn])
        text += EMBEDDED.embed(fig, "training and validation curves per run")
        if not any("val_loss" in r.history[0] for r in drawn):
            text += (
                "<p>No run held out a validation split: the curves are training curves "
                "(<code>--validation</code> holds one out).</p>"
            )
    missing = [r for r in runs if not r.history]
    if missing:
        text += (
            '<p id="no-curves"><strong>No curves</strong> for '
            + "; ".join(
                render(f"{r.name} ({r.config.get('model', '?')}: {_why_no_history(r)})")
                for r in missing
            )
            + ".</p>"
        )
    return text


def _why_no_history(run: Run) -> str:
    if run.metrics.get("epochs_run") is None:
        return "fitted in one pass, not epoch by epoch"
    return "its folder holds no history.csv"


__all__ = ["METRICS", "build_comparison", "load_runs", "metrics_table", "settings_tables"]

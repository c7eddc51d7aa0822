"""The comparison of several runs: one self-contained HTML file with a table of the parameters that
differ and the metrics, and the runs' curves overlaid."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mnistlab._io import write_text_atomic
from mnistlab.experiments.run_folder import read_history, read_json
from mnistlab.reports import plots
from mnistlab.reports.html import EMBEDDED, page, section, table

#: the metrics column of each run, after the parameters that differ
METRICS = ("test_accuracy", "test_errors", "test_loss", "train_seconds")


def build_comparison(run_dirs: list[str | os.PathLike], out: str | os.PathLike) -> Path:
    """A table of the parameters that differ and the metrics, and overlaid curves, for runs."""
    run_dirs = [Path(r) for r in run_dirs]
    configs = [read_json(r / "config.json") for r in run_dirs]
    metrics = [read_json(r / "metrics.json") for r in run_dirs]
    keys = sorted({k for c in configs for k in c})
    differing = [k for k in keys if len({json.dumps(c.get(k)) for c in configs}) > 1]
    header = ["run", *differing, *METRICS]
    rows = [
        [r.name, *[c.get(k) for k in differing], *[m.get(k) for k in METRICS]]
        for r, c, m in zip(run_dirs, configs, metrics, strict=True)
    ]
    body = (
        "<h1>mnistlab: comparison of runs</h1>"
        + section("runs", "Runs", table(rows, header=header))
        + section("curves", "Curves", EMBEDDED.embed(_overlaid_curves(run_dirs), "overlaid curves"))
    )
    out = Path(out)
    write_text_atomic(out, page("mnistlab: comparison", body))
    return out


def _overlaid_curves(run_dirs: list[Path]):
    """Loss and accuracy per epoch of every run that has a history, validation where recorded."""
    fig = plots.figure((10, 3.8))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for run in run_dirs:
        history = read_history(run)
        if not history:
            continue
        key = "val_" if "val_loss" in history[0] else ""
        epochs = [h["epoch"] for h in history]
        ax_loss.plot(epochs, [h[f"{key}loss"] for h in history], label=run.name)
        ax_acc.plot(epochs, [h[f"{key}accuracy"] for h in history], label=run.name)
    for ax, label in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{label} (validation where recorded)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig

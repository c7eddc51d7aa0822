"""The figures of the sweep report: every trial's curves, the metric per value of each grid
parameter, a heatmap per pair of grid parameters, the metric against each randomly drawn
parameter, and the seconds per trial.

Legends stand outside the plot area (right of it, or below), where they cover no data; value
labels stand right of the plot area, clear of bars and points; epoch axes tick whole epochs.
"""

from __future__ import annotations

import math

import numpy as np

from mnistlab.reports import plots
from mnistlab.reports.comparison_plots import integer_epochs
from mnistlab.reports.line_styles import MARKERS, color, grouped_styles
from mnistlab.reports.sweep_summaries import Marginal


def trial_curves(curves: list[tuple[str, object, list[dict]]], prefix: str):
    """Loss and accuracy per epoch of every trial, each in its own style: one colour and marker
    per configuration, one dash pattern per seed of it.

    curves: (trial label, its configuration (any hashable), history records) per trial.
    prefix: ``"val_"`` for validation curves, ``""`` for training ones.
    """
    fig = plots.figure((10, 4.0))
    ax_loss, ax_acc = fig.subplots(1, 2)
    styles = grouped_styles([group for _, group, _ in curves])
    for (label, _, history), style in zip(curves, styles, strict=True):
        epochs = [h["epoch"] for h in history]
        for ax, key in ((ax_loss, "loss"), (ax_acc, "accuracy")):
            values = [h.get(f"{prefix}{key}") for h in history]
            ax.plot(epochs, values, lw=1.3, label=label, **style.kwargs(len(epochs)))
    kind = "validation" if prefix else "training"
    for ax, key in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{kind} {key}")
        ax.grid(alpha=0.3)
        integer_epochs(ax)
    fig.tight_layout()
    # right of both panels: the saved image grows to hold it (bbox_inches="tight")
    fig.legend(
        *ax_acc.get_legend_handles_labels(),
        loc="upper left",
        bbox_to_anchor=(1.0, 0.98),
        ncol=1 + len(curves) // 22,
        fontsize=7,
        frameon=False,
    )
    return fig


def marginal_chart(key: str, rows: list[Marginal], metric: str, others: list[str]):
    """The metric's marginal mean per value of `key` (a diamond); with two or more seeds, each
    seed's own mean as a smaller point on the same row (their spread is the seeds'); the
    values written right of the plot area.

    A dot rather than a bar: the axis is zoomed on the values, where a bar's length would
    exaggerate their differences. others: the other varied parameters the means average over.
    """
    fig = plots.figure((8, 1.6 + 0.42 * len(rows)))
    ax = fig.subplots()
    positions = np.arange(len(rows))
    means = [r.mean for r in rows]
    seeds = sorted({s for r in rows for s in r.per_seed}, key=str)
    many_seeds = len(seeds) > 1
    if many_seeds:
        offsets = np.linspace(-0.2, 0.2, len(seeds))
        for index, seed in enumerate(seeds):
            points = [(r.per_seed[seed], y) for y, r in enumerate(rows) if seed in r.per_seed]
            ax.scatter(
                [p[0] for p in points],
                [p[1] + offsets[index] for p in points],
                s=16,
                marker=MARKERS[(index + 1) % len(MARKERS)],
                color=color(index + 1, len(seeds) + 1),
                zorder=3,
                label=f"seed {seed}",
            )
    ax.scatter(means, positions, s=60, marker="D", color=color(0, 1), zorder=4,
               label="marginal mean")  # fmt: skip
    shown = means + [v for r in rows for v in r.per_seed.values()]
    low, high = min(shown), max(shown)
    pad = max((high - low) * 0.12, 0.002)
    ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_yticks(positions, [f"{key}={r.label}" for r in rows])
    for y, row in zip(positions, rows, strict=True):
        # outside the plot area, right of it: clear of every point
        n = row.configurations
        ax.text(1.01, y, f"{row.mean:.4f}  ({n} config{'s' if n > 1 else ''})",
                transform=ax.get_yaxis_transform(), va="center", fontsize=8)  # fmt: skip
    ax.set_title(f"{metric} by {key}: {_averaged_over(others, rows)}", fontsize=10, loc="left")
    ax.set_xlabel(
        metric
        + (
            "; small points: the same mean on each seed's trials alone (the seeds' spread)"
            if many_seeds
            else "; 1 seed: no spread over seeds to show"
        )
    )
    ax.grid(alpha=0.3)
    fig.tight_layout()
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.32), ncol=len(seeds) + 1, fontsize=8)
    return fig


def _averaged_over(others: list[str], rows: list[Marginal]) -> str:
    counts = sorted({r.configurations for r in rows})
    n = str(counts[0]) if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"
    if not others:
        return f"mean over seeds ({n} configuration per value)"
    return f"marginal mean over the other varied parameters ({n} configurations per value)"


def pair_heatmap(keys: tuple[str, str], labels, means: np.ndarray, counts, metric: str, goal):
    """The metric's marginal mean for every pair of values of two parameters, each cell
    annotated; the best cell outlined."""
    rows, columns = means.shape
    fig = plots.figure((1.6 + 1.05 * columns, 1.3 + 0.55 * rows))
    ax = fig.subplots()
    cmap = plots.colormap("viridis" if goal == "max" else "viridis_r")
    image = ax.imshow(means, cmap=cmap, aspect="auto")
    finite = means[np.isfinite(means)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for i in range(rows):
        for j in range(columns):
            if not counts[i, j]:
                ax.text(j, i, "—", ha="center", va="center", fontsize=8)
                continue
            bright = (means[i, j] > middle) == (goal == "max")
            ax.text(j, i, f"{means[i, j]:.4f}", ha="center", va="center", fontsize=8,
                    color="black" if bright else "white")  # fmt: skip
    if finite.size:
        pick = np.nanargmax if goal == "max" else np.nanargmin
        i, j = np.unravel_index(pick(means), means.shape)
        ax.add_patch(_outline(j, i))
    ax.set_xticks(range(columns), labels[1], rotation=30 if columns > 5 else 0)
    ax.set_yticks(range(rows), labels[0])
    ax.set_xlabel(keys[1])
    ax.set_ylabel(keys[0])
    ax.set_title(f"{metric} by {keys[0]} and {keys[1]}", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.05)
    fig.tight_layout()
    return fig


def _outline(x: float, y: float):
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2)


def parameter_scatter(panels: list[dict], metric: str):
    """The metric of every trial against each drawn parameter, one panel each.

    panels: {"key", "values" (one per trial), "metric" (one per trial), "seeds" (one per trial),
    "log" (a log-uniform draw: log x axis), "best" (index of the best trial)}. Values that are
    not numbers (choices of names) stand at evenly spaced positions.
    """
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig = plots.figure((3.6 * columns + 0.6, 3.0 * rows + 0.4))
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    seeds = sorted({s for p in panels for s in p["seeds"]}, key=str)
    for ax, panel in zip(axes, panels, strict=False):
        _scatter_panel(ax, panel, seeds, metric)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    fig.tight_layout()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 0.98), fontsize=8)
    return fig


def _scatter_panel(ax, panel: dict, seeds: list, metric: str) -> None:
    values = panel["values"]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric:
        xs = [float(v) for v in values]
    else:
        names = list(dict.fromkeys(str(v) for v in values))
        xs = [names.index(str(v)) for v in values]
        ax.set_xticks(range(len(names)), names, rotation=30 if len(names) > 3 else 0)
    for index, seed in enumerate(seeds):
        chosen = [i for i, s in enumerate(panel["seeds"]) if s == seed]
        ax.scatter(
            [xs[i] for i in chosen],
            [panel["metric"][i] for i in chosen],
            s=22,
            marker=MARKERS[index % len(MARKERS)],
            color=color(index, len(seeds)),
            alpha=0.85,
            label="trials" if seed is None else f"seed {seed}",
        )
    best = panel["best"]
    ax.scatter([xs[best]], [panel["metric"][best]], s=160, facecolor="none", edgecolor="red",
               linewidth=1.5, label="best trial")  # fmt: skip
    if panel["log"]:
        ax.set_xscale("log")
    ax.set_xlabel(panel["key"] + (" (log scale)" if panel["log"] else ""))
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)


def seconds_per_trial(labels: list[str], seconds: list[float]):
    """Horizontal bars of each trial's seconds (loading, training and evaluation)."""
    fig = plots.figure((7, 0.6 + 0.3 * len(labels)))
    ax = fig.subplots()
    ax.barh(range(len(labels)), seconds, color="#55a868")
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("seconds per trial (loading, training and evaluation)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


__all__ = [
    "marginal_chart",
    "pair_heatmap",
    "parameter_scatter",
    "seconds_per_trial",
    "trial_curves",
]

"""The figures of a comparison of runs: the main metrics as bars, and every run's curves.

Each run keeps one colour in every figure; in the curves, training is solid and validation
dashed. The legends stand below the plots, where they cover no curve.
"""

from __future__ import annotations

from mnistlab.reports import plots

#: how the two kinds of curve are drawn, whatever the run
TRAIN_STYLE = "-"
VALIDATION_STYLE = "--"


def integer_epochs(ax) -> None:
    """Ticks on whole epochs only (no 1.25 or 1.75 on a 3-epoch axis)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def metric_bars(names: list[str], colors: list, accuracy: list, seconds: list):
    """Two panels of horizontal bars, one bar per run: test accuracy (%) and training time (s).

    accuracy, seconds: one value or None per run, in the order of `names`.
    """
    fig = plots.figure((10, 0.9 + 0.42 * len(names)))
    ax_acc, ax_time = fig.subplots(1, 2, sharey=True)
    positions = range(len(names))
    shares = [None if a is None else 100 * a for a in accuracy]
    _bars(ax_acc, positions, shares, colors, "{:.2f}%")
    ax_acc.set_xlim(0, 112)  # room for the labels right of a bar at 100%
    ax_acc.set_xlabel("test accuracy (%)")
    _bars(ax_time, positions, seconds, colors, "{:.3g} s")
    known = [s for s in seconds if s]
    if known and max(known) / min(known) > 30:
        # a k-NN's milliseconds beside an MLP's minutes: only a log axis shows both
        ax_time.set_xscale("log")
        ax_time.set_xlim(min(known) / 2, max(known) * 8)
        ax_time.set_xlabel("training time (s, log scale)")
    else:
        ax_time.set_xlim(0, max(known, default=1.0) * 1.3)
        ax_time.set_xlabel("training time (s)")
    ax_acc.set_yticks(list(positions), names)
    ax_acc.invert_yaxis()
    for ax in (ax_acc, ax_time):
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def _bars(ax, positions, values, colors, label_format: str) -> None:
    """Bars of `values` (None: no bar, the label says "n/a"), each labelled at its end."""
    for y, value, color in zip(positions, values, colors, strict=True):
        if value is None:
            ax.text(0, y, " n/a", va="center", fontsize=8, color="#666")
            continue
        ax.barh(y, value, color=color, height=0.6)
        ax.text(value, y, " " + label_format.format(value), va="center", fontsize=8)


def overlaid_curves(curves: list[tuple[str, tuple, list[dict]]]):
    """Loss and accuracy per epoch of several runs on shared axes: training solid, validation
    dashed (where the run held some out), one colour per run.

    curves: (name, colour, history records) for each run that has a history.
    """
    from matplotlib.lines import Line2D

    fig = plots.figure((10, 4.2))
    ax_loss, ax_acc = fig.subplots(1, 2)
    any_validation = False
    for _name, color, history in curves:
        epochs = [h["epoch"] for h in history]
        for ax, key in ((ax_loss, "loss"), (ax_acc, "accuracy")):
            ax.plot(epochs, [h[key] for h in history], TRAIN_STYLE, color=color, lw=1.4)
            if any(f"val_{key}" in h for h in history):
                any_validation = True
                values = [h.get(f"val_{key}") for h in history]
                ax.plot(epochs, values, VALIDATION_STYLE, color=color, lw=1.4)
    for ax, label in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        integer_epochs(ax)
    handles = [Line2D([], [], color=color, lw=2.5, label=name) for name, color, _ in curves]
    handles.append(Line2D([], [], color="#333", ls=TRAIN_STYLE, label="training"))
    if any_validation:
        handles.append(Line2D([], [], color="#333", ls=VALIDATION_STYLE, label="validation"))
    fig.tight_layout()
    # under the figure's box: the saved image grows to hold it (bbox_inches="tight")
    fig.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=min(6, len(handles)),
        fontsize=8,
        frameon=False,
    )
    return fig


__all__ = ["integer_epochs", "metric_bars", "overlaid_curves"]

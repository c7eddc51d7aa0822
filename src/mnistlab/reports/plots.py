"""The figures of mnistlab's reports and commands, as matplotlib Figure objects.

Every function returns a ``matplotlib.figure.Figure`` made without pyplot: no backend is chosen
or changed, no figure is registered with pyplot (nothing to close, nothing shown twice), and
the figure is drawn with Agg when it is saved. In a notebook a figure that ends a cell is shown
inline; ``save_figure`` writes one as PNG or SVG (by the file's suffix). matplotlib is imported
on first use.
"""

from __future__ import annotations

import functools
import io
import math
import os
from pathlib import Path

import numpy as np

from mnistlab._io import atomic_path


def figure(figsize: tuple[float, float]):
    """A new, empty Figure of `figsize` inches, independent of pyplot and of its backend.

    Returns
    -------
    NotebookFigure
        A ``matplotlib.figure.Figure`` that a notebook shows inline as PNG.
    """
    return _notebook_figure_class()(figsize=figsize)


@functools.cache
def _notebook_figure_class():
    """NotebookFigure, made on first use so that importing this module imports no matplotlib."""
    from matplotlib.figure import Figure

    class NotebookFigure(Figure):
        """A matplotlib Figure that Jupyter shows inline (as PNG) when it ends a cell.

        IPython shows a plain Figure as an image only once pyplot's inline backend has drawn
        something; this one says how to draw itself, whatever the backend.
        """

        def _repr_png_(self) -> bytes:
            return figure_png_bytes(self)

    NotebookFigure.__module__, NotebookFigure.__qualname__ = __name__, "NotebookFigure"
    return NotebookFigure


def __getattr__(name: str):
    # `plots.NotebookFigure` (and pickle, which finds a class by its module and name)
    if name == "NotebookFigure":
        return _notebook_figure_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def colormap(name: str):
    """The registered matplotlib colormap `name` ("Blues", "gray_r", "tab10", ...)."""
    import matplotlib

    return matplotlib.colormaps[name]


def save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save `fig` atomically to `path`, in the format of its suffix (PNG without one).

    Returns
    -------
    pathlib.Path
        `path`.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    return path


def example_grid(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: tuple[str, ...],
    *,
    per_class: int = 10,
    seed: int = 0,
    title: str = "",
):
    """A figure with one row per class and `per_class` random examples of it."""
    rng = np.random.default_rng(seed)
    tiles: list[np.ndarray | None] = []
    for cls in range(len(class_names)):
        members = np.flatnonzero(labels == cls)
        chosen = rng.choice(members, size=min(per_class, members.size), replace=False)
        tiles += [images[i] for i in chosen] + [None] * (per_class - chosen.size)
    shown = [t for t in tiles if t is not None]
    low = min((float(t.min()) for t in shown), default=0.0)
    high = max((float(t.max()) for t in shown), default=1.0)
    return tile_figure(
        tiles,
        per_class,
        tile_inches=0.7,
        cmap="gray_r",
        limits=(low, high if high > low else low + 1.0),
        row_labels=class_names,
        title=title,
    )


def class_distribution(
    train_counts: np.ndarray, test_counts: np.ndarray, class_names: tuple[str, ...], title: str = ""
):
    """Bars of the share of each class in the training and test splits."""
    positions = np.arange(len(class_names))
    fig = figure((max(6.0, 0.7 * len(class_names)), 4))
    ax = fig.subplots()
    width = 0.4
    train_share = train_counts / max(train_counts.sum(), 1)
    test_share = test_counts / max(test_counts.sum(), 1)
    ax.bar(positions - width / 2, train_share, width, label=f"train (n={int(train_counts.sum())})")
    ax.bar(positions + width / 2, test_share, width, label=f"test (n={int(test_counts.sum())})")
    ax.set_xticks(positions)
    ax.set_xticklabels(class_names, rotation=30, ha="right")
    ax.set_ylabel("share of split")
    ax.set_ylim(0, max(train_share.max(), test_share.max()) * 1.3)
    ax.legend(loc="upper right")
    ax.set_title(title or "class distribution")
    return fig


def learning_curves(records: list[dict], title: str = ""):
    """Loss and accuracy per epoch, train (solid) and validation (dashed, where recorded) on
    shared axes in one colour, and the learning rate per epoch (where recorded)."""
    from matplotlib.ticker import MaxNLocator

    has_rate = any(r.get("learning_rate") is not None for r in records)
    fig = figure((14 if has_rate else 10, 3.8))
    axes = fig.subplots(1, 3 if has_rate else 2)
    epochs = [r["epoch"] for r in records]
    for ax, key, colour in ((axes[0], "loss", "tab:blue"), (axes[1], "accuracy", "tab:green")):
        ax.plot(epochs, _column(records, key), color=colour, marker="o", ms=3, label="train")
        if any(f"val_{key}" in r for r in records):
            ax.plot(
                epochs,
                _column(records, f"val_{key}"),
                color=colour,
                linestyle="--",
                marker="o",
                ms=3,
                markerfacecolor="white",
                label="validation",
            )
        ax.set_ylabel(key)
        ax.set_title(f"{key}: train and validation" if len(ax.lines) > 1 else f"train {key}")
        ax.legend()
    if has_rate:
        axes[2].plot(
            epochs, _column(records, "learning_rate"), color="tab:purple", marker="o", ms=3
        )
        axes[2].set_ylabel("learning rate")
        axes[2].set_title("learning rate per epoch")
        axes[2].ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.25
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _column(records: list[dict], key: str) -> np.ndarray:
    """records' values of `key` as floats, NaN (a gap in the line) where one is missing."""
    return np.array([np.nan if r.get(key) is None else r[key] for r in records], dtype=float)


def confusion_heatmap(matrix: np.ndarray, class_names, title: str = "confusion matrix"):
    """Counts per (true, predicted) pair, with the numbers written in the cells."""
    matrix = np.asarray(matrix)
    n = matrix.shape[0]
    fig = figure((0.62 * n + 2.5, 0.55 * n + 2))
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="Blues")
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                str(matrix[i, j]),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if matrix[i, j] > threshold else "black",
            )
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(class_names, rotation=45, ha="right")
    ax.set_yticklabels(class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def per_class_accuracy(matrix: np.ndarray, class_names, title: str = "accuracy per class"):
    """Horizontal bars of each class's share of correct predictions (its recall)."""
    matrix = np.asarray(matrix)
    support = matrix.sum(axis=1)
    shares = np.divide(np.diag(matrix), support, out=np.zeros(len(support)), where=support > 0)
    fig = figure((7, 0.35 * len(class_names) + 1.2))
    ax = fig.subplots()
    positions = np.arange(len(class_names))
    ax.barh(positions, shares * 100)
    for y, share in zip(positions, shares, strict=True):
        ax.text(share * 100 + 0.5, y, f"{share * 100:.1f}%", va="center", fontsize=8)
    ax.set_yticks(positions)
    ax.set_yticklabels(class_names)
    ax.invert_yaxis()
    ax.set_xlim(0, 110)
    ax.set_xlabel("correct (%)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def confident_mistakes(images, y_true, y_pred, confidence, class_names, n: int = 16):
    """The n wrong predictions made with the highest probability, true and predicted names."""
    wrong = np.flatnonzero(np.asarray(y_true) != np.asarray(y_pred))
    order = wrong[np.argsort(-np.asarray(confidence)[wrong], kind="stable")][:n]
    if not len(order):
        fig = figure((4, 1.5))
        ax = fig.subplots()
        ax.axis("off")
        ax.text(0.5, 0.5, "no mistakes", ha="center", va="center")
        fig.suptitle("most confident mistakes")
        return fig
    tiles = [images[i] for i in order]
    return tile_figure(
        tiles,
        min(4, len(tiles)),
        tile_inches=1.6,
        cmap="gray_r",
        limits=(min(float(t.min()) for t in tiles), max(float(t.max()) for t in tiles)),
        labels=[
            f"true {class_names[y_true[i]]}\npredicted {class_names[y_pred[i]]}\n"
            f"{confidence[i]:.1%}"
            for i in order
        ],
        label_lines=3,
        title="most confident mistakes",
    )


def weight_images(
    weights: np.ndarray, image_shape, titles=None, max_tiles: int = 32, title: str = "weights"
):
    """Rows of `weights` (one per unit or class, each image_shape pixels) as image tiles;
    blue is negative, red positive, each tile on its own symmetric scale."""
    weights = np.asarray(weights, dtype=np.float64)[:max_tiles]
    limits = np.abs(weights).max(axis=1, keepdims=True)
    scaled = weights / np.where(limits > 0, limits, 1.0)  # each tile in [-1, 1]
    return tile_figure(
        [row.reshape(image_shape) for row in scaled],
        min(8, len(weights)),
        tile_inches=1.1,
        cmap="bwr",
        limits=(-1.0, 1.0),
        labels=None if titles is None else [str(t) for t in titles[: len(weights)]],
        label_lines=1,
        title=title,
    )


def tile_figure(
    tiles,
    columns: int,
    *,
    tile_inches: float,
    cmap: str,
    limits: tuple[float, float],
    labels=None,
    label_lines: int = 1,
    row_labels=None,
    title: str = "",
):
    """Equal-shaped 2-D `tiles` (None leaves a cell empty) row by row, `columns` to a row, drawn
    as one image in one Axes, with `labels` above the tiles and `row_labels` left of the rows.

    One image rather than an Axes per tile: every Axes has a fixed cost to make and to draw,
    which a report's 80-tile example grid would pay 80 times.
    """
    h, w = next(t for t in tiles if t is not None).shape
    scale = tile_inches / w  # inches per pixel
    gap = max(1, round(0.08 / scale))
    # room for the labels, rounded up to whole pixels: with 8-pixel tiles (digits) rounding
    # down took a fifth of it, and the first row's labels ran into the title
    room = math.ceil(label_lines * 0.16 / scale) if labels is not None else 0
    rows = -(-len(tiles) // columns)
    cell_h, cell_w = room + h + gap, w + gap
    canvas = np.full((rows * cell_h - gap, columns * cell_w - gap), np.nan)
    for i, tile in enumerate(tiles):
        if tile is not None:
            top, left = (i // columns) * cell_h + room, (i % columns) * cell_w
            canvas[top : top + h, left : left + w] = tile
    # the Axes fills the figure, so that a pixel is `scale` inches and the labels' room (in
    # points) is what was reserved; titles and row labels lie outside it (bbox_inches="tight")
    fig = figure((canvas.shape[1] * scale, canvas.shape[0] * scale))
    ax = fig.add_axes((0, 0, 1, 1))
    colors = colormap(cmap).with_extremes(bad="white")  # NaN: the gaps
    ax.imshow(canvas, cmap=colors, vmin=limits[0], vmax=limits[1], interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if row_labels is not None:
        ax.set_yticks([r * cell_h + room + (h - 1) / 2 for r in range(rows)])
        ax.set_yticklabels(row_labels[:rows], fontsize=9)
        ax.tick_params(axis="y", length=0)
    for i, label in enumerate(labels or ()):
        x = (i % columns) * cell_w + (w - 1) / 2
        y = (i // columns) * cell_h + room - 0.5  # the tile's top edge
        ax.text(x, y, label, ha="center", va="bottom", fontsize=7 if label_lines == 1 else 8)
    if title:
        ax.set_title(title)
    return fig


def weight_distributions(
    now: dict, initial: dict | None = None, title: str = "weight distributions per layer"
):
    """Violins of each weight matrix's values now, and at initialization beside them."""
    names = list(now)
    fig = figure((max(6, 1.8 * len(names)), 4))
    ax = fig.subplots()
    positions = np.arange(len(names)) * 3.0
    parts = ax.violinplot([np.ravel(now[k]) for k in names], positions=positions, showmedians=True)
    handles = [parts["bodies"][0]]
    labels = ["trained"]
    if initial:
        initial_parts = ax.violinplot(
            [np.ravel(initial[k]) for k in names], positions=positions + 1.0, showmedians=True
        )
        for body in initial_parts["bodies"]:
            body.set_facecolor("tab:orange")
        handles.append(initial_parts["bodies"][0])
        labels.append("at initialization")
    ax.set_xticks(positions + (0.5 if initial else 0))
    ax.set_xticklabels(names)
    ax.set_ylabel("value")
    ax.legend(handles, labels)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def activation_map(
    points: np.ndarray,
    labels: np.ndarray,
    class_names,
    title: str = "",
    axis_labels: tuple[str, str] = ("PC1", "PC2"),
):
    """A 2-D scatter of points colored by class (a 2-wide layer or two principal components),
    its axes named by `axis_labels`."""
    fig = figure((7, 6))
    ax = fig.subplots()
    cmap = colormap("tab10" if len(class_names) <= 10 else "tab20")
    for cls, name in enumerate(class_names):
        members = labels == cls
        ax.scatter(
            points[members, 0], points[members, 1], s=4, alpha=0.6, color=cmap(cls % 20), label=name
        )
    ax.legend(markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def figure_png_bytes(fig, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (for embedding in a page)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()

"""Figures (matplotlib, Agg backend, imported lazily): PNG by default, SVG by the file's suffix."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mnistlab._io import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save `fig` atomically to `path` (format from the suffix) and close it."""
    plt = _pyplot()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
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
    plt = _pyplot()
    rng = np.random.default_rng(seed)
    n_classes = len(class_names)
    fig, axes = plt.subplots(
        n_classes,
        per_class,
        figsize=(per_class * 0.75 + 1.6, n_classes * 0.75 + 0.4),
        squeeze=False,
    )
    for cls in range(n_classes):
        members = np.flatnonzero(labels == cls)
        chosen = rng.choice(members, size=min(per_class, members.size), replace=False)
        for col in range(per_class):
            ax = axes[cls, col]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if col < chosen.size:
                ax.imshow(images[chosen[col]], cmap="gray_r", interpolation="nearest")
        axes[cls, 0].set_ylabel(class_names[cls], rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig


def class_distribution(
    train_counts: np.ndarray, test_counts: np.ndarray, class_names: tuple[str, ...], title: str = ""
):
    """Bars of the share of each class in the training and test splits."""
    plt = _pyplot()
    positions = np.arange(len(class_names))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * len(class_names)), 4))
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
    """Loss and accuracy per epoch, train versus validation (when recorded)."""
    plt = _pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = [r["epoch"] for r in records]
    for ax, key, label in ((ax_loss, "loss", "loss"), (ax_acc, "accuracy", "accuracy")):
        ax.plot(epochs, [r[key] for r in records], marker="o", ms=3, label=f"train {label}")
        if any(f"val_{key}" in r for r in records):
            ax.plot(
                epochs,
                [r.get(f"val_{key}") for r in records],
                marker="o",
                ms=3,
                label=f"validation {label}",
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_heatmap(matrix: np.ndarray, class_names, title: str = "confusion matrix"):
    """Counts per (true, predicted) pair, with the numbers written in the cells."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    n = matrix.shape[0]
    fig, ax = plt.subplots(figsize=(0.62 * n + 2.5, 0.55 * n + 2))
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
    plt = _pyplot()
    matrix = np.asarray(matrix)
    support = matrix.sum(axis=1)
    shares = np.divide(np.diag(matrix), support, out=np.zeros(len(support)), where=support > 0)
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(class_names) + 1.2))
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
    plt = _pyplot()
    wrong = np.flatnonzero(np.asarray(y_true) != np.asarray(y_pred))
    order = wrong[np.argsort(-np.asarray(confidence)[wrong], kind="stable")][:n]
    columns = 4
    rows = max(1, -(-len(order) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 2.3, rows * 2.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, order, strict=False):
        ax.imshow(images[index], cmap="gray_r", interpolation="nearest")
        ax.set_title(
            f"true {class_names[y_true[index]]}\npredicted "
            f"{class_names[y_pred[index]]}\n{confidence[index]:.1%}",
            fontsize=8,
        )
    if not len(order):
        axes.flat[0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    fig.suptitle("most confident mistakes")
    fig.tight_layout()
    return fig


def weight_images(
    weights: np.ndarray, image_shape, titles=None, max_tiles: int = 32, title: str = "weights"
):
    """Rows of `weights` (one per unit or class, each image_shape pixels) as image tiles;
    blue is negative, red positive, each tile on its own symmetric scale."""
    plt = _pyplot()
    weights = np.asarray(weights)[:max_tiles]
    columns = min(8, len(weights))
    rows = -(-len(weights) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.3, rows * 1.45), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, row) in enumerate(zip(axes.flat, weights, strict=False)):
        limit = float(np.abs(row).max()) or 1.0
        ax.imshow(row.reshape(image_shape), cmap="bwr", vmin=-limit, vmax=limit)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def weight_distributions(
    now: dict, initial: dict | None = None, title: str = "weight distributions per layer"
):
    """Violins of each weight matrix's values now, and at initialization beside them."""
    plt = _pyplot()
    names = list(now)
    fig, ax = plt.subplots(figsize=(max(6, 1.8 * len(names)), 4))
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


def activation_map(points: np.ndarray, labels: np.ndarray, class_names, title: str = ""):
    """A 2-D scatter of points colored by class (a 2-wide layer or two principal components)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 6))
    cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    for cls, name in enumerate(class_names):
        members = labels == cls
        ax.scatter(
            points[members, 0], points[members, 1], s=4, alpha=0.6, color=cmap(cls % 20), label=name
        )
    ax.legend(markerscale=3, fontsize=8, loc="best")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def figure_png_bytes(fig, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (for embedding), and close it."""
    import io

    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()

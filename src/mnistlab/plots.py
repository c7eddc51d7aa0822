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
    ax.legend()
    ax.set_title(title or "class distribution")
    return fig

"""What a convolutional network's first layers hold: its kernels and one image's feature maps,
as matplotlib Figure objects made without pyplot (see `plots`)."""

from __future__ import annotations

import numpy as np

from mnistlab.reports.plots import tile_figure

#: at most this many filters are drawn (a first layer rarely has more)
MAX_FILTERS = 64


def conv_kernels(kernel: np.ndarray, title: str = "first convolution's kernels"):
    """One tile per filter (one per filter and input channel when there are several channels,
    a row per filter), blue negative and red positive, each tile on its own symmetric scale.

    kernel: (kernel_h, kernel_w, channels, filters), a Conv2D layer's weight.
    """
    kernel = np.asarray(kernel, dtype=np.float64)[..., :MAX_FILTERS]
    _, _, channels, filters = kernel.shape
    tiles = [kernel[:, :, c, f] for f in range(filters) for c in range(channels)]
    labels = [
        str(f) if channels == 1 else f"{f}, ch {c}" for f in range(filters) for c in range(channels)
    ]
    return tile_figure(
        [_symmetric(tile) for tile in tiles],
        min(8, filters) if channels == 1 else channels,
        tile_inches=0.7,
        cmap="bwr",
        limits=(-1.0, 1.0),
        labels=labels,
        label_lines=1,
        title=title,
    )


def feature_maps(maps: np.ndarray, title: str):
    """One tile per channel of one image's feature maps, each scaled to its own range (dark is
    high), so that a channel with small values still shows its pattern.

    maps: (height, width, channels).
    """
    maps = np.asarray(maps, dtype=np.float64)[..., :MAX_FILTERS]
    tiles = []
    for channel in range(maps.shape[2]):
        tile = maps[:, :, channel]
        spread = tile.max() - tile.min()
        tiles.append((tile - tile.min()) / spread if spread > 0 else np.zeros_like(tile))
    return tile_figure(
        tiles,
        min(8, len(tiles)),
        tile_inches=0.9,
        cmap="gray_r",
        limits=(0.0, 1.0),
        labels=[str(c) for c in range(len(tiles))],
        label_lines=1,
        title=title,
    )


def _symmetric(tile: np.ndarray) -> np.ndarray:
    """`tile` divided by its largest magnitude: in [-1, 1], zero staying white."""
    limit = np.abs(tile).max()
    return tile / limit if limit > 0 else tile


__all__ = ["conv_kernels", "feature_maps"]

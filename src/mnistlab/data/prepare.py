"""Turning images into model inputs: scaling, standardizing, flattening, one-hot labels,
validation splits, balanced subsets and seeded minibatches.

Every function that draws random numbers takes a `numpy.random.Generator` or an integer seed.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from mnistlab.errors import UsageError

SeedLike = int | np.random.Generator | None


def as_generator(seed: SeedLike) -> np.random.Generator:
    """A Generator from a seed (int or None) or the Generator itself."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def to_float(images: np.ndarray, pixel_max: float = 255.0, dtype=np.float32) -> np.ndarray:
    """Scale images to [0, 1] as `dtype` (float32 by default) in one pass: x / pixel_max."""
    out = np.empty(images.shape, dtype=dtype)
    np.multiply(images, dtype(1.0 / pixel_max), out=out, casting="unsafe")
    return out


def flatten(images: np.ndarray) -> np.ndarray:
    """(n, h, w) -> (n, h*w), a view when the images are contiguous."""
    return images.reshape(images.shape[0], -1)


class Standardizer:
    """Per-feature standardization whose statistics come from the training split only.

    ``fit(x_train)`` learns ``mean_`` and ``scale_`` (the standard deviation, 1 for features
    of no variance, which are left unscaled); ``transform(x)`` returns
    ``(x - mean_) / scale_``.

    Parameters
    ----------
    eps : float
        A standard deviation at or below this counts as no variance.
    """

    def __init__(self, eps: float = 1e-8) -> None:
        self.eps = eps

    def fit(self, x: np.ndarray) -> Standardizer:
        """Learn ``mean_`` and ``scale_``, each (n_features,), from x: (n, ...) of any shape
        after the first axis (flattened per image). Returns self."""
        x = x.reshape(x.shape[0], -1)
        self.mean_ = x.mean(axis=0, dtype=np.float64).astype(x.dtype)
        std = x.std(axis=0, dtype=np.float64)
        self.scale_ = np.where(std > self.eps, std, 1.0).astype(x.dtype)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """``(x - mean_) / scale_``: a new array of x's shape, in the fitted statistics' dtype."""
        shape = x.shape
        flat = x.reshape(shape[0], -1)
        out = np.subtract(flat, self.mean_, dtype=self.mean_.dtype)
        out /= self.scale_
        return out.reshape(shape)

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        """`fit` on x, then `transform` it."""
        return self.fit(x).transform(x)


def one_hot(labels: np.ndarray, n_classes: int, dtype=np.float32) -> np.ndarray:
    """(n,) integer labels -> (n, n_classes) one-hot rows."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise UsageError(
            f"labels must lie in [0, {n_classes}), got range [{labels.min()}, {labels.max()}]"
        )
    out = np.zeros((labels.shape[0], n_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


def stratified_indices(
    labels: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices so each class puts round(fraction * count) of its items in the second part.

    Returns (first, second), each sorted ascending.
    """
    first, second = [], []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        rng.shuffle(members)
        n_second = int(round(fraction * members.size))
        second.append(members[:n_second])
        first.append(members[n_second:])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(second))


def _validation_count(validation: int | float, n: int) -> int:
    if isinstance(validation, (bool, np.bool_)):
        raise UsageError(f"validation must be a count or a fraction, got {validation!r}")
    if isinstance(validation, (float, np.floating)) and not float(validation).is_integer():
        if not 0.0 < validation < 1.0:
            raise UsageError(f"validation fraction must be in (0, 1), got {validation}")
        count = int(round(validation * n))
    else:
        count = int(validation)
    if not 0 < count < n:
        raise UsageError(f"validation size must be between 1 and {n - 1} images, got {validation}")
    return count


def train_validation_split(
    x: np.ndarray,
    y: np.ndarray,
    validation: int | float,
    *,
    stratify: bool = False,
    seed: SeedLike = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out a validation split from the training data.

    Parameters
    ----------
    x : ndarray, shape (n, ...)
        The training rows (or images).
    y : ndarray, shape (n,)
        Their labels.
    validation : int or float
        A count (the last N rows, as seeds 000 and 002 hold out the last 10,000) or a
        fraction in (0, 1).
    stratify : bool
        Draw the held-out rows per class with `seed` instead of taking the last ones.
    seed : int, numpy.random.Generator or None
        The draw of a stratified split.

    Returns
    -------
    x_train, y_train, x_val, y_val : ndarray
        The kept and the held-out rows and labels; the unstratified split returns views (no
        copies).

    Raises
    ------
    UsageError
        For a count that leaves no row on either side, or a fraction outside (0, 1).
    """
    count = _validation_count(validation, x.shape[0])
    if not stratify:
        cut = x.shape[0] - count
        return x[:cut], y[:cut], x[cut:], y[cut:]
    keep, held = stratified_indices(y, count / x.shape[0], as_generator(seed))
    return x[keep], y[keep], x[held], y[held]


def balanced_subset(
    x: np.ndarray, y: np.ndarray, per_class: int, *, seed: SeedLike = None
) -> tuple[np.ndarray, np.ndarray]:
    """`per_class` images of every class, drawn with `seed` (seed 002 used 750 per class)."""
    if per_class <= 0:
        raise UsageError(f"per_class must be positive, got {per_class}")
    rng = as_generator(seed)
    chosen = []
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        if members.size < per_class:
            raise UsageError(
                f"class {cls} has only {members.size} images, fewer than per_class={per_class}"
            )
        chosen.append(rng.choice(members, size=per_class, replace=False))
    index = np.sort(np.concatenate(chosen))
    return x[index], y[index]


def batch_indices(
    n: int,
    batch_size: int,
    *,
    shuffle: bool = True,
    rng: np.random.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[np.ndarray]:
    """Index arrays of one epoch's minibatches; a fresh permutation from `rng` when shuffling."""
    if batch_size <= 0:
        raise UsageError(f"batch_size must be positive, got {batch_size}")
    order = (rng or np.random.default_rng()).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]


def minibatches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: SeedLike = None,
    drop_last: bool = False,
    epochs: int = 1,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Seeded minibatches (x_batch, y_batch), reshuffled every epoch, for `epochs` epochs."""
    rng = as_generator(seed)
    for _ in range(epochs):
        for index in batch_indices(
            x.shape[0], batch_size, shuffle=shuffle, rng=rng, drop_last=drop_last
        ):
            if shuffle:
                yield x[index], y[index]
            else:
                yield x[index[0] : index[-1] + 1], y[index[0] : index[-1] + 1]

"""The in-memory dataset: images, labels, class names, and checks that refuse bad data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mnistlab.errors import DataError


@dataclass
class Dataset:
    """A train/test split of images with integer labels.

    Built by `load_dataset` (or `make_dataset`, which checks the arrays first).

    Parameters
    ----------
    name : str
        The dataset's name ("fashion-mnist", "digits", or the folder's name).
    x_train : ndarray, shape (n_train, height, width)
        Training images: uint8 for the usual 0-255 files (other IDX element types keep their
        type).
    y_train : ndarray of int64, shape (n_train,)
        Their labels, in [0, n_classes).
    x_test : ndarray, shape (n_test, height, width)
        Test images, of the same shape and type.
    y_test : ndarray of int64, shape (n_test,)
        Their labels.
    class_names : tuple of str
        One name per class index.
    pixel_max : float
        The value that maps to 1.0 when scaling (255 for bytes, 16 for ``digits``).
    source : str
        Where the data came from (a folder, a file, or a named dataset's location).
    format : str
        The file format it was read from ("idx", "csv", "png", "npz", ...).
    meta : dict
        Anything else the reader recorded.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    pixel_max: float = 255.0
    source: str = ""
    format: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_train(self) -> int:
        """Number of training images."""
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test images."""
        return int(self.x_test.shape[0])

    @property
    def image_shape(self) -> tuple[int, ...]:
        """(height, width) of one image."""
        return tuple(int(s) for s in self.x_train.shape[1:])

    @property
    def n_classes(self) -> int:
        """Number of classes (of class names)."""
        return len(self.class_names)

    @property
    def n_features(self) -> int:
        """Pixels per image: the width of a flattened row (height * width)."""
        return int(np.prod(self.image_shape))

    def class_counts(self, split: str = "train") -> np.ndarray:
        """Number of images of each class in `split` ("train" or "test")."""
        labels = {"train": self.y_train, "test": self.y_test}[split]
        return np.bincount(labels, minlength=self.n_classes)

    def info(self) -> dict[str, Any]:
        """A JSON-ready summary: split sizes, image shape, dtype, pixel range, class counts."""

        def pixel_range(x: np.ndarray) -> list[float]:
            lo, hi = (x.min(), x.max()) if x.size else (0, 0)
            return [lo.item(), hi.item()] if x.size else [0, 0]

        return {
            "name": self.name,
            "format": self.format,
            "source": self.source,
            "image_shape": list(self.image_shape),
            "dtype": str(self.x_train.dtype),
            "pixel_max": self.pixel_max,
            "n_classes": self.n_classes,
            "classes": list(self.class_names),
            "train": {
                "n": self.n_train,
                "pixel_range": pixel_range(self.x_train),
                "class_counts": self.class_counts("train").tolist(),
            },
            "test": {
                "n": self.n_test,
                "pixel_range": pixel_range(self.x_test),
                "class_counts": self.class_counts("test").tolist(),
            },
        }


def check_labels(labels: np.ndarray, where: str) -> np.ndarray:
    """Return `labels` as a 1-D int64 array, or raise DataError naming `where`.

    Labels must be integers (an integral float such as 3.0 is accepted) and non-negative.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise DataError(f"{where}: labels must be one per image (1-D), got shape {labels.shape}")
    if labels.dtype.kind == "f":
        bad = ~np.isfinite(labels) | (labels != np.round(labels))
        if bad.any():
            index = int(np.argmax(bad))
            raise DataError(
                f"{where}: label {labels[index].item()!r} at index {index} is not an integer"
            )
    elif labels.dtype.kind not in "iub":
        raise DataError(f"{where}: labels must be integers, got dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        index = int(np.argmin(labels))
        raise DataError(f"{where}: label {labels[index]} at index {index} is negative")
    return labels.astype(np.int64, copy=False)


def check_split(images: np.ndarray, labels: np.ndarray, split: str, where: str) -> None:
    """Refuse an empty split or one whose image and label counts differ."""
    if images.shape[0] == 0:
        raise DataError(f"{where}: the {split} split is empty")
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{where}: {split} has {images.shape[0]} images but {labels.shape[0]} labels"
        )


def _classes_present(y_train: np.ndarray, y_test: np.ndarray):
    """Without class names, the classes are the distinct labels present (as scikit-learn's
    `classes_`), each named by its label: labels 0..9 and 200 make 11 classes, "200" the last,
    never one class per integer up to the largest label. Labels that are already 0..K-1 stay
    as they are; others are renumbered in their order. Test labels all occur in training."""
    labels = np.unique(y_train)
    if labels[-1] != labels.size - 1:  # gaps: renumber
        y_train = np.searchsorted(labels, y_train)
        y_test = np.searchsorted(labels, y_test)
    return y_train, y_test, tuple(str(label) for label in labels.tolist())


def make_dataset(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    where: str,
    class_names: tuple[str, ...] | list[str] | None = None,
    pixel_max: float | None = None,
    format: str = "",
) -> Dataset:
    """Validate the four arrays and build a Dataset.

    Checks: non-empty splits, equal image/label counts, integer non-negative labels, equal image
    shapes in both splits, and test labels that all occur in the training labels. Without
    `class_names`, the classes are the distinct labels present (see ``_classes_present``).
    `where` names the data in every DataError; `pixel_max` None is 255 for uint8 images and
    for values up to 255, otherwise the largest value.
    """
    y_train = check_labels(y_train, f"{where} (train labels)")
    y_test = check_labels(y_test, f"{where} (test labels)")
    check_split(x_train, y_train, "train", where)
    check_split(x_test, y_test, "test", where)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"{where}: train images are {x_train.shape[1:]} but test images are {x_test.shape[1:]}"
        )
    unseen = np.setdiff1d(np.unique(y_test), np.unique(y_train))
    if unseen.size:
        raise DataError(
            f"{where}: test labels {unseen.tolist()} never occur in the training labels"
        )
    if class_names is None:
        y_train, y_test, class_names = _classes_present(y_train, y_test)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    if len(class_names) < n_classes:
        raise DataError(
            f"{where}: label {n_classes - 1} is out of range for {len(class_names)} classes"
        )
    if pixel_max is None:
        if x_train.dtype == np.uint8:
            pixel_max = 255.0
        else:
            observed = float(max(x_train.max(), x_test.max()))
            pixel_max = 255.0 if 1.0 < observed <= 255.0 else max(observed, 1.0)
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=tuple(class_names),
        pixel_max=float(pixel_max),
        source=where,
        format=format,
    )

"""scikit-learn's bundled 8x8 digits, read straight from the file the package ships.

Only the data file is read (no scikit-learn code runs): 1,797 images with values 0-16, split 80/20
stratified by class with a fixed seed so every run sees the same split.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from mnistlab.data.dataset import Dataset, make_dataset
from mnistlab.data.registry import DIGITS
from mnistlab.errors import DatasetNotFoundError

SPLIT_SEED = 0
TEST_FRACTION = 0.2


def digits_file() -> Path:
    """The path of scikit-learn's digits.csv.gz; DatasetNotFoundError if it is not installed."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise DatasetNotFoundError(
            "dataset 'digits' needs scikit-learn's bundled data file: pip install scikit-learn"
        )
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise DatasetNotFoundError(f"dataset 'digits': {path} is missing from scikit-learn")
    return path


def load_digits() -> Dataset:
    """The 8x8 digits as uint8 (n, 8, 8) images, values 0-16, with a stratified 80/20 split."""
    from mnistlab.data.prepare import stratified_indices

    path = digits_file()
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    images = table[:, :-1].astype(np.uint8).reshape(-1, 8, 8)
    labels = table[:, -1].astype(np.int64)
    rng = np.random.default_rng(SPLIT_SEED)
    train_index, test_index = stratified_indices(labels, TEST_FRACTION, rng)
    return make_dataset(
        DIGITS.name,
        images[train_index],
        labels[train_index],
        images[test_index],
        labels[test_index],
        where=str(path),
        class_names=DIGITS.class_names,
        pixel_max=DIGITS.pixel_max,
        format="digits",
    )

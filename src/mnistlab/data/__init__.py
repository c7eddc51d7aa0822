"""Datasets: the named ones (MNIST, Fashion-MNIST, KMNIST, digits) and any folder or file."""

from __future__ import annotations

import os
from pathlib import Path

from mnistlab.data.dataset import Dataset, make_dataset
from mnistlab.data.digits import load_digits
from mnistlab.data.formats import load_idx_folder, load_path
from mnistlab.data.prepare import (
    Standardizer,
    balanced_subset,
    batch_indices,
    flatten,
    minibatches,
    one_hot,
    to_float,
    train_validation_split,
)
from mnistlab.data.registry import REGISTRY, DatasetSpec, get_spec
from mnistlab.data.sources import (
    content_hashers,
    fetch,
    locate,
    not_found_error,
    offline_default,
    verify_found,
)
from mnistlab.errors import DataError

__all__ = [
    "Dataset",
    "DatasetSpec",
    "REGISTRY",
    "Standardizer",
    "balanced_subset",
    "batch_indices",
    "fetch",
    "flatten",
    "load_dataset",
    "make_dataset",
    "minibatches",
    "one_hot",
    "to_float",
    "train_validation_split",
]


def load_named(
    spec: DatasetSpec,
    *,
    data_dir: str | os.PathLike | None = None,
    offline: bool | None = None,
    progress: bool | None = None,
) -> Dataset:
    """Load a named dataset from the first location that has it, downloading it if needed."""
    if spec.kind == "digits":
        return load_digits()
    offline = offline_default() if offline is None else offline
    files = locate(spec, data_dir)
    if files is None:
        if offline:
            raise not_found_error(spec, data_dir, offline=True)
        fetch(spec, data_dir, progress=progress)
        files = locate(spec, data_dir)
        if files is None:  # pragma: no cover - fetch raises before this
            raise not_found_error(spec, data_dir, offline=False)
    verify_found(spec, files)
    hashers = content_hashers(spec)
    folder = files["train_images"].parent
    dataset = load_idx_folder(
        folder,
        name=spec.name,
        files=files,
        class_names=spec.class_names,
        pixel_max=spec.pixel_max,
        hashers=hashers,
    )
    for role, hasher in hashers.items():
        expected, actual = spec.files[role].sha256, hasher.hexdigest()
        if actual != expected:
            raise DataError(
                f"{files[role]}: checksum mismatch for {spec.name}: "
                f"expected sha256 {expected}, got {actual}"
            )
    _check_shapes(spec, dataset, folder)
    return dataset


def _check_shapes(spec: DatasetSpec, dataset: Dataset, folder: Path) -> None:
    """A named dataset's splits have its published sizes and image shape: the check that holds
    for files whose checksum cannot be compared (stored uncompressed, only the .gz's known)."""
    for split, x, n in (
        ("train", dataset.x_train, spec.n_train),
        ("test", dataset.x_test, spec.n_test),
    ):
        if x.shape != (n, *spec.image_shape):
            expected = " x ".join(str(d) for d in (n, *spec.image_shape))
            found = " x ".join(str(d) for d in x.shape)
            raise DataError(
                f"{folder}: not the {spec.name} dataset: its {split} images are {found}, "
                f"{spec.name}'s are {expected}"
            )


def load_dataset(
    name_or_path: str | os.PathLike,
    *,
    data_dir: str | os.PathLike | None = None,
    offline: bool | None = None,
    progress: bool | None = None,
) -> Dataset:
    """Load a named dataset ('mnist', 'fashion-mnist', 'kmnist', 'digits') or any folder/file.

    A path is read in the format found there (IDX folder, CSV, PNG tree or .npz).
    Raises DataError (or a subclass) with a one-line message for anything unusable.
    """
    key = str(name_or_path)
    if key in REGISTRY:
        return load_named(get_spec(key), data_dir=data_dir, offline=offline, progress=progress)
    path = Path(name_or_path)
    if path.exists():
        return load_path(path)
    names = ", ".join(REGISTRY)
    raise DataError(f"unknown dataset '{key}': not a named dataset ({names}) nor an existing path")

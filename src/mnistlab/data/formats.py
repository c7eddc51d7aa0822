"""Loading a folder or file in any of the formats the field uses, detected from what is there.

- IDX folder: train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-... ;
- CSV: trainData.csv + trainLabels.csv + testData.csv + testLabels.csv (one image per row),
  or train.csv / test.csv with the label in the first column; a header row is optional;
- PNG tree: Train/<label>/*.png and Test/<label>/*.png (or train/test, training/testing);
- .npz with x_train, y_train, x_test, y_test (read with allow_pickle=False).
"""

from __future__ import annotations

import math
import os
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np

from mnistlab._io import check_npz_claims
from mnistlab.data.dataset import Dataset, make_dataset
from mnistlab.data.idx import read_idx
from mnistlab.errors import DataError

IDX_STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CSV_SEPARATE = ("trainData.csv", "trainLabels.csv", "testData.csv", "testLabels.csv")
CSV_KAGGLE = ("train.csv", "test.csv")
PNG_SPLITS = (
    ("Train", "Test"),
    ("train", "test"),
    ("training", "testing"),
    ("Training", "Testing"),
)


def find_idx_file(folder: Path, stem: str) -> Path | None:
    """The IDX file `stem` in `folder`, raw or .gz (raw preferred), or None."""
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def idx_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in `folder` by role, or None if any is missing."""
    found = {role: find_idx_file(folder, stem) for role, stem in IDX_STEMS.items()}
    return None if any(p is None for p in found.values()) else found  # type: ignore[return-value]


def detect_format(path: Path) -> str:
    """'idx', 'csv', 'csv-kaggle', 'png' or 'npz' for `path`; DataError if none fits."""
    if path.is_file():
        if path.suffix == ".npz":
            return "npz"
        raise DataError(f"{path}: not a dataset file (expected a .npz file or a folder)")
    if not path.is_dir():
        raise DataError(f"{path}: no such file or folder")
    if idx_files(path):
        return "idx"
    if all((path / name).is_file() for name in CSV_SEPARATE):
        return "csv"
    if all((path / name).is_file() for name in CSV_KAGGLE):
        return "csv-kaggle"
    if _png_split_dirs(path):
        return "png"
    npz = sorted(path.glob("*.npz"))
    if len(npz) == 1:
        return "npz"
    partial = [stem for stem in IDX_STEMS.values() if find_idx_file(path, stem)]
    hint = (
        f" (IDX files missing: {sorted(set(IDX_STEMS.values()) - set(partial))})" if partial else ""
    )
    raise DataError(
        f"{path}: no dataset format recognised{hint}; expected four IDX files, "
        "trainData.csv/trainLabels.csv/testData.csv/testLabels.csv, train.csv/test.csv, "
        "Train/<label>/*.png + Test/<label>/*.png, or one .npz file"
    )


def load_path(path: str | os.PathLike, name: str | None = None) -> Dataset:
    """Load the dataset at `path`, detecting its format."""
    path = Path(path)
    fmt = detect_format(path)
    name = name or path.stem
    if fmt == "idx":
        return load_idx_folder(path, name=name)
    if fmt == "csv":
        return load_csv_separate(path, name=name)
    if fmt == "csv-kaggle":
        return load_csv_kaggle(path, name=name)
    if fmt == "png":
        return load_png_tree(path, name=name)
    npz = path if path.is_file() else next(iter(sorted(path.glob("*.npz"))))
    return load_npz(npz, name=name)


# ---------------------------------------------------------------- IDX


def _images_3d(images: np.ndarray, where: Path) -> np.ndarray:
    if images.ndim == 3:
        return images
    if images.ndim == 2:
        return _square(images, where)
    raise DataError(f"{where}: images must have 2 or 3 dimensions, got shape {images.shape}")


def load_idx_folder(
    folder: Path,
    *,
    name: str,
    files: dict[str, Path] | None = None,
    class_names: tuple[str, ...] | None = None,
    pixel_max: float | None = None,
    hashers: dict | None = None,
) -> Dataset:
    """Load four IDX files (by role) into a Dataset; `hashers` maps role -> hashlib object."""
    files = files or idx_files(folder)
    if files is None:
        raise DataError(f"{folder}: the four IDX files are not all there")
    hashers = hashers or {}
    arrays = {role: read_idx(p, hasher=hashers.get(role)) for role, p in files.items()}
    for role in ("train_labels", "test_labels"):
        if arrays[role].ndim != 1:
            raise DataError(f"{files[role]}: labels must be 1-D, got shape {arrays[role].shape}")
    x_train = _images_3d(arrays["train_images"], files["train_images"])
    x_test = _images_3d(arrays["test_images"], files["test_images"])
    for split, images, labels in (
        ("train", x_train, arrays["train_labels"]),
        ("test", x_test, arrays["test_labels"]),
    ):
        if images.shape[0] != labels.shape[0]:
            raise DataError(
                f"{files[split + '_images']}: {images.shape[0]} images but "
                f"{files[split + '_labels'].name} has {labels.shape[0]} labels"
            )
    return make_dataset(
        name,
        x_train,
        arrays["train_labels"],
        x_test,
        arrays["test_labels"],
        where=str(folder),
        class_names=class_names,
        pixel_max=pixel_max,
        format="idx",
    )


# ---------------------------------------------------------------- CSV


def _has_header(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as handle:
        first = handle.readline()
    if not first.strip():
        return False
    for cell in first.strip().split(","):
        try:
            float(cell)
        except ValueError:
            return True
    return False


def _read_csv(path: Path, *, ndmin: int = 2) -> np.ndarray:
    """Read a numeric CSV into float32; DataError names the file, row and problem."""
    try:
        skip = 1 if _has_header(path) else 0
        with warnings.catch_warnings():
            # an empty file is reported below in one line, without NumPy's warning before it
            warnings.simplefilter("ignore", UserWarning)
            data = np.loadtxt(path, delimiter=",", dtype=np.float32, skiprows=skip, ndmin=ndmin)
    except ValueError as exc:
        raise DataError(f"{path}: {_csv_problem(str(exc).splitlines()[0], skip)}") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc})") from None
    if data.size == 0:
        raise DataError(f"{path}: no data rows")
    if not np.isfinite(data).all():
        row, column = np.argwhere(~np.isfinite(data))[0]
        raise DataError(
            f"{path}: line {row + 1 + skip}, column {column + 1}: {data[row, column]} is not a "
            "finite number"
        )
    return data


def _csv_problem(message: str, skip: int) -> str:
    """NumPy's loadtxt message with its row (0-based in one message, 1-based in the other,
    neither counting the header) as the file's line and without its advice on `usecols`."""
    if match := re.match(
        r"could not convert string (.*) to \w+ at row (\d+), column (\d+)", message
    ):
        value, row, column = match.groups()
        return f"line {int(row) + 1 + skip}, column {column}: {value} is not a number"
    if match := re.match(
        r"the number of columns changed from (\d+) to (\d+) at row (\d+)", message
    ):
        before, after, row = match.groups()
        return f"line {int(row) + skip} has {after} values, the lines before it {before}"
    return message


def _square(rows: np.ndarray, where: Path) -> np.ndarray:
    """Reshape (n, side*side) rows into (n, side, side) images; DataError if not square."""
    n_features = rows.shape[1]
    side = math.isqrt(n_features)
    if side * side != n_features:
        raise DataError(
            f"{where}: {n_features} values per image is not a square image (e.g. 784 = 28x28)"
        )
    return rows.reshape(rows.shape[0], side, side)


def _pixels(rows: np.ndarray) -> np.ndarray:
    """uint8 when every value is an integer in 0..255 (the usual case), float32 otherwise."""
    if rows.min() >= 0 and rows.max() <= 255 and np.array_equal(rows, np.round(rows)):
        return rows.astype(np.uint8)
    return rows


def _labels_column(data: np.ndarray, path: Path) -> np.ndarray:
    if data.ndim == 2 and data.shape[1] != 1:
        raise DataError(f"{path}: expected one label per row, got {data.shape[1]} columns")
    return data.reshape(-1)


def load_csv_separate(folder: Path, *, name: str) -> Dataset:
    """trainData.csv / trainLabels.csv / testData.csv / testLabels.csv (seed 004's layout)."""
    paths = [folder / f for f in CSV_SEPARATE]
    x_train = _square(_read_csv(paths[0]), paths[0])
    y_train = _labels_column(_read_csv(paths[1]), paths[1])
    x_test = _square(_read_csv(paths[2]), paths[2])
    y_test = _labels_column(_read_csv(paths[3]), paths[3])
    return make_dataset(
        name, _pixels(x_train), y_train, _pixels(x_test), y_test, where=str(folder), format="csv"
    )


def load_csv_kaggle(folder: Path, *, name: str) -> Dataset:
    """train.csv / test.csv, label in the first column (the Kaggle layout)."""
    tables = []
    for filename in CSV_KAGGLE:
        path = folder / filename
        data = _read_csv(path)
        if data.shape[1] < 2:
            raise DataError(f"{path}: expected a label column and pixel columns")
        tables.append(data)
    train, test = tables
    if train.shape[1] != test.shape[1]:
        hint = (
            " (is test.csv missing its label column?)"
            if test.shape[1] + 1 == train.shape[1]
            else ""
        )
        raise DataError(
            f"{folder / 'test.csv'}: rows have {test.shape[1]} columns but train.csv rows have "
            f"{train.shape[1]}{hint}"
        )
    x_train = _square(train[:, 1:], folder / "train.csv")
    x_test = _square(test[:, 1:], folder / "test.csv")
    y_train, y_test = train[:, 0].copy(), test[:, 0].copy()
    return make_dataset(
        name,
        _pixels(x_train),
        y_train,
        _pixels(x_test),
        y_test,
        where=str(folder),
        format="csv-kaggle",
    )


# ---------------------------------------------------------------- PNG tree


def _png_split_dirs(folder: Path) -> tuple[Path, Path] | None:
    for train_name, test_name in PNG_SPLITS:
        train, test = folder / train_name, folder / test_name
        if train.is_dir() and test.is_dir():
            return train, test
    return None


def _label_dirs(split_dir: Path) -> list[Path]:
    dirs = sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    strays = [p for p in split_dir.iterdir() if p.is_file() and not p.name.startswith(".")]
    if strays:
        raise DataError(f"{strays[0]}: file outside a label folder (expected {split_dir}/<label>/)")
    return dirs


#: the most pixels a dataset image may have: a header that claims more is refused before its
#: pixels are decoded (a decompression bomb claims billions from a few kilobytes)
MAX_IMAGE_PIXELS = 4096 * 4096


def _read_gray_pixels(path: Path) -> np.ndarray:
    """One image file as (height, width) uint8 grayscale; DataError naming the file for what is
    not an image, is damaged, has no pixels, or claims more than MAX_IMAGE_PIXELS."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise DataError(
                        f"{path}: image is {width}x{height}, more than the "
                        f"{MAX_IMAGE_PIXELS:,} pixels a dataset image may have"
                    )
                if width * height == 0:
                    raise DataError(f"{path}: image has no pixels ({width}x{height})")
                image.load()
                if image.mode != "L":
                    image = image.convert("L")
                return np.asarray(image, dtype=np.uint8)
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"{path}: refused as a decompression bomb ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        reason = "not an image" if isinstance(exc, UnidentifiedImageError) else str(exc)
        raise DataError(f"{path}: {reason}") from None


def _read_tree(split_dir: Path, label_of: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    entries: list[tuple[Path, int]] = []
    for label_dir in _label_dirs(split_dir):
        label = label_of[label_dir.name]
        for path in sorted(label_dir.iterdir()):
            if path.name.startswith("."):
                continue
            if path.is_dir():
                raise DataError(f"{path}: unexpected folder inside a label folder")
            entries.append((path, label))
    if not entries:
        raise DataError(f"{split_dir}: the split is empty (no images in its label folders)")
    images: np.ndarray | None = None
    labels = np.empty(len(entries), dtype=np.int64)
    for i, (path, label) in enumerate(entries):
        pixels = _read_gray_pixels(path)
        if images is None:
            if pixels.shape[0] != pixels.shape[1]:
                raise DataError(f"{path}: image is {pixels.shape[1]}x{pixels.shape[0]}, not square")
            images = np.empty((len(entries), *pixels.shape), dtype=np.uint8)
        elif pixels.shape != images.shape[1:]:
            raise DataError(
                f"{path}: image is {pixels.shape[1]}x{pixels.shape[0]} but "
                f"{entries[0][0]} is {images.shape[2]}x{images.shape[1]}"
            )
        images[i] = pixels
        labels[i] = label
    assert images is not None
    return images, labels


def load_png_tree(folder: Path, *, name: str) -> Dataset:
    """Train/<label>/*.png and Test/<label>/*.png; RGB is converted to grayscale.

    Label folders named by integers keep those integers as labels; otherwise the sorted folder
    names become classes 0..K-1 and their names.
    """
    dirs = _png_split_dirs(folder)
    if dirs is None:
        raise DataError(f"{folder}: no Train/Test (or train/test, training/testing) folders")
    train_dir, test_dir = dirs
    names = sorted({p.name for d in dirs for p in _label_dirs(d)})
    if names and all(n.isdigit() for n in names):
        label_of = {n: int(n) for n in names}
        class_names = None
    else:
        train_names = sorted(p.name for p in _label_dirs(train_dir))
        unseen = sorted(set(names) - set(train_names))
        if unseen:
            raise DataError(f"{test_dir}: test labels {unseen} never occur in the training labels")
        label_of = {n: i for i, n in enumerate(train_names)}
        class_names = tuple(train_names)
    x_train, y_train = _read_tree(train_dir, label_of)
    x_test, y_test = _read_tree(test_dir, label_of)
    return make_dataset(
        name,
        x_train,
        y_train,
        x_test,
        y_test,
        where=str(folder),
        class_names=class_names,
        format="png",
    )


# ---------------------------------------------------------------- npz


def load_npz(path: Path, *, name: str) -> Dataset:
    """x_train, y_train, x_test, y_test from a .npz file, never unpickling anything."""
    keys = ("x_train", "y_train", "x_test", "y_test")
    # np.load takes what is not a zip archive for a pickle, and says so: name the real problem
    if not zipfile.is_zipfile(path):
        raise DataError(
            f"{path}: not a .npz file (a zip archive of .npy arrays, as np.savez writes)"
        )
    check_npz_claims(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in keys if k not in archive.files]
            if missing:
                raise DataError(f"{path}: missing arrays {missing} (has {sorted(archive.files)})")
            arrays = {k: archive[k] for k in keys}
            class_names = (
                tuple(str(c) for c in archive["class_names"])
                if "class_names" in archive.files
                else None
            )
    except (zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a valid .npz file ({exc})") from None
    except DataError:  # (a ValueError too) already names the file
        raise
    except ValueError as exc:
        raise DataError(f"{path}: {exc}") from None
    images = {}
    for key in ("x_train", "x_test"):
        x = arrays[key]
        if x.dtype.kind not in "uif":
            raise DataError(f"{path}: {key} must be numeric, got dtype {x.dtype}")
        if x.ndim == 2:
            x = _square(x, path)
        elif x.ndim == 4 and x.shape[-1] == 1:
            x = x[..., 0]
        elif x.ndim != 3:
            raise DataError(f"{path}: {key} must be (n, h, w) or (n, h*w), got {x.shape}")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise DataError(f"{path}: {key} contains NaN or infinite values")
        images[key] = x
    return make_dataset(
        name,
        images["x_train"],
        arrays["y_train"],
        images["x_test"],
        arrays["y_test"],
        where=str(path),
        class_names=class_names,
        format="npz",
    )

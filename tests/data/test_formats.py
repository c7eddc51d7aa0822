"""Every dataset format loads, and every bad input gets one line naming the file and the problem."""

import gzip

import numpy as np
import pytest
from PIL import Image

from conftest import make_images, write_idx_folder
from mnistlab.data import load_dataset
from mnistlab.data.idx import write_idx
from mnistlab.errors import DataError


def _same(dataset, arrays):
    x_train, y_train, x_test, y_test = arrays
    np.testing.assert_array_equal(dataset.x_train, x_train)
    np.testing.assert_array_equal(dataset.y_train, y_train)
    np.testing.assert_array_equal(dataset.x_test, x_test)
    np.testing.assert_array_equal(dataset.y_test, y_test)
    assert dataset.y_train.dtype == np.int64


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder(tmp_path, gz):
    arrays = write_idx_folder(tmp_path / "d", gz=gz)
    dataset = load_dataset(tmp_path / "d")
    _same(dataset, arrays)
    assert dataset.format == "idx"
    assert dataset.image_shape == (8, 8)
    assert dataset.class_names == ("0", "1", "2")


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_folder_other_element_types(tmp_path, dtype):
    x_train, y_train, x_test, y_test = write_idx_folder(tmp_path / "d")
    write_idx(tmp_path / "d" / "train-images-idx3-ubyte.gz", (x_train // 2).astype(dtype))
    write_idx(tmp_path / "d" / "t10k-images-idx3-ubyte.gz", (x_test // 2).astype(dtype))
    dataset = load_dataset(tmp_path / "d")
    assert dataset.x_train.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(dataset.x_train, (x_train // 2).astype(dtype))


def _write_csv(path, rows, header=None, fmt="%d"):
    with open(path, "w") as handle:
        if header:
            handle.write(header + "\n")
        np.savetxt(handle, rows, delimiter=",", fmt=fmt)


def _csv_separate(folder, header=False):
    folder.mkdir()
    x_train, y_train = make_images(20, 6, seed=3)
    x_test, y_test = make_images(9, 6, seed=4)
    head = ",".join(f"p{i}" for i in range(36)) if header else None
    _write_csv(folder / "trainData.csv", x_train.reshape(20, -1), head)
    _write_csv(folder / "trainLabels.csv", y_train[:, None], "label" if header else None)
    _write_csv(folder / "testData.csv", x_test.reshape(9, -1), head)
    _write_csv(folder / "testLabels.csv", y_test[:, None], "label" if header else None)
    return x_train, y_train, x_test, y_test


@pytest.mark.parametrize("header", [False, True])
def test_csv_separate_files(tmp_path, header):
    arrays = _csv_separate(tmp_path / "c", header)
    dataset = load_dataset(tmp_path / "c")
    _same(dataset, arrays)
    assert dataset.format == "csv" and dataset.x_train.dtype == np.uint8


def _csv_kaggle(folder, header=True):
    folder.mkdir()
    arrays = []
    for name, n, seed in (("train.csv", 15, 5), ("test.csv", 6, 6)):
        x, y = make_images(n, 5, seed=seed)
        head = "label," + ",".join(f"pixel{i}" for i in range(25)) if header else None
        _write_csv(folder / name, np.column_stack([y, x.reshape(n, -1)]), head)
        arrays += [x, y]
    return arrays[0], arrays[1], arrays[2], arrays[3]


@pytest.mark.parametrize("header", [False, True])
def test_csv_kaggle_layout(tmp_path, header):
    arrays = _csv_kaggle(tmp_path / "k", header)
    dataset = load_dataset(tmp_path / "k")
    _same(dataset, arrays)
    assert dataset.format == "csv-kaggle"


def _png_tree(folder, split_names=("Train", "Test"), size=7, rgb=False, labels=("0", "1", "2")):
    arrays = []
    for split, n, seed in ((split_names[0], 12, 7), (split_names[1], 6, 8)):
        x, y = make_images(n, size, n_classes=len(labels), seed=seed)
        for i, (image, label) in enumerate(zip(x, y, strict=True)):
            label_dir = folder / split / labels[label]
            label_dir.mkdir(parents=True, exist_ok=True)
            picture = Image.fromarray(image, mode="L")
            if rgb:
                picture = picture.convert("RGB")
            picture.save(label_dir / f"{i:04d}.png")
        order = np.lexsort((np.arange(n), y))  # the loader reads label folders in order
        arrays += [x[order], y[order]]
    return tuple(arrays)


@pytest.mark.parametrize(
    "split_names", [("Train", "Test"), ("train", "test"), ("training", "testing")]
)
def test_png_tree(tmp_path, split_names):
    arrays = _png_tree(tmp_path / "p", split_names)
    dataset = load_dataset(tmp_path / "p")
    _same(dataset, arrays)
    assert dataset.image_shape == (7, 7) and dataset.format == "png"


def test_png_tree_rgb_is_converted_to_gray(tmp_path):
    arrays = _png_tree(tmp_path / "p", rgb=True, size=9)
    dataset = load_dataset(tmp_path / "p")
    _same(dataset, arrays)  # gray -> RGB -> gray is exact


def test_png_tree_named_label_folders_become_class_names(tmp_path):
    _png_tree(tmp_path / "p", labels=("cat", "dog", "emu"))
    dataset = load_dataset(tmp_path / "p")
    assert dataset.class_names == ("cat", "dog", "emu")


def test_npz(tmp_path):
    arrays = make_images(10, 4, seed=1) + make_images(5, 4, seed=2)
    x_train, y_train, x_test, y_test = arrays
    np.savez(tmp_path / "d.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    dataset = load_dataset(tmp_path / "d.npz")
    _same(dataset, (x_train, y_train, x_test, y_test))
    flat = tmp_path / "flat.npz"
    np.savez(
        flat,
        x_train=x_train.reshape(10, -1),
        y_train=y_train,
        x_test=x_test.reshape(5, -1),
        y_test=y_test,
    )
    assert load_dataset(flat).image_shape == (4, 4)


# ------------------------------------------------------------------ bad inputs


def _error(path) -> str:
    with pytest.raises(DataError) as info:
        load_dataset(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_image_and_label_counts_differ(tmp_path):
    write_idx_folder(tmp_path / "d")
    write_idx(tmp_path / "d" / "train-labels-idx1-ubyte.gz", np.zeros(29, np.uint8))
    assert (
        "train-images-idx3-ubyte.gz: 30 images but train-labels-idx1-ubyte.gz has 29 labels"
        in _error(tmp_path / "d")
    )


def test_empty_split(tmp_path):
    write_idx_folder(tmp_path / "d")
    write_idx(tmp_path / "d" / "t10k-images-idx3-ubyte.gz", np.zeros((0, 8, 8), np.uint8))
    write_idx(tmp_path / "d" / "t10k-labels-idx1-ubyte.gz", np.zeros(0, np.uint8))
    assert "the test split is empty" in _error(tmp_path / "d")


def test_test_labels_unseen_in_training(tmp_path):
    x_train, y_train, x_test, y_test = write_idx_folder(tmp_path / "d")
    y_test = y_test.copy()
    y_test[0] = 7
    write_idx(tmp_path / "d" / "t10k-labels-idx1-ubyte.gz", y_test)
    assert "test labels [7] never occur in the training labels" in _error(tmp_path / "d")


def test_negative_labels(tmp_path):
    write_idx_folder(tmp_path / "d")
    labels = np.zeros(30, np.int8)
    labels[4] = -1
    write_idx(tmp_path / "d" / "train-labels-idx1-ubyte.gz", labels)
    assert "label -1 at index 4 is negative" in _error(tmp_path / "d")


def test_non_integer_labels(tmp_path):
    write_idx_folder(tmp_path / "d")
    labels = np.zeros(30, np.float32)
    labels[3] = 1.5
    write_idx(tmp_path / "d" / "train-labels-idx1-ubyte.gz", labels)
    assert "label 1.5 at index 3 is not an integer" in _error(tmp_path / "d")


def test_truncated_gzip_in_a_folder(tmp_path):
    write_idx_folder(tmp_path / "d")
    path = tmp_path / "d" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-30])
    assert "train-images-idx3-ubyte.gz: truncated gzip file" in _error(tmp_path / "d")


def test_missing_idx_file_is_named(tmp_path):
    write_idx_folder(tmp_path / "d")
    (tmp_path / "d" / "t10k-labels-idx1-ubyte.gz").unlink()
    assert "IDX files missing: ['t10k-labels-idx1-ubyte']" in _error(tmp_path / "d")


@pytest.mark.parametrize("header", [False, True])
@pytest.mark.parametrize(
    "cell, problem",
    [
        ("abc", "line {line}, column 1: 'abc' is not a number"),
        ("", "line {line}, column 1: '' is not a number"),
        ("nan", "line {line}, column 1: nan is not a finite number"),
        ("inf", "line {line}, column 1: inf is not a finite number"),
    ],
)
def test_csv_bad_cell_is_named_by_line_and_column(tmp_path, header, cell, problem):
    _csv_separate(tmp_path / "c", header=header)
    path = tmp_path / "c" / "trainData.csv"
    lines = path.read_text().splitlines()
    lines[3] = ",".join([cell] + lines[3].split(",")[1:])  # the file's 4th line
    path.write_text("\n".join(lines) + "\n")
    assert _error(tmp_path / "c") == f"{path}: " + problem.format(line=4)


@pytest.mark.parametrize("header", [False, True])
def test_csv_rows_of_different_lengths(tmp_path, header):
    _csv_separate(tmp_path / "c", header=header)
    path = tmp_path / "c" / "trainData.csv"
    lines = path.read_text().splitlines()
    lines[5] = lines[5] + ",0"
    path.write_text("\n".join(lines) + "\n")
    assert _error(tmp_path / "c") == f"{path}: line 6 has 37 values, the lines before it 36"


def test_csv_not_square(tmp_path):
    folder = tmp_path / "c"
    _csv_separate(folder)
    rows = np.zeros((20, 35), int)
    _write_csv(folder / "trainData.csv", rows)
    assert "35 values per image is not a square image" in _error(folder)


def test_kaggle_test_without_labels(tmp_path):
    folder = tmp_path / "k"
    _csv_kaggle(folder, header=False)
    x, _ = make_images(6, 5, seed=6)
    _write_csv(
        folder / "test.csv", np.column_stack([np.zeros((6, 1), int), x.reshape(6, -1)])[:, 1:]
    )
    assert "is test.csv missing its label column?" in _error(folder)


def test_png_tree_images_of_different_sizes(tmp_path):
    _png_tree(tmp_path / "p")
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(tmp_path / "p" / "Train" / "1" / "zz.png")
    message = _error(tmp_path / "p")
    assert "zz.png: image is 9x9 but" in message and "is 7x7" in message


def test_png_tree_non_image_file(tmp_path):
    _png_tree(tmp_path / "p")
    (tmp_path / "p" / "Test" / "2" / "notes.txt").write_text("hello")
    assert "notes.txt: not an image" in _error(tmp_path / "p")


def test_png_tree_non_square(tmp_path):
    _png_tree(tmp_path / "p")
    Image.fromarray(np.zeros((7, 9), np.uint8)).save(tmp_path / "p" / "Train" / "0" / "0000.png")
    assert "0000.png: image is 9x7, not square" in _error(tmp_path / "p")


def test_png_tree_empty_split(tmp_path):
    _png_tree(tmp_path / "p")
    for path in (tmp_path / "p" / "Test").rglob("*.png"):
        path.unlink()
    assert "the split is empty" in _error(tmp_path / "p")


def test_npz_missing_key(tmp_path):
    np.savez(tmp_path / "d.npz", x_train=np.zeros((2, 4, 4)), y_train=np.zeros(2))
    path = tmp_path / "d.npz"
    assert (
        _error(path) == f"{path}: missing arrays ['x_test', 'y_test'] (has ['x_train', 'y_train'])"
    )


def test_npz_object_arrays_are_never_unpickled(tmp_path):
    np.savez(
        tmp_path / "d.npz",
        x_train=np.array([object()] * 2, dtype=object),
        y_train=np.zeros(2),
        x_test=np.zeros((1, 4, 4)),
        y_test=np.zeros(1),
    )
    assert "allow_pickle=False" in _error(tmp_path / "d.npz")


@pytest.mark.parametrize("content", [b"garbage", b"", "npy"])
def test_npz_not_a_zip(tmp_path, content):
    if content == "npy":  # one array saved with np.save, under the .npz name
        np.save(tmp_path / "d.npy", np.zeros(3))
        (tmp_path / "d.npy").rename(tmp_path / "d.npz")
    else:
        (tmp_path / "d.npz").write_bytes(content)
    message = _error(tmp_path / "d.npz")
    assert "d.npz: not a .npz file (a zip archive of .npy arrays" in message
    assert "pickle" not in message  # NumPy's own message would send the user the wrong way


def test_unknown_name(tmp_path):
    assert "unknown dataset 'nope'" in _error("nope")


def test_not_gzip(tmp_path):
    write_idx_folder(tmp_path / "d")
    (tmp_path / "d" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"plain text, not gzip")
    assert "t10k-labels-idx1-ubyte.gz: not a gzip file" in _error(tmp_path / "d")


def test_wrong_magic_in_folder(tmp_path):
    write_idx_folder(tmp_path / "d")
    (tmp_path / "d" / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x08\x08\x08\x08"))
    assert "wrong IDX magic number" in _error(tmp_path / "d")


def _npz_with_a_lying_header(path, shape=(10**6, 10**6)):
    """A .npz whose x_train.npy header claims `shape` of uint8 over a 16-byte payload."""
    import io
    import zipfile

    from numpy.lib import format as npy

    header = io.BytesIO()
    npy.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x_train.npy", header.getvalue() + b"\x00" * 16)
        for key in ("y_train", "x_test", "y_test"):
            buffer = io.BytesIO()
            np.save(buffer, np.zeros(4, dtype=np.uint8))
            archive.writestr(f"{key}.npy", buffer.getvalue())
    return path


def test_npz_header_claiming_more_than_stored_is_refused_before_allocating(tmp_path):
    path = _npz_with_a_lying_header(tmp_path / "data.npz")
    with pytest.raises(DataError, match=r"array 'x_train' claims shape \(1000000, 1000000\)"):
        load_dataset(path)


def test_weights_file_with_a_lying_header_is_refused(tmp_path):
    from mnistlab.train.checkpoint import load_npz

    path = _npz_with_a_lying_header(tmp_path / "weights.npz", shape=(2**40,))
    with pytest.raises(DataError, match="claims shape"):
        load_npz(path)


def _npz(path, y_train, y_test, side=4):
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.integers(0, 255, (len(y_train), side, side), dtype=np.uint8),
        y_train=np.asarray(y_train),
        x_test=rng.integers(0, 255, (len(y_test), side, side), dtype=np.uint8),
        y_test=np.asarray(y_test),
    )
    return path


def test_classes_are_the_distinct_labels_present(tmp_path):
    """A stray label 200 among 0..9 makes an 11-class problem whose last class is named '200'
    (not 201 classes, 190 of them empty)."""
    labels = [*range(10), 200, 3]
    dataset = load_dataset(_npz(tmp_path / "d.npz", labels, [200, 0]))
    assert dataset.class_names == (*[str(i) for i in range(10)], "200")
    assert dataset.y_train.tolist() == [*range(10), 10, 3]
    assert dataset.y_test.tolist() == [10, 0]


def test_a_huge_label_costs_nothing(tmp_path):
    """Labels of 2,000,000,000 built one class name per integer up to them (3.8 GB)."""
    dataset = load_dataset(_npz(tmp_path / "d.npz", [7, 2_000_000_000], [7]))
    assert dataset.class_names == ("7", "2000000000")
    assert dataset.n_classes == 2 and dataset.y_train.tolist() == [0, 1]


def test_contiguous_labels_keep_their_values(tmp_path):
    dataset = load_dataset(_npz(tmp_path / "d.npz", [2, 0, 1, 1], [1, 2]))
    assert dataset.class_names == ("0", "1", "2") and dataset.y_train.tolist() == [2, 0, 1, 1]


def test_png_tree_image_without_pixels(tmp_path):
    _png_tree(tmp_path / "p")
    (tmp_path / "p" / "Train" / "0" / "0000.png").unlink()
    (tmp_path / "p" / "Train" / "0" / "0000.pgm").write_bytes(b"P5\n0 0\n255\n")
    message = _error(tmp_path / "p")  # PIL itself may refuse the header: one line either way
    assert "0000.pgm: image has no pixels (0x0)" in message or "0000.pgm: not an image" in message


@pytest.mark.parametrize("side", [5000, 200_000])
def test_png_tree_image_claiming_too_many_pixels_is_not_decoded(tmp_path, side):
    """A header claiming billions of pixels from a few bytes (a decompression bomb) is refused
    from its header, past PIL's own limit or below it."""
    _png_tree(tmp_path / "p")
    (tmp_path / "p" / "Train" / "1" / "bomb.pgm").write_bytes(f"P5\n{side} {side}\n255\n".encode())
    message = _error(tmp_path / "p")
    assert "bomb.pgm: " in message
    assert "decompression bomb" in message or "more than the 16,777,216 pixels" in message


@pytest.mark.parametrize("content", ["", "a,b,c\n"])
def test_csv_without_data_rows_is_one_line_without_numpys_warning(tmp_path, content, recwarn):
    folder = tmp_path / "c"
    _csv_separate(folder)
    (folder / "testData.csv").write_text(content)
    message = _error(folder)
    assert "testData.csv: no data rows" in message
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]

import numpy as np
import pytest

from mnistlab.data import (
    Standardizer,
    balanced_subset,
    batch_indices,
    flatten,
    load_dataset,
    minibatches,
    one_hot,
    to_float,
    train_validation_split,
)
from mnistlab.errors import UsageError


def test_to_float_scales_into_unit_interval_as_float32():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    x = to_float(images)
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, images / 255.0, rtol=1e-6)
    assert to_float(images, dtype=np.float64).dtype == np.float64
    np.testing.assert_allclose(to_float(np.array([16], np.uint8), 16), [1.0])


def test_flatten_is_a_view():
    images = np.zeros((3, 4, 4), np.float32)
    flat = flatten(images)
    assert flat.shape == (3, 16) and np.shares_memory(flat, images)


def test_standardizer_uses_training_statistics_only():
    rng = np.random.default_rng(0)
    train = rng.normal(5, 2, size=(500, 6)).astype(np.float32)
    train[:, 3] = 1.0  # constant feature: left unscaled, no division by zero
    test = rng.normal(50, 2, size=(10, 6)).astype(np.float32)
    scaler = Standardizer().fit(train)
    z = scaler.transform(train)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(np.delete(z.std(axis=0), 3), 1, atol=1e-4)
    assert np.all(scaler.transform(test)[:, [0, 1]] > 10)  # test statistics were not used
    assert z.dtype == np.float32


def test_one_hot():
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(UsageError, match=r"labels must lie in \[0, 3\)"):
        one_hot(np.array([3]), 3)


def test_validation_split_holds_out_the_last_n_as_views():
    x = np.arange(100).reshape(50, 2)
    y = np.arange(50)
    x_tr, y_tr, x_val, y_val = train_validation_split(x, y, 10)
    assert x_tr.shape == (40, 2) and np.shares_memory(x_tr, x)
    np.testing.assert_array_equal(y_val, np.arange(40, 50))
    assert train_validation_split(x, y, 0.2)[2].shape == (10, 2)


def test_validation_split_stratified_and_seeded():
    y = np.repeat(np.arange(5), 20)
    x = np.arange(100)
    a = train_validation_split(x, y, 0.25, stratify=True, seed=3)
    b = train_validation_split(x, y, 0.25, stratify=True, seed=3)
    np.testing.assert_array_equal(a[2], b[2])
    np.testing.assert_array_equal(np.bincount(a[3]), [5] * 5)
    assert set(a[0]).isdisjoint(set(a[2]))


@pytest.mark.parametrize("bad", [0, 50, -1, 1.5, True])
def test_validation_split_rejects_bad_sizes(bad):
    with pytest.raises(UsageError, match="validation"):
        train_validation_split(np.zeros(50), np.zeros(50), bad)


def test_balanced_subset():
    y = np.repeat(np.arange(3), [10, 20, 30])
    x = np.arange(60)
    xs, ys = balanced_subset(x, y, 7, seed=1)
    np.testing.assert_array_equal(np.bincount(ys), [7, 7, 7])
    np.testing.assert_array_equal(y[xs], ys)
    with pytest.raises(UsageError, match="class 0 has only 10 images"):
        balanced_subset(x, y, 11)


def test_minibatches_reshuffle_every_epoch_and_are_seeded():
    x = np.arange(10)
    first = [b.tolist() for b, _ in minibatches(x, x, 4, seed=0, epochs=2)]
    again = [b.tolist() for b, _ in minibatches(x, x, 4, seed=0, epochs=2)]
    assert first == again
    assert [len(b) for b in first] == [4, 4, 2, 4, 4, 2]
    assert sorted(sum(first[:3], [])) == list(range(10))
    assert first[:3] != first[3:]
    dropped = list(batch_indices(10, 4, rng=np.random.default_rng(0), drop_last=True))
    assert [len(b) for b in dropped] == [4, 4]
    ordered = [b.tolist() for b, _ in minibatches(x, x, 4, shuffle=False)]
    assert ordered == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_digits_is_offline_and_stratified():
    digits = load_dataset("digits", offline=True)
    assert digits.n_train + digits.n_test == 1797
    assert digits.image_shape == (8, 8) and digits.pixel_max == 16
    assert digits.x_train.max() == 16
    share = digits.class_counts("test") / digits.class_counts("train")
    assert np.all(np.abs(share - 0.25) < 0.02)
    again = load_dataset("digits")
    np.testing.assert_array_equal(again.y_test, digits.y_test)

"""The minibatch gather, in a helper thread or in the caller's, yields exactly the plain gather's
minibatches."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mnistlab.train.batches import PrefetchedBatches


@pytest.mark.parametrize("background", [True, False])
@pytest.mark.parametrize(
    ("n", "batch_size", "start"), [(1000, 32, 0), (1000, 128, 3), (70, 7, 9), (5, 8, 0)]
)
def test_same_minibatches_as_a_plain_gather(n, batch_size, start, background):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    y = rng.integers(0, 10, n).astype(np.uint8)
    order = rng.permutation(n)
    steps = -(-n // batch_size)
    with PrefetchedBatches(x, y, order, batch_size, start, steps, background) as batches:
        got = [(xb.copy(), yb.copy()) for xb, yb in batches]
        assert (batches._thread.ident is not None) == background  # started only in background
    assert len(got) == steps - start
    for i, (xb, yb) in enumerate(got, start=start):
        index = order[i * batch_size : (i + 1) * batch_size]
        np.testing.assert_array_equal(xb, x[index])
        np.testing.assert_array_equal(yb, y[index])


def test_a_batch_is_not_overwritten_while_its_step_runs():
    n, b = 4096, 16
    x = np.arange(n * 3, dtype=np.float64).reshape(n, 3)
    y = np.zeros(n, dtype=np.uint8)
    order = np.random.default_rng(1).permutation(n)
    with PrefetchedBatches(x, y, order, b, 0, n // b) as batches:
        for i, (xb, _) in enumerate(batches):
            expected = x[order[i * b : (i + 1) * b]]
            threading.Event().wait(0.0005)  # let the helper run ahead as far as it may
            np.testing.assert_array_equal(xb, expected)


def test_breaking_out_stops_the_helper_thread():
    x = np.zeros((10000, 4), dtype=np.float32)
    y = np.zeros(10000, dtype=np.uint8)
    before = threading.active_count()
    with PrefetchedBatches(x, y, np.arange(10000), 32, 0, 313) as batches:
        for i, _ in enumerate(batches):
            if i == 3:
                break
    assert threading.active_count() == before


def test_an_error_in_the_helper_reaches_the_training_thread():
    x = np.zeros((100, 4), dtype=np.float32)
    y = np.zeros(100, dtype=np.uint8)
    bad_order = np.arange(100) + 1000  # out of range
    with pytest.raises(IndexError), PrefetchedBatches(x, y, bad_order, 10, 0, 10) as batches:
        list(batches)


@pytest.mark.parametrize("background", [True, False])
@pytest.mark.parametrize("start", [0, 3])
def test_a_transform_sees_each_minibatch_once_with_its_index(background, start):
    """What the transform does depends on the minibatch's index in the epoch alone, not on the
    chunk it was gathered in, the thread, or where the iteration started."""
    n, b = 300, 16
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    y = np.zeros(n, dtype=np.uint8)
    order = np.random.default_rng(2).permutation(n)
    seen = []

    def transform(x_batch, index):
        seen.append(index)
        x_batch += 1000 * index

    steps = -(-n // b)
    with PrefetchedBatches(x, y, order, b, start, steps, background, transform) as batches:
        got = [xb.copy() for xb, _ in batches]
    assert seen == list(range(start, steps))
    for i, xb in enumerate(got, start=start):
        np.testing.assert_array_equal(xb, x[order[i * b : (i + 1) * b]] + 1000 * i)

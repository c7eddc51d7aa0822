"""Integration: the full Fashion-MNIST from Debian's dataset-fashion-mnist package."""

import numpy as np
import pytest

from conftest import needs_fashion
from mnistlab.data import load_dataset

pytestmark = [needs_fashion, pytest.mark.fashion]


def test_full_fashion_mnist_from_the_debian_package():
    data = load_dataset("fashion-mnist", offline=True)
    assert data.source == "/usr/share/datasets/fashion-mnist"
    assert (data.n_train, data.n_test) == (60_000, 10_000)
    assert data.image_shape == (28, 28) and data.x_train.dtype == np.uint8
    np.testing.assert_array_equal(data.class_counts("train"), [6000] * 10)
    np.testing.assert_array_equal(data.class_counts("test"), [1000] * 10)
    assert data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"
    assert data.x_train.flags.writeable and data.x_train.flags.c_contiguous

"""Weights files that do not fit their model.json are refused when the model is loaded."""

from __future__ import annotations

import numpy as np
import pytest

from mnistlab.data import flatten, load_dataset, to_float
from mnistlab.errors import DataError
from mnistlab.models import (
    GaussianClassifier,
    KNeighborsClassifier,
    MLPClassifier,
    OneVsAllLogistic,
    SoftmaxRegression,
    load_model,
)


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits")
    return flatten(to_float(data.x_train, data.pixel_max)), data.y_train


def _rewrite(folder, change):
    path = folder / "weights.npz"
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    change(arrays)
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    "model, name",
    [
        (lambda: MLPClassifier(hidden_layer_sizes=(8,), epochs=1), None),
        (lambda: SoftmaxRegression(epochs=1), "coef"),
        (lambda: OneVsAllLogistic(max_iter=5), "coef"),
        (lambda: GaussianClassifier(), "means"),
        (lambda: KNeighborsClassifier(), "train_x"),
    ],
)
def test_integer_weights_are_refused_not_truncated(tmp_path, digits, model, name):
    fitted = model().fit(*digits)
    fitted.save(tmp_path)

    def to_int32(arrays):
        key = name or next(k for k in arrays if k != "__meta__" and arrays[k].dtype.kind == "f")
        arrays[key] = arrays[key].astype(np.int32)

    _rewrite(tmp_path, to_int32)
    if name == "train_x":  # k-NN keeps its training pixels: integers are pixels too
        assert load_model(tmp_path).predict(digits[0][:5]).shape == (5,)
        return
    with pytest.raises(DataError, match=r"holds int32 values"):
        load_model(tmp_path)


@pytest.mark.parametrize(
    "model, name, bad",
    [
        (lambda: SoftmaxRegression(epochs=1), "coef", lambda a: a[:, :10]),
        (lambda: GaussianClassifier(), "factors", lambda a: a[:3]),
        (lambda: KNeighborsClassifier(), "train_x", lambda a: a[:, :20]),
        (lambda: KNeighborsClassifier(), "train_y", lambda a: a[:, None]),
    ],
)
def test_arrays_of_another_shape_are_refused(tmp_path, digits, model, name, bad):
    model().fit(*digits).save(tmp_path)
    _rewrite(tmp_path, lambda arrays: arrays.__setitem__(name, bad(arrays[name])))
    with pytest.raises(DataError, match=rf"array '{name}' has shape"):
        load_model(tmp_path)

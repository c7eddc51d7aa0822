"""Model names as used by `mnistlab train --model` and model.json, and loading a saved model."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mnistlab._io import read_json
from mnistlab.errors import DataError
from mnistlab.models.base import MODEL_FORMAT_VERSION, Classifier
from mnistlab.models.cnn import CNNClassifier
from mnistlab.models.gaussian import GaussianClassifier
from mnistlab.models.knn import KNeighborsClassifier
from mnistlab.models.logistic import OneVsAllLogistic
from mnistlab.models.mlp import MLPClassifier
from mnistlab.models.softmax import SoftmaxRegression
from mnistlab.train.checkpoint import load_npz

MODELS: dict[str, type[Classifier]] = {
    cls.model_name: cls
    for cls in (
        MLPClassifier,
        CNNClassifier,
        SoftmaxRegression,
        OneVsAllLogistic,
        GaussianClassifier,
        KNeighborsClassifier,
    )
}


def load_model(folder: str | os.PathLike) -> Classifier:
    """Load any model saved with .save(folder)."""
    folder = Path(folder)
    meta_path = folder / "model.json"
    if not meta_path.is_file():
        raise DataError(f"{meta_path}: no such file (is {folder} a run folder?)")
    meta = read_json(meta_path)
    if meta.get("format_version") != MODEL_FORMAT_VERSION:
        raise DataError(
            f"{meta_path}: model format {meta.get('format_version')!r} is not "
            f"supported (this version reads {MODEL_FORMAT_VERSION})"
        )
    if meta.get("model") not in MODELS:
        raise DataError(f"{meta_path}: unknown model {meta.get('model')!r}")
    cls = MODELS[meta["model"]]
    arguments, unknown = _arguments(cls, meta["params"])
    if unknown:
        raise DataError(f"{meta_path}: {cls.__name__} has no parameters {sorted(unknown)}")
    model = cls(**arguments)
    arrays, _ = load_npz(folder / "weights.npz")
    model.classes_ = np.asarray(meta["classes"])
    model.n_features_in_ = int(meta["n_features_in"])
    weights = folder / "weights.npz"
    expected = model._expected_arrays(len(model.classes_), model.n_features_in_)
    for name, (shape, kinds) in expected.items():
        check_array_file(weights, name, arrays.get(name), shape, kinds)
    try:
        model._restore(meta, arrays)
    except (KeyError, ValueError) as exc:
        raise DataError(f"{folder / 'weights.npz'}: does not fit model.json ({exc})") from None
    return model


def _arguments(cls: type[Classifier], params: dict) -> tuple[dict, set]:
    """model.json's parameters as cls's arguments, and the names it does not know. Files
    written before the estimators took scikit-learn's names hold the configuration keys instead
    (seed, k, hidden, beta1, beta2); layer sizes, a list in JSON, are a tuple on the estimator."""
    arguments, known = {}, set()
    for spec in cls.param_specs:
        for name in (spec.name, spec.key):
            if name in params:
                value = params[name]
                arguments[spec.name] = tuple(value) if spec.kind == "sizes" else value
                known.add(name)
    return arguments, set(params) - known


def check_array_file(path: Path, name: str, array, shape: tuple | None, kinds: str) -> None:
    """DataError naming `path` when the array `name` is missing, of another kind of number than
    `kinds` allows, or of another shape than `shape` (None entries match any size)."""
    if array is None:
        raise DataError(f"{path}: missing the array {name!r}")
    if array.dtype.kind not in kinds:
        wanted = "floating-point" if kinds == "f" else "integer"
        raise DataError(
            f"{path}: array {name!r} holds {array.dtype} values; the model was saved with "
            f"{wanted} ones"
        )
    if shape is not None and (
        array.ndim != len(shape)
        or any(s is not None and s != got for s, got in zip(shape, array.shape, strict=True))
    ):
        wanted = "(" + ", ".join("n" if size is None else str(size) for size in shape) + ")"
        raise DataError(
            f"{path}: array {name!r} has shape {array.shape}; model.json's classes and "
            f"features need {wanted}"
        )

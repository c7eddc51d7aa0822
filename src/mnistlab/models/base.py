"""What every mnistlab model shares: the estimator conventions and pickle-free persistence.

Conventions (scikit-learn's): __init__ only stores its arguments; fit(X, y) returns self;
learned attributes end in `_`; predict, predict_proba and score(X, y) = accuracy.
Each class describes its parameters in `param_specs` (mnistlab.models.params), and fit checks
them there (`_validate_params`), as scikit-learn's `_parameter_constraints` do.
A saved model is a folder with `model.json` (the class, its parameters and learned metadata, a
format version) and `weights.npz` (arrays, read back with allow_pickle=False); load it with
mnistlab.models.load_model.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from pathlib import Path
from typing import ClassVar

import numpy as np

from mnistlab._io import write_text_atomic
from mnistlab.errors import UsageError
from mnistlab.metrics import log_loss
from mnistlab.models.params import ParamSpec, validate_params
from mnistlab.train.checkpoint import save_npz

MODEL_FORMAT_VERSION = 1


class Classifier:
    """Base class for mnistlab's classifiers."""

    #: the name used by `mnistlab train --model` and in model.json
    model_name = "classifier"
    #: one spec per argument of __init__, in the order `mnistlab train` lists their options
    param_specs: ClassVar[tuple[ParamSpec, ...]] = ()
    #: how fit's errors quote a bad argument: "keyword" (got C=-1) or "python" (got -1)
    error_style: ClassVar[str] = "keyword"

    @classmethod
    def check_params(cls, values: dict, style: str = "keyword") -> None:
        """Raise UsageError for the first bad value in `values` (argument name -> value); errors
        name arguments in `style` (see mnistlab.models.params)."""
        validate_params(cls.param_specs, values, style)
        cls._check_param_combinations(values, style)

    @classmethod
    def _check_param_combinations(cls, values: dict, style: str) -> None:
        """Constraints between parameters, after each has passed its own spec."""

    @classmethod
    def param_spec(cls, name: str) -> ParamSpec:
        return next(spec for spec in cls.param_specs if spec.name == name)

    def _validate_params(self) -> None:
        self.check_params(self.get_params(), self.error_style)

    def get_params(self) -> dict:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def set_params(self, **params) -> Classifier:
        valid = self.get_params()
        for key, value in params.items():
            if key not in valid:
                raise UsageError(f"{type(self).__name__} has no parameter {key!r}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ shared checks

    def _check_X(self, X, *, fitting: bool = False) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim > 2:  # images: one row of pixels each
            X = X.reshape(X.shape[0], math.prod(X.shape[1:]))
        if X.ndim != 2:
            raise UsageError(f"X must be (n_samples, n_features), got shape {X.shape}")
        if X.dtype.kind not in "fiub":
            raise UsageError(f"X must be numeric, got dtype {X.dtype}")
        _check_finite(X)
        if not fitting:
            self._check_fitted()
            if X.shape[1] != self.n_features_in_:
                raise UsageError(
                    f"X has {X.shape[1]} features, but {type(self).__name__} was "
                    f"fitted with {self.n_features_in_}"
                )
        return X

    def _check_y(self, X: np.ndarray, y) -> np.ndarray:
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise UsageError(
                f"y must be one label per row of X ({X.shape[0]}), got shape {y.shape}"
            )
        classes = np.unique(y)
        if classes.size < 2:
            raise UsageError(
                f"need at least two classes to fit a classifier, got {classes.tolist()}"
            )
        return y

    def _check_validation(self, X: np.ndarray, validation_data) -> tuple[np.ndarray, np.ndarray]:
        """(X_val, y_val) checked against the training X and classes_ (set by fit before this);
        returns X_val and y_val as class indices."""
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            size = f" of {len(validation_data)}" if isinstance(validation_data, tuple) else ""
            raise UsageError(
                "validation_data must be a pair (X_val, y_val), got "
                f"{type(validation_data).__name__}{size}"
            )
        x_val = self._check_X(validation_data[0], fitting=True)
        if x_val.shape[1] != X.shape[1]:
            raise UsageError(f"validation X has {x_val.shape[1]} features, X has {X.shape[1]}")
        y_val = np.asarray(validation_data[1])
        if y_val.shape != (x_val.shape[0],):
            raise UsageError(
                "validation y must be one label per row of validation X "
                f"({x_val.shape[0]}), got shape {y_val.shape}"
            )
        unknown = np.setdiff1d(np.unique(y_val), self.classes_)
        if unknown.size:
            raise UsageError(f"validation labels {unknown.tolist()} do not occur in y")
        return x_val, np.searchsorted(self.classes_, y_val)

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise UsageError(f"this {type(self).__name__} is not fitted yet; call fit first")

    def predict(self, X) -> np.ndarray:
        """Predicted class labels: (n,)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def evaluate(self, X, y) -> dict:
        """Log loss of the predicted probabilities, accuracy and error count on (X, y)."""
        y = np.asarray(y)
        proba = self.predict_proba(X)
        index = np.searchsorted(self.classes_, y)
        if np.any(index >= self.classes_.size) or np.any(self.classes_[index] != y):
            raise UsageError(
                f"y holds labels the model never saw: {np.setdiff1d(y, self.classes_).tolist()}"
            )
        errors = int(np.count_nonzero(self.classes_[proba.argmax(axis=1)] != y))
        return {
            "loss": log_loss(index, proba, eps=1e-15),
            "accuracy": 1.0 - errors / y.size,
            "errors": errors,
            "n": int(y.size),
        }

    def score(self, X, y) -> float:
        """Accuracy on (X, y)."""
        return float(np.mean(self.predict(X) == np.asarray(y)))

    # ------------------------------------------------------------------ persistence

    def _extra_meta(self) -> dict:
        return {}

    def _arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _restore(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def save(self, folder: str | os.PathLike) -> Path:
        """Write model.json and weights.npz into `folder` (each atomically)."""
        self._check_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "format_version": MODEL_FORMAT_VERSION,
            "model": self.model_name,
            "params": _jsonable(self.get_params()),
            "classes": self.classes_.tolist(),
            "n_features_in": int(self.n_features_in_),
            **self._extra_meta(),
        }
        save_npz(folder / "weights.npz", self._arrays())
        write_text_atomic(folder / "model.json", json.dumps(meta, indent=2) + "\n")
        return folder


def _check_finite(X: np.ndarray) -> None:
    """Refuse NaN and infinities, as scikit-learn's check_array does: no model here can learn
    from them, and a NaN pixel silently turns a prediction into the first class."""
    if X.dtype.kind != "f" or X.size == 0:
        return
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(X.sum()):  # one fast pass; inconclusive only when the sum overflows
            return
    bad = ~np.isfinite(X)
    if not bad.any():  # the sum overflowed on large finite values
        return
    row, column = np.argwhere(bad)[0]
    raise UsageError(
        f"X holds {int(bad.sum())} NaN or infinite values (the first at row {row}, column "
        f"{column}: {X[row, column]}); the models need finite inputs"
    )


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "config"):
        return value.config()
    return value

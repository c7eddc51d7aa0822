"""What every mnistlab model shares: scikit-learn's estimator base classes, its input checks,
and pickle-free persistence.

Every model derives from scikit-learn's ``ClassifierMixin`` and ``BaseEstimator``, so that
``clone``, ``Pipeline``, ``GridSearchCV``, ``cross_val_score`` and the HTML repr take it as one
of their own; only those base classes and the helpers of ``sklearn.utils.validation`` and
``sklearn.utils.multiclass`` come from scikit-learn, never an estimator's computation.
Conventions (scikit-learn's): ``__init__`` only stores its arguments; ``fit(X, y)`` returns
self; learned attributes end in ``_``; ``predict``, ``predict_proba`` and ``score(X, y)`` (the
accuracy). Each class describes its parameters in ``param_specs`` (mnistlab.models.params) and
fit checks them there (``_validate_params``), as scikit-learn's ``_parameter_constraints`` do.

Inputs are checked by scikit-learn's ``validate_data``, so bad input gets scikit-learn's message;
its ValueErrors are raised as mnistlab's UsageError (a ValueError too), which the command line
prints on one line. A saved model is a folder with ``model.json`` (the class, its parameters and
learned metadata, a format version) and ``weights.npz`` (arrays, read back with
allow_pickle=False); load it with mnistlab.models.load_model.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

from mnistlab._io import write_text_atomic
from mnistlab.errors import UsageError
from mnistlab.export.onnx import to_onnx as _to_onnx
from mnistlab.metrics import log_loss
from mnistlab.models.params import ParamSpec, validate_params
from mnistlab.nn.functional import softmax
from mnistlab.train.checkpoint import save_npz

MODEL_FORMAT_VERSION = 1


class NotFittedError(UsageError, SklearnNotFittedError):
    """A method that needs a fitted model was called before fit: scikit-learn's NotFittedError
    (a ValueError and an AttributeError) that is also mnistlab's UsageError (one line, exit 2)."""


class Classifier(ClassifierMixin, BaseEstimator):
    """Base class for mnistlab's classifiers: scikit-learn's estimator API over a parameter
    table (``param_specs``) and pickle-free persistence (``save``, mnistlab.models.load_model).
    """

    #: the name used by `mnistlab train --model` and in model.json
    model_name = "classifier"
    #: one spec per argument of __init__, in the order `mnistlab train` lists their options
    param_specs: ClassVar[tuple[ParamSpec, ...]] = ()
    #: how fit's errors quote a bad argument: "keyword" (got C=-1) or "python" (got -1)
    error_style: ClassVar[str] = "keyword"
    #: the learned attributes that make a model fitted (set last by fit, and by load_model)
    learned_attributes: ClassVar[tuple[str, ...]] = ("classes_",)

    @classmethod
    def check_params(cls, values: dict, style: str = "keyword") -> None:
        """Raise UsageError for the first bad value in ``values`` (argument name -> value);
        errors name arguments in ``style`` (see mnistlab.models.params)."""
        validate_params(cls.param_specs, values, style)
        cls._check_param_combinations(values, style)

    @classmethod
    def _check_param_combinations(cls, values: dict, style: str) -> None:
        """Constraints between parameters, after each has passed its own spec."""

    @classmethod
    def param_spec(cls, name: str) -> ParamSpec:
        return next(spec for spec in cls.param_specs if spec.name == name)

    def _validate_params(self) -> None:
        # replaces BaseEstimator's, which reads scikit-learn's _parameter_constraints
        self.check_params(self.get_params(), self.error_style)

    def __sklearn_is_fitted__(self) -> bool:
        return all(hasattr(self, name) for name in self.learned_attributes)

    # ------------------------------------------------------------------ input checks

    def _validate_training_data(self, X, y) -> tuple[np.ndarray, np.ndarray]:
        """Check X and y as scikit-learn's classifiers do and learn ``classes_`` (any sortable
        labels) and ``n_features_in_``; returns X (n, features) and y as class indices (n,)."""
        with _usage_errors():
            X, y = validate_data(self, _pixel_rows(X), y, dtype="numeric")
            check_classification_targets(y)
        classes, y_index = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise UsageError(
                f"need at least two classes to fit a classifier; y holds only one class: "
                f"{classes.tolist()}"
            )
        self.classes_ = classes
        return X, y_index

    def _validate_X(self, X) -> np.ndarray:
        """X for a fitted model: (n, n_features_in_) numeric and finite, else scikit-learn's
        error (NotFittedError before fit)."""
        self._check_fitted()
        with _usage_errors():
            return validate_data(self, _pixel_rows(X), reset=False, dtype="numeric")

    def _check_validation(self, X: np.ndarray, validation_data) -> tuple[np.ndarray, np.ndarray]:
        """(X_val, y_val) checked against the training X and ``classes_`` (set by fit before
        this); returns X_val and y_val as class indices."""
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            size = f" of {len(validation_data)}" if isinstance(validation_data, tuple) else ""
            raise UsageError(
                "validation_data must be a pair (X_val, y_val), got "
                f"{type(validation_data).__name__}{size}"
            )
        with _usage_errors():
            x_val = check_array(
                _pixel_rows(validation_data[0]), dtype="numeric", input_name="X_val"
            )
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
        try:
            check_is_fitted(self)
        except SklearnNotFittedError as exc:
            raise NotFittedError(str(exc)) from None

    # ------------------------------------------------------------------ prediction

    def predict(self, X) -> np.ndarray:
        """Predicted labels (n,), taken from ``classes_``: the likeliest class of each row."""
        proba = self.predict_proba(X)
        # argmax returns the first maximum: a tie goes to the smaller label
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

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy on (X, y): the share of rows predicted right (weighted by sample_weight)."""
        hits = self.predict(X) == column_or_1d(y)
        return float(np.average(hits, weights=sample_weight))

    # ------------------------------------------------------------------ persistence

    def _extra_meta(self) -> dict:
        return {}

    def _arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _restore(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def _expected_arrays(self, n_classes: int, n_features: int) -> dict[str, tuple]:
        """What _restore reads from weights.npz: name -> (shape, with None for a size the
        files do not fix; dtype kinds allowed, "f" for floating point). load_model refuses any
        other array before the model uses it (an int32 copy of the weights would be truncated
        into a model that answers at chance)."""
        return {}

    def to_onnx(self, path: str | os.PathLike | None = None, **options):
        """This fitted model as an ONNX graph (mnistlab.export.onnx.to_onnx).

        The graph takes ``input``: float32 (n, ``n_features_in_``), and gives ``probabilities``:
        float32 (n, n_classes) and ``label``: int64 (n,). It is also written to `path` when
        given. Returns the ``onnx.ModelProto`` (needs the ``export`` extra). options:
        ``metadata={...}``, ``fold_batchnorm=True``.
        """
        return _to_onnx(self, path, **options)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write model.json and weights.npz into ``folder`` (each atomically)."""
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


class LogScoreClassifier(Classifier):
    """A classifier whose classes compete through one log-score each: the logits, or a log
    posterior up to a constant. ``predict`` takes the largest, ``predict_proba`` their softmax,
    and ``decision_function`` returns them ((n,) for two classes: the second's minus the first's,
    positive where the second class is predicted, as scikit-learn's binary classifiers do).
    """

    def _log_scores(self, X) -> np.ndarray:
        """(n, n_classes) log-scores of the checked X; softmax of a row is its probabilities."""
        raise NotImplementedError

    def decision_function(self, X) -> np.ndarray:
        """Log-scores (n, n_classes); (n,) for two classes: log p(second) - log p(first)."""
        return _binary_difference(self._log_scores(X))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n, n_classes), in the order of ``classes_``; rows sum to 1."""
        return softmax(self._log_scores(X))

    def predict(self, X) -> np.ndarray:
        """Predicted labels (n,), taken from ``classes_``: the largest log-score of each row."""
        scores = self._log_scores(X)
        # argmax returns the first maximum: a tie goes to the smaller label, as decision > 0 does
        return self.classes_[np.argmax(scores, axis=1)]


def _binary_difference(scores: np.ndarray) -> np.ndarray:
    """Scores (n, k) as they are, or (n,) second minus first for k = 2 (scikit-learn's shape)."""
    return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores


def _pixel_rows(X):
    """Images (n, height, width[, channels]) as rows of pixels (n, height * width ...); any
    other input as it is (scikit-learn's checks judge it)."""
    if isinstance(X, np.ndarray) and X.ndim > 2:
        return X.reshape(X.shape[0], int(np.prod(X.shape[1:])))
    return X


@contextlib.contextmanager
def _usage_errors() -> Iterator[None]:
    """scikit-learn's input ValueErrors as UsageError: the same message and still a ValueError,
    but one line and exit 2 on the command line."""
    try:
        yield
    except UsageError:
        raise
    except ValueError as exc:
        raise UsageError(str(exc)) from None


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

"""The report of a fitted model in memory: the run report's page, with no run folder.

For a notebook or a script that fits a model itself::

    from mnistlab.reports import build_model_report

    model = MLPClassifier(epochs=5).fit(x_train, y_train, validation_data=(x_val, y_val))
    build_model_report(model, x_test, y_test, "report.html", class_names=data.class_names,
                       x_train=x_train, y_train=y_train)

The page has every section of `run_report.build_report`'s: the configuration is the model's
parameters, the history its ``history_``, the metrics are measured on (x_test, y_test) here.
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path

import numpy as np

from mnistlab._io import write_text_atomic
from mnistlab.errors import UsageError
from mnistlab.experiments.runs import machine, test_metrics
from mnistlab.reports.html import Figures
from mnistlab.reports.sections import ReportContent, check_layer, render


def build_model_report(
    model,
    x_test,
    y_test,
    path: str | os.PathLike,
    *,
    class_names=None,
    x_train=None,
    y_train=None,
    image_shape: tuple[int, int] | None = None,
    layer: int | None = None,
    figures: str | os.PathLike | None = None,
    figure_format: str = "png",
) -> Path:
    """Write the self-contained report.html of a fitted model, measured on (x_test, y_test).

    Parameters
    ----------
    model : Classifier
        A fitted mnistlab model (``classes_``, ``predict_proba``; ``history_`` where it has
        one).
    x_test : array-like, shape (n_test, n_features)
        Test rows as the model takes them (for images: flattened, scaled as for training).
    y_test : array-like, shape (n_test,)
        Their labels, as given to fit (each one of ``model.classes_``).
    path : str or path-like
        The file to write; an existing folder gets a report.html inside it.
    class_names : sequence of str, optional
        One name per class, in the order of ``model.classes_`` (default: the labels).
    x_train, y_train : array-like, optional
        The training rows and labels: the data section then shows training examples and
        both splits' class shares, and a k-NN model's class means are drawn.
    image_shape : (height, width), optional
        How a row of features is drawn (default: square when n_features is a square, else
        one row).
    layer : int, optional
        The network layer whose activations are mapped (default: the last hidden one).
    figures : str or path-like, optional
        Also save every figure into this folder, as `figure_format` ("png" or "svg").

    Returns
    -------
    pathlib.Path
        The path of the report written.

    Raises
    ------
    UsageError
        For a model that is not fitted, labels the model does not know, or arrays whose
        lengths or widths do not match.
    """
    if figure_format not in ("png", "svg"):
        raise UsageError(f"figure format must be png or svg, got {figure_format!r}")
    content = model_content(
        model,
        x_test,
        y_test,
        class_names=class_names,
        x_train=x_train,
        y_train=y_train,
        image_shape=image_shape,
    )
    check_layer(model, layer, f"got a {type(model).__name__}")
    path = Path(path)
    if path.is_dir():
        path = path / "report.html"
    if figures is not None:
        Path(figures).mkdir(parents=True, exist_ok=True)
    sink = Figures(None if figures is None else Path(figures), figure_format)
    write_text_atomic(path, render(content, layer, sink))
    return path


def model_content(
    model, x_test, y_test, *, class_names=None, x_train=None, y_train=None, image_shape=None
) -> ReportContent:
    """What `build_model_report` draws: the model's parameters, history and test metrics, its
    classes numbered in the order of ``model.classes_``."""
    classes = getattr(model, "classes_", None)
    if classes is None:
        raise UsageError(f"this {type(model).__name__} is not fitted yet; call fit first")
    names = [str(c) for c in classes] if class_names is None else [str(c) for c in class_names]
    if len(names) != len(classes):
        raise UsageError(
            f"class_names must name the model's {len(classes)} classes in the order of "
            f"classes_, got {len(names)} names"
        )
    x_test = _rows(x_test, "x_test", model)
    y_test = _class_numbers(classes, y_test, "y_test", len(x_test))
    shape = _image_shape(x_test.shape[1], image_shape)
    proba = np.asarray(model.predict_proba(x_test))
    metrics = test_metrics(_Probabilities(proba), x_test, y_test, len(classes))
    history = [dict(r) for r in getattr(model, "history_", None) or []]
    metrics.update(_fit_metrics(model, history))
    content = ReportContent(
        title=f"mnistlab model: {type(model).__name__}",
        config={"model": type(model).__name__, **model.get_params()},
        model=model,
        history=history,
        metrics=metrics,
        class_names=names,
        image_shape=shape,
        x_test=x_test,
        y_test=y_test,
        test_images=x_test.reshape(-1, *shape),
        predicted=proba.argmax(axis=1),
        confidence=proba.max(axis=1),
        probabilities=proba,
        in_memory=True,
    )
    if x_train is not None or y_train is not None:
        if x_train is None or y_train is None:
            raise UsageError("give x_train and y_train together, or neither")
        content.x_train = _rows(x_train, "x_train", model)
        content.y_train = _class_numbers(classes, y_train, "y_train", len(content.x_train))
        content.train_images = content.x_train.reshape(-1, *shape)
        content.train_labels = content.y_train
    content.data_summary = _data_summary(content)
    return content


class _Probabilities:
    """A model's test probabilities, computed once, as `test_metrics` reads a model: classes
    numbered 0..n_classes-1 in the order of the model's classes_."""

    def __init__(self, proba: np.ndarray) -> None:
        self.proba = proba
        self.classes_ = np.arange(proba.shape[1])

    def predict_proba(self, x) -> np.ndarray:
        return self.proba


def _rows(x, name: str, model) -> np.ndarray:
    """`x` as a 2-D array of the width the model was fitted on."""
    x = np.asarray(x)
    expected = getattr(model, "n_features_in_", None)
    if x.ndim != 2 or x.shape[0] == 0 or (expected is not None and x.shape[1] != expected):
        width = "n_features" if expected is None else str(expected)
        raise UsageError(
            f"{name} must be a non-empty 2-D array of shape (n, {width}), one row of features "
            f"per image; got shape {x.shape}"
        )
    return x


def _class_numbers(classes, y, name: str, count: int) -> np.ndarray:
    """Labels `y` as class numbers (positions in `classes`); UsageError for unknown labels."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (count,):
        raise UsageError(f"{name} must hold one label per row ({count}), got shape {y.shape}")
    classes = np.asarray(classes)
    try:
        index = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
        known = classes[index] == y
    except TypeError:  # labels that do not compare with the classes (str against int)
        known = np.zeros(y.shape, dtype=bool)
    if not known.all():
        unknown = np.unique(y[~known])[:5].tolist()
        raise UsageError(
            f"{name} holds labels the model was not fitted on: {unknown} (its classes_ are "
            f"{classes.tolist()[:20]})"
        )
    return index.astype(np.int64)


def _image_shape(n_features: int, image_shape) -> tuple[int, int]:
    """(height, width) of one row of features."""
    if image_shape is not None:
        shape = tuple(int(s) for s in image_shape)
        if len(shape) != 2 or shape[0] * shape[1] != n_features:
            raise UsageError(
                f"image_shape must be (height, width) with height * width = {n_features} "
                f"features, got image_shape={image_shape!r}"
            )
        return shape
    side = math.isqrt(n_features)
    return (side, side) if side * side == n_features else (1, n_features)


def _fit_metrics(model, history: list[dict]) -> dict:
    """What the fit recorded: epochs, stop reason, the last epoch's scores, training seconds;
    and the machine the report is made on."""
    metrics = {
        "epochs_run": len(history) if hasattr(model, "history_") else None,
        "stop_reason": getattr(model, "stop_reason_", "") or None,
        "train_seconds": sum(r.get("seconds") or 0.0 for r in history) if history else None,
        "machine": machine(),
    }
    if history:
        last = history[-1]
        metrics["train_accuracy"], metrics["train_loss"] = last["accuracy"], last["loss"]
        if "val_accuracy" in last:
            metrics["val_accuracy"], metrics["val_loss"] = last["val_accuracy"], last["val_loss"]
    return metrics


def _data_summary(content: ReportContent) -> str:
    shape = "x".join(map(str, content.image_shape))
    test = f"{len(content.x_test)} test images of {shape}"
    if content.x_train is None:
        return f"<p>{test} (the training data was not given).</p>"
    return f"<p>{len(content.x_train)} training and {html.escape(test)}.</p>"


__all__ = ["build_model_report"]

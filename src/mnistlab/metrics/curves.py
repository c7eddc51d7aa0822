"""Threshold curves in NumPy: ROC and precision-recall, their areas, one class against the rest;
and the pairs of classes a classifier confuses most.

Each curve sweeps a threshold down the scores: at a threshold t every row scoring >= t is called
positive. Tied scores enter together, as in scikit-learn, so that the numbers equal
``sklearn.metrics.roc_auc_score`` and ``average_precision_score``.
"""

from __future__ import annotations

import numpy as np

from mnistlab.errors import UsageError


def _binary(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true).astype(bool, copy=False)
    scores = np.asarray(scores, dtype=np.float64)
    if y_true.ndim != 1 or y_true.shape != scores.shape:
        raise UsageError(
            f"y_true and scores must be 1-D of equal length, got {y_true.shape} and {scores.shape}"
        )
    return y_true, scores


def _counts_by_threshold(y_true: np.ndarray, scores: np.ndarray):
    """False and true positives when every score >= each distinct threshold counts as positive.

    Returns (false_positives, true_positives, thresholds), one entry per distinct score, the
    thresholds decreasing. A stable sort keeps the curve reproducible; the last row of each run
    of tied scores marks its threshold, so ties move the curve diagonally in one step.
    """
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    hits = y_true[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(sorted_scores)), hits.size - 1]
    true_positives = np.cumsum(hits)[last_of_tie]
    false_positives = last_of_tie + 1 - true_positives
    return false_positives, true_positives, sorted_scores[last_of_tie]


def roc_curve(y_true, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The receiver operating characteristic of a binary problem.

    y_true: (n,) bool or 0/1, the positives; scores: (n,) float, higher meaning more positive.
    Returns (false_positive_rate, true_positive_rate, thresholds), each (distinct scores + 1,):
    the curve from (0, 0) (threshold +inf: nothing called positive) to (1, 1). A rate whose
    denominator is zero (no positives, or no negatives) is NaN.
    """
    y_true, scores = _binary(y_true, scores)
    false_positives, true_positives, thresholds = _counts_by_threshold(y_true, scores)
    with np.errstate(divide="ignore", invalid="ignore"):
        fpr = np.r_[0.0, false_positives / false_positives[-1]]
        tpr = np.r_[0.0, true_positives / true_positives[-1]]
    return fpr, tpr, np.r_[np.inf, thresholds]


def precision_recall_curve(y_true, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision and recall of a binary problem at every distinct threshold.

    y_true: (n,) bool or 0/1; scores: (n,) float. Returns (precision, recall, thresholds), the
    thresholds decreasing and recall rising; precision and recall start with (1, 0) (threshold
    +inf), as scikit-learn's curve ends with it. Recall is NaN without positives.
    """
    y_true, scores = _binary(y_true, scores)
    false_positives, true_positives, thresholds = _counts_by_threshold(y_true, scores)
    precision = true_positives / (true_positives + false_positives)  # >= 1 row called positive
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = true_positives / true_positives[-1]
    return np.r_[1.0, precision], np.r_[0.0, recall], np.r_[np.inf, thresholds]


def auc(x, y) -> float:
    """Area under the piecewise-linear curve through the points (x, y), x monotonic
    (trapezoids; negative for a decreasing x, as numpy's trapezoid)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size < 2:
        raise UsageError(f"auc needs x and y 1-D of equal length >= 2, got {x.shape} and {y.shape}")
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def roc_auc(y_true, scores) -> float:
    """Area under the ROC curve (NaN without positives or without negatives)."""
    fpr, tpr, _ = roc_curve(y_true, scores)
    return auc(fpr, tpr)


def average_precision(y_true, scores) -> float:
    """Average precision: sum over thresholds of (recall gained) x (precision there), the step
    area under the precision-recall curve (no interpolation: scikit-learn's definition)."""
    precision, recall, _ = precision_recall_curve(y_true, scores)
    return _step_area(precision, recall)


def _step_area(precision: np.ndarray, recall: np.ndarray) -> float:
    return float(np.sum(np.diff(recall) * precision[1:]))


def one_vs_rest(y_true, probabilities, n_classes: int | None = None) -> list[dict]:
    """Per class, its ROC and precision-recall curves against the rest, with their areas.

    y_true: (n,) class numbers; probabilities: (n, n_classes). Returns one dict per class:
    ``fpr``, ``tpr``, ``roc_auc``, ``precision``, ``recall``, ``average_precision``, and
    ``positives`` (its count in y_true; the areas are NaN for a class with none).
    """
    y_true = np.asarray(y_true).astype(np.int64, copy=False)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[0] != y_true.shape[0]:
        raise UsageError(
            f"probabilities must be (n, n_classes) with n = {y_true.shape[0]}, got "
            f"{probabilities.shape}"
        )
    n_classes = probabilities.shape[1] if n_classes is None else n_classes
    curves = []
    for cls in range(n_classes):
        positive = y_true == cls
        scores = probabilities[:, cls]
        fpr, tpr, _ = roc_curve(positive, scores)
        precision, recall, _ = precision_recall_curve(positive, scores)
        curves.append(
            {
                "fpr": fpr,
                "tpr": tpr,
                "roc_auc": auc(fpr, tpr),
                "precision": precision,
                "recall": recall,
                "average_precision": _step_area(precision, recall),
                "positives": int(positive.sum()),
            }
        )
    return curves


def most_confused_pairs(matrix, top: int = 10) -> list[dict]:
    """The largest off-diagonal cells of a confusion matrix (rows: true class), largest first.

    Returns up to `top` dicts, cells with no errors left out: ``true``, ``predicted`` (class
    numbers), ``count``, ``share_of_errors`` (of every off-diagonal count) and
    ``share_of_class`` (of the true class's rows).
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise UsageError(f"a confusion matrix must be square, got shape {matrix.shape}")
    errors = matrix.copy()
    np.fill_diagonal(errors, 0)
    total = int(errors.sum())
    support = matrix.sum(axis=1)
    flat = np.argsort(-errors, axis=None, kind="stable")[:top]
    pairs = []
    for true, predicted in zip(*np.unravel_index(flat, errors.shape), strict=True):
        count = int(errors[true, predicted])
        if count == 0:
            break
        pairs.append(
            {
                "true": int(true),
                "predicted": int(predicted),
                "count": count,
                "share_of_errors": count / total,
                "share_of_class": count / int(support[true]),
            }
        )
    return pairs


__all__ = [
    "auc",
    "average_precision",
    "most_confused_pairs",
    "one_vs_rest",
    "precision_recall_curve",
    "roc_auc",
    "roc_curve",
]

"""Classification metrics, in NumPy: accuracy and error count, confusion matrix, per-class
precision / recall / F1 / support with macro and weighted averages, top-k accuracy, log loss;
ROC and precision-recall curves one class against the rest, and the most confused pairs
(`curves`).

Every function takes (y_true, y_pred) -- or (y_true, probabilities) -- in that order, as
scikit-learn does. (Seed 002 passed them the wrong way round and printed recall as precision.)
"""

from __future__ import annotations

import numpy as np

from mnistlab.errors import UsageError
from mnistlab.metrics.curves import (
    auc,
    average_precision,
    most_confused_pairs,
    one_vs_rest,
    precision_recall_curve,
    roc_auc,
    roc_curve,
)


def _labels(y_true, y_pred, n_classes: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    y_true = np.asarray(y_true).astype(np.int64, copy=False)
    y_pred = np.asarray(y_pred).astype(np.int64, copy=False)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise UsageError(
            f"y_true and y_pred must be 1-D of equal length, got {y_true.shape} and {y_pred.shape}"
        )
    if y_true.size and min(y_true.min(), y_pred.min()) < 0:
        raise UsageError("labels must be non-negative class indices")
    inferred = int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1
    n_classes = inferred if n_classes is None else n_classes
    if inferred > n_classes:
        raise UsageError(f"label {inferred - 1} is out of range for {n_classes} classes")
    return y_true, y_pred, n_classes


def accuracy(y_true, y_pred) -> float:
    """Share of predictions equal to the truth."""
    y_true, y_pred, _ = _labels(y_true, y_pred, None)
    return float(np.mean(y_true == y_pred)) if y_true.size else 0.0


def error_count(y_true, y_pred) -> int:
    """How many predictions are wrong ("makes 431 errors out of 10000")."""
    y_true, y_pred, _ = _labels(y_true, y_pred, None)
    return int(np.count_nonzero(y_true != y_pred))


def confusion_matrix(y_true, y_pred, n_classes: int | None = None) -> np.ndarray:
    """(n_classes, n_classes) counts: row = true class, column = predicted class."""
    y_true, y_pred, n_classes = _labels(y_true, y_pred, n_classes)
    flat = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def precision_recall_f1(y_true, y_pred, n_classes: int | None = None) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and support (classes never predicted get precision 0)."""
    matrix = confusion_matrix(y_true, y_pred, n_classes)
    true_positive = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0)
    support = matrix.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_positive / predicted, 0.0)
        recall = np.where(support > 0, true_positive / support, 0.0)
        denominator = precision + recall
        f1 = np.where(denominator > 0, 2 * precision * recall / denominator, 0.0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def classification_summary(y_true, y_pred, n_classes: int | None = None) -> dict:
    """Per-class scores plus accuracy, macro and weighted averages (scikit-learn's numbers)."""
    scores = precision_recall_f1(y_true, y_pred, n_classes)
    support = scores["support"]
    total = int(support.sum())
    summary = {
        "per_class": {k: v.tolist() for k, v in scores.items()},
        "accuracy": accuracy(y_true, y_pred),
    }
    for name, weights in (
        ("macro", np.ones_like(support, dtype=np.float64)),
        ("weighted", support.astype(np.float64)),
    ):
        weights = weights / weights.sum() if weights.sum() else weights
        summary[name] = {
            k: float(np.dot(weights, scores[k])) for k in ("precision", "recall", "f1")
        }
        summary[name]["support"] = total
    return summary


def classification_report(y_true, y_pred, class_names=None, digits: int = 4) -> str:
    """The per-class table of precision, recall, F1 and support, with accuracy and averages.

    Arguments are (y_true, y_pred), as in scikit-learn.
    """
    y_true, y_pred, n_classes = _labels(
        y_true, y_pred, None if class_names is None else len(class_names)
    )
    names = (
        [str(n) for n in class_names]
        if class_names is not None
        else [str(i) for i in range(n_classes)]
    )
    summary = classification_summary(y_true, y_pred, n_classes)
    width = max(len("weighted avg"), *(len(n) for n in names))
    head = f"{'':>{width}}  {'precision':>9}  {'recall':>9}  {'f1-score':>9}  {'support':>9}"
    lines = [head, ""]
    per = summary["per_class"]
    for i, name in enumerate(names):
        lines.append(
            f"{name:>{width}}  {per['precision'][i]:>9.{digits}f}  "
            f"{per['recall'][i]:>9.{digits}f}  {per['f1'][i]:>9.{digits}f}  "
            f"{per['support'][i]:>9}"
        )
    total = summary["macro"]["support"]
    lines += [
        "",
        f"{'accuracy':>{width}}  {'':>9}  {'':>9}  {summary['accuracy']:>9.{digits}f}  {total:>9}",
    ]
    for label, key in (("macro avg", "macro"), ("weighted avg", "weighted")):
        row = summary[key]
        lines.append(
            f"{label:>{width}}  {row['precision']:>9.{digits}f}  "
            f"{row['recall']:>9.{digits}f}  {row['f1']:>9.{digits}f}  {total:>9}"
        )
    return "\n".join(lines)


def report_from_confusion(matrix, class_names=None, digits: int = 4) -> str:
    """classification_report rebuilt from a confusion matrix (rows: true class)."""
    matrix = np.asarray(matrix)
    rows, cols = np.nonzero(matrix)
    counts = matrix[rows, cols]
    return classification_report(
        np.repeat(rows, counts), np.repeat(cols, counts), class_names=class_names, digits=digits
    )


def top_k_accuracy(y_true, probabilities, k: int = 2) -> float:
    """Share of rows whose true class is among the k most probable ones. A row with a
    probability that is not a number (a diverged model's) ranks nothing: it counts as a miss."""
    y_true = np.asarray(y_true).astype(np.int64, copy=False)
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2 or probabilities.shape[0] != y_true.shape[0]:
        raise UsageError(
            f"probabilities must be (n, n_classes) with n = {y_true.shape[0]}, got "
            f"{probabilities.shape}"
        )
    if not 1 <= k <= probabilities.shape[1]:
        raise UsageError(f"k must be in [1, {probabilities.shape[1]}], got k={k}")
    true_score = probabilities[np.arange(y_true.size), y_true]
    # ranked within the top k when fewer than k classes score strictly higher; every
    # comparison with NaN is False, so a NaN row would otherwise count as a hit
    higher = np.count_nonzero(probabilities > true_score[:, None], axis=1)
    ranked = ~np.isnan(probabilities).any(axis=1)
    return float(np.mean((higher < k) & ranked)) if y_true.size else 0.0


def log_loss(y_true, probabilities, eps: float | None = None) -> float:
    """Mean -log p(true class), probabilities clipped to [eps, 1 - eps] (eps: dtype's epsilon)."""
    y_true = np.asarray(y_true).astype(np.int64, copy=False)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    eps = np.finfo(np.float64).eps if eps is None else eps
    picked = np.clip(probabilities[np.arange(y_true.size), y_true], eps, 1 - eps)
    return float(-np.mean(np.log(picked)))


__all__ = [
    "accuracy",
    "auc",
    "average_precision",
    "classification_report",
    "classification_summary",
    "confusion_matrix",
    "error_count",
    "log_loss",
    "most_confused_pairs",
    "one_vs_rest",
    "precision_recall_curve",
    "precision_recall_f1",
    "report_from_confusion",
    "roc_auc",
    "roc_curve",
    "top_k_accuracy",
]

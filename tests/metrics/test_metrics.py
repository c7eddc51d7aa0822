"""Metrics equal scikit-learn's on the same predictions (the reference named in each test)."""

import numpy as np
import pytest

from mnistlab.errors import UsageError
from mnistlab.metrics import (
    accuracy,
    classification_report,
    classification_summary,
    confusion_matrix,
    error_count,
    log_loss,
    top_k_accuracy,
)

sklearn_metrics = pytest.importorskip("sklearn.metrics")


@pytest.fixture
def predictions():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 5, size=400)
    y_pred = np.where(rng.random(400) < 0.7, y_true, rng.integers(0, 5, size=400))
    y_pred[y_pred == 4] = 3  # class 4 is never predicted: precision 0 by convention
    logits = rng.normal(size=(400, 5))
    logits[np.arange(400), y_true] += 1.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y_true, y_pred, proba


def test_accuracy_errors_and_confusion_matrix_equal_sklearn(predictions):
    y_true, y_pred, _ = predictions
    assert accuracy(y_true, y_pred) == sklearn_metrics.accuracy_score(y_true, y_pred)
    assert error_count(y_true, y_pred) == int(np.sum(y_true != y_pred))
    np.testing.assert_array_equal(
        confusion_matrix(y_true, y_pred), sklearn_metrics.confusion_matrix(y_true, y_pred)
    )


def test_classification_summary_equals_sklearn_report(predictions):
    y_true, y_pred, _ = predictions
    ours = classification_summary(y_true, y_pred)
    theirs = sklearn_metrics.classification_report(
        y_true, y_pred, output_dict=True, zero_division=0
    )
    for k in range(5):
        for key, their_key in (
            ("precision", "precision"),
            ("recall", "recall"),
            ("f1", "f1-score"),
            ("support", "support"),
        ):
            assert ours["per_class"][key][k] == pytest.approx(theirs[str(k)][their_key])
    assert ours["accuracy"] == pytest.approx(theirs["accuracy"])
    for avg in ("macro", "weighted"):
        for key, their_key in (
            ("precision", "precision"),
            ("recall", "recall"),
            ("f1", "f1-score"),
        ):
            assert ours[avg][key] == pytest.approx(theirs[f"{avg} avg"][their_key])


def test_the_argument_order_is_true_then_predicted(predictions):
    y_true, y_pred, _ = predictions
    summary = classification_summary(y_true, y_pred)
    swapped = classification_summary(y_pred, y_true)
    # precision and recall trade places when the arguments are swapped (seed 002's mistake)
    np.testing.assert_allclose(
        summary["per_class"]["precision"][:4], swapped["per_class"]["recall"][:4]
    )


def test_report_text_has_class_names_and_averages(predictions):
    y_true, y_pred, _ = predictions
    text = classification_report(y_true, y_pred, class_names=["a", "b", "c", "d", "Ankle boot"])
    assert "Ankle boot" in text and "macro avg" in text and "weighted avg" in text
    assert "accuracy" in text


def test_top_k_and_log_loss_equal_sklearn(predictions):
    y_true, _, proba = predictions
    for k in (1, 2, 3):
        assert top_k_accuracy(y_true, proba, k) == pytest.approx(
            sklearn_metrics.top_k_accuracy_score(y_true, proba, k=k)
        )
    assert log_loss(y_true, proba) == pytest.approx(sklearn_metrics.log_loss(y_true, proba))


def test_bad_arguments():
    with pytest.raises(UsageError, match="equal length"):
        accuracy([0, 1], [0])
    with pytest.raises(UsageError, match="k must be in \\[1, 2\\], got k=3"):
        top_k_accuracy([0], [[0.5, 0.5]], 3)


def test_top_k_counts_a_row_of_nan_probabilities_as_a_miss():
    # a diverged model's probabilities: every comparison with NaN is False, which used to rank
    # the true class first and report top-2 accuracy 1.0
    nan = np.nan
    probabilities = np.array([[nan, nan, nan], [0.1, 0.8, 0.1], [0.2, nan, 0.7], [0.5, 0.3, 0.2]])
    assert top_k_accuracy([0, 1, 2, 1], probabilities, 2) == 0.5
    assert top_k_accuracy([0, 1, 2, 1], np.full((4, 3), nan), 1) == 0.0

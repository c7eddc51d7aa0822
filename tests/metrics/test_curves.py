"""ROC and precision-recall curves, one class against the rest, equal to scikit-learn's areas
(the reference named in each test); and the most confused pairs of a confusion matrix."""

import numpy as np
import pytest

from mnistlab.errors import UsageError
from mnistlab.metrics import (
    auc,
    average_precision,
    most_confused_pairs,
    one_vs_rest,
    precision_recall_curve,
    roc_auc,
    roc_curve,
)

sklearn_metrics = pytest.importorskip("sklearn.metrics")


@pytest.fixture
def scored():
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 4, size=600)
    logits = rng.normal(size=(600, 4))
    logits[np.arange(600), y_true] += 1.2
    logits = np.round(logits, 1)  # tied scores, as a model's rounded probabilities give
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y_true, proba


def test_one_vs_rest_areas_equal_sklearn(scored):
    y_true, proba = scored
    curves = one_vs_rest(y_true, proba)
    expected_roc = sklearn_metrics.roc_auc_score(y_true, proba, multi_class="ovr", average=None)
    for cls, curve in enumerate(curves):
        assert curve["roc_auc"] == pytest.approx(expected_roc[cls], abs=1e-10)
        expected_ap = sklearn_metrics.average_precision_score(y_true == cls, proba[:, cls])
        assert curve["average_precision"] == pytest.approx(expected_ap, abs=1e-10)
        assert curve["positives"] == int(np.sum(y_true == cls))


def test_binary_curves_equal_sklearn(scored):
    y_true, proba = scored
    positive, scores = y_true == 1, proba[:, 1]
    fpr, tpr, thresholds = roc_curve(positive, scores)
    ref_fpr, ref_tpr, _ = sklearn_metrics.roc_curve(positive, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr, atol=1e-12)
    np.testing.assert_allclose(tpr, ref_tpr, atol=1e-12)
    assert thresholds[0] == np.inf and np.all(np.diff(thresholds[1:]) < 0)
    precision, recall, _ = precision_recall_curve(positive, scores)
    ref_precision, ref_recall, _ = sklearn_metrics.precision_recall_curve(positive, scores)
    np.testing.assert_allclose(precision, ref_precision[::-1], atol=1e-12)
    np.testing.assert_allclose(recall, ref_recall[::-1], atol=1e-12)
    assert roc_auc(positive, scores) == pytest.approx(
        sklearn_metrics.roc_auc_score(positive, scores), abs=1e-10
    )
    assert average_precision(positive, scores) == pytest.approx(
        sklearn_metrics.average_precision_score(positive, scores), abs=1e-10
    )


def test_hand_worked_curve():
    # scores 0.9 (pos), 0.8 (neg), 0.8 (pos), 0.1 (neg): thresholds 0.9, 0.8, 0.1
    # TP 1, 2, 2 of 2 positives; FP 0, 1, 2 of 2 negatives
    fpr, tpr, thresholds = roc_curve([1, 0, 1, 0], [0.9, 0.8, 0.8, 0.1])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 1, 1])
    np.testing.assert_allclose(thresholds[1:], [0.9, 0.8, 0.1])
    # trapezoids: 0 + (0.5 * (0.5 + 1) / 2) + (0.5 * 2 / 2) = 0.375 + 0.5
    assert auc(fpr, tpr) == pytest.approx(0.875)
    # AP = 0.5 * 1 (recall 0 -> 0.5 at precision 1) + 0.5 * 2/3 (-> 1 at precision 2/3)
    assert average_precision([1, 0, 1, 0], [0.9, 0.8, 0.8, 0.1]) == pytest.approx(0.5 + 1 / 3)


def test_a_class_without_positives_has_no_area():
    curves = one_vs_rest(np.array([0, 0, 1]), np.array([[0.6, 0.3, 0.1]] * 3), n_classes=3)
    assert curves[2]["positives"] == 0 and np.isnan(curves[2]["roc_auc"])


def test_bad_shapes_are_one_line():
    with pytest.raises(UsageError, match=r"y_true and scores must be 1-D of equal length"):
        roc_curve([0, 1], [0.5])
    with pytest.raises(UsageError, match=r"probabilities must be \(n, n_classes\) with n = 2"):
        one_vs_rest([0, 1], np.zeros(2))
    with pytest.raises(UsageError, match=r"auc needs x and y 1-D"):
        auc([0.0], [1.0])
    with pytest.raises(UsageError, match=r"a confusion matrix must be square, got shape \(2, 3\)"):
        most_confused_pairs(np.zeros((2, 3)))


def test_most_confused_pairs():
    matrix = np.array([[50, 7, 1], [2, 40, 0], [7, 0, 30]])
    pairs = most_confused_pairs(matrix, top=3)
    # off-diagonal total 17; ties (0->1 and 2->0, both 7) in row-major order
    assert [(p["true"], p["predicted"], p["count"]) for p in pairs] == [
        (0, 1, 7),
        (2, 0, 7),
        (1, 0, 2),
    ]
    assert pairs[0]["share_of_errors"] == pytest.approx(7 / 17)
    assert pairs[0]["share_of_class"] == pytest.approx(7 / 58)
    assert most_confused_pairs(np.eye(3, dtype=int) * 5) == []

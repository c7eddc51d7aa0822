"""scikit-learn's own estimator checks (sklearn.utils.estimator_checks) over every mnistlab model.

Each model appears in a small configuration (few epochs, a narrow network) so that the ~55 checks
per estimator stay fast, and in the variants whose code paths differ (full-batch softmax, the
one-at-a-time logistic regressions, naive Bayes and the smoothing search, distance-weighted L1
neighbours). Every check passes: no estimator declares an expected failure.
"""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from mnistlab.models import (
    CNNClassifier,
    GaussianClassifier,
    KNeighborsClassifier,
    MLPClassifier,
    OneVsAllLogistic,
    SoftmaxRegression,
)

ESTIMATORS = [
    MLPClassifier(hidden_layer_sizes=(16,), epochs=20, batch_size=16, learning_rate=1e-2),
    MLPClassifier(
        hidden_layer_sizes=(16, 8),
        batchnorm=True,
        dropout=0.1,
        optimizer="momentum",
        learning_rate=0.05,
        epochs=15,
        batch_size=16,
        dtype="float64",
    ),
    # the checks' rows are not square images: each is read as one row of pixels (1 x n)
    CNNClassifier(
        conv=(4,),
        kernel_size=1,
        pool=1,
        hidden_layer_sizes=(16,),
        dropout=0.0,
        epochs=20,
        batch_size=16,
        learning_rate=1e-2,
    ),
    SoftmaxRegression(epochs=5),
    SoftmaxRegression(solver="gd", iterations=100),
    OneVsAllLogistic(max_iter=50),
    OneVsAllLogistic(max_iter=50, joint=False, dtype="float64"),
    GaussianClassifier(),
    GaussianClassifier(smoothing="auto", diagonal=True),
    KNeighborsClassifier(),
    KNeighborsClassifier(n_neighbors=3, weights="distance", metric="l1"),
]

#: checks an estimator cannot pass, with the reason (none so far)
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {}


def expected_failed_checks(estimator) -> dict[str, str]:
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)

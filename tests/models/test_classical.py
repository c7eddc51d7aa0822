"""The classical classifiers: gradients, references (naive, SciPy, scikit-learn), persistence,
and one-line errors for bad parameters (bad input: test_sklearn_api.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from mnistlab.data import flatten, load_dataset, to_float
from mnistlab.errors import UsageError
from mnistlab.models import (
    GaussianClassifier,
    KNeighborsClassifier,
    MLPClassifier,
    OneVsAllLogistic,
    SoftmaxRegression,
    load_model,
)
from mnistlab.models.logistic import binary_objective
from mnistlab.models.softmax import softmax_loss_and_gradient


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits")
    return (
        flatten(to_float(data.x_train, data.pixel_max)),
        data.y_train,
        flatten(to_float(data.x_test, data.pixel_max)),
        data.y_test,
    )


def central_difference(f, x, eps=1e-6):
    grad = np.zeros_like(x)
    for i in range(x.size):
        old = x.flat[i]
        x.flat[i] = old + eps
        plus = f()
        x.flat[i] = old - eps
        minus = f()
        x.flat[i] = old
        grad.flat[i] = (plus - minus) / (2 * eps)
    return grad


def test_softmax_loss_gradient_by_central_differences():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(7, 4)), rng.integers(0, 3, size=7)
    onehot = np.eye(3)[y]
    W, b = rng.normal(size=(4, 3)), rng.normal(size=3)
    _, grad_w, grad_b, _ = softmax_loss_and_gradient(W, b, X, onehot, l2=0.3)
    numeric_w = central_difference(lambda: softmax_loss_and_gradient(W, b, X, onehot, 0.3)[0], W)
    numeric_b = central_difference(lambda: softmax_loss_and_gradient(W, b, X, onehot, 0.3)[0], b)
    np.testing.assert_allclose(grad_w, numeric_w, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(grad_b, numeric_b, rtol=1e-6, atol=1e-9)


def test_logistic_objective_gradient_by_central_differences():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(9, 5))
    signs = np.where(rng.random((9, 3)) > 0.5, 1.0, -1.0)  # three classes at once
    params = rng.normal(size=5 * 3 + 3)
    _, grad = binary_objective(params, X, signs, 2.0)
    numeric = central_difference(lambda: binary_objective(params, X, signs, 2.0)[0], params)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_logistic_objective_is_finite_for_huge_margins():
    X = np.array([[1e4], [-1e4]])
    value, grad = binary_objective(np.array([10.0, 0.0]), X, np.array([[-1.0], [1.0]]), 1.0)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


@pytest.mark.parametrize("n_train", [60, 3001])  # argpartition path; grouped-minima path
@pytest.mark.parametrize("metric", ["l2", "l1"])
@pytest.mark.parametrize("k, weights", [(1, "uniform"), (4, "uniform"), (5, "distance")])
def test_knn_equals_a_naive_reference(metric, k, weights, n_train):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(n_train, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=n_train)
    Xt = rng.normal(size=(25, 6)).astype(np.float32)
    model = KNeighborsClassifier(n_neighbors=k, weights=weights, metric=metric, block_size=7).fit(
        X, y
    )
    distances, indices = model.kneighbors(Xt)
    diff = Xt[:, None, :].astype(np.float64) - X[None, :, :].astype(np.float64)
    full = np.sqrt((diff**2).sum(axis=2)) if metric == "l2" else np.abs(diff).sum(axis=2)
    order = np.lexsort((np.broadcast_to(np.arange(n_train), full.shape), full), axis=1)[:, :k]
    np.testing.assert_array_equal(indices, order)
    np.testing.assert_allclose(distances, np.take_along_axis(full, order, axis=1), rtol=1e-12)
    expected = []
    for row in range(25):
        votes = np.zeros(3)
        for j in order[row]:
            votes[y[j]] += 1.0 if weights == "uniform" else 1.0 / full[row, j]
        expected.append(int(np.argmax(votes)))
    np.testing.assert_array_equal(model.predict(Xt), expected)


def test_knn_breaks_ties_deterministically():
    X = np.array([[0.0], [2.0], [-2.0], [2.0]], dtype=np.float32)
    y = np.array([0, 1, 2, 3])
    model = KNeighborsClassifier(n_neighbors=2).fit(X, y)
    _, indices = model.kneighbors(np.array([[1.0]], dtype=np.float32))
    assert indices.tolist() == [[0, 1]]  # 0, 1 and 3 are all at distance 1: smaller index first
    assert model.predict(np.array([[1.0]])).tolist() == [0]  # one vote each: the smaller label


sklearn = pytest.importorskip("sklearn")


@pytest.mark.parametrize(
    "k, weights, metric",
    [(1, "uniform", "l2"), (5, "uniform", "l2"), (5, "distance", "l2"), (3, "uniform", "l1")],
)
def test_knn_predictions_equal_sklearn_brute_force(digits, k, weights, metric):
    from sklearn.neighbors import KNeighborsClassifier as Reference

    x, y, xt, _ = digits
    ours = KNeighborsClassifier(n_neighbors=k, weights=weights, metric=metric).fit(x, y).predict(xt)
    theirs = (
        Reference(
            n_neighbors=k,
            weights=weights,
            algorithm="brute",
            metric="euclidean" if metric == "l2" else "manhattan",
        )
        .fit(x, y)
        .predict(xt)
    )
    np.testing.assert_array_equal(ours, theirs)


def test_gaussian_log_densities_equal_scipy():
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(0, 1, size=(40, 3)), rng.normal(2, 0.5, size=(40, 3))])
    y = np.repeat([0, 1], 40)
    model = GaussianClassifier(smoothing=0.1).fit(X, y)
    points = rng.normal(1, 1, size=(5, 3))
    ours = model.log_densities(points)
    for k in range(2):
        members = X[y == k]
        covariance = np.cov(members, rowvar=False, bias=True) + 0.1 * np.eye(3)
        expected = multivariate_normal(members.mean(axis=0), covariance).logpdf(points)
        np.testing.assert_allclose(ours[:, k], expected, rtol=1e-10)


def test_gaussian_matches_sklearn_qda_with_matched_regularization(digits):
    from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis

    x, y, xt, yt = digits
    # QDA's reg_param r uses (1 - r) S + r I: shrinkage r and smoothing r here.
    ours = GaussianClassifier(smoothing=0.5, shrinkage=0.5).fit(x, y).predict(xt)
    theirs = QuadraticDiscriminantAnalysis(reg_param=0.5).fit(x, y).predict(xt)
    assert np.mean(ours == theirs) > 0.99


def test_gaussian_auto_smoothing_beats_a_poor_fixed_one(digits):
    x, y, xt, yt = digits
    auto = GaussianClassifier(smoothing="auto").fit(x, y)
    assert f"c={auto.smoothing_:.4g},s={auto.shrinkage_:g}" in auto.validation_scores_
    assert auto.score(xt, yt) >= GaussianClassifier(smoothing=1.0).fit(x, y).score(xt, yt)


def test_naive_bayes_matches_sklearn_gaussian_nb(digits):
    from sklearn.naive_bayes import GaussianNB

    x, y, xt, _ = digits
    epsilon = 1e-2 * x.var(axis=0).max()
    ours = GaussianClassifier(diagonal=True, smoothing=epsilon).fit(x, y).predict(xt)
    theirs = GaussianNB(var_smoothing=1e-2).fit(x, y).predict(xt)
    assert np.mean(ours == theirs) > 0.99


def test_one_vs_all_matches_sklearn_one_vs_rest(digits):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    x, y, xt, yt = digits
    ours = OneVsAllLogistic(C=1.0, max_iter=200, dtype="float64").fit(x, y)
    theirs = OneVsRestClassifier(LogisticRegression(C=1.0, max_iter=200)).fit(x, y)
    assert abs(ours.score(xt, yt) - theirs.score(xt, yt)) <= 0.01
    proba = ours.predict_proba(xt)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_joint_and_one_at_a_time_solutions_agree(digits):
    x, y, xt, _ = digits
    joint = OneVsAllLogistic(max_iter=500, tol=1e-8, dtype="float64").fit(x, y)
    single = OneVsAllLogistic(max_iter=500, tol=1e-8, dtype="float64", joint=False).fit(x, y)
    np.testing.assert_allclose(joint.coef_, single.coef_, atol=1e-2)
    assert np.mean(joint.predict(xt) == single.predict(xt)) > 0.99


def test_one_vs_all_keeps_class_k_as_class_k(digits):
    x, y, xt, yt = digits
    model = OneVsAllLogistic(max_iter=50).fit(x, y)
    assert model.classes_.tolist() == list(range(10))
    assert model.score(xt, yt) > 0.9  # seed 002's 0 -> 10 relabelling cost ten points


def test_softmax_regression_both_solvers_learn(digits):
    x, y, xt, yt = digits
    sgd = SoftmaxRegression(epochs=30).fit(x, y, validation_data=(xt, yt))
    gd = SoftmaxRegression(solver="gd", iterations=300, learning_rate=0.5).fit(x, y)
    assert sgd.score(xt, yt) > 0.9 and gd.score(xt, yt) > 0.9
    assert sgd.coef_.shape == (10, 64)  # ten weight vectors, viewable as 8x8 images
    losses = gd.history_.column("loss")
    assert losses[-1] < losses[0]
    assert "val_accuracy" in sgd.history_.records[-1]


@pytest.mark.parametrize(
    "model",
    [
        SoftmaxRegression(epochs=2),
        OneVsAllLogistic(max_iter=20),
        GaussianClassifier(),
        GaussianClassifier(diagonal=True, smoothing=0.01),
        KNeighborsClassifier(n_neighbors=3),
    ],
    ids=["softmax", "logistic", "gaussian", "naive-bayes", "knn"],
)
def test_save_load_identical_predictions(digits, tmp_path, model):
    x, y, xt, _ = digits
    model.fit(x, y)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict_proba(xt), model.predict_proba(xt))


def test_bad_inputs_get_one_line_errors(digits):
    x, y, _, _ = digits
    with pytest.raises(
        UsageError, match="n_neighbors=2000 is larger than the training set \\(1438 rows\\)"
    ):
        KNeighborsClassifier(n_neighbors=2000).fit(x, y)
    with pytest.raises(
        UsageError, match="smoothing must be a number >= 0 or 'auto', got smoothing=-1"
    ):
        GaussianClassifier(smoothing=-1).fit(x, y)
    for model in (
        SoftmaxRegression(),
        OneVsAllLogistic(),
        GaussianClassifier(),
        KNeighborsClassifier(),
    ):
        with pytest.raises(UsageError, match="need at least two classes to fit a classifier"):
            model.fit(x[:10], np.zeros(10, int))
    with pytest.raises(UsageError, match="metric must be one of l2, l1, got 'cosine'"):
        KNeighborsClassifier(metric="cosine").fit(x, y)
    with pytest.raises(UsageError, match="singular"):
        GaussianClassifier(smoothing=0.0).fit(x, y)


@pytest.mark.parametrize("estimator", [MLPClassifier, SoftmaxRegression])
def test_validation_data_is_checked_like_the_training_data(digits, estimator):
    x, y, xt, yt = digits
    cases = [
        (xt, "validation_data must be a pair \\(X_val, y_val\\), got ndarray"),
        ((xt, yt, yt), "validation_data must be a pair \\(X_val, y_val\\), got tuple of 3"),
        ((xt[:, :10], yt), "validation X has 10 features, X has 64"),
        ((xt, yt[:5]), "validation y must be one label per row of validation X \\(359\\), got"),
        ((xt, yt + 20), "validation labels \\[20, 21, .*\\] do not occur in y"),
        ((np.full_like(xt, np.nan), yt), "Input X_val contains NaN"),
    ]
    for validation_data, message in cases:
        with pytest.raises(UsageError, match=message):
            estimator(epochs=1).fit(x, y, validation_data=validation_data)
    model = estimator(epochs=1).fit(x, y, validation_data=[xt, list(yt)])
    assert "val_accuracy" in model.history_.records[-1]

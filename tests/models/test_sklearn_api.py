"""mnistlab's estimators among scikit-learn's tools: clone, Pipeline, GridSearchCV, cross-validation
in worker processes, pickle and joblib; labels of any kind; decision_function's shape; and bad
input refused with the exception and message of a scikit-learn estimator that takes dense numeric
input as they do (QuadraticDiscriminantAnalysis)."""

from __future__ import annotations

import json
import pickle
import warnings

import joblib
import numpy as np
import pytest
from scipy import sparse
from scipy.stats import rankdata
from sklearn.base import clone, is_classifier
from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
from sklearn.exceptions import DataConversionWarning
from sklearn.model_selection import GridSearchCV, cross_val_score, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

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
from mnistlab.models.base import NotFittedError


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits")
    return (
        flatten(to_float(data.x_train, data.pixel_max)),
        data.y_train,
        flatten(to_float(data.x_test, data.pixel_max)),
        data.y_test,
    )


def small_models():
    """One quick configuration of every kind (fresh instances)."""
    return [
        MLPClassifier(hidden_layer_sizes=(16,), learning_rate=1e-2, epochs=3, batch_size=32),
        SoftmaxRegression(epochs=3),
        OneVsAllLogistic(max_iter=30),
        GaussianClassifier(),
        KNeighborsClassifier(n_neighbors=3),
    ]


KINDS = ["mlp", "softmax", "logistic", "gaussian", "knn"]
EVERY_KIND = pytest.mark.parametrize("model", small_models(), ids=KINDS)


def outputs(model, x) -> dict:
    """Every prediction method's output on x."""
    methods = ("predict", "predict_proba", "decision_function")
    return {m: getattr(model, m)(x) for m in methods if hasattr(model, m)}


def assert_same_outputs(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for method in a:
        np.testing.assert_array_equal(a[method], b[method], err_msg=method)


# ---------------------------------------------------------------------------- scikit-learn's API


@EVERY_KIND
def test_every_model_is_a_scikit_learn_classifier(model):
    assert is_classifier(model)
    twin = clone(model)
    assert type(twin) is type(model) and twin.get_params() == model.get_params()
    assert twin.set_params(**model.get_params(deep=True)) is twin
    html = model._repr_html_()
    assert type(model).__name__ in html and "<div" in html
    assert repr(model).startswith(f"{type(model).__name__}(")


@EVERY_KIND
def test_clone_of_a_fitted_model_is_unfitted(digits, model):
    x, y, xt, _ = digits
    twin = clone(model.fit(x, y))
    with pytest.raises(NotFittedError):
        twin.predict(xt)


@EVERY_KIND
def test_fitted_models_survive_pickle_and_joblib(digits, model, tmp_path):
    x, y, xt, _ = digits
    model.fit(x, y)
    expected = outputs(model, xt)
    restored = pickle.loads(pickle.dumps(model))
    assert_same_outputs(outputs(restored, xt), expected)
    joblib.dump(model, tmp_path / "model.joblib")
    assert_same_outputs(outputs(joblib.load(tmp_path / "model.joblib"), xt), expected)
    assert restored.get_params() == model.get_params()
    assert restored.fit(x, y).score(xt, digits[3]) == model.score(xt, digits[3])


def test_a_pickled_mlp_holds_its_network_not_its_trainer_or_work_buffers(digits):
    x, y, xt, _ = digits
    model = MLPClassifier(hidden_layer_sizes=(16,), epochs=2).fit(x, y)
    before = len(pickle.dumps(model))
    model.predict(np.concatenate([xt] * 20))  # fills the layers' work buffers
    assert len(pickle.dumps(model)) == before
    restored = pickle.loads(pickle.dumps(model))
    assert not hasattr(restored, "trainer_") and hasattr(model, "trainer_")
    np.testing.assert_array_equal(restored.model_.params.data, model.model_.params.data)
    assert len(restored.history_) == 2 and restored.n_epochs_run_ == 2


def test_grid_search_over_a_pipeline_with_the_mlp_in_two_processes(digits):
    x, y, xt, yt = digits
    pipeline = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(32,), epochs=4, batch_size=32)
    )
    search = GridSearchCV(
        pipeline, {"mlpclassifier__learning_rate": [1e-3, 1e-2]}, cv=2, n_jobs=2
    ).fit(x, y)
    assert search.best_params_["mlpclassifier__learning_rate"] in (1e-3, 1e-2)
    assert search.best_score_ > 0.85 and search.score(xt, yt) > 0.85


def test_cross_val_score_on_digits(digits):
    x, y, _, _ = digits
    scores = cross_val_score(SoftmaxRegression(epochs=5), x, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.85


def test_cross_validate_returns_the_fitted_estimators_from_worker_processes(digits):
    x, y, xt, yt = digits
    model = MLPClassifier(hidden_layer_sizes=(32,), learning_rate=1e-2, epochs=4, batch_size=32)
    result = cross_validate(model, x, y, cv=2, return_estimator=True, n_jobs=2)
    assert len(result["estimator"]) == 2 and result["test_score"].min() > 0.8
    for fitted in result["estimator"]:
        assert fitted.score(xt, yt) > 0.8 and fitted.classes_.tolist() == list(range(10))


# ---------------------------------------------------------------------------- labels and outputs


@EVERY_KIND
def test_labels_of_any_kind_come_back_as_given(digits, model):
    x, y, xt, yt = digits
    reference = clone(model).fit(x, y).predict(xt)
    # non-contiguous integers keep the classes' order: the same model, relabelled
    shifted = clone(model).fit(x, 3 * y + 7)
    assert shifted.classes_.tolist() == list(range(7, 35, 3))
    np.testing.assert_array_equal(shifted.predict(xt), 3 * reference + 7)
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )
    named = clone(model).fit(x, names[y])
    assert named.classes_.tolist() == sorted(names)
    assert named.predict(xt).dtype.kind == "U" and named.score(xt, names[yt]) > 0.8


@EVERY_KIND
def test_a_column_of_labels_is_raveled_with_scikit_learns_warning(digits, model):
    x, y, xt, _ = digits
    with pytest.warns(DataConversionWarning, match="A column-vector y was passed"):
        column = clone(model).fit(x, y[:, None])
    np.testing.assert_array_equal(column.predict(xt), clone(model).fit(x, y).predict(xt))


@EVERY_KIND
def test_images_are_read_as_rows_of_pixels(digits, model):
    x, y, xt, _ = digits
    images = clone(model).fit(x.reshape(-1, 8, 8), y)
    np.testing.assert_array_equal(
        images.predict(xt.reshape(-1, 8, 8)), clone(model).fit(x, y).predict(xt)
    )


@EVERY_KIND
def test_decision_function_ranks_as_predict_proba_and_predicts_as_predict(digits, model):
    x, y, xt, _ = digits
    if not hasattr(model, "decision_function"):
        assert isinstance(model, KNeighborsClassifier)  # votes: no score to rank by
        return
    assert model.fit(x, y).decision_function(xt).shape == (xt.shape[0], 10)
    pair = np.isin(y, (3, 8))
    binary = clone(model).fit(x[pair], np.where(y[pair] == 3, "three", "eight"))
    decision = binary.decision_function(xt)
    assert decision.shape == (xt.shape[0],)
    # positive where the second class (classes_[1]) is predicted
    np.testing.assert_array_equal(binary.classes_[(decision > 0).astype(int)], binary.predict(xt))
    np.testing.assert_array_equal(rankdata(decision), rankdata(binary.predict_proba(xt)[:, 1]))


# ---------------------------------------------------------------------------- bad input


#: scikit-learn's reference: dense numeric input, as mnistlab's models take
REFERENCE = QuadraticDiscriminantAnalysis


def _error(method, *args):
    """The exception method(*args) raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            method(*args)
        except Exception as exc:  # noqa: BLE001 - the exception is what is compared
            return exc
    raise AssertionError(f"{method.__qualname__} raised nothing")


def assert_same_error(ours: Exception, theirs: Exception, name: str, case: str) -> None:
    """The same exception type (or a subclass) and message, but for the estimator's name; a
    ValueError is also mnistlab's UsageError (one line and exit 2 on the command line)."""
    assert isinstance(ours, type(theirs)), case
    assert str(ours) == str(theirs).replace(REFERENCE.__name__, name), case
    if isinstance(theirs, ValueError):
        assert isinstance(ours, UsageError), case


def _bad_inputs(x, y):
    nan, inf = x.copy(), x.copy()
    nan[7, 3], inf[9, 1] = np.nan, np.inf
    obj = x[:20].astype(object)
    obj[0, 0] = {"a": 1}
    return {
        "empty X": (x[:0], y[:0]),
        "NaN": (nan, y),
        "infinity": (inf, y),
        "complex": (x + 1j, y),
        "object dtype": (obj, y[:20]),
        "strings": (np.full((20, 3), "a"), y[:20]),
        "1-D X": (x[:, 0], y),
        "sparse": (sparse.csr_matrix(x), y),
        "continuous y": (x, y + 0.5),
        "lengths": (x, y[:-1]),
        "y None": (x, None),
    }


@EVERY_KIND
def test_fit_refuses_bad_input_as_scikit_learn_does(digits, model):
    x, y, _, _ = digits
    for case, (bad_x, bad_y) in _bad_inputs(x, y).items():
        ours = _error(clone(model).fit, bad_x, bad_y)
        theirs = _error(REFERENCE().fit, bad_x, bad_y)
        assert_same_error(ours, theirs, type(model).__name__, case)


@EVERY_KIND
def test_predict_refuses_bad_input_as_scikit_learn_does(digits, model):
    x, y, xt, _ = digits
    name = type(model).__name__
    unfitted = _error(clone(model).predict, xt)
    assert isinstance(unfitted, NotFittedError)  # mnistlab's, a subclass of scikit-learn's
    assert_same_error(unfitted, _error(REFERENCE().predict, xt), name, "not fitted")
    model.fit(x, y)
    reference = REFERENCE(reg_param=0.5).fit(x, y)
    nan = xt.copy()
    nan[0, 0] = np.nan
    for case, bad in {
        "wrong features": xt[:, :10],
        "empty": xt[:0],
        "NaN": nan,
        "infinity": np.full_like(xt, -np.inf),
        "1-D": xt[0],
        "sparse": sparse.csr_matrix(xt),
    }.items():
        assert_same_error(_error(model.predict, bad), _error(reference.predict, bad), name, case)


@EVERY_KIND
def test_one_class_is_refused_and_one_feature_is_enough(digits, model):
    x, y, xt, _ = digits
    with pytest.raises(UsageError) as info:
        clone(model).fit(x[:10], np.zeros(10, int))
    assert str(info.value) == (
        "need at least two classes to fit a classifier; y holds only one class: [0]"
    )
    one_feature = clone(model).fit(x[:, 27:28], y)
    assert one_feature.n_features_in_ == 1 and one_feature.predict(xt[:, 27:28]).shape == (359,)


@EVERY_KIND
def test_finite_values_whose_sum_overflows_are_accepted(digits, model):
    x, y, _, _ = digits
    model.fit(x, y)
    huge = np.full((3, x.shape[1]), 3e38, dtype=np.float32)
    with np.errstate(all="ignore"):  # (the models' own products overflow on them)
        assert model.predict(huge).shape == (3,)


# ---------------------------------------------------------------------------- saved models


def test_model_json_written_before_the_scikit_learn_names_still_loads(digits, tmp_path):
    """Run folders from before the rename hold seed, k, hidden, beta1 and beta2."""
    x, y, xt, _ = digits
    for model, old_names in (
        (
            MLPClassifier(hidden_layer_sizes=(16,), epochs=1, beta_1=0.8, random_state=3),
            {"hidden_layer_sizes": "hidden", "beta_1": "beta1", "random_state": "seed"},
        ),
        (KNeighborsClassifier(n_neighbors=4), {"n_neighbors": "k"}),
        (GaussianClassifier(random_state=2), {"random_state": "seed"}),
    ):
        folder = model.fit(x, y).save(tmp_path / type(model).__name__)
        meta = json.loads((folder / "model.json").read_text())
        meta["params"] = {old_names.get(k, k): v for k, v in meta["params"].items()}
        (folder / "model.json").write_text(json.dumps(meta))
        loaded = load_model(folder)
        assert loaded.get_params() == model.get_params()
        np.testing.assert_array_equal(loaded.predict_proba(xt), model.predict_proba(xt))

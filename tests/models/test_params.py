"""ParamSpec: the values each kind accepts, its bounds, and the one-line error in each style;
every estimator checks its table in fit."""

from __future__ import annotations

import numpy as np
import pytest

from mnistlab.errors import UsageError
from mnistlab.models import MODELS, MLPClassifier, ParamSpec, SoftmaxRegression
from mnistlab.models.params import option_flag, or_list


def message(spec: ParamSpec, value, style: str = "keyword") -> str:
    with pytest.raises(UsageError) as info:
        spec.validate(value, style)
    return str(info.value)


def test_the_styles_name_and_quote_differently():
    spec = ParamSpec("learning_rate", "float", low=0, closed="neither", key="lr")
    assert message(spec, -1) == "learning_rate must be a positive number, got learning_rate=-1"
    assert message(spec, -1, "python") == "learning_rate must be a positive number, got -1"
    assert message(spec, -1, "cli") == "--lr must be a positive number, got -1"
    assert message(spec, -1, "key") == "lr must be a positive number, got -1"
    choice = ParamSpec("metric", "choice", choices=("l2", "l1"))
    for style in ("keyword", "python", "key"):  # a bad choice is quoted bare in every style
        assert message(choice, "cosine", style) == "metric must be one of l2, l1, got 'cosine'"


def test_a_python_only_argument_is_named_as_such_in_every_style():
    spec = ParamSpec("record_every", "int", low=1, key=None)
    assert spec.key is None
    assert message(spec, 0, "cli") == "record_every must be a positive integer, got 0"


@pytest.mark.parametrize(
    ("spec", "good", "bad", "requirement"),
    [
        (ParamSpec("n", "int", low=1), [1, np.int64(7)], [0, 1.0, True, "1"], "a positive integer"),
        (ParamSpec("n", "int", low=0), [0, 3], [-1], "a non-negative integer"),
        (ParamSpec("n", "int", low=2, high=5), [2, 5], [1, 6], "in [2, 5]"),
        (ParamSpec("n", "int", low=2), [2], [1], "an integer >= 2"),
        (
            ParamSpec("x", "float", low=0, closed="neither"),
            [1e-9, 3, np.float32(0.5)],
            [0, -1.0, float("nan"), float("inf"), True, "1"],
            "a positive number",
        ),
        (ParamSpec("x", "float", low=0), [0, 0.0, 2.5], [-1e-9], "a non-negative number"),
        (
            ParamSpec("x", "float", low=0, high=1, closed="left"),
            [0, 0.99],
            [1, -0.1, float("nan")],
            "in [0, 1)",
        ),
        (ParamSpec("x", "float", low=0, high=1, closed="right"), [1], [0], "in (0, 1]"),
        (ParamSpec("x", "float", high=1, closed="neither"), [-5.0], [1.0], "a number < 1"),
        (ParamSpec("b", "bool"), [True, False], [1, 0, "yes", None], "true or false"),
        (ParamSpec("s", "name"), ["relu"], [5, None], "a name"),
        (ParamSpec("h", "sizes"), [[8], (4, 2), []], [[0], [True], 5, "8"], "positive sizes"),
        (ParamSpec("v", "split"), [0.1, 1, 10000, 0], [-1, 1.5, 1.0, 2.0, True, "a"], "a split"),
    ],
)
def test_each_kind_accepts_its_values_and_refuses_others(spec, good, bad, requirement):
    for value in good:
        spec.validate(value)
    for value in bad:
        text = message(spec, value)
        if requirement not in ("positive sizes", "a split"):
            assert text == f"{spec.name} must be {requirement}, got {spec.name}={value!r}"


def test_none_also_check_and_requirement():
    spec = ParamSpec(
        "smoothing", "float", low=0, also=("auto",), none=True, requirement="c >= 0 or 'auto'"
    )
    for value in (None, "auto", 0.5):
        spec.validate(value)
    assert message(spec, "x") == "smoothing must be c >= 0 or 'auto', got smoothing='x'"

    def known(value):
        if value != "relu":
            raise UsageError(f"unknown activation {value!r}")

    named = ParamSpec("activation", "name", check=known)
    named.validate("relu")
    assert message(named, "swish") == "unknown activation 'swish'"
    assert message(named, 5) == "activation must be a name, got activation=5"


def test_specs_are_declared_correctly():
    with pytest.raises(ValueError, match="kind must be one of"):
        ParamSpec("x", "number")
    with pytest.raises(ValueError, match="closed must be one of"):
        ParamSpec("x", "float", closed="open")
    assert ParamSpec("x", "float", low=0, high=1, closed="neither").interval() == "(0, 1)"


def test_help_and_option_names():
    spec = ParamSpec("weights", "choice", choices=("uniform", "distance"), help="{choices}")
    assert spec.help_text() == "uniform or distance"
    assert or_list(["a", "b", "c"]) == "a, b, c"
    assert option_flag("batch_size") == "--batch-size"
    assert ParamSpec("final_learning_rate", "float", key="final_lr").display("cli") == "--final-lr"


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(30, 4)).astype(np.float32), np.arange(30) % 3


def _bad_value(spec: ParamSpec):
    return {
        "int": (spec.low or 0) - 1,
        "float": -1.0 if spec.low is not None else float("nan"),
        "bool": "yes",
        "name": 5,
        "choice": "nope",
        "sizes": [0],
        "split": -1,
        "any": "no-such-initializer",
    }[spec.kind]


@pytest.mark.parametrize("model", list(MODELS.values()))
def test_fit_checks_every_argument_against_the_table(model, data):
    x, y = data
    for spec in model.param_specs:
        with pytest.raises(UsageError) as info:
            model(**{spec.name: _bad_value(spec)}).fit(x, y)
        assert spec.name in str(info.value) or "initializer" in str(info.value), spec.name


def test_the_mlp_and_softmax_quote_bare_values_the_classical_models_name_them(data):
    x, y = data
    with pytest.raises(UsageError, match="^dropout must be in \\[0, 1\\), got 1.5$"):
        MLPClassifier(dropout=1.5).fit(x, y)
    with pytest.raises(UsageError, match="^final_learning_rate must be a positive number, got 0$"):
        SoftmaxRegression(final_learning_rate=0).fit(x, y)
    with pytest.raises(UsageError, match="^C must be a positive number, got C=0$"):
        MODELS["logistic-ova"](C=0).fit(x, y)
    with pytest.raises(
        UsageError, match="^n_neighbors must be a positive integer, got n_neighbors=0$"
    ):
        MODELS["knn"](n_neighbors=0).fit(x, y)
    with pytest.raises(
        UsageError, match="^beta_1 is for the adam and adamw optimizers, not 'sgd'$"
    ):
        MLPClassifier(optimizer="sgd", beta_1=0.5).fit(x, y)

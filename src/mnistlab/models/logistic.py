"""One-vs-all logistic regression: K binary L2-regularized logistic regressions, fit by L-BFGS.

For class k: minimize 0.5 * ||w||^2 + C * sum_i log(1 + exp(-s_i (x_i . w + b))) with
s_i = +1 if y_i == k else -1, the intercept b unpenalized (scikit-learn's LogisticRegression
objective, so C means the same). The K problems are independent; by default they are solved as one
L-BFGS run over their sum (same minimizers), so that each objective evaluation reads X once for all
classes (a GEMM instead of K matrix-vector products); joint=False solves them one after another.
Class k is class k: coef_[k] belongs to classes_[k], and no label is ever renumbered (a label
renumbered for training but not for prediction makes every prediction of it wrong).
predict_proba normalizes the K sigmoids per row; predict takes the largest sigmoid, and for two
classes decision_function is log sigmoid(m_1) - log sigmoid(m_0), which ranks rows as
predict_proba's second column does.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_expit

from mnistlab.models.base import LogScoreClassifier
from mnistlab.models.params import DTYPE, ParamSpec


def binary_objective(params: np.ndarray, X: np.ndarray, signs: np.ndarray, C: float):
    """(value, gradient) of the K one-vs-rest objectives summed, at params = [W.ravel(), b].

    X: (n, d) float32 or float64; signs: (n, K) +-1 in X's dtype (one column per class; K = 1
    for a single binary problem). Each column's objective is
    0.5 ||w_k||^2 + C * sum_i log(1 + exp(-s_ik (x_i . w_k + b_k))); the problems are independent,
    so minimizing their sum minimizes each. Everything is divided by C * n so that the gradient
    tolerance means what it means to scikit-learn (which averages the loss over the samples).
    The matrix products run in X's dtype (one pass over X for all K classes); sums in float64.
    """
    n, d = X.shape
    k = signs.shape[1]
    weights = params[: d * k].reshape(d, k)
    bias = params[d * k :]
    margins = X @ weights.astype(X.dtype)
    margins += bias.astype(X.dtype)
    margins *= signs
    scale = 1.0 / (C * n)
    # log(1 + exp(-m)) = -log_expit(m), stable for any m
    value = scale * (
        0.5 * float(np.sum(weights * weights))
        - C * float(np.sum(log_expit(margins), dtype=np.float64))
    )
    # d/dm of -log_expit(m) is -expit(-m)
    coefficient = expit(-margins)
    coefficient *= signs
    coefficient *= -C
    grad = np.empty_like(params)
    grad[: d * k] = (scale * (weights + (X.T @ coefficient).astype(np.float64))).ravel()
    grad[d * k :] = scale * coefficient.sum(axis=0, dtype=np.float64)
    return value, grad


class OneVsAllLogistic(LogScoreClassifier):
    """K binary logistic regressions, one per class against the rest, by L-BFGS with an
    analytic gradient.

    Parameters
    ----------
    C : float, default=1.0
        Inverse L2 strength, as scikit-learn's LogisticRegression's.
    max_iter : int, default=100
        L-BFGS iterations at most.
    tol : float, default=1e-4
        Gradient tolerance of L-BFGS (on the loss averaged over the rows).
    joint : bool, default=True
        Solve the K problems as one L-BFGS run over their sum (one pass over X per evaluation
        for all classes) instead of one after another.
    dtype : str, default="float32"
        float32 or float64: the type of the products with X.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in fit, sorted.
    n_features_in_ : int
        Features (pixels) of each row.
    coef_ : ndarray of shape (n_classes, n_features)
        ``coef_[k]`` separates ``classes_[k]`` from the rest.
    intercept_ : ndarray of shape (n_classes,)
        The biases.
    n_iter_ : ndarray of shape (n_classes,)
        L-BFGS iterations of each class's problem.
    """

    model_name = "logistic-ova"
    learned_attributes = ("classes_", "coef_", "intercept_")
    param_specs = (
        ParamSpec("C", "float", low=0, closed="neither", metavar="C", help="inverse L2 strength"),
        ParamSpec("max_iter", "int", low=1, metavar="N", help="L-BFGS budget"),
        ParamSpec("tol", "float", low=0, key=None),
        ParamSpec("joint", "bool", key=None),
        DTYPE,
    )

    def __init__(
        self,
        C: float = 1.0,
        max_iter: int = 100,
        tol: float = 1e-4,
        joint: bool = True,
        dtype: str = "float32",
    ) -> None:
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.joint = joint
        self.dtype = dtype

    def fit(self, X, y):
        # scipy.optimize is slow to import and only fitting needs it, while every `mnistlab`
        # command imports the models (its options come from their parameter tables)
        from scipy.optimize import minimize

        self._validate_params()
        X, y = self._validate_training_data(X, y)
        X = np.ascontiguousarray(X, dtype=self.dtype)
        n_classes, d = self.classes_.size, X.shape[1]
        options = {"maxiter": int(self.max_iter), "gtol": self.tol, "maxcor": 10}
        if self.joint:
            signs = np.where(y[:, None] == np.arange(n_classes)[None, :], 1, -1).astype(X.dtype)
            result = minimize(
                binary_objective,
                np.zeros(n_classes * (d + 1)),
                args=(X, signs, float(self.C)),
                jac=True,
                method="L-BFGS-B",
                options=options,
            )
            self.coef_ = result.x[: d * n_classes].reshape(d, n_classes).T.copy()
            self.intercept_ = result.x[d * n_classes :].copy()
            self.n_iter_ = np.full(n_classes, result.nit)
            return self
        coef, intercept = np.zeros((n_classes, d)), np.zeros(n_classes)
        self.n_iter_ = np.zeros(n_classes, dtype=int)
        signs = np.empty((X.shape[0], 1), dtype=X.dtype)
        for k in range(n_classes):
            signs[:, 0] = np.where(y == k, 1, -1)
            result = minimize(
                binary_objective,
                np.zeros(d + 1),
                args=(X, signs, float(self.C)),
                jac=True,
                method="L-BFGS-B",
                options=options,
            )
            coef[k] = result.x[:-1]
            intercept[k] = result.x[-1]
            self.n_iter_[k] = result.nit
        self.coef_, self.intercept_ = coef, intercept
        return self

    def _margins(self, X) -> np.ndarray:
        """(n, n_classes) margins x . w_k + b_k."""
        X = self._validate_X(X)
        return X @ self.coef_.T + self.intercept_

    def _log_scores(self, X) -> np.ndarray:
        """(n, n_classes) log sigmoid(x . w_k + b_k): predict_proba normalizes their exps."""
        return log_expit(self._margins(X))

    def decision_function(self, X) -> np.ndarray:
        """Margins x . w_k + b_k: (n, n_classes); (n,) for two classes, log sigmoid(m_1) -
        log sigmoid(m_0) (which equals m_1 when the two mirror-image problems solve exactly)."""
        margins = self._margins(X)
        if margins.shape[1] == 2:
            return log_expit(margins[:, 1]) - log_expit(margins[:, 0])
        return margins

    def predict_proba(self, X) -> np.ndarray:
        """The K one-vs-rest sigmoids, normalized to sum to 1 per row: (n, n_classes)."""
        proba = expit(self._margins(X))
        proba /= proba.sum(axis=1, keepdims=True)
        return proba

    def _arrays(self):
        return {"coef": self.coef_, "intercept": self.intercept_}

    def _expected_arrays(self, n_classes, n_features):
        return {"coef": ((n_classes, n_features), "f"), "intercept": ((n_classes,), "f")}

    def _restore(self, meta, arrays):
        self.coef_, self.intercept_ = arrays["coef"], arrays["intercept"]

"""The Gaussian generative classifier: one multivariate normal per class, Bayes' rule on top.

log p(y = k | x) = log pi_k + log N(x; mu_k, (1 - s) Sigma_k + c I) + const, with class priors
pi_k, means mu_k and covariances Sigma_k estimated per class, smoothed by c * I (the default
c = 0.06 on pixels scaled to [0, 1] is c = 4000 on 0-255 pixels: 4000 / 255^2 = 0.0615) and
optionally shrunk by s (scikit-learn's QuadraticDiscriminantAnalysis(reg_param=r) is s = c = r).
Log-densities go through a Cholesky factor and are computed for the whole test set at once:
log N = -0.5 * ||L^-1 (x - mu)||^2 - sum(log diag L) - d/2 log(2 pi), with Sigma + c I = L L^T.

smoothing="auto" picks c (and s) on a stratified validation split (20% of the training data)
from a grid; every grid point reuses one eigendecomposition per class, so the search costs little
more than one fit. diagonal=True keeps only the variances (Gaussian naive Bayes).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import cho_factor, eigh, solve_triangular

from mnistlab.data.prepare import stratified_indices
from mnistlab.errors import UsageError
from mnistlab.models.base import LogScoreClassifier
from mnistlab.models.params import RANDOM_STATE, ParamSpec

#: candidate values of c for smoothing="auto", on [0, 1]-scaled pixels, and of the shrinkage s
AUTO_GRID = tuple(np.logspace(-4, 1, 21))
AUTO_SHRINKAGE = (0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)


class GaussianClassifier(LogScoreClassifier):
    """One multivariate normal per class, and Bayes' rule: the Gaussian generative classifier.

    Parameters
    ----------
    smoothing : float or "auto", default=0.06
        c added to every covariance's diagonal (>= 0), or "auto": chosen, with the shrinkage
        when that is None, on a stratified 20% validation split.
    shrinkage : float or None, default=None
        s in [0, 1): each covariance is scaled by (1 - s) before c I is added (None: 0, or
        searched with smoothing="auto").
    diagonal : bool, default=False
        Gaussian naive Bayes (independent pixels) instead of full covariances.
    random_state : int, default=0
        Seeds the validation split of smoothing="auto" (configuration key and option:
        ``seed``).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in fit, sorted.
    n_features_in_ : int
        Features (pixels) of each row.
    priors_ : ndarray of shape (n_classes,)
        Each class's share of the training rows.
    means_ : ndarray of shape (n_classes, n_features)
        Each class's mean.
    factors_ : ndarray of shape (n_classes, n_features, n_features) or (n_classes, n_features)
        The Cholesky factors of the smoothed covariances (their variances if ``diagonal``).
    smoothing_, shrinkage_ : float
        The c and s used.
    validation_scores_ : dict
        With smoothing="auto": the validation accuracy of each (c, s) tried.
    """

    model_name = "gaussian"
    learned_attributes = ("classes_", "priors_", "means_", "factors_")
    param_specs = (
        ParamSpec(
            "smoothing",
            "float",
            low=0,
            also=("auto",),
            requirement="a number >= 0 or 'auto'",
            metavar="C|auto",
            help="c added to each covariance's diagonal",
        ),
        ParamSpec(
            "shrinkage",
            "float",
            low=0,
            high=1,
            closed="left",
            none=True,
            metavar="S",
            help="scale covariances by 1 - S before adding c I (QDA's reg_param)",
        ),
        ParamSpec("diagonal", "bool", help="naive Bayes (diagonal covariances)"),
        RANDOM_STATE,
    )

    def __init__(
        self,
        smoothing: float | str = 0.06,
        shrinkage: float | None = None,
        diagonal: bool = False,
        random_state: int = 0,
    ) -> None:
        self.smoothing = smoothing
        self.shrinkage = shrinkage
        self.diagonal = diagonal
        self.random_state = random_state

    def fit(self, X, y):
        """Estimate each class's prior, mean and covariance from X (n, features) and y (n,)
        labels (choosing the smoothing first if it is "auto"). Returns self."""
        self._validate_params()
        X, y = self._validate_training_data(X, y)
        if self.smoothing == "auto":
            self.smoothing_, self.shrinkage_, self.validation_scores_ = self._choose_smoothing(X, y)
        else:
            self.smoothing_ = float(self.smoothing)
            self.shrinkage_ = float(self.shrinkage or 0.0)
        self._fit_stats(X, y)
        return self

    def _class_stats(self, X, y):
        """(label, count, mean, covariance or variances) per class, in float64, for y as class
        indices; X is only read one class at a time, so the full data is never copied."""
        for index, label in enumerate(self.classes_):
            members = np.asarray(X[y == index], dtype=np.float64)
            mean = members.mean(axis=0)
            centered = members - mean
            if self.diagonal:
                yield label, members.shape[0], mean, np.mean(centered**2, axis=0)
            else:
                yield label, members.shape[0], mean, centered.T @ centered / members.shape[0]

    def _fit_stats(self, X, y):
        counts, means, factors = [], [], []
        for label, count, mean, spread in self._class_stats(X, y):
            counts.append(count)
            means.append(mean)
            if self.diagonal:
                variance = (1.0 - self.shrinkage_) * spread + self.smoothing_
                if np.any(variance <= 0):
                    raise UsageError(
                        f"class {label} has pixels with zero variance; use smoothing > 0"
                    )
                factors.append(variance)
            else:
                spread *= 1.0 - self.shrinkage_
                spread[np.diag_indices_from(spread)] += self.smoothing_
                try:
                    lower, _ = cho_factor(spread, lower=True, check_finite=False)
                except np.linalg.LinAlgError:
                    raise UsageError(
                        f"the covariance of class {label} is singular with smoothing "
                        f"{self.smoothing_:g}; use a larger smoothing (or 'auto')"
                    ) from None
                factors.append(np.tril(lower))
        self.priors_ = np.array(counts, dtype=np.float64) / sum(counts)
        self.means_ = np.array(means)
        self.factors_ = np.array(factors)

    def log_densities(self, X) -> np.ndarray:
        """(n, n_classes) log N(x; mu_k, Sigma_k + c I), vectorized over the rows of X."""
        X = np.asarray(self._validate_X(X), dtype=np.float64)
        n, d = X.shape
        out = np.empty((n, self.classes_.size))
        for k in range(self.classes_.size):
            centered = X - self.means_[k]
            if self.diagonal:
                variance = self.factors_[k]
                out[:, k] = -0.5 * (
                    np.sum(centered**2 / variance, axis=1)
                    + np.sum(np.log(variance))
                    + d * math.log(2 * math.pi)
                )
            else:
                lower = self.factors_[k]
                # L^-1 (x - mu) for all rows at once: one triangular solve with n right-hand sides
                solved = solve_triangular(lower, centered.T, lower=True, check_finite=False)
                out[:, k] = -0.5 * (
                    np.einsum("ij,ij->j", solved, solved) + d * math.log(2 * math.pi)
                ) - np.sum(np.log(np.diag(lower)))
        return out

    def _log_scores(self, X) -> np.ndarray:
        """Unnormalized log posteriors (n, n_classes): log pi_k + log N(x; mu_k, Sigma_k)."""
        return self.log_densities(X) + np.log(self.priors_)

    def _choose_smoothing(self, X, y):
        """The (c, s) of the grid with the best accuracy on a stratified 20% validation split."""
        train, held = stratified_indices(y, 0.2, np.random.default_rng(self.random_state))
        y_tr, y_val = y[train], y[held]
        x_tr = X[train]
        x_val = np.asarray(X[held], dtype=np.float64)
        grid = [
            (c, s)
            for s in (AUTO_SHRINKAGE if self.shrinkage is None else (float(self.shrinkage),))
            for c in AUTO_GRID
        ]
        scores = np.empty((len(grid), x_val.shape[0], self.classes_.size))
        for k, (_, count, mean, spread) in enumerate(self._class_stats(x_tr, y_tr)):
            prior = math.log(count / y_tr.size)
            centered = x_val - mean
            if self.diagonal:
                eigenvalues, projected = spread, centered**2
            else:
                # (1 - s) V diag(lam) V^T + c I = V diag((1 - s) lam + c) V^T for every (c, s).
                eigenvalues, vectors = eigh(spread, check_finite=False)
                eigenvalues = np.maximum(eigenvalues, 0.0)
                projected = (centered @ vectors) ** 2  # (n_val, d)
            for g, (c, s) in enumerate(grid):
                variances = (1.0 - s) * eigenvalues + c
                scores[g, :, k] = prior - 0.5 * (
                    projected @ (1.0 / variances) + np.sum(np.log(variances))
                )
        accuracies = (scores.argmax(axis=2) == y_val).mean(axis=1)
        best = int(np.argmax(accuracies))
        table = {f"c={c:.4g},s={s:g}": float(a) for (c, s), a in zip(grid, accuracies, strict=True)}
        return float(grid[best][0]), float(grid[best][1]), table

    def _extra_meta(self):
        return {"smoothing_": self.smoothing_, "shrinkage_": self.shrinkage_}

    def _arrays(self):
        return {"priors": self.priors_, "means": self.means_, "factors": self.factors_}

    def _expected_arrays(self, n_classes, n_features):
        factors = (n_classes, n_features) if self.diagonal else (n_classes, n_features, n_features)
        return {
            "priors": ((n_classes,), "f"),
            "means": ((n_classes, n_features), "f"),
            "factors": (factors, "f"),
        }

    def _restore(self, meta, arrays):
        self.priors_, self.means_ = arrays["priors"], arrays["means"]
        self.factors_ = arrays["factors"]
        self.smoothing_ = meta["smoothing_"]
        self.shrinkage_ = meta["shrinkage_"]

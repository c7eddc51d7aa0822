"""k-nearest neighbours by exact brute force, blocked so memory stays bounded.

L2: for a block of test rows against all training rows, 0.5 ||y||^2 - x.y (which ranks like the
squared distance ||x||^2 - 2 x.y + ||y||^2) as one float32 GEMM and one pass. The k + `margin`
closest candidates of each row are then re-ranked with distances recomputed exactly in float64,
so that float32 rounding never changes which neighbours win. L1: blocked over test and training
rows, never an (n_test x n_train x d) array.
Ties are broken deterministically: equal distances by the smaller training index, equal votes by
the smaller class label (as scikit-learn's mode does).
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from mnistlab.errors import UsageError
from mnistlab.models.base import Classifier
from mnistlab.models.params import ParamSpec


class KNeighborsClassifier(Classifier):
    """k-nearest neighbours by exact brute force: a vote among the closest training rows.

    Parameters
    ----------
    n_neighbors : int, default=5
        The k neighbours that vote (configuration key and option: ``k``).
    weights : {"uniform", "distance"}, default="uniform"
        Equal votes, or votes weighted by 1 / distance (an exact match takes all the weight).
    metric : {"l2", "l1"}, default="l2"
        Euclidean or Manhattan distance.
    block_size : int, default=1024
        Test rows per block; memory is about ``block_size * n_train * 4`` bytes.
    margin : int, default=8
        Extra float32 candidates re-ranked with exact float64 distances.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in fit, sorted.
    n_features_in_ : int
        Features (pixels) of each row.
    train_x_ : ndarray of shape (n_train, n_features)
        The training rows, in float32.
    train_y_ : ndarray of shape (n_train,)
        Their classes, as indices into ``classes_``.
    """

    model_name = "knn"
    learned_attributes = ("classes_", "train_x_", "train_y_")
    param_specs = (
        ParamSpec("n_neighbors", "int", low=1, key="k", metavar="K", help="neighbours"),
        ParamSpec("weights", "choice", choices=("uniform", "distance"), help="{choices}"),
        ParamSpec("metric", "choice", choices=("l2", "l1"), help="{choices}"),
        ParamSpec("block_size", "int", low=1, metavar="N", help="test rows per block"),
        ParamSpec("margin", "int", low=0, key=None),
    )

    def __init__(
        self,
        n_neighbors: int = 5,
        weights: str = "uniform",
        metric: str = "l2",
        block_size: int = 1024,
        margin: int = 8,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.metric = metric
        self.block_size = block_size
        self.margin = margin

    def fit(self, X, y):
        """Keep the training rows X (n, features), in float32, and their labels y (n,).
        Returns self."""
        self._validate_params()
        X, y_index = self._validate_training_data(X, y)
        if self.n_neighbors > X.shape[0]:
            raise UsageError(
                f"n_neighbors={self.n_neighbors} is larger than the training set "
                f"({X.shape[0]} rows)"
            )
        self.train_x_ = np.ascontiguousarray(X, dtype=np.float32)
        self.train_y_ = y_index
        self._prepare_norms()
        return self

    def _prepare_norms(self) -> None:
        sq = np.einsum("ij,ij->i", self.train_x_, self.train_x_, dtype=np.float64)
        self._half_sq = (0.5 * sq).astype(np.float32)

    # ------------------------------------------------------------------ neighbours

    def kneighbors(self, X) -> tuple[np.ndarray, np.ndarray]:
        """(distances, indices) of the n_neighbors nearest training rows: each (n, n_neighbors),
        nearest first."""
        X = np.ascontiguousarray(self._validate_X(X), dtype=np.float32)
        n = X.shape[0]
        distances = np.empty((n, self.n_neighbors))
        indices = np.empty((n, self.n_neighbors), dtype=np.int64)
        search = self._block_l2 if self.metric == "l2" else self._block_l1
        with threadpool_limits(None):
            for start in range(0, n, self.block_size):
                block = X[start : start + self.block_size]
                distances[start : start + len(block)], indices[start : start + len(block)] = search(
                    block
                )
        return distances, indices

    def _select(self, approx: np.ndarray, exact_fn) -> tuple[np.ndarray, np.ndarray]:
        """The k best of each row of `approx` (any monotone proxy of the distance), re-ranked by
        exact float64 distances; equal exact distances go to the smaller training index.

        Instead of a full argpartition of every row, a threshold per row bounds the candidates.
        The columns are dealt into G groups (column j goes to group j mod G); the m-th smallest of
        the G group minima is >= the m-th smallest element (m = k + margin), so every element
        <= it is a candidate, and only groups whose minimum is <= it can hold one. The group
        minima are one vectorized pass; the candidates are read from those few groups only.
        """
        rows, n_train = approx.shape
        m = min(n_train, self.n_neighbors + self.margin)
        n_groups = min(n_train, 64 * m)
        depth = n_train // n_groups  # full rows of the (depth, n_groups) view
        if depth < 2:
            part = (
                np.argpartition(approx, m - 1, axis=1)[:, :m]
                if m < n_train
                else (np.broadcast_to(np.arange(n_train), approx.shape))
            )
            row_index = np.repeat(np.arange(rows), part.shape[1])
            candidates = part.reshape(-1)
        else:
            body = approx[:, : depth * n_groups].reshape(rows, depth, n_groups)
            minima = body.min(axis=1)  # (rows, n_groups): elementwise minima, SIMD-friendly
            tail = approx[:, depth * n_groups :]  # fewer than n_groups leftover columns
            threshold = np.partition(minima, m - 1, axis=1)[:, m - 1]
            if tail.shape[1]:
                threshold = np.partition(
                    np.concatenate([minima, tail.min(axis=1, keepdims=True)], axis=1), m - 1, axis=1
                )[:, m - 1]
            group_rows, groups = np.nonzero(minima <= threshold[:, None])
            values = body[group_rows, :, groups]  # (pairs, depth)
            hit_pair, hit_depth = np.nonzero(values <= threshold[group_rows, None])
            row_index = group_rows[hit_pair]
            candidates = hit_depth * n_groups + groups[hit_pair]
            if tail.shape[1]:
                tail_rows, tail_cols = np.nonzero(tail <= threshold[:, None])
                row_index = np.concatenate([row_index, tail_rows])
                candidates = np.concatenate([candidates, depth * n_groups + tail_cols])
        exact = exact_fn(row_index, candidates)
        # sort by row, then exact distance, then training index (lexsort: last key is primary)
        order = np.lexsort((candidates, exact, row_index))
        starts = np.searchsorted(row_index[order], np.arange(rows))
        take = order[starts[:, None] + np.arange(self.n_neighbors)]
        return exact[take], candidates[take]

    def _block_l2(self, block: np.ndarray):
        # ranking by 0.5 ||y||^2 - x.y is ranking by ||x - y||^2: one GEMM and one pass
        approx = block @ self.train_x_.T  # (rows, n_train) float32
        np.subtract(self._half_sq, approx, out=approx)

        def exact(row_index, candidates):
            diff = self.train_x_[candidates].astype(np.float64)
            diff -= block[row_index]
            return np.sqrt(np.einsum("ij,ij->i", diff, diff))

        return self._select(approx, exact)

    def _block_l1(self, block: np.ndarray, train_chunk: int = 2048):
        rows = block.shape[0]
        n_train = self.train_x_.shape[0]
        approx = np.empty((rows, n_train), dtype=np.float32)
        # bounded temporaries: (sub_rows, train_chunk, d) float32, about 64 MB at most
        sub_rows = max(1, (64 << 20) // (4 * train_chunk * block.shape[1]))
        for r in range(0, rows, sub_rows):
            for t in range(0, n_train, train_chunk):
                diff = block[r : r + sub_rows, None, :] - self.train_x_[None, t : t + train_chunk]
                np.abs(diff, out=diff)
                approx[r : r + sub_rows, t : t + train_chunk] = diff.sum(axis=2)

        def exact(row_index, candidates):
            diff = self.train_x_[candidates].astype(np.float64)
            diff -= block[row_index]
            return np.abs(diff).sum(axis=1)

        return self._select(approx, exact)

    # ------------------------------------------------------------------ voting

    def predict_proba(self, X) -> np.ndarray:
        """Vote shares of each class among the k neighbours (weighted if weights="distance")."""
        distances, indices = self.kneighbors(X)
        labels = self.train_y_[indices]
        n = labels.shape[0]
        if self.weights == "uniform":
            votes = np.ones_like(distances)
        else:
            with np.errstate(divide="ignore"):
                votes = 1.0 / distances
            exact = np.isinf(votes)
            # an exact match takes all the weight (as scikit-learn does)
            votes = np.where(exact.any(axis=1, keepdims=True), exact.astype(float), votes)
        proba = np.zeros((n, self.classes_.size))
        np.add.at(proba, (np.arange(n)[:, None], labels), votes)
        proba /= proba.sum(axis=1, keepdims=True)
        return proba

    def _arrays(self):
        return {"train_x": self.train_x_, "train_y": self.train_y_}

    def _expected_arrays(self, n_classes, n_features):
        return {"train_x": ((None, n_features), "fiu"), "train_y": ((None,), "iu")}

    def _restore(self, meta, arrays):
        self.train_x_, self.train_y_ = arrays["train_x"], arrays["train_y"]
        self._prepare_norms()

"""The classical estimators as ONNX graphs, each the same math as its predict_proba.

Every function takes the graph, the fitted estimator (read through its learned attributes only)
and the name of the float32 input (N, n_features), and returns the name of the probabilities
(N, n_classes) in the dtype the estimator computes them in.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy.linalg import solve_triangular

if TYPE_CHECKING:  # only for the annotations: this module needs no onnx
    from mnistlab.export.graph import GraphBuilder


def softmax_regression(graph: GraphBuilder, model, x: str) -> str:
    """softmax(x W + b), in coef_'s dtype (the estimator casts X to it)."""
    coef = np.asarray(model.coef_)
    logits = graph.affine(graph.cast(x, coef.dtype), coef.T, model.intercept_, "logits")
    return graph.node("Softmax", logits, axis=1, name="softmax")


def one_vs_all(graph: GraphBuilder, model, x: str) -> str:
    """The K sigmoids of x w_k + b_k, normalized per row (float64, as X @ coef_.T promotes)."""
    coef = np.asarray(model.coef_, dtype=np.float64)
    margins = graph.affine(graph.cast(x, np.float64), coef.T, model.intercept_, "margins")
    return graph.normalize_rows(graph.node("Sigmoid", margins))


def gaussian(graph: GraphBuilder, model, x: str) -> str:
    """softmax over log pi_k + log N(x; mu_k, Sigma_k), in float64.

    log N = -0.5 ||L_k^-1 (x - mu_k)||^2 - sum(log diag L_k) - d/2 log(2 pi) with the Cholesky
    factor L_k. ONNX has no triangular solve, so the inverse factors are computed here once:
    z_k = (x - mu_k) L_k^-T for every class is one Gemm, x @ [L_1^-T ... L_K^-T] - [mu_k L_k^-T].
    The naive-Bayes variant scales (x - mu_k) by 1 / sqrt(var_k) instead.
    """
    means = np.asarray(model.means_, dtype=np.float64)
    factors = np.asarray(model.factors_, dtype=np.float64)
    n_classes, d = means.shape
    x64 = graph.cast(x, np.float64)
    if model.diagonal:
        centered = graph.node(
            "Sub", graph.node("Unsqueeze", x64, graph.axes(1)), graph.constant(means, "means")
        )
        scaled = graph.node("Mul", centered, graph.constant(1.0 / np.sqrt(factors), "inv_std"))
        log_det = 0.5 * np.sum(np.log(factors), axis=1)
    else:
        inverse = np.stack([solve_triangular(f, np.eye(d), lower=True) for f in factors])
        weight = inverse.transpose(0, 2, 1)  # (K, d, d): L_k^-T
        stacked = weight.transpose(1, 0, 2).reshape(d, n_classes * d)
        offset = -np.einsum("kd,kde->ke", means, weight).reshape(-1)
        flat = graph.affine(x64, stacked, offset, "whitened")
        shape = graph.constant(np.array([-1, n_classes, d], dtype=np.int64), "shape")
        scaled = graph.node("Reshape", flat, shape, name="whitened_by_class")
        log_det = np.sum(np.log(np.diagonal(factors, axis1=1, axis2=2)), axis=1)
    squares = graph.reduce_sum(graph.node("Mul", scaled, scaled), 2)
    offsets = np.log(np.asarray(model.priors_, dtype=np.float64)) - log_det
    offsets -= 0.5 * d * math.log(2 * math.pi)
    scores = graph.node(
        "Add",
        graph.node("Mul", squares, graph.constant(np.float64(-0.5), "minus_half")),
        graph.constant(offsets, "log_prior_and_norm"),
        name="log_posterior",
    )
    return graph.node("Softmax", scores, axis=1, name="softmax")


def k_neighbors(graph: GraphBuilder, model, x: str) -> str:
    """The vote shares of the k nearest training rows (TopK over the distances to all of them,
    as skl2onnx does), in float64.

    L2 ranks by ||x||^2 - 2 x.t + ||t||^2 and then measures the k chosen neighbours exactly,
    ||x - t||, as the estimator does; L1 sums |x - t| over an (N, n_train, d) difference, so it
    needs N * n_train * d * 8 bytes. TopK puts equal distances in index order, as the estimator
    breaks ties by the smaller training index.
    """
    train = np.asarray(model.train_x_, dtype=np.float32)
    k = int(model.n_neighbors)
    x64 = graph.cast(x, np.float64)
    train64 = graph.cast(graph.constant(train, "train_x"), np.float64)
    k_name = graph.constant(np.array([k], dtype=np.int64), "k")
    if model.metric == "l2":
        squared = (train.astype(np.float64) ** 2).sum(axis=1)
        cross = graph.node("MatMul", x64, graph.node("Transpose", train64, perm=[1, 0]))
        rank = graph.node(
            "Add",
            graph.node(
                "Sub",
                graph.reduce_sum(graph.node("Mul", x64, x64), 1, keepdims=True),
                graph.node("Add", cross, cross),
            ),
            graph.constant(squared, "train_squared_norms"),
            name="squared_distances",
        )
        _, indices = graph.node("TopK", rank, k_name, axis=1, largest=0, sorted=1, outputs=2)
        neighbours = graph.node("Gather", train64, indices, axis=0, name="neighbours")
        difference = graph.node("Sub", neighbours, graph.node("Unsqueeze", x64, graph.axes(1)))
        distances = graph.node(
            "Sqrt", graph.reduce_sum(graph.node("Mul", difference, difference), 2)
        )
    else:
        difference = graph.node("Sub", graph.node("Unsqueeze", x64, graph.axes(1)), train64)
        l1 = graph.reduce_sum(graph.node("Abs", difference), 2)
        distances, indices = graph.node("TopK", l1, k_name, axis=1, largest=0, sorted=1, outputs=2)
    train_labels = graph.constant(np.asarray(model.train_y_, dtype=np.int64), "train_y")
    labels = graph.node("Gather", train_labels, indices, axis=0, name="neighbour_labels")
    class_indices = graph.constant(np.arange(len(model.classes_), dtype=np.int64), "indices")
    one_hot = graph.cast(  # (N, k, n_classes): 1 where a neighbour's label is the class
        graph.node("Equal", graph.node("Unsqueeze", labels, graph.axes(2)), class_indices),
        np.float64,
    )
    if model.weights != "uniform":
        votes = graph.node("Unsqueeze", _distance_votes(graph, distances), graph.axes(2))
        one_hot = graph.node("Mul", one_hot, votes, name="weighted_votes")
    return graph.normalize_rows(graph.reduce_sum(one_hot, 1))


def _distance_votes(graph: GraphBuilder, distances: str) -> str:
    """(N, k) vote weights 1 / distance, except that in a row with an exact match (distance 0)
    the exact matches take all the weight."""
    exact = graph.cast(
        graph.node("Equal", distances, graph.constant(np.float64(0.0), "zero")), np.float64
    )
    has_exact = graph.cast(graph.node("ReduceMax", exact, axes=[1], keepdims=1), np.bool_)
    inverse = graph.node("Reciprocal", distances)
    return graph.node("Where", has_exact, exact, inverse, name="distance_votes")

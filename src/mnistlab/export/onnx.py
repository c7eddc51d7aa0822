"""A fitted mnistlab model as an ONNX model: `to_onnx(model, path)`.

The graph takes `input`: float32 (N, n_features), exactly what the estimator's predict_proba
takes (pixels scaled to [0, 1], flattened), and gives `probabilities`: float32 (N, n_classes),
the estimator's predict_proba, and `label`: int64 (N,), the estimator's predict(): classes_ at
the likeliest column (the class index where classes_ are not integers). It is built with
onnx.helper at opset OPSET, in the dtype the estimator computes in (float32 networks, float64
for the classical models), and checked with onnx.checker before it is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mnistlab import __version__
from mnistlab._io import atomic_path
from mnistlab.errors import UsageError
from mnistlab.export import classical, networks

#: the ONNX operator set the graphs use (onnxruntime 1.12 and later run it)
OPSET = 17
#: IR version 8 goes with opset 17
IR_VERSION = 8
#: the model_names with an exporter (mnistlab.export.networks, mnistlab.export.classical)
EXPORTABLE = ("mlp", "cnn", "softmax", "logistic-ova", "gaussian", "knn")


def _onnx():
    try:
        import onnx
    except ImportError:
        raise UsageError(
            "exporting to ONNX needs the onnx package: pip install 'mnistlab[export]'"
        ) from None
    return onnx


def _exporters(fold_batchnorm: bool) -> dict[str, Callable]:
    def mlp(graph, model, x):
        network = model.model_
        value = graph.cast(x, network.dtype) if network.dtype != np.float32 else x
        logits = networks.network_logits(graph, network, value, fold_batchnorm=fold_batchnorm)
        return graph.node("Softmax", logits, axis=1, name="softmax")

    return {
        "mlp": mlp,
        "cnn": mlp,
        "softmax": classical.softmax_regression,
        "logistic-ova": classical.one_vs_all,
        "gaussian": classical.gaussian,
        "knn": classical.k_neighbors,
    }


def to_onnx(
    model,
    path: str | os.PathLike | None = None,
    *,
    metadata: dict[str, str] | None = None,
    fold_batchnorm: bool = True,
):
    """The fitted `model` as an onnx.ModelProto, also written to `path` when given.

    metadata: extra (key, text) pairs for the model's metadata_props (class names, say).
    fold_batchnorm: fold each BatchNorm that follows a Dense into it (else BatchNormalization).
    UsageError (one line) for a model or layer that has no ONNX form.
    """
    name = getattr(model, "model_name", type(model).__name__)
    if name not in EXPORTABLE:
        raise UsageError(
            f"cannot export a {type(model).__name__} (model {name!r}) to ONNX; exportable "
            f"models: {', '.join(EXPORTABLE)}"
        )
    if not hasattr(model, "classes_"):
        raise UsageError(f"this {type(model).__name__} is not fitted yet; call fit first")
    if name in ("mlp", "cnn"):  # an unknown layer is refused before onnx is asked for
        networks.check_exportable(model.model_.layers)
    onnx = _onnx()
    from mnistlab.export.graph import GraphBuilder  # imports onnx

    graph = GraphBuilder()
    probabilities = _exporters(fold_batchnorm)[name](graph, model, "input")
    proto = _assemble(onnx, graph, model, probabilities, metadata or {})
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        with atomic_path(Path(path)) as tmp:
            onnx.save_model(proto, str(tmp))
    return proto


def _assemble(onnx, graph, model, probabilities: str, metadata: dict):
    """Outputs `probabilities` (float32) and `label` (int64) on top of the exporter's nodes."""
    from onnx import TensorProto, helper

    classes = np.asarray(model.classes_)
    integer_classes = classes.dtype.kind in "iub"
    index = graph.node("ArgMax", probabilities, axis=1, keepdims=0, name="class_index")
    if integer_classes:
        graph.node(
            "Gather",
            graph.constant(classes.astype(np.int64), "classes"),
            index,
            axis=0,
            name="label",
        )
    else:
        graph.node("Identity", index, name="label")
    graph.node("Cast", probabilities, to=TensorProto.FLOAT, name="probabilities")
    n_classes = int(classes.size)
    body = helper.make_graph(
        graph.nodes,
        f"mnistlab_{model.model_name}".replace("-", "_"),
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", model.n_features_in_])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", n_classes]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
        ],
        graph.initializers,
    )
    proto = helper.make_model(
        body,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="mnistlab",
        producer_version=__version__,
        doc_string=f"mnistlab {model.model_name}: input float32 (N, {model.n_features_in_}) "
        "as predict_proba takes it; outputs probabilities and label",
    )
    helper.set_model_props(
        proto,
        {
            "model": model.model_name,
            "classes": ",".join(str(c) for c in classes.tolist()),
            "label": "classes_ value" if integer_classes else "class index",
            **{str(k): str(v) for k, v in metadata.items()},
        },
    )
    return proto

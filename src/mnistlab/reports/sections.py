"""The sections of a model's report, drawn from a `ReportContent`.

A report is the same page whether its content comes from a run folder
(`run_report.build_report`) or from a fitted model in memory (`model_report.build_model_report`):
configuration, model, training history and curves, metrics and classification report,
confusion matrix and per-class accuracy, most confident mistakes, what the model learned
(weights as images, weight distributions now versus at initialization), a 2-D map of a layer's
activations, the data, and timing and machine.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np

from mnistlab.errors import UsageError
from mnistlab.metrics import report_from_confusion
from mnistlab.reports import plots
from mnistlab.reports.analysis import last_hidden_index, layer_activations, pca_2d
from mnistlab.reports.html import Figures, nav, page, section, table

SECTIONS = (
    "configuration",
    "model",
    "history",
    "metrics",
    "confusion",
    "mistakes",
    "learned",
    "activations",
    "data",
    "timing",
)
#: the history columns shown in the table, in this order, where the run recorded them
HISTORY_COLUMNS = (
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "seconds",
)
#: the metrics table's rows
KEY_METRICS = (
    "test_accuracy",
    "test_errors",
    "n_test",
    "test_loss",
    "test_top2_accuracy",
    "train_accuracy",
    "val_accuracy",
    "epochs_run",
    "stop_reason",
)
#: test images whose activations are mapped
MAPPED_IMAGES = 3000


@dataclass
class ReportContent:
    """Everything a report is drawn from. Classes are numbered 0..n_classes-1 throughout.

    Parameters
    ----------
    title : str
        The page's heading and title.
    config : dict
        The configuration table (a run's config.json, or the model's parameters).
    model : Classifier
        The fitted model.
    history : list of dict
        One record per epoch; empty for a model fitted in one go.
    metrics : dict
        What `experiments.runs.test_metrics` measures (``confusion_matrix`` included), and the
        `KEY_METRICS` and timing keys that are known.
    class_names : list of str
        One name per class number.
    image_shape : tuple of int
        (height, width) of one image: how a row of features is drawn.
    x_test : ndarray, shape (n_test, n_features)
        The test rows as the model takes them.
    y_test : ndarray of int, shape (n_test,)
        Their class numbers.
    test_images : ndarray, shape (n_test, height, width)
        The test images as shown (the run's raw pixels, or `x_test` reshaped).
    predicted : ndarray of int, shape (n_test,)
        The predicted class numbers.
    confidence : ndarray, shape (n_test,)
        The probability of each prediction.
    x_train, y_train : ndarray or None
        The rows the model was trained on, (n, n_features), and their class numbers, where
        known (k-NN's class means).
    train_images, train_labels : ndarray or None
        The training images, (n, height, width), and their class numbers, where known (the
        data section's examples and class shares; without them it shows the test split's).
    initial_weights : dict or None
        An MLP's Dense weights before its first step, named ``"dense 0"``, ``"dense 1"``, ...
    data_summary : str
        The data section's first sentence (HTML).
    """

    title: str
    config: dict
    model: object
    history: list[dict]
    metrics: dict
    class_names: list[str]
    image_shape: tuple[int, ...]
    x_test: np.ndarray
    y_test: np.ndarray
    test_images: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    x_train: np.ndarray | None = None
    y_train: np.ndarray | None = None
    train_images: np.ndarray | None = None
    train_labels: np.ndarray | None = None
    initial_weights: dict | None = None
    data_summary: str = ""


def check_layer(model, layer: int | None, what: str) -> None:
    """UsageError for a `layer` given with a model that is not an MLP (`what` names it)."""
    if layer is not None and not hasattr(model, "model_"):
        raise UsageError(
            f"--layer picks a layer of an MLP; {what}, whose map shows its class probabilities"
        )


def render(content: ReportContent, layer: int | None, figures: Figures) -> str:
    """The whole page (HTML text) for `content`; `layer` as in `build_report`."""
    names = content.class_names
    body = [
        f"<h1>{html.escape(content.title)}</h1>",
        nav(SECTIONS),
        section(
            "configuration",
            "Configuration",
            table(sorted(content.config.items()), header=["key", "value"]),
        ),
        section("model", "Model", _model_summary(content.model)),
        section("history", "Training history", _history(content.history, figures)),
        section("metrics", "Metrics", _metrics(content.metrics, names)),
        section("confusion", "Confusion matrix", _confusion(content.metrics, names, figures)),
        section("mistakes", "Most confident mistakes", _mistakes(content, figures)),
        section("learned", "What the model learned", _learned(content, figures)),
        section(
            "activations",
            "Activation map",
            _activations(content.model, content.x_test, content.y_test, names, layer, figures),
        ),
        section("data", "Data", _data(content, figures)),
        section("timing", "Timing and machine", _timing(content.metrics)),
    ]
    return page(content.title, "\n".join(body))


def _model_summary(model) -> str:
    if hasattr(model, "model_"):
        return f"<pre>{html.escape(model.summary())}</pre>"
    params = table(sorted(model.get_params().items()), header=["parameter", "value"])
    learned = []
    for name in ("smoothing_", "shrinkage_", "n_iter_"):
        if hasattr(model, name):
            learned.append((name, np.asarray(getattr(model, name)).tolist()))
    return f"<p>{html.escape(type(model).__name__)}</p>{params}" + (
        table(learned, header=["learned", "value"]) if learned else ""
    )


def _history(history: list[dict], figures: Figures) -> str:
    if not history:
        return "<p>This model is fitted in one go; it has no per-epoch history.</p>"
    keys = [k for k in HISTORY_COLUMNS if k in history[0]]
    return figures.embed(plots.learning_curves(history), "learning curves") + table(
        [[r.get(k) for k in keys] for r in history], header=keys
    )


def _metrics(metrics: dict, names: list[str]) -> str:
    report_text = report_from_confusion(metrics["confusion_matrix"], names)
    return (
        table([(k, metrics.get(k)) for k in KEY_METRICS], header=["metric", "value"])
        + f"<p>{metrics['test_errors']} errors out of {metrics['n_test']}.</p>"
        + f"<pre>{html.escape(report_text)}</pre>"
    )


def _confusion(metrics: dict, names: list[str], figures: Figures) -> str:
    matrix = np.asarray(metrics["confusion_matrix"])
    return figures.embed(
        plots.confusion_heatmap(matrix, names), "confusion matrix"
    ) + figures.embed(plots.per_class_accuracy(matrix, names), "per-class accuracy")


def _mistakes(content: ReportContent, figures: Figures) -> str:
    """The test images predicted wrongly with the highest probability."""
    return figures.embed(
        plots.confident_mistakes(
            content.test_images,
            content.y_test,
            content.predicted,
            content.confidence,
            content.class_names,
        ),
        "confident mistakes",
    )


def _learned(content: ReportContent, figures: Figures) -> str:
    """Weights as images and weight distributions (MLP), or what each classical model keeps."""
    model, shape, names = content.model, content.image_shape, content.class_names
    if hasattr(model, "model_"):
        return _mlp_weights(model.model_, content.initial_weights, shape, figures)
    if hasattr(model, "coef_"):  # softmax / one-vs-all: one weight image per class
        images, title, alt = model.coef_, "weights of each class", "class weights"
    elif hasattr(model, "means_"):  # Gaussian: the class means
        images = model.means_ - model.means_.mean(axis=0)
        title, alt = "class means minus the overall mean", "class means"
    elif content.x_train is not None:  # k-NN keeps the training set: show its class means
        x_train, y_train = content.x_train, content.y_train
        means = np.array([x_train[y_train == k].mean(axis=0) for k in range(len(names))])
        images = means - means.mean(axis=0)
        title = "k-NN stores the training images; their class means minus the overall mean"
        alt = "training class means"
    else:
        return "<p>This model keeps its training images; give them to see their class means.</p>"
    return figures.embed(plots.weight_images(images, shape, titles=names, title=title), alt)


def _mlp_weights(network, initial: dict | None, shape: tuple, figures: Figures) -> str:
    """The first layer's weights, one tile per unit; every Dense layer's weight distribution,
    now and (where the initial weights are known) at initialization."""
    dense = [layer for layer in network.layers if hasattr(layer, "weight")]
    tiles = figures.embed(
        plots.weight_images(
            dense[0].weight.data.T,
            shape,
            max_tiles=32,
            title="first-layer weights, one tile per unit",
        ),
        "first-layer weights",
    )
    now = {f"dense {i}": layer.weight.data for i, layer in enumerate(dense)}
    return (
        tiles
        + "\n"
        + figures.embed(plots.weight_distributions(now, initial), "weight distributions")
    )


def _activations(model, x_test, y_test, names, layer: int | None, figures: Figures) -> str:
    """A 2-D map of the test images: a layer's activations (MLP) or the class probabilities,
    directly when they are 2 wide, otherwise their first two principal components."""
    sample = np.arange(min(MAPPED_IMAGES, x_test.shape[0]))
    if hasattr(model, "model_"):
        count = len(model.model_.layers)
        if layer is not None and not -count <= layer < count:
            raise UsageError(
                f"--layer must be a layer index from 0 to {count - 1} (or -1 to -{count} from "
                f"the end), got {layer}"
            )
        index = last_hidden_index(model.model_) if layer is None else layer % count
        values = layer_activations(model.model_, x_test[sample], index)
        what = f"layer {index} ({model.model_.layers[index].kind}, {values.shape[1]} wide)"
    else:
        values = model.predict_proba(x_test[sample])
        what = "the predicted class probabilities"
    if values.shape[1] == 2:
        points, caption = values, f"{what}: its two units directly"
    else:
        points, ratio = pca_2d(values)
        caption = (
            f"{what}: first two principal components (computed from scratch), "
            f"{ratio.sum():.0%} of the variance"
        )
    fig = plots.activation_map(points, y_test[sample], names, title=caption)
    return f"<p>{html.escape(caption)}, first {sample.size} test images.</p>" + figures.embed(
        fig, "activation map"
    )


def _data(content: ReportContent, figures: Figures) -> str:
    """The data's summary, examples of each class, and the classes' shares of each split."""
    names = content.class_names
    shown, labels = content.train_images, content.train_labels
    if shown is None:
        shown, labels = content.test_images, content.y_test
    text = content.data_summary + figures.embed(
        plots.example_grid(shown, labels, names, per_class=8), "examples per class"
    )
    if content.train_labels is None:
        return text
    return text + figures.embed(
        plots.class_distribution(
            np.bincount(content.train_labels, minlength=len(names)),
            np.bincount(content.y_test, minlength=len(names)),
            names,
        ),
        "class distribution",
    )


def _timing(metrics: dict) -> str:
    timing = [
        ("training seconds", metrics.get("train_seconds")),
        ("wall seconds", metrics.get("wall_seconds")),
        ("finished", metrics.get("finished")),
    ] + sorted(metrics.get("machine", {}).items())
    return table(timing, header=["", ""])

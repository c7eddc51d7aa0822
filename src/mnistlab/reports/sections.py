"""The sections of a model's report, drawn from a `ReportContent`.

A report is the same page whether its content comes from a run folder
(`run_report.build_report`) or from a fitted model in memory (`model_report.build_model_report`):
configuration (the command, the code, every key's value applied and its source), model,
training history and curves, metrics and classification report, confusion matrix with the
most confused pairs, per-class ROC and precision-recall curves, most confident mistakes, what
the model learned (`learned_section`), a 2-D map of the test images, the data, and timing and
machine.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np

from mnistlab.errors import UsageError
from mnistlab.metrics import classification_summary, most_confused_pairs, one_vs_rest
from mnistlab.reports import plots
from mnistlab.reports.config_section import configuration, estimator_configuration
from mnistlab.reports.curve_plots import class_curves
from mnistlab.reports.html import Figures, nav, page, section, table
from mnistlab.reports.learned_section import MAPPED_IMAGES, activation_map, learned

SECTIONS = (
    "configuration",
    "model",
    "history",
    "metrics",
    "confusion",
    "curves",
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
#: the metrics table's rows, where known
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
#: how the history section names a model fitted without epochs, by its model_name
FITTED_IN_ONE_GO = {
    "knn": "k-NN",
    "gaussian": "The Gaussian classifier",
    "logistic-ova": "One-vs-all logistic regression",
    "softmax": "Softmax regression",
}
#: the most confused pairs listed
CONFUSED_PAIRS = 10


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
        A network's weights before its first step, named as its summary names the layers
        (``"dense_0"``, ``"dense_3"``, ...).
    data_summary : str
        The data section's first sentence (HTML).
    probabilities : ndarray or None, shape (n_test, n_classes)
        The predicted probabilities (the per-class ROC and precision-recall curves).
    run_record : dict or None
        The run folder's run.json (command, version, commit, each key's source); None for a
        run folder from before it.
    n_validation : int or None
        The images held out for validation, where known.
    in_memory : bool
        Whether the model was fitted in memory (`config` is then the model's parameters).
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
    probabilities: np.ndarray | None = None
    run_record: dict | None = None
    n_validation: int | None = None
    in_memory: bool = False


def check_layer(model, layer: int | None, what: str) -> None:
    """UsageError for a `layer` given with a model that is not a network (`what` names it)."""
    if layer is not None and not hasattr(model, "model_"):
        raise UsageError(
            f"--layer picks a layer of a network; {what}, whose map shows its input pixels"
        )


def render(content: ReportContent, layer: int | None, figures: Figures) -> str:
    """The whole page (HTML text) for `content`; `layer` as in `build_report`."""
    names = content.class_names
    body = [
        f"<h1>{html.escape(content.title)}</h1>",
        nav(SECTIONS),
        section("configuration", "Configuration", _configuration(content)),
        section("model", "Model", _model_summary(content.model)),
        section("history", "Training history", _history(content, figures)),
        section("metrics", "Metrics", _metrics(content.metrics, names)),
        section("confusion", "Confusion matrix", _confusion(content.metrics, names, figures)),
        section("curves", "ROC and precision-recall per class", _curves(content, figures)),
        section("mistakes", "Most confident mistakes", _mistakes(content, figures)),
        section("learned", "What the model learned", learned(content, figures)),
        section("activations", "Activation map", activation_map(content, layer, figures)),
        section("data", "Data", _data(content, figures)),
        section("timing", "Timing and machine", _timing(content.metrics)),
    ]
    return page(content.title, "\n".join(body))


def _configuration(content: ReportContent) -> str:
    if content.in_memory:
        return estimator_configuration(content.model)
    return configuration(content.config, content.run_record, content.n_validation)


def _model_summary(model) -> str:
    if hasattr(model, "model_"):
        return f"<pre>{html.escape(model.summary())}</pre>"
    params = table(sorted(model.get_params().items()), header=["parameter", "value"])
    learned_values = []
    for name in ("smoothing_", "shrinkage_", "n_iter_"):
        if hasattr(model, name):
            learned_values.append((name, np.asarray(getattr(model, name)).tolist()))
    return f"<p>{html.escape(type(model).__name__)}</p>{params}" + (
        table(learned_values, header=["learned", "value"]) if learned_values else ""
    )


def _history(content: ReportContent, figures: Figures) -> str:
    """The learning curves and the table of epochs; for a model fitted in one go, what its
    fit did and how long it took."""
    history = content.history
    if not history:
        name = getattr(content.model, "model_name", "")
        label = FITTED_IN_ONE_GO.get(name, type(content.model).__name__)
        seconds = content.metrics.get("fit_seconds") or content.metrics.get("train_seconds")
        took = f"; fitted in {seconds:.2f} s" if seconds is not None else ""
        return f"<p>{html.escape(label)} has no training epochs{took}.</p>"
    keys = [k for k in HISTORY_COLUMNS if any(k in r for r in history)]
    note = ""
    if "val_loss" not in keys:
        note = (
            "<p>No validation split was held out (<code>--validation 0</code>): the curves are "
            "the training data's only.</p>"
        )
    return (
        note
        + figures.embed(plots.learning_curves(history), "learning curves")
        + table([[r.get(k, "") for k in keys] for r in history], header=keys)
    )


def _metrics(metrics: dict, names: list[str]) -> str:
    known = [(k, metrics[k]) for k in KEY_METRICS if metrics.get(k) is not None]
    return (
        table(known, header=["metric", "value"])
        + f"<p>{metrics['test_errors']} errors out of {metrics['n_test']}.</p>"
        + "<p>Classification report (test split):</p>"
        + classification_table(metrics["confusion_matrix"], names)
    )


def classification_table(matrix, names: list[str]) -> str:
    """Precision, recall, F1 and support per class, then accuracy and the macro and weighted
    averages, as an HTML table (rebuilt from the confusion matrix; rows: true class)."""
    matrix = np.asarray(matrix)
    rows_true, cols = np.nonzero(matrix)
    counts = matrix[rows_true, cols]
    summary = classification_summary(
        np.repeat(rows_true, counts), np.repeat(cols, counts), len(names)
    )
    per = summary["per_class"]
    total = int(matrix.sum())
    rows = [
        (name, *(f"{per[k][i]:.4f}" for k in ("precision", "recall", "f1")), per["support"][i])
        for i, name in enumerate(names)
    ]
    # over all classes pooled (the micro average) precision, recall and F1 all equal accuracy
    accuracy = f"{summary['accuracy']:.4f}"
    rows.append(("accuracy (micro avg)", accuracy, accuracy, accuracy, total))
    for label, key in (("macro avg", "macro"), ("weighted avg", "weighted")):
        averages = summary[key]
        scores = (f"{averages[k]:.4f}" for k in ("precision", "recall", "f1"))
        rows.append((label, *scores, total))
    return table(rows, header=["class", "precision", "recall", "f1-score", "support"])


def _confusion(metrics: dict, names: list[str], figures: Figures) -> str:
    matrix = np.asarray(metrics["confusion_matrix"])
    pairs = most_confused_pairs(matrix, top=CONFUSED_PAIRS)
    if pairs:
        rows = [
            (
                f"{names[p['true']]} → {names[p['predicted']]}",
                p["count"],
                f"{p['share_of_errors']:.1%}",
                f"{p['share_of_class']:.1%}",
            )
            for p in pairs
        ]
        header = ["true → predicted", "count", "share of all errors", "share of the true class"]
        confused = "<p>Most confused pairs (the largest off-diagonal cells):</p>" + table(
            rows, header=header
        )
    else:
        confused = "<p>No test image is confused with another class.</p>"
    return (
        figures.embed(plots.confusion_heatmap(matrix, names), "confusion matrix")
        + figures.embed(plots.per_class_accuracy(matrix, names), "per-class accuracy")
        + confused
    )


def _curves(content: ReportContent, figures: Figures) -> str:
    """Each class against the rest: ROC and precision-recall curves, and their areas."""
    if content.probabilities is None:
        return "<p>The predicted probabilities are not known here.</p>"
    curves = one_vs_rest(content.y_test, content.probabilities, len(content.class_names))
    rows = [
        (name, f"{curve['roc_auc']:.4f}", f"{curve['average_precision']:.4f}", curve["positives"])
        if curve["positives"]
        else (name, "— (no test image)", "— (no test image)", 0)
        for name, curve in zip(content.class_names, curves, strict=True)
    ]
    present = [c for c in curves if c["positives"]]
    rows.append(
        (
            "macro average",
            f"{np.mean([c['roc_auc'] for c in present]):.4f}",
            f"{np.mean([c['average_precision'] for c in present]):.4f}",
            sum(c["positives"] for c in present),
        )
    )
    text = (
        "<p>Each class against the rest, scored by its predicted probability: the ROC curve's "
        "area (AUC) and the average precision (AP, the area under the precision-recall "
        "staircase).</p>"
    )
    fig = class_curves(curves, content.class_names)
    return (
        text
        + figures.embed(fig, "ROC and precision-recall curves")
        + table(rows, header=["class", "ROC AUC", "average precision", "test images"])
    )


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
        ("fitting seconds", metrics.get("fit_seconds")),
        ("wall seconds", metrics.get("wall_seconds")),
        ("finished", metrics.get("finished")),
    ] + [(f"machine: {k}", v) for k, v in sorted(metrics.get("machine", {}).items())]
    return table([row for row in timing if row[1] is not None], header=["measure", "value"])


__all__ = ["MAPPED_IMAGES", "SECTIONS", "ReportContent", "check_layer", "render"]

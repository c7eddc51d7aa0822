"""The report of one run: report.html in its run folder, one self-contained file.

Sections: configuration, model, training history and curves, metrics and classification report,
confusion matrix and per-class accuracy, most confident mistakes, what the model learned (weights
as images, weight distributions now versus at initialization), a 2-D map of a layer's
activations, the data, and timing and machine.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistlab._io import write_text_atomic
from mnistlab.data import Dataset
from mnistlab.errors import UsageError
from mnistlab.experiments.run_folder import read_history, read_json
from mnistlab.experiments.runs import PreparedData, prepare_data
from mnistlab.metrics import report_from_confusion
from mnistlab.models import load_model
from mnistlab.reports import plots
from mnistlab.reports.analysis import last_hidden_index, layer_activations, pca_2d
from mnistlab.reports.html import Figures, nav, page, section, table
from mnistlab.train.checkpoint import load_npz

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
class _Run:
    """What a report is drawn from: the run folder's files, its model and its data."""

    run_dir: Path
    config: dict
    metrics: dict
    dataset: dict  # dataset.json
    model: object
    history: list[dict]
    data: PreparedData

    @property
    def class_names(self) -> list[str]:
        return list(self.dataset["class_names"])


def build_report(
    run_dir: str | os.PathLike,
    data: PreparedData | None = None,
    *,
    offline: bool | None = None,
    layer: int | None = None,
    figures: str | os.PathLike | None = None,
    figure_format: str = "png",
) -> Path:
    """Write run_dir/report.html from the run folder; returns its path.

    data: the run's PreparedData when the caller has it (otherwise the dataset is loaded again);
    `build_report(run_dir, data)` is the report hook `experiments.runs.train_run` takes.
    layer: the MLP layer whose activations are mapped (default: the last hidden one).
    figures: also save every figure into this folder, as `figure_format` ("png" or "svg").
    """
    if figure_format not in ("png", "svg"):
        raise UsageError(f"figure format must be png or svg, got {figure_format!r}")
    if figures is not None:
        Path(figures).mkdir(parents=True, exist_ok=True)
    sink = Figures(None if figures is None else Path(figures), figure_format)
    run = _load_run(Path(run_dir), data, offline, layer)
    names = run.class_names
    body = [
        f"<h1>mnistlab run: {html.escape(run.run_dir.name)}</h1>",
        nav(SECTIONS),
        section(
            "configuration",
            "Configuration",
            table(sorted(run.config.items()), header=["key", "value"]),
        ),
        section("model", "Model", _model_summary(run.model)),
        section("history", "Training history", _history(run.history, sink)),
        section("metrics", "Metrics", _metrics(run.metrics, names)),
        section("confusion", "Confusion matrix", _confusion(run.metrics, names, sink)),
        section("mistakes", "Most confident mistakes", _mistakes(run, sink)),
        section("learned", "What the model learned", _learned(run, sink)),
        section(
            "activations",
            "Activation map",
            _activations(run.model, run.data.x_test, run.data.y_test, names, layer, sink),
        ),
        section("data", "Data", _data(run.data.dataset, sink)),
        section("timing", "Timing and machine", _timing(run.metrics)),
    ]
    path = run.run_dir / "report.html"
    write_text_atomic(path, page(f"mnistlab: {run.run_dir.name}", "\n".join(body)))
    return path


def _load_run(run_dir: Path, data: PreparedData | None, offline, layer: int | None) -> _Run:
    """The run folder's files and model, checked before anything is drawn; its data."""
    config = read_json(run_dir / "config.json")
    metrics = read_json(run_dir / "metrics.json")
    dataset = read_json(run_dir / "dataset.json")
    model = load_model(run_dir)
    if layer is not None and not hasattr(model, "model_"):
        raise UsageError(
            f"--layer picks a layer of an MLP; {run_dir} holds a {config.get('model')} model, "
            "whose map shows its class probabilities"
        )
    history = read_history(run_dir)
    data = data if data is not None else prepare_data(config, offline=offline)
    return _Run(run_dir, config, metrics, dataset, model, history, data)


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


def _mistakes(run: _Run, figures: Figures) -> str:
    """The test images predicted wrongly with the highest probability."""
    proba = run.model.predict_proba(run.data.x_test)
    predicted = np.asarray(run.model.classes_)[proba.argmax(axis=1)].astype(np.int64)
    confidence = proba.max(axis=1)
    return figures.embed(
        plots.confident_mistakes(
            run.data.dataset.x_test, run.data.y_test, predicted, confidence, run.class_names
        ),
        "confident mistakes",
    )


def _learned(run: _Run, figures: Figures) -> str:
    """Weights as images and weight distributions (MLP), or what each classical model keeps."""
    model = run.model
    shape = tuple(run.dataset["image_shape"])
    names = run.dataset["class_names"]
    if hasattr(model, "model_"):
        return _mlp_weights(model.model_, run.run_dir, shape, figures)
    if hasattr(model, "coef_"):  # softmax / one-vs-all: one weight image per class
        images, title, alt = model.coef_, "weights of each class", "class weights"
    elif hasattr(model, "means_"):  # Gaussian: the class means
        images = model.means_ - model.means_.mean(axis=0)
        title, alt = "class means minus the overall mean", "class means"
    else:  # k-NN keeps the training set: show its class means
        x_train, y_train = run.data.x_train, run.data.y_train
        means = np.array([x_train[y_train == k].mean(axis=0) for k in range(len(names))])
        images = means - means.mean(axis=0)
        title = "k-NN stores the training images; their class means minus the overall mean"
        alt = "training class means"
    return figures.embed(plots.weight_images(images, shape, titles=names, title=title), alt)


def _mlp_weights(network, run_dir: Path, shape: tuple, figures: Figures) -> str:
    """The first layer's weights, one tile per unit; every Dense layer's weight distribution,
    now and (where init_weights.npz was saved) at initialization."""
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
    initial = _initial_weights(network, run_dir, len(now))
    return (
        tiles
        + "\n"
        + figures.embed(plots.weight_distributions(now, initial), "weight distributions")
    )


def _initial_weights(network, run_dir: Path, count: int) -> dict | None:
    """The Dense weights saved before the first step, named as in the distributions; None
    without init_weights.npz or when it does not hold all `count` of them."""
    if not (run_dir / "init_weights.npz").exists():
        return None
    arrays, _ = load_npz(run_dir / "init_weights.npz")
    index = [i for i, layer in enumerate(network.layers) if hasattr(layer, "weight")]
    initial = {
        f"dense {n}": arrays[f"layer{i}.W"] for n, i in enumerate(index) if f"layer{i}.W" in arrays
    }
    return initial if len(initial) == count else None


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


def _data(dataset: Dataset, figures: Figures) -> str:
    return (
        f"<p>{html.escape(dataset.name)} from {html.escape(dataset.source)}: "
        f"{dataset.n_train} training and {dataset.n_test} test images of "
        f"{'x'.join(map(str, dataset.image_shape))}.</p>"
        + figures.embed(
            plots.example_grid(dataset.x_train, dataset.y_train, dataset.class_names, per_class=8),
            "examples per class",
        )
        + figures.embed(
            plots.class_distribution(
                dataset.class_counts("train"), dataset.class_counts("test"), dataset.class_names
            ),
            "class distribution",
        )
    )


def _timing(metrics: dict) -> str:
    timing = [
        ("training seconds", metrics.get("train_seconds")),
        ("wall seconds", metrics.get("wall_seconds")),
        ("finished", metrics.get("finished")),
    ] + sorted(metrics.get("machine", {}).items())
    return table(timing, header=["", ""])


__all__ = ["SECTIONS", "build_report"]

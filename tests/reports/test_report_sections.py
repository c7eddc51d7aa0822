"""What the run report's sections say: every configuration key's value applied and its
source, the command and code of the run, readable tables, layer names as the summary gives
them, held-out curves and the learning rate, runs without epochs, ROC and precision-recall,
the most confused pairs, and a convolutional network's kernels and feature maps."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from mnistlab.cli import main
from mnistlab.data import flatten, load_dataset, to_float
from mnistlab.nn import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential, build_cnn
from mnistlab.reports import build_model_report, plots
from mnistlab.reports.analysis import layer_names
from mnistlab.reports.model_report import model_content
from mnistlab.reports.run_report import build_report
from mnistlab.reports.sections import render


class Captured:
    """A figure sink that keeps each figure by its alt text (instead of embedding it)."""

    def __init__(self):
        self.figures = {}

    def embed(self, fig, alt: str) -> str:
        self.figures[alt] = fig
        return f'<img alt="{alt}">'


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    argv = sys.argv
    try:
        sys.argv = ["/opt/bin/mnistlab", "train", "--dataset", "digits", "--epochs", "3"]
        train = ["train", "--dataset", "digits", "--quiet"]
        assert main([*train, "--hidden", "24,12", "--epochs", "3", "--out", str(root / "mlp")]) == 0
        assert main([*train, "--model", "knn", "--out", str(root / "knn")]) == 0
    finally:
        sys.argv = argv
    return root


def section(page: str, key: str) -> str:
    start = page.index(f'<section id="{key}">')
    return page[start : page.index("</section>", start)]


def test_every_configuration_key_has_a_value_and_a_source(runs):
    page = (runs / "mlp" / "report.html").read_text(encoding="utf-8")
    config = section(page, "configuration")
    assert "<pre>mnistlab train --dataset digits --epochs 3</pre>" in config
    assert "<td>mnistlab version</td>" in config and "<td>git commit</td>" in config
    rows = re.findall(r"<tr><td>(\w+)</td><td[^>]*>([^<]*)</td><td>([^<]*)</td></tr>", config)
    assert len(rows) >= 25
    values = {key: (value, source) for key, value, source in rows}
    assert all(value and source for value, source in values.values())
    assert values["beta1"] == ("0.9", "default")  # Adam's own default, not a blank
    assert values["momentum"][0] == "— (not used by adam)"
    assert values["hidden"] == ("[24, 12]", "user")
    assert values["dropout"] == ("0.3", "preset fashion")
    assert values["validation"][0].startswith("0.08333 (120 images held out)")
    assert "<td></td>" not in page and "<th></th>" not in page  # no empty cells or headers


def test_an_old_run_folder_without_run_json_still_renders(runs, tmp_path):
    import shutil

    run = tmp_path / "old"
    shutil.copytree(runs / "knn", run)
    (run / "run.json").unlink()
    page = build_report(run).read_text(encoding="utf-8")
    config = section(page, "configuration")
    assert "has no run.json (it predates it)" in config and "<td>not recorded</td>" in config


def test_held_out_curves_and_the_learning_rate_by_default(runs):
    page = (runs / "mlp" / "report.html").read_text(encoding="utf-8")
    history = section(page, "history")
    assert "<th>val_loss</th>" in history and "<th>learning_rate</th>" in history
    assert "No validation split" not in history
    fig = plots.learning_curves(
        [
            {
                "epoch": 1,
                "loss": 1.0,
                "accuracy": 0.5,
                "val_loss": 1.1,
                "val_accuracy": 0.4,
                "learning_rate": 0.1,
            },
            {
                "epoch": 2,
                "loss": 0.8,
                "accuracy": 0.6,
                "val_loss": 0.9,
                "val_accuracy": 0.5,
                "learning_rate": 0.05,
            },
        ]
    )
    loss_axes, accuracy_axes, rate_axes = fig.axes
    for axes in (loss_axes, accuracy_axes):
        train, validation = axes.get_lines()
        assert train.get_color() == validation.get_color()  # one colour per quantity
        assert (train.get_linestyle(), validation.get_linestyle()) == ("-", "--")
        assert axes.get_xticks().tolist() == [int(t) for t in axes.get_xticks()]
    assert rate_axes.get_ylabel() == "learning rate"
    assert rate_axes.get_lines()[0].get_ydata().tolist() == [0.1, 0.05]


def test_a_run_without_epochs_says_what_it_has(runs):
    page = (runs / "knn" / "report.html").read_text(encoding="utf-8")
    assert re.search(r"<p>k-NN has no training epochs; fitted in \d+\.\d\d s\.</p>", page)
    activations = section(page, "activations")
    assert (
        "the input pixels (64 per image; a KNeighborsClassifier has no hidden layer" in activations
    )


def test_tables_instead_of_text_blocks(runs):
    page = (runs / "knn" / "report.html").read_text(encoding="utf-8")
    metrics = section(page, "metrics")
    assert "<pre>" not in metrics
    assert "<th>class</th><th>precision</th><th>recall</th><th>f1-score</th>" in metrics
    assert re.search(r"<tr><td>weighted avg</td><td>0\.\d{4}</td>", metrics)
    assert "<tr><th>measure</th><th>value</th></tr>" in section(page, "timing")


def test_roc_and_precision_recall_and_the_most_confused_pairs(runs):
    page = (runs / "knn" / "report.html").read_text(encoding="utf-8")
    curves = section(page, "curves")
    assert 'alt="ROC and precision-recall curves"' in curves
    assert "<th>ROC AUC</th><th>average precision</th>" in curves
    assert len(re.findall(r"<tr><td>\d</td><td>[01]\.\d{4}</td><td>[01]\.\d{4}</td>", curves)) == 10
    confusion = section(page, "confusion")
    assert "<th>true → predicted</th><th>count</th><th>share of all errors</th>" in confusion


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits")
    return (
        data,
        flatten(to_float(data.x_train, data.pixel_max)),
        flatten(to_float(data.x_test, data.pixel_max)),
    )


def test_layers_keep_the_summary_names_in_every_figure(runs, digits):
    from mnistlab.models import load_model
    from mnistlab.reports.run_report import _initial_weights

    model = load_model(runs / "mlp")
    names = layer_names(model.model_)
    assert names == [row[0].split(" (")[0] for row in model.model_.summary_rows()]
    initial = _initial_weights(model, runs / "mlp")
    assert list(initial) == ["dense_0", "dense_3", "dense_6"]
    data, _, x_test = digits
    content = model_content(model, x_test, data.y_test, class_names=data.class_names)
    captured = Captured()
    render(content, None, captured)
    distributions = captured.figures["weight distributions"].axes[0]
    assert [t.get_text() for t in distributions.get_xticklabels()] == list(initial)
    activation = captured.figures["activation map"].axes[0]
    assert (
        activation.get_xlabel().startswith("PC1 (") and "of the variance" in activation.get_xlabel()
    )
    assert activation.get_ylabel().startswith("PC2 (")


def test_the_mistakes_title_clears_the_first_row_of_labels(digits):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    data, _, _ = digits
    wrong = (data.y_test + 1) % 10
    fig = plots.confident_mistakes(
        data.x_test, data.y_test, wrong, np.linspace(0.9, 0.1, data.y_test.size), data.class_names
    )
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    axes = fig.axes[0]
    title = axes.title.get_window_extent(renderer)
    top_of_labels = max(t.get_window_extent(renderer).y1 for t in axes.texts)
    assert title.y0 >= top_of_labels


class Network:
    """What a report reads of a fitted network estimator: ``model_`` (a Sequential),
    ``classes_``, ``predict_proba``, ``get_params``, ``summary``."""

    model_name = "cnn"

    def __init__(self, network: Sequential, n_classes: int) -> None:
        self.model_ = network
        self.classes_ = np.arange(n_classes)

    def get_params(self, deep=True) -> dict:
        return {}

    def predict_proba(self, x):
        logits = self.model_.predict_logits(np.asarray(x, dtype=np.float32))
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)

    def summary(self) -> str:
        return self.model_.summary()


def test_a_convolutional_network_shows_its_kernels_and_feature_maps(digits, tmp_path):
    data, _, x_test = digits
    layers = [Conv2D(4, 3, padding="same"), ReLU(), MaxPool2D(2), Conv2D(6, 3, padding="same")]
    layers += [ReLU(), Flatten(), Dense(10)]
    network = Sequential(layers).build((8, 8, 1), seed=0)
    model = Network(network, 10)
    content = model_content(model, x_test, data.y_test, class_names=data.class_names)
    captured = Captured()
    page = render(content, None, captured)
    learned = section(page, "learned")
    assert "<p>conv2d_0: 4 filters of 3x3.</p>" in learned
    kernels = captured.figures["first convolution kernels"]
    assert kernels.axes[0].get_title() == "conv2d_0 kernels, one tile per filter"
    assert [t.get_text() for t in kernels.axes[0].texts] == ["0", "1", "2", "3"]
    first = captured.figures["feature maps conv2d_0"].axes[0].get_title()
    second = captured.figures["feature maps conv2d_3"].axes[0].get_title()
    shown = data.class_names[data.y_test[0]]
    assert first == f"test image 0 ({shown}) after conv2d_0 and relu_1: 4 maps of 8x8"
    assert second.endswith(": 6 maps of 4x4")
    distributions = captured.figures["weight distributions"].axes[0]
    labels = [t.get_text() for t in distributions.get_xticklabels()]
    assert labels == ["conv2d_0", "conv2d_3", "dense_6"]
    # the whole page, written with its figures
    path = build_model_report(model, x_test, data.y_test, tmp_path / "cnn.html")
    assert 'alt="feature maps conv2d_3"' in path.read_text(encoding="utf-8")


def test_feature_maps_pass_through_a_relu_that_follows_the_pool(digits):
    """build_cnn puts the ReLU after max pooling; the maps are still shown at the convolution's
    size, through that ReLU."""
    data, _, x_test = digits
    network = build_cnn([4], [8], 10).build((8, 8, 1), seed=0)
    content = model_content(Network(network, 10), x_test, data.y_test, class_names=data.class_names)
    captured = Captured()
    render(content, None, captured)
    figure = captured.figures["feature maps conv2d_0"]
    assert figure.axes[0].get_title().endswith("after conv2d_0 and relu_2: 4 maps of 8x8")


def test_an_mlp_keeps_its_weight_images(digits):
    from mnistlab.models import MLPClassifier

    data, x_train, x_test = digits
    model = MLPClassifier(hidden_layer_sizes=(8,), epochs=1).fit(x_train, data.y_train)
    content = model_content(model, x_test, data.y_test)
    captured = Captured()
    render(content, None, captured)
    tiles = captured.figures["first-layer weights"].axes[0]
    assert tiles.get_title() == "dense_0 weights, one tile per unit"


def test_a_cnn_estimator_in_memory(digits, tmp_path):
    """The real CNNClassifier through its model_: the learned section and the configuration
    table of a model fitted in memory (its parameters by their configuration keys)."""
    from mnistlab.models import CNNClassifier

    data, x_train, x_test = digits
    model = CNNClassifier(conv=(4,), hidden_layer_sizes=(8,), epochs=1).fit(x_train, data.y_train)
    page = build_model_report(model, x_test, data.y_test, tmp_path / "cnn.html")
    page = page.read_text(encoding="utf-8")
    assert "<p>conv2d_0: 4 filters of 3x3.</p>" in section(page, "learned")
    config = section(page, "configuration")
    assert "<tr><td>conv</td><td>[4]</td><td>user</td></tr>" in config
    assert "<tr><td>leaky_slope</td><td>— (not used by relu)</td><td>default</td></tr>" in config
    assert "<tr><td>beta1</td><td>0.9</td><td>default</td></tr>" in config
    assert "<td></td>" not in page

"""The report of a fitted model in memory (no run folder), and figures that a notebook shows
inline without the report code changing matplotlib's backend."""

from __future__ import annotations

import base64
import io
import pickle
import re
import sys

import numpy as np
import pytest
from PIL import Image

from mnistlab.data import flatten, load_dataset, to_float
from mnistlab.errors import UsageError
from mnistlab.models import GaussianClassifier, KNeighborsClassifier, MLPClassifier
from mnistlab.reports import build_model_report, plots
from mnistlab.reports.sections import SECTIONS


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits")
    x_train = flatten(to_float(data.x_train, data.pixel_max))
    x_test = flatten(to_float(data.x_test, data.pixel_max))
    return data, x_train, x_test


@pytest.fixture(scope="module")
def mlp(digits):
    data, x_train, _ = digits
    return MLPClassifier(hidden_layer_sizes=(16,), epochs=3, validation=0.1).fit(
        x_train, data.y_train
    )


def pictures(page: str) -> list[bytes]:
    return [
        base64.b64decode(blob)
        for blob in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    ]


def test_an_mlp_in_memory_gets_every_section(digits, mlp, tmp_path):
    data, x_train, x_test = digits
    path = build_model_report(
        mlp,
        x_test,
        data.y_test,
        tmp_path / "mlp.html",
        class_names=data.class_names,
        x_train=x_train,
        y_train=data.y_train,
    )
    assert path == tmp_path / "mlp.html"
    page = path.read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f'<section id="{section}">' in page, section
    assert "<h1>mnistlab model: MLPClassifier</h1>" in page
    assert "http://" not in page and "https://" not in page
    assert f"errors out of {data.y_test.size}" in page and "weighted avg" in page
    assert 'alt="learning curves"' in page and 'alt="class distribution"' in page
    assert f"{x_train.shape[0]} training and {x_test.shape[0]} test images of 8x8" in page
    blobs = pictures(page)
    assert len(blobs) >= 9
    for blob in blobs:
        with Image.open(io.BytesIO(blob)) as picture:
            picture.verify()
    # the metrics are the model's own on the test split
    accuracy = mlp.score(x_test, data.y_test)
    assert re.search(rf"<td>test_accuracy</td>\s*<td>{accuracy:.4g}</td>", page)


def test_string_labels_and_a_folder_as_the_target(digits, tmp_path):
    """Labels are whatever fit was given; the report numbers the classes in classes_ order."""
    data, x_train, x_test = digits
    names = np.array([f"digit {label}" for label in range(10)])
    model = GaussianClassifier().fit(x_train, names[data.y_train])
    path = build_model_report(model, x_test, names[data.y_test], tmp_path)
    assert path == tmp_path / "report.html"
    page = path.read_text(encoding="utf-8")
    assert "digit 9" in page and "(the training data was not given)" in page
    assert 'alt="class means"' in page
    accuracy = model.score(x_test, names[data.y_test])
    assert re.search(rf"<td>test_accuracy</td>\s*<td>{accuracy:.4g}</td>", page)


def test_knn_without_its_training_data_says_so(digits, tmp_path):
    data, x_train, x_test = digits
    model = KNeighborsClassifier().fit(x_train[:300], data.y_train[:300])
    page = build_model_report(model, x_test[:50], data.y_test[:50], tmp_path / "r.html")
    assert "give them to see their class means" in page.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"y_test": np.full(359, 42)}, "y_test holds labels the model was not fitted on: [42]"),
        ({"x_test": np.zeros((5, 3))}, "x_test must be a non-empty 2-D array of shape (n, 64)"),
        ({"y_test": np.zeros(3)}, "y_test must hold one label per row (359), got shape (3,)"),
        ({"class_names": ["a", "b"]}, "class_names must name the model's 10 classes"),
        ({"image_shape": (4, 4)}, "image_shape must be (height, width) with height * width = 64"),
        ({"x_train": np.zeros((3, 64))}, "give x_train and y_train together, or neither"),
        ({"layer": 1, "model": "gaussian"}, "--layer picks a layer of a network; got a Gaussian"),
        ({"figure_format": "jpg"}, "figure format must be png or svg, got 'jpg'"),
    ],
)
def test_bad_arguments_are_named(digits, mlp, tmp_path, change, message):
    data, x_train, x_test = digits
    arguments = {"model": mlp, "x_test": x_test, "y_test": data.y_test, **change}
    if arguments["model"] == "gaussian":
        arguments["model"] = GaussianClassifier().fit(x_train, data.y_train)
    with pytest.raises(UsageError, match=re.escape(message)):
        build_model_report(path=tmp_path / "r.html", **arguments)
    assert not (tmp_path / "r.html").exists()


def test_an_unfitted_model_is_refused(digits, tmp_path):
    data, _, x_test = digits
    with pytest.raises(UsageError, match="this MLPClassifier is not fitted yet; call fit first"):
        build_model_report(MLPClassifier(), x_test, data.y_test, tmp_path / "r.html")


def test_figures_leave_pyplot_and_its_backend_alone():
    """The figures are made without pyplot: a notebook's inline backend (or a desktop's) stays
    the one in use, and no figure piles up in pyplot's list."""
    import matplotlib

    backend = matplotlib.rcParams._get_backend_or_none()
    fig = plots.learning_curves([{"epoch": 1, "loss": 1.0, "accuracy": 0.5}])
    assert matplotlib.rcParams._get_backend_or_none() == backend
    assert isinstance(fig, matplotlib.figure.Figure)
    if "matplotlib.pyplot" in sys.modules:
        assert not sys.modules["matplotlib.pyplot"].get_fignums()


def test_a_figure_shows_itself_inline_as_png():
    """Jupyter displays an object that ends a cell through its _repr_png_: mnistlab's figures
    have one, so they appear inline whichever backend is active."""
    fig = plots.confusion_heatmap(np.array([[3, 1], [0, 4]]), ["a", "b"])
    png = fig._repr_png_()
    with Image.open(io.BytesIO(png)) as picture:
        assert picture.format == "PNG" and picture.size[0] > 100
    copy = pickle.loads(pickle.dumps(fig))  # pickled by reference to plots.NotebookFigure
    assert type(copy) is plots.NotebookFigure


def test_learning_curves_take_a_history(mlp):
    fig = plots.learning_curves(mlp.history_)
    (loss_axes, _, rate_axes) = fig.axes
    assert [line.get_label() for line in loss_axes.get_lines()] == ["train", "validation"]
    assert rate_axes.get_title() == "learning rate per epoch"

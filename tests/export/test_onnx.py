"""ONNX export: every exported model, run in onnxruntime on its test data, gives mnistlab's
probabilities to 1e-5 and the same labels; what ONNX cannot express is refused by name."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mnistlab.cli import main
from mnistlab.data import flatten, load_dataset, to_float
from mnistlab.errors import UsageError
from mnistlab.export import OPSET, to_onnx
from mnistlab.models import (
    GaussianClassifier,
    KNeighborsClassifier,
    MLPClassifier,
    OneVsAllLogistic,
    SoftmaxRegression,
)
from mnistlab.nn import Dense, Layer, Sequential
from mnistlab.nn.layers import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Flatten,
    MaxPool2D,
    ReLU,
    SpatialDropout2D,
    Tanh,
)

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits")
    x_train = flatten(to_float(data.x_train, data.pixel_max, np.float32))
    x_test = flatten(to_float(data.x_test, data.pixel_max, np.float32))
    return x_train, data.y_train, x_test


def mlp(**options):
    return MLPClassifier(hidden_layer_sizes=(24, 16), epochs=4, batch_size=64, **options)


MODELS = {
    "mlp-relu": lambda: mlp(activation="relu"),
    "mlp-leaky_relu": lambda: mlp(activation="leaky_relu", leaky_slope=0.2),
    "mlp-sigmoid": lambda: mlp(activation="sigmoid"),
    "mlp-tanh": lambda: mlp(activation="tanh"),
    "mlp-batchnorm-dropout": lambda: mlp(batchnorm=True, dropout=0.3),
    "mlp-float64": lambda: mlp(dtype="float64", batchnorm=True),
    "softmax-sgd": lambda: SoftmaxRegression(epochs=3),
    "softmax-gd-float64": lambda: SoftmaxRegression(solver="gd", iterations=30, dtype="float64"),
    "logistic-ova": lambda: OneVsAllLogistic(max_iter=30),
    "gaussian": lambda: GaussianClassifier(),
    "gaussian-diagonal": lambda: GaussianClassifier(diagonal=True),
    "knn": lambda: KNeighborsClassifier(),
    "knn-distance": lambda: KNeighborsClassifier(weights="distance"),
    "knn-l1": lambda: KNeighborsClassifier(metric="l1"),
}


def run_onnx(proto, x: np.ndarray):
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["probabilities", "label"], {"input": x.astype(np.float32)})


def check_agrees(model, proto, x):
    probabilities, labels = run_onnx(proto, x)
    expected = model.predict_proba(x)
    assert probabilities.dtype == np.float32 and probabilities.shape == expected.shape
    assert np.abs(probabilities - expected).max() <= 1e-5
    assert labels.dtype == np.int64
    assert np.array_equal(labels, model.predict(x))


@pytest.mark.parametrize("name", MODELS)
def test_onnxruntime_gives_the_models_probabilities_and_labels(digits, name, tmp_path):
    x_train, y_train, x_test = digits
    model = MODELS[name]().fit(x_train, y_train)
    proto = to_onnx(model, tmp_path / "model.onnx")
    assert (tmp_path / "model.onnx").is_file()
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", OPSET)]
    assert [i.name for i in proto.graph.input] == ["input"]
    assert [o.name for o in proto.graph.output] == ["probabilities", "label"]
    check_agrees(model, proto, x_test)
    if name.startswith("knn"):  # training rows: distance 0 to themselves, an exact match
        check_agrees(model, proto, x_train[:200])


def test_batchnorm_exported_unfolded_as_batchnormalization(digits):
    x_train, y_train, x_test = digits
    model = mlp(batchnorm=True).fit(x_train, y_train)
    unfolded = to_onnx(model, fold_batchnorm=False)
    folded = to_onnx(model)
    assert "BatchNormalization" in {node.op_type for node in unfolded.graph.node}
    assert "BatchNormalization" not in {node.op_type for node in folded.graph.node}
    assert "Dropout" not in {node.op_type for node in folded.graph.node}
    check_agrees(model, unfolded, x_test)


def test_labels_are_the_users_classes(digits):
    x_train, y_train, x_test = digits
    model = SoftmaxRegression(epochs=2).fit(x_train, y_train * 10 + 3)  # classes 3, 13, ... 93
    _, labels = run_onnx(to_onnx(model), x_test)
    assert set(labels.tolist()) <= set(range(3, 94, 10))
    assert np.array_equal(labels, model.predict(x_test))


class Capsule(Layer):
    """A layer kind the exporter has never heard of."""

    kind = "Capsule"

    def forward(self, x, training=False):
        return x


def test_an_unknown_layer_is_refused_by_name(digits):
    x_train, y_train, _ = digits
    model = mlp().fit(x_train, y_train)
    network = Sequential([Capsule(), Dense(10)])
    network.build(64)
    model.model_ = network
    with pytest.raises(UsageError, match="layer 0 is a Capsule, which has no ONNX export yet"):
        to_onnx(model)


def test_a_model_without_an_exporter_or_unfitted_is_refused():
    class Forest:
        model_name = "forest"
        classes_ = np.arange(2)

    with pytest.raises(UsageError, match="cannot export a Forest \\(model 'forest'\\) to ONNX"):
        to_onnx(Forest())
    with pytest.raises(UsageError, match="not fitted yet"):
        to_onnx(SoftmaxRegression())


def test_export_command_writes_the_model_with_the_runs_metadata(tmp_path, capsys):
    run = tmp_path / "run"
    main(["train", "--dataset", "digits", "--model", "softmax", "--quiet", "--out", str(run)])
    capsys.readouterr()
    out = tmp_path / "exported" / "digits.onnx"
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out} (")
    assert f"softmax as ONNX opset {OPSET}; input 'input' float32 (N, 64)" in printed
    proto = onnx.load(str(out))
    meta = {prop.key: prop.value for prop in proto.metadata_props}
    assert json.loads(meta["class_names"]) == [str(d) for d in range(10)]
    assert json.loads(meta["preprocess"]) == "digits" and meta["label"] == "classes_ value"
    assert main(["export", str(run)]) == 0 and (run / "model.onnx").is_file()


def test_export_command_refusal_is_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "m.onnx")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_importing_the_exporter_loads_neither_onnx_nor_the_models():
    code = (
        "import sys, mnistlab.export.onnx; "
        "print(sorted(m for m in sys.modules if m == 'onnx' or m.startswith('mnistlab.models')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_a_convolutional_network_gives_the_same_probabilities(digits):
    """Conv2D (same and valid padding, strides), BatchNorm over channels, both pools,
    SpatialDropout2D and Flatten: NHWC in mnistlab, NCHW in ONNX."""
    x_train, y_train, x_test = digits
    model = mlp().fit(x_train, y_train)
    network = Sequential(
        [
            Conv2D(4, 3, padding="same"),
            BatchNorm(),
            ReLU(),
            MaxPool2D(2),
            Conv2D(6, (2, 3), stride=(1, 2), padding=1),
            AvgPool2D(2, stride=1),
            SpatialDropout2D(0.2),
            Tanh(),
            Flatten(),
            Dense(10),
        ]
    )
    network.build((8, 8, 1), seed=3)
    rng = np.random.default_rng(0)
    norm = network.layers[1]
    norm.running_mean[:] = rng.normal(size=4)
    norm.running_var[:] = rng.uniform(0.5, 2, size=4)
    model.model_ = network
    check_agrees(model, to_onnx(model), x_test)


def test_a_model_exports_itself(digits, tmp_path):
    x_train, y_train, x_test = digits
    model = SoftmaxRegression(epochs=2).fit(x_train, y_train)
    check_agrees(model, model.to_onnx(tmp_path / "m.onnx"), x_test)

"""One runner per framework; each runs in its own process (see `mnistlab.bench.worker`).

A runner returns {"versions": {...}, "threads": ..., "results": {workload: summary}} or
{"skipped": reason} when its framework is not installed. Every framework gets the same arrays,
the same network and learning rates, a fresh model per workload, a warm-up that is not timed,
and the reshuffle inside the timed epoch. Each runner imports its framework itself (mnistlab's
engine too), so that a worker process holds the one framework it times and no other's threads.
"""

from __future__ import annotations

import importlib.util
import os
import warnings

import numpy as np

from mnistlab.bench.cnn_runners import floor_cnn, keras_cnn, mnistlab_cnn, torch_cnn
from mnistlab.bench.workloads import (
    HIDDEN,
    LEARNING_RATES,
    TRAINING,
    floor_probe,
    gemm_floor,
    inference_probe,
    probe_once,
    selected,
    summarize,
    time_training,
    timed_with_probe,
    workload_name,
)

GAUSSIAN_REG = 0.5  # scikit-learn's QDA reg_param; mnistlab's shrinkage = smoothing = 0.5


def _missing(*modules: str) -> str | None:
    for module in modules:
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[bench]')"
    return None


def _accuracy(pred, y) -> float:
    return float(np.mean(np.asarray(pred) == y))


def _classical(fn, data: dict, y_true) -> dict:
    """One fit and predict, timed, with the floor probe before and after; its accuracy."""
    summary, pred = probe_once(fn, floor_probe(len(data["x_train"]), 128))
    summary["accuracy"] = _accuracy(pred, y_true)
    return summary


# ------------------------------------------------------------------------------------ mnistlab


def run_mnistlab(data: dict, spec: dict) -> dict:
    from mnistlab import __version__

    results = {}
    if selected(spec, "mlp"):
        results.update(_mnistlab_mlp(data, spec))
    if selected(spec, "cnn"):
        results.update(mnistlab_cnn(data, spec))
    return {"versions": {"mnistlab": __version__, "numpy": np.__version__}, "results": results}


def _mnistlab_mlp(data: dict, spec: dict) -> dict:
    from mnistlab.nn import build_mlp
    from mnistlab.optim import get_optimizer
    from mnistlab.train import Trainer

    x, y, xt, yt = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
    results = {}
    model = None
    for optimizer, batch_size in TRAINING:
        model = build_mlp(list(HIDDEN), 10).build(x.shape[1], seed=0)
        opt = get_optimizer(optimizer, model.parameters(), learning_rate=LEARNING_RATES[optimizer])
        trainer = Trainer(model, opt)

        def epoch(trainer=trainer, batch_size=batch_size):
            trainer.fit(x, y, epochs=trainer.epoch + 1, batch_size=batch_size)

        results[workload_name(optimizer, batch_size)] = time_training(
            epoch,
            lambda trainer=trainer: trainer.evaluate(xt, yt)[1],
            spec,
            optimizer,
            batch_size,
            x.shape[0],
        )
    results["inference_10k"] = timed_with_probe(
        lambda: model.predict_logits(xt, batch_size=len(xt)),
        inference_probe(xt),
        spec["inference_repeats"],
    )
    if spec["classical"]:
        results.update(_mnistlab_classical(data, spec))
    return results


def _mnistlab_classical(data: dict, spec: dict) -> dict:
    from mnistlab.experiments.presets import get_preset
    from mnistlab.models import GaussianClassifier, KNeighborsClassifier, SoftmaxRegression

    x, y, yt = data["x_train"], data["y_train"], data["y_test"]
    xk = data["x_test"][: spec["knn_test"]]
    out = {}
    out["knn_1nn"] = _classical(
        lambda: KNeighborsClassifier(n_neighbors=1).fit(x, y).predict(xk), data, yt[: len(xk)]
    )
    gaussian = GaussianClassifier(smoothing=GAUSSIAN_REG, shrinkage=GAUSSIAN_REG)
    out["gaussian"] = _classical(lambda: gaussian.fit(x, y).predict(data["x_test"]), data, yt)
    preset = get_preset("softmax")
    softmax = SoftmaxRegression(
        solver="sgd",
        learning_rate=preset["lr"],
        final_learning_rate=preset["final_lr"],
        batch_size=preset["batch_size"],
        epochs=preset["epochs"],
        random_state=0,
    )
    out["softmax"] = _classical(lambda: softmax.fit(x, y).predict(data["x_test"]), data, yt)
    return out


# ------------------------------------------------------------------------------------ floor


def run_floor(data: dict, spec: dict) -> dict:
    """The bare GEMMs of inference on the test set, and of a training epoch per batch size with
    one BLAS thread and with all cores, in a process of their own (the training rows' floor
    itself is timed between each framework's epochs: see floor_probe)."""
    from threadpoolctl import threadpool_info

    results = _floor_mlp(data, spec) if selected(spec, "mlp") else {}
    if selected(spec, "cnn"):
        results.update(floor_cnn(data, spec))
    blas = [
        f"{i.get('internal_api')} {i.get('version')} ({i.get('threading_layer', '?')}, "
        f"{i.get('architecture', '?')}, {i.get('num_threads')} threads)"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    return {"versions": {"numpy": np.__version__}, "blas": blas, "results": results}


def _floor_mlp(data: dict, spec: dict) -> dict:
    from mnistlab.backend.blas import blas_threads

    n = data["x_train"].shape[0]
    cores = os.cpu_count() or 1
    results = {}
    for batch_size in (32, 128):
        best = None
        for threads in sorted({1, cores}):
            with blas_threads(threads, "numpy"):
                summary = summarize(gemm_floor(n, batch_size, spec["floor_repeats"]))
            summary["threads"] = threads
            if best is None or summary["median"] < best["median"]:
                best = summary
        results[f"gemm_epoch_b{batch_size}"] = best
    probe = inference_probe(data["x_test"])
    times = [t for _ in range(spec["inference_repeats"] + 3) for t in probe()][3:]
    results["inference_10k"] = summarize(times, floor_times=list(times))
    return results


# ------------------------------------------------------------------------------------ seed style


class _SeedDense:
    """y = x @ W + b, whose backward also applies its own SGD update."""

    def __init__(self, n_in: int, n_out: int, lr: float, rng: np.random.Generator) -> None:
        self.lr = lr
        self.weights = rng.normal(0.0, np.sqrt(2 / (n_in + n_out)), (n_in, n_out))
        self.biases = np.zeros(n_out)

    def forward(self, inputs):
        return inputs @ self.weights + self.biases

    def backward(self, inputs, grad_output):
        grad_input = grad_output @ self.weights.T
        grad_weights = inputs.T @ grad_output
        grad_biases = grad_output.mean(axis=0) * inputs.shape[0]
        self.weights = self.weights - self.lr * grad_weights
        self.biases = self.biases - self.lr * grad_biases
        return grad_input


class _SeedReLU:
    def forward(self, inputs):
        return np.maximum(0, inputs)

    def backward(self, inputs, grad_output):
        return grad_output * (inputs > 0)


def _seed_network(n_features: int, lr: float, rng: np.random.Generator) -> list:
    sizes = [n_features, *HIDDEN, 10]
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        layers.append(_SeedDense(a, b, lr, rng))
        if i < len(sizes) - 2:
            layers.append(_SeedReLU())
    return layers


def _seed_forward(layers: list, inputs) -> list:
    """Every layer's output, the logits last."""
    activations = []
    for layer in layers:
        activations.append(layer.forward(inputs))
        inputs = activations[-1]
    return activations


def _seed_train_batch(layers: list, xb, yb) -> None:
    activations = _seed_forward(layers, xb)
    inputs = [xb, *activations]
    logits = activations[-1]
    ones = np.zeros_like(logits)
    ones[np.arange(len(logits)), yb] = 1
    softmax = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    grad = (-ones + softmax) / logits.shape[0]
    for i in range(len(layers))[::-1]:
        grad = layers[i].backward(inputs[i], grad)


def run_seed_numpy(data: dict, spec: dict) -> dict:
    """The "before", the baseline that mnistlab's layout is measured against: a network in the
    common from-scratch style, per-layer classes whose Dense updates itself in backward, in
    float64, computing the input gradient of the first layer too. SGD only."""
    x = data["x_train"].astype(np.float64)
    y, xt = data["y_train"], data["x_test"].astype(np.float64)
    rng = np.random.default_rng(0)
    results = {}
    for batch_size in (32, 128):
        layers = _seed_network(x.shape[1], LEARNING_RATES["sgd"], rng)

        def epoch(layers=layers, batch_size=batch_size):
            indices = rng.permutation(len(x))
            for start in range(0, len(x), batch_size):
                part = indices[start : start + batch_size]
                _seed_train_batch(layers, x[part], y[part])

        results[workload_name("sgd", batch_size)] = time_training(
            epoch, None, spec, "sgd", batch_size, len(x)
        )
    results["inference_10k"] = timed_with_probe(
        lambda: _seed_forward(layers, xt),
        inference_probe(data["x_test"]),
        spec["inference_repeats"],
    )
    return {"versions": {"numpy": np.__version__}, "results": results}


# ------------------------------------------------------------------------------------ PyTorch


def run_torch(data: dict, spec: dict) -> dict:
    missing = _missing("torch")
    if missing:
        return {"skipped": missing}
    import torch

    results = _torch_mlp(torch, data, spec) if selected(spec, "mlp") else {}
    if selected(spec, "cnn"):
        results.update(torch_cnn(torch, data, spec))
    return {
        "versions": {"torch": torch.__version__},
        "threads": torch.get_num_threads(),
        "results": results,
    }


def _torch_mlp(torch, data: dict, spec: dict) -> dict:
    from torch import nn
    from torch.nn import functional as F

    torch.manual_seed(0)
    X, Y = torch.from_numpy(data["x_train"]), torch.from_numpy(data["y_train"])
    n_train = len(X)
    Xt, Yt = torch.from_numpy(data["x_test"]), torch.from_numpy(data["y_test"])
    n = len(X)
    results = {}
    model = None
    for optimizer, batch_size in TRAINING:
        model = _torch_network(nn, X.shape[1])
        cls = torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam
        opt = cls(model.parameters(), lr=LEARNING_RATES[optimizer])
        generator = torch.Generator().manual_seed(0)

        def epoch(model=model, opt=opt, batch_size=batch_size, generator=generator):
            model.train()
            order = torch.randperm(n, generator=generator)
            for start in range(0, n, batch_size):
                index = order[start : start + batch_size]
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(X[index]), Y[index])
                loss.backward()
                opt.step()

        def evaluate(model=model):
            with torch.inference_mode():
                return (model(Xt).argmax(dim=1) == Yt).float().mean().item()

        results[workload_name(optimizer, batch_size)] = time_training(
            epoch, evaluate, spec, optimizer, batch_size, n_train
        )

    def infer():
        with torch.inference_mode():
            model(Xt)

    results["inference_10k"] = timed_with_probe(
        infer, inference_probe(data["x_test"]), spec["inference_repeats"]
    )
    return results


def _torch_network(nn, n_features: int):
    """The benchmark's network as a torch.nn.Sequential (`nn`: torch.nn, imported by the runner)."""
    sizes = [n_features, *HIDDEN, 10]
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


# ------------------------------------------------------------------------------------ Keras + JAX


def run_keras(data: dict, spec: dict) -> dict:
    missing = _missing("jax", "keras")
    if missing:
        return {"skipped": missing}
    os.environ["KERAS_BACKEND"] = "jax"
    import jax
    import keras

    keras.utils.set_random_seed(0)
    results = _keras_mlp(keras, data, spec) if selected(spec, "mlp") else {}
    if selected(spec, "cnn"):
        results.update(keras_cnn(keras, data, spec))
    return {
        "versions": {"keras": keras.__version__, "jax": jax.__version__},
        "backend": keras.backend.backend(),
        "results": results,
    }


def _keras_mlp(keras, data: dict, spec: dict) -> dict:
    x, y, xt, yt = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
    n_train = len(x)

    def make(optimizer):
        model = keras.Sequential(
            [keras.Input((x.shape[1],))]
            + [keras.layers.Dense(h, activation="relu") for h in HIDDEN]
            + [keras.layers.Dense(10)]
        )
        cls = keras.optimizers.SGD if optimizer == "sgd" else keras.optimizers.Adam
        model.compile(
            optimizer=cls(learning_rate=LEARNING_RATES[optimizer]),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        return model

    results = {}
    model = None
    for optimizer, batch_size in TRAINING:
        model = make(optimizer)

        def epoch(model=model, batch_size=batch_size):
            model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=True, verbose=0)

        def evaluate(model=model):
            return _accuracy(np.asarray(model.predict_on_batch(xt)).argmax(axis=1), yt)

        results[workload_name(optimizer, batch_size)] = time_training(
            epoch, evaluate, spec, optimizer, batch_size, n_train
        )
    results["inference_10k"] = timed_with_probe(
        lambda: np.asarray(model.predict_on_batch(xt)),
        inference_probe(xt),
        spec["inference_repeats"],
    )
    return results


# ------------------------------------------------------------------------------------ scikit-learn


def run_sklearn(data: dict, spec: dict) -> dict:
    missing = _missing("sklearn")
    if missing:
        return {"skipped": missing}
    import sklearn
    from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    x, y, xt, yt = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
    classes = np.arange(10)
    results = {}
    model = None
    for optimizer, batch_size in TRAINING:
        model = MLPClassifier(
            hidden_layer_sizes=HIDDEN,
            solver=optimizer,
            learning_rate_init=LEARNING_RATES[optimizer],
            momentum=0.0,
            nesterovs_momentum=False,
            batch_size=batch_size,
            alpha=0.0,
            shuffle=True,
            random_state=0,
        )

        def epoch(model=model):
            model.partial_fit(x, y, classes=classes)

        results[workload_name(optimizer, batch_size)] = time_training(
            epoch,
            lambda model=model: _accuracy(model.predict(xt), yt),
            spec,
            optimizer,
            batch_size,
            len(x),
        )
    results["inference_10k"] = timed_with_probe(
        lambda: model.predict_proba(xt), inference_probe(xt), spec["inference_repeats"]
    )
    if spec["classical"]:
        xk = xt[: spec["knn_test"]]
        knn = KNeighborsClassifier(n_neighbors=1, algorithm="brute")
        results["knn_1nn"] = _classical(lambda: knn.fit(x, y).predict(xk), data, yt[: len(xk)])
        qda = QuadraticDiscriminantAnalysis(reg_param=GAUSSIAN_REG)
        results["gaussian"] = _classical(lambda: qda.fit(x, y).predict(xt), data, yt)
        logistic = LogisticRegression(max_iter=100)
        results["softmax"] = _classical(lambda: logistic.fit(x, y).predict(xt), data, yt)
    return {"versions": {"scikit-learn": sklearn.__version__}, "results": results}


RUNNERS = {
    "mnistlab": run_mnistlab,
    "floor": run_floor,
    "seed-numpy": run_seed_numpy,
    "pytorch": run_torch,
    "keras-jax": run_keras,
    "scikit-learn": run_sklearn,
}
__all__ = ["RUNNERS"]

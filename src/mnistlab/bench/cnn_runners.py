"""The CNN rows of each framework's runner (`runners.py` calls them in the same process).

Each returns {workload: summary} for "cnn_train" (an epoch of the `cnn` preset's training,
scaled up from the images it went over in --quick) and "cnn_inference_10k" (the test images).
The network, its settings and the image shape come from the spec (`cnn.cnn_settings`), so that
every framework's process builds the same one.
"""

from __future__ import annotations

import os

import numpy as np

from mnistlab.bench.cnn import (
    cnn_floor_probe,
    cnn_inference_probe,
    gemm_steps,
    image_shape,
    inference_chunks,
    time_cnn_training,
    training_images,
)
from mnistlab.bench.workloads import summarize, timed_with_probe

#: untimed calls before the first timed inference (a compile, a thread pool's start)
INFERENCE_WARMUP = 1


def _inference(infer, spec: dict, n_test: int) -> dict:
    return timed_with_probe(
        infer, cnn_inference_probe(spec, n_test), spec["cnn_inference_repeats"], INFERENCE_WARMUP
    )


def mnistlab_cnn(data: dict, spec: dict) -> dict:
    from mnistlab.bench.cnn import build_network
    from mnistlab.optim import get_optimizer
    from mnistlab.train import Trainer

    net = spec["cnn"]
    n_used = training_images(spec, len(data["x_train"]))
    x, y = data["x_train"][:n_used], data["y_train"][:n_used]
    xt, yt = data["x_test"], data["y_test"]
    model = build_network(spec)
    optimizer = get_optimizer(net["optimizer"], model.parameters(), learning_rate=net["lr"])
    trainer = Trainer(model, optimizer)

    def epoch():
        trainer.fit(x, y, epochs=trainer.epoch + 1, batch_size=net["batch_size"])

    return {
        "cnn_train": time_cnn_training(
            epoch, lambda: trainer.evaluate(xt, yt)[1], spec, n_used, len(data["x_train"])
        ),
        "cnn_inference_10k": _inference(lambda: model.predict_logits(xt), spec, len(xt)),
    }


def floor_cnn(data: dict, spec: dict) -> dict:
    """The CNN's GEMM floor in the floor's own process: an epoch's (the faster of 1 and all
    BLAS threads) and inference's, as the floor probes time them."""
    n_train, n_test = len(data["x_train"]), len(data["x_test"])
    epoch = cnn_floor_probe(spec, n_train)
    inference = cnn_inference_probe(spec, n_test)
    gemm_steps(spec, spec["cnn"]["batch_size"], 1)()  # the arrays' pages touched once
    times = [t for _ in range(spec["cnn_epochs"]) for t in epoch()]
    inference_times = [t for _ in range(spec["cnn_inference_repeats"] + 1) for t in inference()]
    return {
        "cnn_gemm_epoch": summarize(times),
        "cnn_inference_10k": summarize(inference_times[1:], floor_times=inference_times[1:]),
    }


# ------------------------------------------------------------------------------------ PyTorch

TORCH_ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh"}
OPTIMIZER_CLASSES = {"adam": "Adam", "sgd": "SGD"}


def torch_cnn_network(nn, spec: dict):
    """The bench's CNN as a torch.nn.Sequential over NCHW images (`nn`: torch.nn)."""
    net = spec["cnn"]
    height, width, channels = image_shape(spec)
    activation = getattr(nn, TORCH_ACTIVATIONS[net["activation"]])
    layers = []
    for filters in net["conv"]:
        layers += [nn.Conv2d(channels, filters, net["kernel"], padding=net["padding"])]
        layers += [activation(), nn.MaxPool2d(net["pool"])]
        channels = filters
        if net["padding"] == "valid":
            height, width = height - net["kernel"] + 1, width - net["kernel"] + 1
        height, width = height // net["pool"], width // net["pool"]
    features = height * width * channels
    layers.append(nn.Flatten())
    for size in net["hidden"]:
        layers += [nn.Linear(features, size), activation(), nn.Dropout(net["dropout"])]
        features = size
    layers.append(nn.Linear(features, 10))
    return nn.Sequential(*layers)


def torch_cnn(torch, data: dict, spec: dict) -> dict:
    """PyTorch eager on NCHW tensors, at one thread per core (torch.set_num_threads)."""
    from torch.nn import functional

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    net = spec["cnn"]
    height, width, channels = image_shape(spec)
    n_used = training_images(spec, len(data["x_train"]))
    images = torch.from_numpy(data["x_train"][:n_used]).reshape(-1, height, width, channels)
    X = images.permute(0, 3, 1, 2).contiguous()
    Y = torch.from_numpy(data["y_train"][:n_used])
    test = torch.from_numpy(data["x_test"]).reshape(-1, height, width, channels)
    Xt, Yt = test.permute(0, 3, 1, 2).contiguous(), torch.from_numpy(data["y_test"])
    model = torch_cnn_network(torch.nn, spec)
    opt = getattr(torch.optim, OPTIMIZER_CLASSES[net["optimizer"]])(
        model.parameters(), lr=net["lr"]
    )
    generator = torch.Generator().manual_seed(0)

    def epoch():
        model.train()
        order = torch.randperm(n_used, generator=generator)
        for start in range(0, n_used, net["batch_size"]):
            index = order[start : start + net["batch_size"]]
            opt.zero_grad(set_to_none=True)
            functional.cross_entropy(model(X[index]), Y[index]).backward()
            opt.step()

    def infer():
        model.eval()
        with torch.inference_mode():
            return torch.cat([model(Xt[part]) for part in inference_chunks(len(Xt))])

    def evaluate():
        return (infer().argmax(dim=1) == Yt).float().mean().item()

    return {
        "cnn_train": time_cnn_training(epoch, evaluate, spec, n_used, len(data["x_train"])),
        "cnn_inference_10k": _inference(infer, spec, len(Xt)),
    }


# ------------------------------------------------------------------------------------ Keras + JAX


def keras_cnn(keras, data: dict, spec: dict) -> dict:
    """Keras 3 (the runner has set KERAS_BACKEND=jax) on NHWC arrays, its default layout."""
    net = spec["cnn"]
    shape = image_shape(spec)
    n_used = training_images(spec, len(data["x_train"]))
    x = data["x_train"][:n_used].reshape(-1, *shape)
    y = data["y_train"][:n_used]
    xt, yt = data["x_test"].reshape(-1, *shape), data["y_test"]
    layers = [keras.Input(shape)]
    for filters in net["conv"]:
        layers += [
            keras.layers.Conv2D(
                filters, net["kernel"], padding=net["padding"], activation=net["activation"]
            ),
            keras.layers.MaxPooling2D(net["pool"]),
        ]
    layers.append(keras.layers.Flatten())
    for size in net["hidden"]:
        layers += [
            keras.layers.Dense(size, activation=net["activation"]),
            keras.layers.Dropout(net["dropout"]),
        ]
    model = keras.Sequential([*layers, keras.layers.Dense(10)])
    optimizer = getattr(keras.optimizers, OPTIMIZER_CLASSES[net["optimizer"]])
    # epsilon as mnistlab's and PyTorch's Adam (Keras's default is 1e-7)
    extra = {"epsilon": 1e-8} if net["optimizer"] == "adam" else {}
    model.compile(
        optimizer=optimizer(learning_rate=net["lr"], **extra),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )

    def epoch():
        model.fit(x, y, batch_size=net["batch_size"], epochs=1, shuffle=True, verbose=0)

    def infer():
        return np.concatenate(
            [np.asarray(model.predict_on_batch(xt[part])) for part in inference_chunks(len(xt))]
        )

    def evaluate():
        return float(np.mean(infer().argmax(axis=1) == yt))

    return {
        "cnn_train": time_cnn_training(epoch, evaluate, spec, n_used, len(data["x_train"])),
        "cnn_inference_10k": _inference(infer, spec, len(xt)),
    }


__all__ = ["floor_cnn", "keras_cnn", "mnistlab_cnn", "torch_cnn"]

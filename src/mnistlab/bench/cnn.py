"""What the CNN rows of `mnistlab bench` measure, shared by every framework's runner.

Same network for everyone: the `cnn` preset's (read from the preset, so that the bench follows
it): per filter count a Conv2D (kernel, padding) -> activation -> MaxPool2D(pool), then Flatten,
the Dense blocks of `hidden` with dropout after each, and Dense(10) for the logits; trained with
the preset's optimizer, learning rate and batch size (at a constant rate: the preset's schedule
changes the rate, not the work of a step). Same data: the MLP rows' arrays, as images
(NHWC for mnistlab and Keras, NCHW for PyTorch).

The floor is the GEMMs of the im2col formulation alone on preallocated arrays, per step: every
convolution's forward product (windows @ kernel) and weight-gradient product (windows.T @ G), the
input-gradient products of every convolution but the first (one per kernel offset, as Conv2D
computes them), and the Dense layers' three products each. An epoch's floor is timed over
`cnn_floor_steps` steps and scaled to the epoch's steps: a CNN epoch's GEMMs take seconds, and
the probe runs after every timed epoch of every framework.
"""

from __future__ import annotations

import math
import os

import numpy as np

from mnistlab.bench.workloads import TURNS, settled, summarize, timed

#: images per forward pass of the peers' inference (10,000 at once would hold a gigabyte of
#: first-layer outputs); mnistlab's predict_logits chunks by its own rule
INFERENCE_CHUNK = 1000
#: images per chunk of the inference floor's forward GEMMs, and the chunks it times (then scaled
#: to the test set): as mnistlab's inference chunks of the preset's network
INFERENCE_FLOOR_CHUNK, INFERENCE_FLOOR_CHUNKS = 256, 4


def cnn_network() -> dict:
    """The `cnn` preset's network and training settings, as every framework builds them."""
    from mnistlab.experiments.presets import get_preset

    preset = get_preset("cnn")
    return {
        "conv": [int(f) for f in preset["conv"]],
        "kernel": int(preset["kernel"]),
        "pool": int(preset["pool"]),
        "padding": preset["padding"],
        "hidden": [int(h) for h in preset["hidden"]],
        "activation": preset["activation"],
        "dropout": float(preset["dropout"]),
        "optimizer": preset["optimizer"],
        "lr": float(preset["lr"]),
        "batch_size": int(preset["batch_size"]),
    }


def cnn_settings(quick: bool, steps_quick: int = 60) -> dict:
    """The CNN rows' part of the bench settings. --quick times epochs over the first
    `steps_quick` minibatches of the training images only, scaled up to the full epoch."""
    network = cnn_network()
    return {
        "cnn": network,
        "cnn_epochs": 2 if quick else 3,
        # None: every training image
        "cnn_train": steps_quick * network["batch_size"] if quick else None,
        "cnn_floor_steps": 20 if quick else 60,
        "cnn_inference_repeats": 3 if quick else 10,
    }


def image_shape(spec: dict) -> tuple[int, int, int]:
    """(height, width, channels) of the bench's images (the dataset's shape, channels last)."""
    shape = tuple(spec["image_shape"])
    return shape if len(shape) == 3 else (*shape, 1)


def training_images(spec: dict, n_train: int) -> int:
    """How many training images a CNN epoch goes over (all but in --quick)."""
    return min(n_train, spec["cnn_train"] or n_train)


def build_network(spec: dict, seed: int = 0):
    """mnistlab's Sequential for the bench's CNN, built for its images."""
    from mnistlab.nn import build_cnn

    net = spec["cnn"]
    model = build_cnn(
        net["conv"],
        net["hidden"],
        10,
        kernel_size=net["kernel"],
        pool=net["pool"],
        padding=net["padding"],
        activation=net["activation"],
        dropout=net["dropout"],
    )
    return model.build(image_shape(spec), seed=seed)


def _gemm_operands(spec: dict, batch_size: int, training: bool) -> list[tuple]:
    """(a, b, out) of every GEMM of one step, in the order a step runs them, on preallocated
    arrays of the layers' shapes (read from mnistlab's network built for the same images)."""
    from mnistlab.nn import Conv2D, Dense

    rng = np.random.default_rng(0)

    def array(*shape):
        return (0.05 * rng.standard_normal(shape)).astype(np.float32)

    forward, backward = [], []
    first = True
    for layer in build_network(spec).layers:
        if isinstance(layer, Conv2D):
            kernel_h, kernel_w = layer.kernel_size
            channels = layer.input_shape[2]
            rows = batch_size * layer.output_shape[0] * layer.output_shape[1]
            cols, kernel = array(rows, kernel_h * kernel_w * channels), array(*layer.weight.shape)
            out, grad = array(rows, layer.filters), array(rows, layer.filters)
            kernel_matrix = kernel.reshape(-1, layer.filters)
            forward.append((cols, kernel_matrix, out))
            backward.append((cols.T, grad, np.empty_like(kernel_matrix)))
            if not first:  # one product per kernel offset, as Conv2D's input gradient
                block = np.empty((rows, channels), np.float32)
                backward += [
                    (grad, kernel[i, j].T, block) for i, j in np.ndindex(*kernel.shape[:2])
                ]
        elif isinstance(layer, Dense):
            n_in, n_out = layer.weight.shape
            inputs, weights = array(batch_size, n_in), array(n_in, n_out)
            out, grad = array(batch_size, n_out), array(batch_size, n_out)
            forward.append((inputs, weights, out))
            backward += [(inputs.T, grad, np.empty_like(weights)), (grad, weights.T, inputs)]
        first = first and not isinstance(layer, Conv2D)
    return forward + (backward[::-1] if training else [])


def gemm_steps(spec: dict, batch_size: int, steps: int, training: bool = True):
    """A function running `steps` steps of the CNN's GEMMs (forward only unless `training`)."""
    operands = _gemm_operands(spec, batch_size, training)

    def run() -> None:
        for _ in range(steps):
            for a, b, out in operands:
                np.matmul(a, b, out=out)

    return run


def cnn_floor_probe(spec: dict, n_images: int):
    """A function timing the GEMM floor of a CNN epoch over `n_images` images: [seconds], the
    faster of one BLAS thread and one per core, each timed over spec["cnn_floor_steps"] steps
    and scaled to the epoch's steps."""
    from mnistlab.backend.blas import blas_threads

    batch_size = spec["cnn"]["batch_size"]
    steps = spec["cnn_floor_steps"]
    scale = math.ceil(n_images / batch_size) / steps
    run = gemm_steps(spec, batch_size, steps)
    settings = sorted({1, os.cpu_count() or 1})

    def probe() -> list[float]:
        times = []
        for threads in settings:
            with blas_threads(threads, "numpy"):
                times += timed(run, 1, warmup=0)
        return [min(times) * scale]

    return probe


def cnn_inference_probe(spec: dict, n_images: int):
    """A function timing the forward GEMMs of inference on `n_images` images (all BLAS threads),
    over INFERENCE_FLOOR_CHUNKS chunks and scaled: [seconds]."""
    run = gemm_steps(spec, INFERENCE_FLOOR_CHUNK, INFERENCE_FLOOR_CHUNKS, training=False)
    scale = n_images / (INFERENCE_FLOOR_CHUNK * INFERENCE_FLOOR_CHUNKS)

    def probe() -> list[float]:
        return [timed(run, 1, warmup=0)[0] * scale]

    return probe


def time_cnn_training(run_epoch, evaluate, spec: dict, n_used: int, n_train: int) -> dict:
    """A CNN training workload as every runner times it: one warm-up epoch over `n_used`
    images, spec["cnn_epochs"] timed ones, each followed by the floor probe (after a rest) and
    the other frameworks' turns; the times scaled to an epoch of `n_train` images; the test
    accuracy after the last epoch (not timed)."""
    scale = n_train / n_used
    probe = cnn_floor_probe(spec, n_train)
    run_epoch()
    times, probes = [], []
    for _ in range(spec["cnn_epochs"]):
        times.append(timed(run_epoch, 1, warmup=0)[0] * scale)
        probes += settled(probe)()
        TURNS.pass_turn()
    return summarize(
        times,
        floor_times=probes,
        accuracy=float(evaluate()),
        accuracy_epochs=1 + spec["cnn_epochs"],
        images_per_epoch=n_used,
        scale=scale,
    )


def inference_chunks(n_images: int) -> list[slice]:
    """The peers' inference passes over `n_images` images, INFERENCE_CHUNK at a time."""
    return [slice(start, start + INFERENCE_CHUNK) for start in range(0, n_images, INFERENCE_CHUNK)]

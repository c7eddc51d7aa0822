"""Conv2D's two routes for the cnn preset's second convolution: im2col and Winograd F(2x2, 3x3).

Part 1, the layer: Conv2D 32->64, 3x3 "same", on 14x14 images, 64 of them (one half of a
minibatch of 128), forward and backward at one BLAS thread: alone, and in two threads at once
(one layer each, as the Trainer's halves run), the routes alternating; median ms of --repeats.

Part 2, the Trainer: the cnn preset's network trained on Fashion-MNIST's first --steps
minibatches (batch 128, Adam), in fits of one epoch alternating between the two routes, in each
of --processes fresh processes; ms per step, the median over --fits fits after a warm-up fit.

    .venv/bin/python benchmarks/winograd.py [--repeats 20] [--processes 2] [--steps 60] [--fits 4]
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from fresh_processes import child_results  # a sibling script: benchmarks/ is on the path

TRAINER = """
import json, statistics, sys, time
import mnistlab.nn.conv as conv
from mnistlab.bench.cnn import build_network, cnn_settings
from mnistlab.bench.workloads import load_data
from mnistlab.optim import get_optimizer
from mnistlab.train import Trainer

steps, fits = int(sys.argv[1]), int(sys.argv[2])
real = conv.applies
spec = {**cnn_settings(quick=True), "image_shape": [28, 28]}
data = load_data()
x, y = data["x_train"][: steps * 128], data["y_train"][: steps * 128]
trainers = {}
for route in ("im2col", "winograd"):
    # the replica of the halves is built when a fit begins: the switch is set around each fit
    conv.applies = real if route == "winograd" else (lambda *args: False)
    model = build_network(spec)
    optimizer = get_optimizer("adam", model.parameters(), learning_rate=1e-3)
    trainers[route] = Trainer(model, optimizer)
times = {route: [] for route in trainers}
for fit in range(fits + 1):
    for route, trainer in trainers.items():
        conv.applies = real if route == "winograd" else (lambda *args: False)
        started = time.perf_counter()
        trainer.fit(x, y, epochs=trainer.epoch + 1, batch_size=128)
        if fit:
            times[route].append((time.perf_counter() - started) / steps)
print(json.dumps({route: statistics.median(v) * 1e3 for route, v in times.items()}))
"""


def layer_times(repeats: int) -> dict:
    from mnistlab.backend.blas import Blas
    from mnistlab.nn import Conv2D

    rng = np.random.default_rng(0)
    blas = Blas()

    def make(route: str):
        layer = Conv2D(64, 3, padding="same")
        layer.build((14, 14, 32), rng, np.float32, blas)
        if route == "im2col":
            layer._winograd = None
        return layer

    x = rng.standard_normal((64, 14, 14, 32)).astype(np.float32)
    grad = rng.standard_normal((64, 14, 14, 64)).astype(np.float32)
    layers = {route: (make(route), make(route)) for route in ("im2col", "winograd")}

    def step(layer) -> None:
        layer.forward(x, training=True)
        layer.backward(grad)

    times: dict = {}
    with blas.training(1), ThreadPoolExecutor(1) as worker:
        for _ in range(repeats + 1):
            for route, (first, second) in layers.items():
                started = time.perf_counter()
                step(first)
                times.setdefault((route, "alone"), []).append(time.perf_counter() - started)
                started = time.perf_counter()
                other = worker.submit(step, second)
                step(first)
                other.result()
                times.setdefault((route, "two at once"), []).append(time.perf_counter() - started)
    return {key: statistics.median(v[1:]) * 1e3 for key, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--fits", type=int, default=4)
    args = parser.parse_args()
    result = layer_times(args.repeats)
    print("Conv2D 32->64 on 14x14, 64 images, forward + backward, one BLAS thread (ms)")
    print(f"{'':>10}{'alone':>10}{'two at once':>14}")
    for route in ("im2col", "winograd"):
        alone, both = result[(route, "alone")], result[(route, "two at once")]
        print(f"{route:>10}{alone:>10.2f}{both:>14.2f}")
    print("\nthe cnn preset through the Trainer, ms per step (fits alternating)")
    print(f"{'process':>8}{'im2col':>10}{'winograd':>10}{'ratio':>8}")
    results = child_results(TRAINER, [str(args.steps), str(args.fits)], args.processes)
    for number, times in enumerate(results):
        im2col, winograd = times["im2col"], times["winograd"]
        print(f"{number + 1:>8}{im2col:>10.1f}{winograd:>10.1f}{winograd / im2col:>8.2f}")


if __name__ == "__main__":
    main()

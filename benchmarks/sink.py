"""Epoch times with SGD's step inside the weight-gradient GEMMs (a GradientSink) and without.

Two identical models (784-100-200-10 ReLU, same seed) train side by side on Fashion-MNIST, their
epochs alternating after a rest of 0.3 s each (so that the machine's drift falls on both and no
BLAS worker still spins from the other's epoch): one as the Trainer runs it (the optimizer hands
the backward pass a sink, and the weight-gradient GEMMs write W <- W - lr * dL/dW themselves), one
with fused=False (gradients written to the gradient buffer, then the optimizer's own pass).
Prints each pair, the median of the per-pair ratios, and both test accuracies.

    .venv/bin/python benchmarks/sink.py [--optimizer sgd|momentum] [--batch-size 128] [--epochs 10]

On the 2-core machine (median of the per-epoch ratios, sink / no sink): plain SGD 0.92 at batch
32 (one BLAS thread), 0.96-0.97 at batch 128 (two); momentum 0.955-0.99 at batch 128.
"""

from __future__ import annotations

import argparse
import statistics
import time

from mnistlab.data import flatten, load_dataset, to_float
from mnistlab.nn import build_mlp
from mnistlab.optim import get_optimizer
from mnistlab.train import Trainer

REST = 0.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", default="sgd", choices=["sgd", "momentum"])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    args = parser.parse_args()
    data = load_dataset("fashion-mnist")
    x, y = flatten(to_float(data.x_train, data.pixel_max)), data.y_train
    x_test, y_test = flatten(to_float(data.x_test, data.pixel_max)), data.y_test

    def trainer(sink: bool) -> Trainer:
        model = build_mlp([100, 200], 10).build(x.shape[1], seed=0)
        optimizer = get_optimizer(
            args.optimizer, model.parameters(), learning_rate=args.learning_rate, fused=sink
        )
        return Trainer(model, optimizer)

    runs = {"sink": trainer(True), "no sink": trainer(False)}
    for run in runs.values():  # warm-up epoch, not timed
        run.fit(x, y, epochs=1, batch_size=args.batch_size)
    print(f"{args.optimizer}, batch {args.batch_size}: seconds per epoch")
    print(f"{'epoch':>5} {'sink':>8} {'no sink':>8} {'sink / no sink':>15}")
    ratios = []
    for epoch in range(2, args.epochs + 2):
        seconds = {}
        order = list(runs) if epoch % 2 else list(runs)[::-1]
        for name in order:
            time.sleep(REST)
            started = time.perf_counter()
            runs[name].fit(x, y, epochs=epoch, batch_size=args.batch_size)
            seconds[name] = time.perf_counter() - started
        ratios.append(seconds["sink"] / seconds["no sink"])
        print(f"{epoch:>5} {seconds['sink']:>8.3f} {seconds['no sink']:>8.3f} {ratios[-1]:>15.3f}")
    print(f"median ratio {statistics.median(ratios):.3f}")
    accuracy = {name: run.evaluate(x_test, y_test)[1] for name, run in runs.items()}
    print(f"test accuracy: sink {accuracy['sink']:.4f}, no sink {accuracy['no sink']:.4f}")


if __name__ == "__main__":
    main()

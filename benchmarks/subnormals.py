"""Epoch times with and without subnormal floats flushed to zero (mnistlab.backend.fpu).

Two identical models (784-100-200-10 ReLU, same seed) train side by side on Fashion-MNIST,
their epochs alternating so that the machine's drift falls on both: one as the Trainer runs
(inside `flush_subnormals()`), one with IEEE arithmetic (the flush replaced by a no-op). Late
in training, subnormal probabilities and gradients appear, and every instruction that meets one
takes a microcode assist; this shows what that costs, epoch by epoch.

    .venv/bin/python benchmarks/subnormals.py [--optimizer adam] [--batch-size 32] [--epochs 20]

On the 2-core machine, Adam at batch 32: IEEE epochs grew from 1.34 s to 1.5-1.8 s between the
10th and the 20th epoch; flushed ones stayed at 1.33-1.40 s, with the same test accuracy. (A
32x784 by 32x100 weight-gradient GEMM with 1% of its gradient entries subnormal took 807 us
instead of 90 us, and an elementwise multiply over 78,400 subnormal floats 667 us instead of
17 us, timed alone.)
"""

from __future__ import annotations

import argparse
import contextlib
import time

import mnistlab.train.trainer as trainer_module
from mnistlab.backend import fpu as _fpu
from mnistlab.data import flatten, load_dataset, to_float
from mnistlab.nn import build_mlp
from mnistlab.optim import get_optimizer
from mnistlab.train import Trainer

LEARNING_RATES = {"sgd": 0.1, "adam": 1e-3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", default="adam", choices=sorted(LEARNING_RATES))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    if not _fpu.supported():
        raise SystemExit("flush_subnormals() does nothing on this platform (x86-64 glibc only)")
    data = load_dataset("fashion-mnist")
    x, y = flatten(to_float(data.x_train, data.pixel_max)), data.y_train
    x_test, y_test = flatten(to_float(data.x_test, data.pixel_max)), data.y_test

    def trainer() -> Trainer:
        model = build_mlp([100, 200], 10).build(x.shape[1], seed=0)
        lr = LEARNING_RATES[args.optimizer]
        return Trainer(model, get_optimizer(args.optimizer, model.parameters(), learning_rate=lr))

    runs = {"flushed": (trainer(), _fpu.flush_subnormals), "IEEE": (trainer(), None)}
    totals = dict.fromkeys(runs, 0.0)
    print(f"{args.optimizer}, batch {args.batch_size}: seconds per epoch")
    print(f"{'epoch':>5} {'flushed':>8} {'IEEE':>8} {'IEEE / flushed':>15}")
    for epoch in range(1, args.epochs + 1):
        seconds = {}
        for name, (run, flush) in runs.items():
            trainer_module.flush_subnormals = flush or contextlib.nullcontext
            try:
                started = time.perf_counter()
                run.fit(x, y, epochs=epoch, batch_size=args.batch_size)
                seconds[name] = time.perf_counter() - started
            finally:
                trainer_module.flush_subnormals = _fpu.flush_subnormals
            totals[name] += seconds[name]
        print(
            f"{epoch:>5} {seconds['flushed']:>8.3f} {seconds['IEEE']:>8.3f} "
            f"{seconds['IEEE'] / seconds['flushed']:>15.2f}"
        )
    print(f"total {totals['flushed']:>8.1f} {totals['IEEE']:>8.1f}")
    accuracy = {name: run.evaluate(x_test, y_test)[1] for name, (run, _) in runs.items()}
    print(f"test accuracy: flushed {accuracy['flushed']:.4f}, IEEE {accuracy['IEEE']:.4f}")


if __name__ == "__main__":
    main()

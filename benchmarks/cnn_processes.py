"""The cnn preset's training step, timed in several fresh processes one after the other.

On a shared 2-core virtual machine a process's step time is not one number: the median step of
a process comes out near one of two values, and which one is decided per process (and by the
hour), not per step. This script shows the spread that `mnistlab bench` can meet within one run:
each process trains the cnn preset's network for --steps steps at batch 128 with Adam, in whole
steps under the BLAS setting the Trainer gives them, and prints the median step after 10 warm-up
steps; then the medians side by side. (On two cores the Trainer now runs each minibatch's halves
at once instead: benchmarks/data_parallel.py compares the two routes in each process.)

    .venv/bin/python benchmarks/cnn_processes.py [--processes 8] [--steps 60]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

CHILD = """
import time, sys
import numpy as np
from mnistlab.bench.breakdown import _plain_step
from mnistlab.bench.cnn import build_network, cnn_settings
from mnistlab.backend.fpu import flush_subnormals
from mnistlab.data import load_dataset
from mnistlab.nn import get_loss
from mnistlab.optim import get_optimizer
from mnistlab.train.trainer import auto_blas_threads

steps = int(sys.argv[1])
spec = {**cnn_settings(quick=True), "image_shape": [28, 28]}
data = load_dataset("fashion-mnist")
x = (data.x_train.reshape(len(data.x_train), -1) / 255).astype(np.float32)
y = data.y_train.astype(np.int64)
order = np.random.default_rng(0).permutation(len(x))
model = build_network(spec)
optimizer = get_optimizer("adam", model.parameters(), learning_rate=1e-3)
loss = get_loss("cross_entropy")
times = []
threads = auto_blas_threads(128, model.multiply_adds())
with model.blas.training(threads), flush_subnormals():
    for step in range(10 + steps):
        index = order[step * 128 : (step + 1) * 128]
        started = time.perf_counter()
        _plain_step(model, loss, optimizer, (x[index], y[index]))
        if step >= 10:
            times.append(time.perf_counter() - started)
print(np.median(times) * 1e3)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    medians = []
    for number in range(args.processes):
        result = subprocess.run(
            [sys.executable, "-c", CHILD, str(args.steps)],
            capture_output=True,
            text=True,
            check=True,
        )
        medians.append(float(result.stdout.split()[-1]))
        print(f"process {number + 1}: median step {medians[-1]:.1f} ms", flush=True)
    print(
        "medians, sorted: " + ", ".join(f"{m:.1f}" for m in sorted(medians)) + " ms; "
        f"spread {max(medians) / min(medians):.2f}x"
    )


if __name__ == "__main__":
    main()

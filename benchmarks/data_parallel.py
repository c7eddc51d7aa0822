"""The cnn preset's training step through the Trainer, whole and in two halves at once.

Each of --processes fresh processes trains the cnn preset's network (batch 128, Adam) on
Fashion-MNIST's first --steps minibatches, in fits of one epoch that alternate between whole
steps (data_parallel=False: NumPy's passes on one core, the products on every BLAS thread) and
halves at once (data_parallel=True: mnistlab.train.parallel.HalfBatches, one BLAS thread per
half), and prints the milliseconds per step of each, the median over its fits after one warm-up
fit of each. On a shared 2-core machine a process's speed settles at one of two levels
(benchmarks/cnn_processes.py), so the comparison is made within each process, fits alternating.

    .venv/bin/python benchmarks/data_parallel.py [--processes 4] [--steps 60] [--fits 4]
"""

from __future__ import annotations

import argparse

from fresh_processes import child_results  # a sibling script: benchmarks/ is on the path

CHILD = """
import json, statistics, sys, time
from mnistlab.bench.cnn import build_network, cnn_settings
from mnistlab.bench.workloads import load_data
from mnistlab.optim import get_optimizer
from mnistlab.train import Trainer

steps, fits = int(sys.argv[1]), int(sys.argv[2])
spec = {**cnn_settings(quick=True), "image_shape": [28, 28]}
data = load_data()
x, y = data["x_train"][: steps * 128], data["y_train"][: steps * 128]
trainers = {}
for halves in (False, True):
    model = build_network(spec)
    optimizer = get_optimizer("adam", model.parameters(), learning_rate=1e-3)
    trainers[halves] = Trainer(model, optimizer, data_parallel=halves)
times = {False: [], True: []}
for fit in range(fits + 1):
    for halves, trainer in trainers.items():
        started = time.perf_counter()
        trainer.fit(x, y, epochs=trainer.epoch + 1, batch_size=128)
        if fit:
            times[halves].append((time.perf_counter() - started) / steps)
print(json.dumps({str(k): statistics.median(v) * 1e3 for k, v in times.items()}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--fits", type=int, default=4)
    args = parser.parse_args()
    print(f"{'process':>8}{'whole steps':>14}{'halves at once':>17}{'ratio':>8}")
    results = child_results(CHILD, [str(args.steps), str(args.fits)], args.processes)
    for number, result in enumerate(results):
        whole, halves = result["False"], result["True"]
        print(f"{number + 1:>8}{whole:>11.1f} ms{halves:>14.1f} ms{halves / whole:>8.2f}")


if __name__ == "__main__":
    main()

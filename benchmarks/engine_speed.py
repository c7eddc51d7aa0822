"""Seconds per training epoch of the MLP engine on Fashion-MNIST (issue: the four speed targets).

One epoch = 60,000 training images, network 784-100-200-10 ReLU, float32, reshuffle included;
the median of several timed epochs after one warm-up epoch. Also prints the bare-GEMM floor:
the 8 matrix products of every step of an epoch, preallocated, nothing else, with the faster of
one BLAS thread and one per core; and each target
scaled by this machine's floor over the floor of the machine the targets were set on (0.24 s at
batch 32, 0.16 s at batch 128): what the target asks of the engine once the hardware is divided
out. The absolute target is the one the issue sets; the scaled one only explains a miss.

    .venv/bin/python benchmarks/engine_speed.py [--epochs 5] [--dataset fashion-mnist]
        [--blas-threads N]

--blas-threads fixes the BLAS threads of training (default: the Trainer's auto_blas_threads).
Run with 1 and then 2 to see what mnistlab.train.trainer.WORK_PER_THREAD rests on; on the
2-core machine, one setting against the other in alternating epochs, two threads made epochs of
784-100-200-10 12-14% longer at batch 32 and 64 (3.2M and 6.4M multiply-adds a step) but 5-9%
shorter at batch 128 (12.8M) and 14% at 256; 25% shorter for 784-600-100-10 at batch 32 (17M),
and 31-36% for 784-1024-512-10 at batch 32 to 128 (43M-170M).

Other engine choices were measured the same way, epochs of 784-100-200-10 alternating between
the two variants of the code on the 2-core machine (no option here reproduces them):
- minibatches gathered ahead by a helper thread (train.batches): epochs 8-9% shorter at batch
  128 and 3-4% at batch 32 (one BLAS thread);
- RMSprop and Adam working in the gradient's buffer rather than a separate one: Adam's epochs
  12-16% shorter;
- Adam's scaled moments (seven passes over the parameters a step instead of nine): epochs
  10-14% shorter at batch 32 and 4% at batch 128;
- optimizer slots cleared near the subnormal range every 32 steps: without it 8% of Adam's
  first moments were subnormal after one epoch, and the epoch took 6x as long.
"""

from __future__ import annotations

import argparse
import statistics
import time

from mnistlab.bench.workloads import floor_probe
from mnistlab.data import flatten, load_dataset, to_float
from mnistlab.nn import build_mlp
from mnistlab.optim import get_optimizer
from mnistlab.train import Trainer

TARGETS = {("sgd", 32): 0.42, ("sgd", 128): 0.25, ("adam", 32): 0.65, ("adam", 128): 0.30}
#: the GEMM floor of the machine the targets were set on (seconds per epoch, by batch size)
ISSUE_FLOOR = {32: 0.24, 128: 0.16}
LEARNING_RATES = {"sgd": 0.1, "adam": 1e-3}


def epoch_times(
    x, y, optimizer: str, batch_size: int, epochs: int, blas_threads: int | None = None
) -> list[float]:
    model = build_mlp([100, 200], 10).build(x.shape[1], seed=0)
    opt = get_optimizer(optimizer, model.parameters(), learning_rate=LEARNING_RATES[optimizer])
    trainer = Trainer(model, opt, blas_threads=blas_threads)
    times = []
    for _ in range(epochs + 1):  # the first epoch is the warm-up
        started = time.perf_counter()
        trainer.fit(x, y, epochs=trainer.epoch + 1, batch_size=batch_size)
        times.append(time.perf_counter() - started)
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--blas-threads", type=int, default=None)
    args = parser.parse_args()
    data = load_dataset(args.dataset)
    x = flatten(to_float(data.x_train, data.pixel_max))
    y = data.y_train
    print(
        f"{'workload':<16} {'median s':>9} {'spread s':>9} {'floor s':>8} {'x floor':>8} "
        f"{'target s':>9}  ok  {'scaled s':>8}  ok"
    )
    for (optimizer, batch_size), target in TARGETS.items():
        times = epoch_times(x, y, optimizer, batch_size, args.epochs, args.blas_threads)
        probe = floor_probe(x.shape[0], batch_size)
        floor = statistics.median(probe()[0] for _ in range(3))
        median = statistics.median(times)
        spread = max(times) - min(times)
        scaled = target * floor / ISSUE_FLOOR[batch_size]
        print(
            f"{optimizer + ', batch ' + str(batch_size):<16} {median:>9.3f} {spread:>9.3f} "
            f"{floor:>8.3f} {median / floor:>8.2f} {target:>9.2f}  "
            f"{'yes' if median <= target else 'NO ':<3} {scaled:>8.3f}  "
            f"{'yes' if median <= scaled else 'NO'}"
        )


if __name__ == "__main__":
    main()

"""The first convolution's kernel-gradient GEMM at one and at two BLAS threads, in a step's rhythm.

The cnn preset's first Conv2D (one input channel, 3x3, 32 filters on 28x28) computes its kernel's
gradient as one product cols.T @ G: (9, batch * 784) @ (batch * 784, 32) at batch 128, an output
of 288 numbers over an inner dimension of 100,352. OpenBLAS splits a product between its threads
along the output and synchronizes them once per block of the inner dimension: hundreds of times
for this shape. `mnistlab bench --cnn-breakdown` found it taking from 12 ms to 2.7 s a step
(medians) while other jobs shared the 2 cores, against 1.3 to 2.6 ms alone. This times it as a
step meets it, after a single-threaded NumPy pass over the conv1 output's size (pooling and
ReLU's backward), through NumPy's BLAS at two threads and at one (the cases alternating, the
same arrays), and reports median and maximum:

    .venv/bin/python benchmarks/thin_gemm.py [--repeats 30]

The numbers it gives depend on what else runs on the machine: alone, both settings take a few
milliseconds; with other processes on the cores, the two-thread product waits for its second
thread at every synchronization. (Measured figures: docs/performance.md, the CNN rows.)
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from mnistlab.backend.blas import blas_threads
from mnistlab.backend.fpu import flush_subnormals
from mnistlab.bench.cnn import build_network, cnn_network
from mnistlab.nn import Conv2D


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    batch = cnn_network()["batch_size"]
    model = build_network({"cnn": cnn_network(), "image_shape": [28, 28]})
    conv1 = next(layer for layer in model.layers if isinstance(layer, Conv2D))
    positions = batch * conv1.output_shape[0] * conv1.output_shape[1]
    taps = conv1.kernel_size[0] * conv1.kernel_size[1] * conv1.input_shape[2]
    rng = np.random.default_rng(0)
    cols_t = rng.standard_normal((taps, positions), dtype=np.float32)
    grad = rng.standard_normal((positions, conv1.filters), dtype=np.float32)
    out = np.empty((taps, conv1.filters), np.float32)
    # a pass as long as a step's pooling and ReLU backward over conv1's outputs
    work = rng.standard_normal(positions * conv1.filters, dtype=np.float32)
    scratch = np.empty_like(work)
    settings = sorted({1, os.cpu_count() or 1}, reverse=True)
    times = {threads: [] for threads in settings}
    print(f"({taps}, {positions:,}) @ ({positions:,}, {conv1.filters}), after a NumPy pass")
    with flush_subnormals():
        for repeat in range(args.repeats):
            for threads in settings if repeat % 2 else settings[::-1]:
                with blas_threads(threads, "numpy"):
                    np.matmul(cols_t, grad, out=out)  # the pool awake, as in a step
                    np.multiply(work, work, out=scratch)
                    np.add(scratch, work, out=scratch)
                    started = time.perf_counter()
                    np.matmul(cols_t, grad, out=out)
                    times[threads].append(time.perf_counter() - started)
    for threads, values in times.items():
        median, most = statistics.median(values) * 1e3, max(values) * 1e3
        label = f"{threads} thread{'s' if threads > 1 else ''}"
        print(f"{label:<10} median {median:8.2f} ms   max {most:8.1f} ms")


if __name__ == "__main__":
    main()

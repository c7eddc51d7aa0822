"""Inference on the 10,000 Fashion-MNIST test images: where the time goes, next to PyTorch.

Times, alternating and after a short rest each (medians of --repeats): mnistlab's
predict_logits for 784-100-200-10 ReLU; the 3 bare GEMMs of it (preallocated outputs, no bias,
no ReLU) in NumPy's BLAS and in SciPy's, each with every core and the other BLAS at one thread;
the bias and ReLU passes alone, with NumPy's broadcast addition and with BLAS's rank-1 update
(GER, what predict_logits does); and, where PyTorch is installed (the `bench` extra), the same 3
GEMMs with torch.mm and the same network as torch.nn layers under no_grad. Every library uses
every core.

    .venv/bin/python benchmarks/inference.py [--repeats 40]

On the 2-core machine: predict_logits took 19.1 ms with SciPy's GEMMs and GER (what
Blas.inference() does), 20.1 ms with NumPy's GEMMs and NumPy's broadcast addition. NumPy's
`out += b` took 11-18 us for 128 x 200 and 2.0 ms for 10,000 x 200, GER 5.7 us and 0.26 ms;
with both pools multi-threaded and the calls alternating between them (NumPy's GEMMs, SciPy's
GER), the same inference took 40 ms: hence no GER outside a setting.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import time

import numpy as np
from scipy.linalg import blas

from mnistlab.backend.blas import Blas, available_threads
from mnistlab.data import flatten, load_dataset, to_float
from mnistlab.nn import build_mlp

REST = 0.2  # seconds: longer than an idle OpenBLAS worker spins (see mnistlab.bench.workloads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    data = load_dataset("fashion-mnist")
    x = np.ascontiguousarray(flatten(to_float(data.x_test, data.pixel_max)))
    model = build_mlp([100, 200], 10).build(x.shape[1], seed=0)
    dense = [layer for layer in model.layers if hasattr(layer, "weight")]
    weights = [layer.weight.data for layer in dense]
    cases = mnistlab_cases(model, x, weights, [layer.bias.data for layer in dense])
    if importlib.util.find_spec("torch") is not None:
        cases.update(torch_cases(x, weights))
    else:
        print("PyTorch is not installed (pip install -e '.[bench]'): its rows are skipped")
    times = time_cases(cases, args.repeats)
    print(f"{'10,000 images, 784-100-200-10':<34} {'median ms':>9} {'min ms':>7}")
    for name, values in times.items():
        print(f"{name:<34} {statistics.median(values) * 1e3:>9.2f} {min(values) * 1e3:>7.2f}")


def mnistlab_cases(model, x, weights, biases) -> dict:
    """predict_logits, and its GEMMs and its bias additions alone, in either library."""
    outs = [np.empty((len(x), w.shape[1]), dtype=np.float32) for w in weights]
    ones = np.ones(len(x), dtype=np.float32)
    cores = available_threads()
    setting = Blas()  # the BLAS setting the cases below run under

    def in_library(library, fn):
        def case():
            with setting.use(cores, library):
                fn()

        return case

    def numpy_gemms():
        h = x
        for w, out in zip(weights, outs, strict=True):
            h = np.matmul(h, w, out=out)

    def scipy_gemms():  # out.T = w.T @ h.T, as Blas.gemm asks SciPy's BLAS
        h = x
        for w, out in zip(weights, outs, strict=True):
            blas.sgemm(1.0, w.T, h.T, 0.0, out.T, 0, 0, 1)
            h = out

    def bias_and_relu(add):  # on the GEMMs' outputs, as a forward pass does after each GEMM
        def passes():
            for i, (b, out) in enumerate(zip(biases, outs, strict=True)):
                add(out, b)
                if i < len(outs) - 1:
                    np.maximum(out, 0, out=out)

        return passes

    def numpy_add(out, b):
        out += b

    numpy_gemms()  # the outputs hold products, not whatever np.empty found
    return {
        "mnistlab predict_logits": lambda: model.predict_logits(x, batch_size=len(x)),
        "numpy: the 3 GEMMs": in_library("numpy", numpy_gemms),
        "scipy: the 3 GEMMs": in_library("scipy", scipy_gemms),
        "bias (numpy +=) and ReLU": in_library("numpy", bias_and_relu(numpy_add)),
        "bias (GER) and ReLU": in_library(
            "scipy", bias_and_relu(lambda out, b: setting.add_rows(out, b, ones))
        ),
    }


def torch_cases(x, weights) -> dict:
    """The same 3 GEMMs with torch.mm, and the same network as torch.nn layers."""
    import torch

    torch_x = torch.from_numpy(x)
    torch_weights = [torch.from_numpy(w) for w in weights]
    net = torch.nn.Sequential(
        torch.nn.Linear(784, 100),
        torch.nn.ReLU(),
        torch.nn.Linear(100, 200),
        torch.nn.ReLU(),
        torch.nn.Linear(200, 10),
    )

    def torch_gemms():
        h = torch_x
        for w in torch_weights:
            h = torch.mm(h, w)

    def torch_forward():
        with torch.no_grad():
            net(torch_x)

    return {
        "torch: the 3 GEMMs (torch.mm)": torch_gemms,
        "torch: nn layers, no_grad": torch_forward,
    }


def time_cases(cases: dict, repeats: int) -> dict[str, list[float]]:
    """Seconds of each case, `repeats` times, in a new random order each round, after a rest."""
    times = {name: [] for name in cases}
    for _ in range(repeats):
        names = list(cases)
        random.shuffle(names)
        for name in names:
            time.sleep(REST)
            cases[name]()  # untimed: wakes the thread pool, as in a loop of its own
            started = time.perf_counter()
            cases[name]()
            times[name].append(time.perf_counter() - started)
    return times


if __name__ == "__main__":
    main()

"""What `mnistlab bench` measures, shared by every framework's runner.

Same data for everyone: Fashion-MNIST, float32 in [0, 1], the 60,000 training images and the
10,000 test images. Same network: 784-100-200-10 ReLU, softmax cross-entropy on the logits. One
training epoch is a reshuffle plus every minibatch of the 60,000 images (the last one partial).
The CNN rows (the `cnn` preset's network on the same images) are described in `bench.cnn`.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np

from mnistlab.data import flatten, load_dataset, to_float

#: the environment variable through which `mnistlab bench` hands a worker its two pipe ends
TURNS_VARIABLE = "MNISTLAB_BENCH_TURNS"


class Turns:
    """Taking turns with the other frameworks' processes.

    `mnistlab bench` starts every framework's process at once and lets one compute at a time:
    a process waits for its turn (one byte on its pipe from the harness), runs one timed unit
    (an epoch and the floor probe after it, one inference repeat, one classical fit), then hands
    the turn back (one byte to the harness) and waits again. So the frameworks' epochs alternate
    and a slow minute of the shared host slows all of them, not one. Outside the harness (no
    pipes in the environment) both calls do nothing.
    """

    def __init__(self) -> None:
        ends = os.environ.get(TURNS_VARIABLE)
        self.read_fd, self.write_fd = map(int, ends.split(",")) if ends else (None, None)

    def wait(self) -> None:
        """Block until the harness gives this process the machine."""
        if self.read_fd is not None and not os.read(self.read_fd, 1):
            raise SystemExit("mnistlab bench: the harness has gone away")

    def pass_turn(self) -> None:
        """Give the machine to the next framework; return when it is this process's turn again."""
        if self.write_fd is not None:
            os.write(self.write_fd, b".")
            self.wait()


TURNS = Turns()

#: seconds of rest before each floor probe, and before each framework's turn (run_in_turns).
#: A BLAS thread pool keeps its idle workers spinning for a while after its work (an OpenBLAS
#: worker for 2^28 TSC cycles, about a tenth of a second at 2 to 3 GHz) before they sleep; while
#: they spin they hold the cores that the next timed call needs. A time taken right after
#: another process's GEMMs would measure those spinning threads, not the machine or the
#: framework; SETTLE is longer than the spin.
SETTLE = 0.2


def settled(probe):
    """`probe`, called after SETTLE seconds of rest."""

    def call() -> list[float]:
        time.sleep(SETTLE)
        return probe()

    return call


HIDDEN = (100, 200)
LEARNING_RATES = {"sgd": 0.1, "adam": 1e-3}
TRAINING = (("sgd", 32), ("sgd", 128), ("adam", 32), ("adam", 128))
#: the budget of the accuracy check: epochs of Adam at batch 128
ACCURACY_EPOCHS = 5
ACCURACY_WORKLOAD = ("adam", 128)
#: the order rows are printed in
WORKLOADS = (
    "train_sgd_b32",
    "train_sgd_b128",
    "train_adam_b32",
    "train_adam_b128",
    "inference_10k",
    "knn_1nn",
    "gaussian",
    "softmax",
    "cnn_train",
    "cnn_inference_10k",
)
#: the rows of each kind of workload that `mnistlab bench --workloads` selects
WORKLOAD_KINDS = {"mlp": WORKLOADS[:8], "cnn": WORKLOADS[8:]}
TITLES = {
    "train_sgd_b32": "train epoch, SGD, batch 32",
    "train_sgd_b128": "train epoch, SGD, batch 128",
    "train_adam_b32": "train epoch, Adam, batch 32",
    "train_adam_b128": "train epoch, Adam, batch 128",
    "inference_10k": "inference, 10,000 images",
    "knn_1nn": "1-NN, 10,000 x 60,000",
    "gaussian": "Gaussian classifier fit+predict",
    "softmax": "softmax regression fit+predict",
    "cnn_train": "CNN train epoch (preset cnn)",
    "cnn_inference_10k": "CNN inference, 10,000 images",
}


def selected(spec: dict, kind: str) -> bool:
    """Whether the run times the workloads of `kind` ("mlp": the MLP and classical rows, "cnn")."""
    return kind in spec.get("workloads", ("mlp",))


def workload_name(optimizer: str, batch_size: int) -> str:
    return f"train_{optimizer}_b{batch_size}"


def load_data(dataset: str = "fashion-mnist", n_test: int | None = None) -> dict:
    """float32 [0, 1] flattened arrays, int64 labels."""
    data = load_dataset(dataset)
    x_test = flatten(to_float(data.x_test, data.pixel_max))
    y_test = data.y_test.astype(np.int64)
    if n_test is not None:
        x_test, y_test = x_test[:n_test], y_test[:n_test]
    return {
        "x_train": np.ascontiguousarray(flatten(to_float(data.x_train, data.pixel_max))),
        "y_train": data.y_train.astype(np.int64),
        "x_test": np.ascontiguousarray(x_test),
        "y_test": y_test,
    }


def summarize(times: list[float], **extra) -> dict:
    """Median and spread (max - min) of the timed repeats, with the repeats themselves."""
    return {
        "median": statistics.median(times),
        "spread": max(times) - min(times),
        "times": list(times),
        **extra,
    }


def timed(fn, repeats: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def timed_with_probe(fn, probe, repeats: int, warmup: int = 3) -> dict:
    """Like `timed`, with `probe` (a fixed NumPy GEMM workload) timed after every repeat (and
    SETTLE seconds of rest): the machine's speed at that moment, so that runs in different
    processes can be compared.

    A repeat is one turn (see Turns), and a short one (one inference pass): each turn first
    calls `fn` once untimed, so that the timed call finds its thread pool awake and its arrays in
    cache after the other frameworks' turns, as it would in a loop of its own."""
    for _ in range(warmup):
        fn()
    times, probes = [], []
    for repeat in range(repeats):
        if repeat:
            fn()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
        probes += settled(probe)()
        TURNS.pass_turn()
    return summarize(times, floor_times=probes)


def probe_once(fn, probe) -> dict:
    """One timed call of `fn` (a classical fit and predict), with `probe` timed before and after
    (after SETTLE seconds of rest)."""
    before = probe()
    started = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - started
    after = settled(probe)()
    TURNS.pass_turn()
    return summarize([seconds], floor_times=[(before[0] + after[0]) / 2]), value


def normalized(summary: dict) -> float | None:
    """Median over repeats of time / the probe timed right after it (None without probes)."""
    probes = summary.get("floor_times") or []
    if len(probes) != len(summary["times"]):
        return None
    return statistics.median(t / p for t, p in zip(summary["times"], probes, strict=True))


def floor_probe(n: int, batch_size: int):
    """A function timing one floor epoch with one BLAS thread and with one per core: [the
    faster]. The floor is what no implementation goes below, so it gets the faster setting
    (which one that is depends on the batch size and the machine)."""
    # imported here, not with the module: a worker imports this module before its first turn,
    # while another framework is timed, and the BLAS controller loads SciPy (its own turn, then)
    from mnistlab.backend.blas import blas_threads

    settings = sorted({1, os.cpu_count() or 1})

    def probe() -> list[float]:
        times = []
        for threads in settings:
            with blas_threads(threads, "numpy"):
                times += gemm_floor(n, batch_size, 1, warmup=0)
        return [min(times)]

    return probe


def inference_probe(x_test: np.ndarray):
    """A function timing the 3 bare GEMMs of inference on `x_test` (all BLAS threads): [seconds]."""
    rng = np.random.default_rng(0)
    sizes = [x_test.shape[1], *HIDDEN, 10]
    weights = [
        rng.standard_normal((a, b)).astype(np.float32)
        for a, b in zip(sizes, sizes[1:], strict=False)
    ]
    outs = [np.empty((len(x_test), b), dtype=np.float32) for b in sizes[1:]]

    def forward():
        h = x_test
        for w, out in zip(weights, outs, strict=True):
            h = np.matmul(h, w, out=out)

    def probe() -> list[float]:
        return timed(forward, 1, warmup=0)

    return probe


def gemm_floor(n: int, batch_size: int, repeats: int, warmup: int = 1) -> list[float]:
    """The 8 GEMMs per step of a 784-100-200-10 epoch: 3 forward, 3 weight gradients and 2
    input gradients (none for the first layer's input). Preallocated buffers, nothing else:
    no bias, activation, loss or update, so no implementation of the epoch can go below it."""
    rng = np.random.default_rng(0)
    sizes = [784, *HIDDEN, 10]
    weights = [
        (0.05 * rng.standard_normal((a, b))).astype(np.float32)
        for a, b in zip(sizes, sizes[1:], strict=False)
    ]
    grads = [np.empty_like(w) for w in weights]
    full = [(0.05 * rng.standard_normal((batch_size, s))).astype(np.float32) for s in sizes]
    deltas = [(0.05 * rng.standard_normal((batch_size, s))).astype(np.float32) for s in sizes]

    def epoch():
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            acts = [a[:b] for a in full]
            ds = [d[:b] for d in deltas]
            for i in range(3):
                np.matmul(acts[i], weights[i], out=acts[i + 1])
            for i in (2, 1, 0):
                np.matmul(acts[i].T, ds[i + 1], out=grads[i])
                if i:
                    np.matmul(ds[i + 1], weights[i].T, out=ds[i])

    return timed(epoch, repeats, warmup)


def train_and_time(run_epoch, evaluate, epochs: int, accuracy: bool, between=None) -> dict:
    """One warm-up epoch, then `epochs` timed ones; with `accuracy`, the test accuracy after
    exactly ACCURACY_EPOCHS epochs (evaluated outside the timed sections). `between`, if given,
    is timed after every timed epoch too (after SETTLE seconds of rest): the GEMM floor of the
    epoch, under the same machine conditions (stored as floor_times)."""
    times, between_times, result = [], [], None
    done = 0
    for done in range(1, epochs + 2):
        started = time.perf_counter()
        run_epoch()
        elapsed = time.perf_counter() - started
        if done > 1:
            times.append(elapsed)
            if between is not None:
                between_times += settled(between)()
            TURNS.pass_turn()
        if accuracy and done == ACCURACY_EPOCHS:
            result = float(evaluate())
    if accuracy and result is None:
        while done < ACCURACY_EPOCHS:
            run_epoch()
            done += 1
        result = float(evaluate())
    extra = {"accuracy": result, "accuracy_epochs": ACCURACY_EPOCHS} if accuracy else {}
    if between is not None:
        extra["floor_times"] = between_times
    return summarize(times, **extra)


def time_training(run_epoch, evaluate, spec: dict, optimizer: str, batch_size: int, n_train: int):
    """A training workload as every runner times it: warm-up, spec["epochs"] timed epochs each
    followed by the floor probe, and the accuracy check on the Adam, batch 128 workload."""
    return train_and_time(
        run_epoch,
        evaluate,
        spec["epochs"],
        accuracy=(optimizer, batch_size) == ACCURACY_WORKLOAD,
        between=floor_probe(n_train, batch_size),
    )

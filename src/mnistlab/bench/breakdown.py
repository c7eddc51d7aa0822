"""`mnistlab bench --cnn-breakdown`: where a training step of mnistlab's CNN goes, layer by layer.

The bench's CNN (the `cnn` preset's network, batch, optimizer) trains on the bench's data
under the Trainer's BLAS setting, one step at a time, as the Trainer steps: gather the
minibatch, forward, loss, backward, optimizer step. Every other step is timed piece by piece:
each layer's forward and backward, the loss, the optimizer, the gather; inside each Conv2D the
window copy (`_im2col`, its padding copy included), the GEMMs (timed through the layer's Blas)
and the col2im adds (`_input_gradient` less its GEMMs). The steps in between run without timers,
so that the sum of the parts can be checked against a plain step (the timers cost a few
microseconds a call). The floor is the same steps' im2col GEMMs alone (`cnn.gemm_steps`).

The table is of whole steps, NumPy's passes on one core and the products on the BLAS's threads.
On two cores the Trainer runs each minibatch's halves at once instead, one per core
(train.parallel.HalfBatches); the last line times such steps, which the table cannot split.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter, defaultdict

import numpy as np

from mnistlab.bench.cnn import build_network, cnn_settings, gemm_steps
from mnistlab.bench.workloads import load_data, timed

FORWARD, BACKWARD = 0, 1


class _Recorder:
    """Seconds per (row, column) of each timed step."""

    def __init__(self) -> None:
        self.steps: list[dict] = []

    def start_step(self) -> None:
        self.steps.append(defaultdict(lambda: [0.0, 0.0]))

    def add(self, row: str, column: int, seconds: float) -> None:
        self.steps[-1][row][column] += seconds

    def medians(self, split) -> dict:
        """Each row's median over the steps, of forward and backward, after `split` (a step's
        rows -> rows) has derived the rows that are differences of others. Medians, not means:
        on a shared machine a few steps stall for a scheduler's time slice, and a mean would
        put the stall in whichever row it fell."""
        steps = [split(step) for step in self.steps]
        rows = dict.fromkeys(row for step in steps for row in step)
        return {
            row: [statistics.median(step.get(row, (0.0, 0.0))[c] for step in steps) for c in (0, 1)]
            for row in rows
        }


class _TimedBlas:
    """A Conv2D's Blas whose GEMMs are timed into `row`, `column` (set by the caller around the
    layer's calls); every other attribute is the shared Blas's, so its setting stays live."""

    def __init__(self, inner, recorder: _Recorder) -> None:
        self._inner, self._recorder = inner, recorder
        self.row, self.column = "", FORWARD

    def gemm(self, *args, **kwargs):
        started = time.perf_counter()
        out = self._inner.gemm(*args, **kwargs)
        self._recorder.add(self.row, self.column, time.perf_counter() - started)
        return out

    def gemm_stack(self, *args, **kwargs):
        started = time.perf_counter()
        out = self._inner.gemm_stack(*args, **kwargs)
        self._recorder.add(self.row, self.column, time.perf_counter() - started)
        return out

    def __getattr__(self, name):
        return getattr(self._inner, name)


class _ConvTimers:
    """Timers inside one Conv2D: its window copy, its GEMMs, its input gradient (col2im)."""

    def __init__(self, layer, name: str, recorder: _Recorder) -> None:
        self.layer, self.name, self.recorder = layer, name, recorder
        self.blas = _TimedBlas(layer.blas, recorder)
        self.original_blas = layer.blas

    def install(self) -> None:
        layer, recorder, name = self.layer, self.recorder, self.name
        im2col, input_gradient = layer._im2col, layer._input_gradient

        def timed_im2col(x):
            started = time.perf_counter()
            cols = im2col(x)
            recorder.add(f"{name}  im2col copy", FORWARD, time.perf_counter() - started)
            return cols

        def timed_input_gradient(grad_rows):
            self.blas.row = f"{name}  input-gradient GEMMs"
            started = time.perf_counter()
            grad_in = input_gradient(grad_rows)
            recorder.add(f"{name}  (input gradient)", BACKWARD, time.perf_counter() - started)
            self.blas.row = f"{name}  GEMMs"
            return grad_in

        layer._im2col, layer._input_gradient = timed_im2col, timed_input_gradient
        layer.blas = self.blas

    def uninstall(self) -> None:
        del self.layer._im2col, self.layer._input_gradient  # the class's methods again
        self.layer.blas = self.original_blas

    def call(self, column: int, method, argument):
        self.blas.row, self.blas.column = f"{self.name}  GEMMs", column
        return method(argument)


def _layer_rows(model) -> list[str]:
    """Each layer's row: a Conv2D of its own, other layers by kind."""
    rows = []
    for layer in model.layers:
        if layer.kind == "Conv2D":
            height, width, channels = layer.input_shape
            rows.append(f"Conv2D {channels}->{layer.filters} on {height}x{width}")
        else:
            rows.append(layer.kind)
    return rows


def _timed_step(model, loss_fn, optimizer, batch, recorder, convs: dict) -> None:
    """One step with every piece timed into `recorder`. batch: (x rows, labels)."""
    rows = _layer_rows(model)
    clock = time.perf_counter
    x_rows, labels = batch
    x = x_rows.reshape(len(x_rows), *model.input_shape)
    for index, layer in enumerate(model.layers):
        started = clock()
        if index in convs:
            x = convs[index].call(FORWARD, lambda v, layer=layer: layer.forward(v, True), x)
        else:
            x = layer.forward(x, True)
        recorder.add(rows[index], FORWARD, clock() - started)
    started = clock()
    loss_fn.forward(x, labels)
    recorder.add("softmax cross-entropy", FORWARD, clock() - started)
    started = clock()
    grad = loss_fn.backward()
    recorder.add("softmax cross-entropy", BACKWARD, clock() - started)
    for index in reversed(range(len(model.layers))):
        layer, started = model.layers[index], clock()
        if index in convs:
            grad = convs[index].call(BACKWARD, layer.backward, grad)
        else:
            grad = layer.backward(grad)
        recorder.add(rows[index], BACKWARD, clock() - started)
        if grad is None:
            break
    started = clock()
    optimizer.step(None, 0.0)
    recorder.add(f"{type(optimizer).__name__} step", BACKWARD, clock() - started)


def _plain_step(model, loss_fn, optimizer, batch) -> None:
    """One step as the Trainer computes it (Adam: no gradient sink)."""
    x_rows, labels = batch
    loss_fn.forward(model.forward(x_rows, training=True), labels)
    model.backward(loss_fn.backward())
    optimizer.step(None, 0.0)


def cnn_breakdown(spec: dict, data: dict, steps: int, warmup: int) -> dict:
    """`steps` timed steps alternating with `steps` plain ones after `warmup` plain ones:
    {"rows": {row: [forward s, backward s], medians}, "plain": [s per plain step], "timed":
    [s per timed step],
    "floor": s of the GEMMs per step, "threads": BLAS threads, ...}."""
    from mnistlab.backend.blas import available_threads
    from mnistlab.backend.fpu import flush_subnormals
    from mnistlab.nn import get_loss
    from mnistlab.optim import get_optimizer
    from mnistlab.train.trainer import auto_blas_threads

    net = spec["cnn"]
    batch_size = net["batch_size"]
    model = build_network(spec)
    optimizer = get_optimizer(net["optimizer"], model.parameters(), learning_rate=net["lr"])
    if optimizer.gradient_sink(0.0) is not None:
        raise ValueError(f"the breakdown times steps without a gradient sink, not {optimizer!r}")
    loss_fn = get_loss("cross_entropy")
    recorder = _Recorder()
    rows = _layer_rows(model)
    convs = {
        i: _ConvTimers(layer, rows[i], recorder)
        for i, layer in enumerate(model.layers)
        if layer.kind == "Conv2D"
    }
    x, y = data["x_train"], data["y_train"]
    order = np.random.default_rng(0).permutation(len(x))
    threads = auto_blas_threads(batch_size, model.multiply_adds())
    plain, timed_steps = [], []
    # the cores, asked before the training setting below sets every pool but one to a thread
    cores = available_threads()

    def gather(step: int):
        start = (step * batch_size) % max(len(x) - batch_size + 1, 1)
        index = order[start : start + batch_size]
        return x[index], y[index]

    with model.blas.training(threads), flush_subnormals():
        for step in range(warmup + 2 * steps):
            started = time.perf_counter()
            batch = gather(step)
            gathered = time.perf_counter() - started
            if step < warmup or (step - warmup) % 2:
                started = time.perf_counter()
                _plain_step(model, loss_fn, optimizer, batch)
                if step >= warmup:
                    plain.append(time.perf_counter() - started + gathered)
                continue
            recorder.start_step()
            recorder.add("minibatch gather", FORWARD, gathered)
            for timers in convs.values():
                timers.install()
            started = time.perf_counter()
            try:
                _timed_step(model, loss_fn, optimizer, batch, recorder, convs)
            finally:
                for timers in convs.values():
                    timers.uninstall()
            timed_steps.append(time.perf_counter() - started + gathered)
        # each Conv2D's route in the timed steps (Conv2D.forward: Winograd's at one BLAS thread)
        names = {timers.name: timers.layer._by_winograd for timers in convs.values()}
        floor = _floor_per_step(spec, batch_size, steps)
        halves = (
            _half_batch_steps(model, loss_fn, optimizer, gather, warmup, steps)
            if cores >= 2
            else []
        )
    return {
        "rows": recorder.medians(lambda step: _conv_parts(step, names)),
        "layers": dict(Counter(rows)),
        "plain": plain,
        "timed": timed_steps,
        "floor": floor,
        "halves": halves,
        "threads": threads,
        "steps": steps,
        "warmup": warmup,
        "batch_size": batch_size,
        "optimizer": net["optimizer"],
    }


def _conv_parts(per_step: dict, names: dict) -> dict:
    """The rows in order, each Conv2D's followed by its parts: the window copy, its GEMMs
    (the forward product; the kernel's gradient), the input gradient's GEMMs, the col2im adds
    (the input gradient less its GEMMs: zeroing and adding back) and the rest (stacking the
    kernel with the bias, splitting their gradient, bookkeeping: the bias itself rides in the
    products). A Conv2D that computes with Winograd (names[row] True: nn.winograd) has two
    parts: the GEMMs of its 16 tile positions, and its transforms (the rest)."""
    rows = {}
    for row, pair in per_step.items():
        if "  " in row:
            continue
        rows[row] = pair
        if row not in names:
            continue
        if names[row]:
            gemms = per_step.get(f"{row}  GEMMs", [0.0, 0.0])
            rows[f"{row}  Winograd GEMMs (16 positions)"] = gemms
            rows[f"{row}  Winograd transforms"] = [p - g for p, g in zip(pair, gemms, strict=True)]
            continue
        part = {
            key: per_step.get(f"{row}  {key}", [0.0, 0.0])
            for key in ("im2col copy", "GEMMs", "input-gradient GEMMs", "(input gradient)")
        }
        col2im = part["(input gradient)"][BACKWARD] - part["input-gradient GEMMs"][BACKWARD]
        rows[f"{row}  im2col copy"] = part["im2col copy"]
        rows[f"{row}  GEMMs (product, kernel gradient)"] = part["GEMMs"]
        if part["(input gradient)"][BACKWARD]:
            rows[f"{row}  GEMMs (input gradient)"] = part["input-gradient GEMMs"]
            rows[f"{row}  col2im adds"] = [0.0, col2im]
        rows[f"{row}  the rest"] = [
            pair[FORWARD] - part["im2col copy"][FORWARD] - part["GEMMs"][FORWARD],
            pair[BACKWARD] - part["GEMMs"][BACKWARD] - part["(input gradient)"][BACKWARD],
        ]
    return rows


def _half_batch_steps(model, loss_fn, optimizer, gather, warmup: int, steps: int) -> list:
    """Seconds of `steps` steps as the Trainer runs this network on two cores: the minibatch's
    halves at once, one BLAS thread each (train.parallel.HalfBatches), after `warmup`."""
    from mnistlab.train.parallel import HalfBatches

    times = []
    with model.blas.training(1), HalfBatches(model, loss_fn) as halves:
        for step in range(warmup + steps):
            started = time.perf_counter()
            halves.forward_backward(*gather(step))
            optimizer.step(None, 0.0)
            if step >= warmup:
                times.append(time.perf_counter() - started)
    return times


def _floor_per_step(spec: dict, batch_size: int, steps: int) -> float:
    """Seconds per step of the step's im2col GEMMs alone, the faster of 1 and all threads."""
    from mnistlab.backend.blas import blas_threads

    run = gemm_steps(spec, batch_size, steps)
    times = []
    for threads in sorted({1, os.cpu_count() or 1}):
        with blas_threads(threads, "numpy"):
            times += timed(run, 3, warmup=1)
    return min(times) / steps


def run_breakdown(quick: bool = False, dataset: str = "fashion-mnist") -> dict:
    """cnn_breakdown on the bench's data and network: 100 timed steps (20 with `quick`)."""
    from mnistlab.data import load_dataset

    spec = cnn_settings(quick)
    spec["image_shape"] = list(load_dataset(dataset).image_shape)
    steps, warmup = (20, 5) if quick else (100, 10)
    result = cnn_breakdown(spec, load_data(dataset), steps, warmup)
    result["dataset"] = dataset
    return result


def format_breakdown(result: dict) -> str:
    """The breakdown as a table of milliseconds per step, forward, backward and both, each
    row's share of the sum of the parts; then the plain step and the floor."""
    rows = result["rows"]
    # a Conv2D's parts are named "<its row>  <part>", and counted in its row
    parts = sum(sum(pair) for row, pair in rows.items() if "  " not in row)
    plain = statistics.median(result["plain"])
    lines = [
        f"mnistlab's CNN step ({result['dataset']}, the cnn preset, batch "
        f"{result['batch_size']}, {result['optimizer']}, {result['threads']} BLAS "
        f"thread{'s' if result['threads'] > 1 else ''}): ms per step, the median of "
        f"{result['steps']} timed steps alternating with {result['steps']} plain ones, after "
        f"{result['warmup']} warm-up steps",
        f"{'':<44}{'forward':>9}{'backward':>10}{'total':>9}{'share':>8}",
    ]
    for row, (forward, backward) in rows.items():
        if "  " in row:
            title = "  " + row.split("  ", 1)[1]
        else:
            title = _titled(row, result["layers"].get(row, 1))
        cells = [f"{forward * 1e3:.2f}" if forward else "-"]
        cells.append(f"{backward * 1e3:.2f}" if backward else "-")
        total = forward + backward
        lines.append(
            f"{title:<44}{cells[0]:>9}{cells[1]:>10}{total * 1e3:>9.2f}{total / parts:>8.1%}"
        )
    floor = result["floor"]
    lines += [
        f"{'sum of the rows':<63}{parts * 1e3:>9.2f}",
        f"{'a timed step (median)':<63}{statistics.median(result['timed']) * 1e3:>9.2f}",
        f"{'a plain step, without the timers (median)':<63}{plain * 1e3:>9.2f}",
        f"{'the im2col GEMMs alone (the floor)':<63}{floor * 1e3:>9.2f}"
        f"   the plain step is {plain / floor:.2f}x the floor",
    ]
    if result.get("halves"):
        halves = statistics.median(result["halves"])
        lines.append(
            f"{'the halves at once, one per core (the Trainer, median)':<63}"
            f"{halves * 1e3:>9.2f}   {halves / floor:.2f}x the floor"
        )
    return "\n".join(lines)


def _titled(row: str, count: int) -> str:
    return f"{row} (x{count})" if count > 1 else row

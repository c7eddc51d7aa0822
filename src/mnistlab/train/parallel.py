"""Two halves of each minibatch at once: a second copy of the network on a second core.

During a convolutional network's step the GEMMs run on every core (the BLAS's threads), but
NumPy's passes between them (window copies, pooling, col2im adds, activations) run on one while
the other waits: on the `cnn` preset at 2 cores, 18 of a step's 48 ms. `HalfBatches` gives each
core a whole forward and backward instead: the trainer's thread runs the first half of the
minibatch through the model, a worker the second half through a replica, each at one BLAS
thread (`Blas.training(1)`), so that the passes run on both cores at once and no BLAS worker
hands rows from one core to the other (benchmarks/data_parallel.py compares both steps). The
worker is a process of its own (train.replica_process), since two threads of one process take
turns at the interpreter's lock between their NumPy calls; a thread where no process can start.

The replica is the same network built anew, its parameters' values those of the model (views of
the model's flat `data` buffer in a thread; in a process, of a mapped file the trainer copies
them into before each step). It writes its own gradient buffer. Each half's loss gradient is
weighted by its share of the rows (the losses are means), so that the model's gradient, plus the
replica's, is the whole minibatch's; the optimizer then steps once, over the model's buffers, as
after a serial step. The sums are the same terms in another order, so a run is reproducible but
differs from a serial one in the last bits.

Not for every network (`unsupported_reason`): BatchNorm's statistics would become each half's;
fused SGD's update rides inside the weights' gradient GEMMs (a GradientSink), which a second half
would apply twice; and the replica is rebuilt from the layers' configurations through the layer
registry, which a layer or loss class of the user's own is not in. Dropout in the replica
draws from a Generator seeded, once per step, from the model's dropout Generator (which
checkpoints save), so a resume stays exact.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from mnistlab.backend.fpu import flush_subnormals
from mnistlab.errors import UsageError
from mnistlab.nn import BatchNorm, Conv2D, Dropout, Sequential
from mnistlab.nn.layers import LAYERS, layer_from_config
from mnistlab.nn.losses import LOSSES, Loss
from mnistlab.train.replica_process import ReplicaProcess, half_step

__all__ = ["HalfBatches", "check_data_parallel", "half_batches", "unsupported_reason", "worth_it"]

#: the fewest rows a minibatch needs before it is split (one per half)
MIN_ROWS = 2


def unsupported_reason(model: Sequential, loss: Loss, uses_gradient_sink: bool) -> str | None:
    """Why HalfBatches cannot train `model` with `loss` (None when it can)."""
    for index, layer in enumerate(model.layers):
        if isinstance(layer, BatchNorm):
            return "BatchNorm normalizes over the whole minibatch"
        if LAYERS.get(layer.kind) is not type(layer):
            # the replica is rebuilt from the layers' configs, through the registry
            return f"its layer {index} ({type(layer).__name__}) is not one of mnistlab's"
        if isinstance(layer, Dropout) and layer.fixed_mask is not None:
            return f"its layer {index} ({layer.kind}) has a fixed dropout mask"
    if type(loss) not in LOSSES.values():
        return f"its loss ({type(loss).__name__}) is not one of mnistlab's"
    if uses_gradient_sink:
        return "the optimizer applies its update inside the gradient products (fused SGD)"
    return None


def worth_it(model: Sequential, threads: int) -> bool:
    """Whether the automatic choice splits the minibatches: a network with convolutions (whose
    steps spend a third of their time in single-core NumPy passes) that would otherwise run its
    products on two BLAS threads, so that each half gets one. An MLP's step is nearly all GEMMs,
    which a multi-threaded BLAS already spreads over the cores; past two threads, halves at one
    thread each would leave cores idle."""
    return threads == 2 and any(isinstance(layer, Conv2D) for layer in model.layers)


def check_data_parallel(data_parallel, model: Sequential, loss: Loss, optimizer) -> bool | None:
    """The Trainer's `data_parallel` argument checked: None, True or False, and True only for a
    network, loss and optimizer that can be split (UsageError naming the value or the
    reason)."""
    if not (data_parallel is None or isinstance(data_parallel, bool)):
        raise UsageError(
            f"data_parallel must be None, True or False, got data_parallel={data_parallel!r}"
        )
    reason = (
        unsupported_reason(model, loss, optimizer.uses_gradient_sink) if data_parallel else None
    )
    if reason is not None:
        raise UsageError(f"data_parallel=True cannot train this network: {reason}")
    return data_parallel


def half_batches(trainer, threads: int, cores: int) -> HalfBatches | None:
    """A fit's HalfBatches, or None for whole steps: by the trainer's `data_parallel` (None:
    where `worth_it` at `threads` BLAS threads and nothing rules it out; True: refused in one
    line where something does), and only where a second core can take the other half (`cores`:
    the cores the BLAS may use now) and the minibatches have two rows."""
    model = trainer.model
    choice = check_data_parallel(trainer.data_parallel, model, trainer.loss, trainer.optimizer)
    if choice is False or cores < 2 or trainer.batch_size < MIN_ROWS:
        return None
    if choice is None and (
        not worth_it(model, threads)
        or unsupported_reason(model, trainer.loss, trainer.optimizer.uses_gradient_sink)
    ):
        return None
    return HalfBatches(model, trainer.loss)


class HalfBatches:
    """Forward and backward of a minibatch's two halves at once (see the module's docstring).

    worker: where the replica's half runs. "process" (the Trainer's): a worker process
    (train.replica_process), so that the two halves never wait for each other at Python's
    interpreter lock; "thread": a worker thread of this process, the replica's parameters
    views of the model's (`replica`).

    Use as a context manager around the steps (it owns the worker), inside the model's
    training BLAS setting at one thread and `flush_subnormals()`::

        with HalfBatches(model, loss) as halves:
            loss, correct = halves.forward_backward(x_batch, y_batch)
            optimizer.step(None, l2)
    """

    def __init__(self, model: Sequential, loss: Loss, worker: str = "process") -> None:
        if worker not in ("process", "thread"):
            raise UsageError(f"HalfBatches worker must be 'process' or 'thread', got {worker!r}")
        self.model, self.loss, self.worker = model, loss, worker
        self.replica: Sequential | None = None
        if worker == "thread":
            self._build_replica()
        self._dropouts = any(
            isinstance(layer, Dropout) and layer.rate > 0 for layer in model.layers
        )
        self._thread: ThreadPoolExecutor | None = None
        self._process: ReplicaProcess | None = None
        self._shared: tuple[np.ndarray, np.ndarray] | None = None

    def _build_replica(self) -> None:
        """The thread worker's replica: its parameters' values views of the model's."""
        model = self.model
        replica = Sequential([layer_from_config(layer.config()) for layer in model.layers])
        replica.blas = model.blas  # the same setting: one BLAS thread per half
        replica.build(model.input_shape, seed=0, dtype=model.dtype)
        for own, theirs in zip(model.params, replica.params, strict=True):
            theirs.data = own.data
        replica.params.data = model.params.data
        self.replica, self.replica_loss = replica, type(self.loss)()

    def __enter__(self) -> HalfBatches:
        if self.worker == "process":
            try:
                process = ReplicaProcess.acquire()
                try:
                    self._shared = process.begin(self.model, self.loss)
                except BaseException:
                    process.close()
                    raise
                self._process = process
                return self
            except (OSError, RuntimeError) as error:
                # a process that cannot start (a sandbox, no descriptors left): the halves
                # still run at once, in a thread, at the price of the interpreter's lock
                warnings.warn(
                    f"the worker process for the minibatch halves did not start ({error}); "
                    "the second half runs in a thread",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self.worker = "thread"
                self._build_replica()
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="mnistlab-half-batch")
        return self

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
        if self._process is not None:
            process, self._process, self._shared = self._process, None, None
            try:
                process.finish()  # reads a step's reply still owed (an interrupted fit)
            except Exception:
                if exc[0] is None:
                    raise
                # the error that ended the fit is the one to report; the worker is closed

    def forward_backward(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        """Fill the model's gradients for the minibatch (x, y); return (its mean loss, the
        rows predicted right). A minibatch of one row runs on the trainer's thread alone."""
        if self._thread is None and self._process is None:
            raise UsageError("HalfBatches.forward_backward runs inside `with HalfBatches(...)`")
        n = x.shape[0]
        if n < MIN_ROWS:
            return half_step(self.model, self.loss, x, y, 1.0)
        first = n // 2
        seed = int(self.model.dropout_rng.integers(2**63)) if self._dropouts else None
        share = (n - first) / n
        if self._process is not None:
            data, grad = self._shared
            np.copyto(data, self.model.params.data)
            self._process.send_step(x[first:], y[first:], share, seed)
            second = self._process.receive
        else:
            if seed is not None:
                generator = np.random.default_rng(seed)
                for layer in self.replica.layers:
                    if isinstance(layer, Dropout) and layer.rate > 0:
                        layer.rng = generator
            future = self._thread.submit(
                _worker_half, self.replica, self.replica_loss, x[first:], y[first:], share
            )
            second = future.result
        try:
            loss_first, correct_first = half_step(
                self.model, self.loss, x[:first], y[:first], first / n
            )
        except BaseException:
            try:
                second()  # the replica's half ends before the error goes up
            except Exception:  # noqa: S110 - the first half's error is the one to report
                pass
            raise
        loss_second, correct_second = second()
        other = self._shared[1] if self._process is not None else self.replica.params.grad
        self.model.params.grad += other
        loss = (first * loss_first + (n - first) * loss_second) / n
        return loss, correct_first + correct_second


def _worker_half(model, loss_fn, x, y, share):
    """half_step on the worker thread, under the trainer's arithmetic settings (both belong to a
    thread: MXCSR's flush bits and NumPy's error state)."""
    with flush_subnormals(), np.errstate(over="ignore", invalid="ignore"):
        return half_step(model, loss_fn, x, y, share)

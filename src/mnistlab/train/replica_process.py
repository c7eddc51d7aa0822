"""The replica of HalfBatches in a process of its own: the second half of each minibatch without
the first half's interpreter lock.

Two threads of one process take turns at Python's interpreter lock between their NumPy and BLAS
calls: a thread whose call has finished waits for the other to start its next one. A CNN's half
makes hundreds of such calls a step, and in two threads each half took 33.5 ms where it takes
26.5 ms alone, while two processes running a half each took 26.1 to 27.3 ms (the measurements
are in docs/performance.md). So the replica runs in a worker process:

- The weights and the replica's gradient lie in a file mapped by both processes (in /dev/shm
  where there is one), removed from the directory as soon as the worker has mapped it: nothing
  is left behind however either process ends. Before each step the trainer copies the model's
  flat `data` into it (3.3 MB for the `cnn` preset, 0.3 ms); the replica's parameters are views
  of it, and its backward pass writes its gradient there, which the trainer adds to the model's.
- The half's rows, labels, share of the minibatch and dropout seed go through a pipe; the loss
  and the count of right predictions (or the error, raised again in the trainer) come back.
- A worker serves one fit at a time and outlives it: `begin` builds the replica from the
  layers' configurations, `end` drops it, and the next fit reuses the process (starting one
  costs about a second of imports, which a bench epoch or a short fit should not pay). Idle
  workers wait in a pool; each is a daemon, and exits when its pipe closes (the trainer's
  process ended, kill -9 included). It ignores Ctrl-C, which the trainer handles between steps.
"""

from __future__ import annotations

import atexit
import mmap
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from contextlib import ExitStack
from multiprocessing.connection import Connection

import numpy as np

__all__ = ["ReplicaProcess", "half_step"]

_IDLE: list[ReplicaProcess] = []
_IDLE_LOCK = threading.Lock()


@atexit.register
def _close_idle() -> None:
    """At the interpreter's exit: close the idle workers' sockets (each then exits) and wait
    for them, so that none outlives its trainer's process by more than a moment."""
    with _IDLE_LOCK:
        workers, _IDLE[:] = list(_IDLE), []
    for worker in workers:
        worker.close()


class ReplicaProcess:
    """A worker process that runs a replica's half steps (see the module's docstring)."""

    def __init__(self) -> None:
        # A fresh interpreter that imports this module, not multiprocessing's spawn, which would
        # run the user's script again in the child unless it guards its code with
        # `if __name__ == "__main__"`; the two ends of a socket pair carry pickled messages.
        ours, theirs = socket.socketpair()
        with ours, theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _START, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                env=_environment(),
            )
            self._conn = Connection(ours.detach())
        self._map: mmap.mmap | None = None

    def alive(self) -> bool:
        return self._process.poll() is None

    def close(self) -> None:
        """End the worker: its socket closed, it exits (killed if it has not within 5 s)."""
        self._conn.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    # ------------------------------------------------------------------ the pool

    @classmethod
    def acquire(cls) -> ReplicaProcess:
        """An idle worker, or a new one."""
        with _IDLE_LOCK:
            while _IDLE:
                worker = _IDLE.pop()
                if worker.alive():
                    return worker
        return cls()

    def release(self) -> None:
        """Back to the pool after `end` (a worker that failed is let go)."""
        if self.alive():
            with _IDLE_LOCK:
                _IDLE.append(self)

    # ------------------------------------------------------------------ a fit

    def begin(self, model, loss) -> tuple[np.ndarray, np.ndarray]:
        """Build the replica of `model` and `loss` in the worker; return the shared (weights,
        gradient) arrays, each laid out as the model's flat buffers."""
        params = model.params
        size, dtype = params.size, params.dtype
        folder = "/dev/shm" if os.path.isdir("/dev/shm") else None
        descriptor, path = tempfile.mkstemp(prefix="mnistlab-halves-", dir=folder)
        try:
            os.ftruncate(descriptor, max(2 * size * dtype.itemsize, 1))
            self._map = mmap.mmap(descriptor, max(2 * size * dtype.itemsize, 1))
            configs = [layer.config() for layer in model.layers]
            self._call(("begin", path, configs, model.input_shape, dtype.str, _loss_name(loss)))
        finally:
            os.close(descriptor)
            os.unlink(path)  # both processes have it mapped: the memory lives until both unmap
        shared = np.frombuffer(self._map, dtype=dtype, count=2 * size)
        return shared[:size], shared[size:]

    def send_step(self, x, y, share: float, seed: int | None) -> None:
        """Start the replica's forward and backward of a half (`receive` reads the result)."""
        self._send(("step", x, y, share, seed))

    def receive(self):
        """The reply to the last message: (mean loss, rows predicted right) for a step; an
        error in the worker is raised here."""
        try:
            reply = self._conn.recv()
        except (EOFError, OSError) as error:
            raise RuntimeError(
                f"the worker process of the minibatch halves ended unexpectedly ({error!r})"
            ) from None
        if reply[0] == "error":
            raise reply[1]
        return reply[1]

    def end(self) -> None:
        """Drop the replica and the shared arrays."""
        try:
            if self.alive():
                self._call(("end",))
        finally:
            if self._map is not None:
                try:
                    self._map.close()
                except BufferError:  # an array still views it: the memory goes with the array
                    pass
                self._map = None

    def _send(self, message) -> None:
        try:
            self._conn.send(message)
        except (EOFError, OSError) as error:
            raise RuntimeError(
                f"the worker process of the minibatch halves ended unexpectedly ({error!r})"
            ) from None

    def _call(self, message):
        self._send(message)
        return self.receive()


#: the worker's program: serve the socket whose descriptor is its argument
_START = "import sys; from mnistlab.train.replica_process import main; main(int(sys.argv[1]))"


def _environment() -> dict:
    """This process's environment, with the folder mnistlab is imported from first on the
    worker's path (a source checkout that is not installed works too)."""
    import mnistlab

    folder = os.path.dirname(os.path.dirname(os.path.abspath(mnistlab.__file__)))
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": folder + (os.pathsep + path if path else "")}


def _loss_name(loss) -> str:
    from mnistlab.nn.losses import LOSSES

    return next(name for name, kind in LOSSES.items() if kind is type(loss))


def half_step(model, loss_fn, x, y, share: float) -> tuple[float, int]:
    """Forward and backward of one half, its loss gradient weighted by its `share` of the
    minibatch's rows; (its mean loss, the rows predicted right)."""
    logits = model.forward(x, training=True)
    loss = loss_fn.forward(logits, y)
    correct = loss_fn.count_correct(logits, y)
    grad = loss_fn.backward()
    if share != 1.0:
        grad *= grad.dtype.type(share)
    model.backward(grad)
    return loss, correct


# ---------------------------------------------------------------------- the worker's side


def _serve(conn) -> None:
    """The worker's loop: one message, one reply, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    state = _Fit()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            state.close()
            return
        try:
            reply = ("ok", getattr(state, message[0])(*message[1:]))
        except BaseException as error:  # the trainer raises it again
            try:
                reply = ("error", error)
                conn.send(reply)
                continue
            except Exception:
                reply = ("error", RuntimeError(f"{type(error).__name__}: {error}"))
        conn.send(reply)


class _Fit:
    """The worker's replica during one fit."""

    def __init__(self) -> None:
        self.stack: ExitStack | None = None

    def begin(self, path, configs, input_shape, dtype, loss_name):
        from mnistlab.backend.fpu import flush_subnormals
        from mnistlab.nn import Sequential
        from mnistlab.nn.layers import layer_from_config
        from mnistlab.nn.losses import LOSSES

        self.close()
        replica = Sequential([layer_from_config(config) for config in configs])
        replica.build(input_shape, seed=0, dtype=dtype)
        params = replica.params
        with open(path, "r+b") as file:
            self.map = mmap.mmap(file.fileno(), 0)
        shared = np.frombuffer(self.map, dtype=params.dtype, count=2 * params.size)
        data, grad = shared[: params.size], shared[params.size :]
        for p in params:
            p.data = data[p.offset : p.offset + p.size].reshape(p.shape)
            p.grad = grad[p.offset : p.offset + p.size].reshape(p.shape)
        params.data, params.grad = data, grad
        self.replica, self.loss = replica, LOSSES[loss_name]()
        self.dropouts = [
            layer for layer in replica.layers if layer.kind == "Dropout" and layer.rate > 0
        ]
        self.stack = ExitStack()
        self.stack.enter_context(replica.blas.training(1))
        self.stack.enter_context(flush_subnormals())
        self.stack.enter_context(np.errstate(over="ignore", invalid="ignore"))
        return None

    def step(self, x, y, share, seed):
        if seed is not None:
            generator = np.random.default_rng(seed)
            for layer in self.dropouts:
                layer.rng = generator
        return half_step(self.replica, self.loss, x, y, share)

    def end(self):
        self.close()
        return None

    def close(self) -> None:
        if self.stack is not None:
            self.stack.close()
            self.stack = None
        self.replica = self.loss = None
        self.dropouts = []
        if getattr(self, "map", None) is not None:
            try:
                self.map.close()
            except BufferError:
                pass
            self.map = None


def main(descriptor: int) -> None:
    """The worker process's entry: serve the socket `descriptor` until it closes."""
    _serve(Connection(descriptor))

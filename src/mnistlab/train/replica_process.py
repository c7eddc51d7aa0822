"""The replica of HalfBatches in a process of its own: the second half of each minibatch without
the first half's interpreter lock.

Two threads of one process take turns at Python's interpreter lock between their NumPy and BLAS
calls: a thread whose call has finished waits for the other to start its next one. A CNN's half
makes hundreds of such calls a step, and in two threads each half took 33.5 ms where it takes
26.5 ms alone, while two processes running a half each took 26.1 to 27.3 ms (the measurements
are in docs/performance.md). So the replica runs in a worker process:

- The weights and the replica's gradient lie in memory both processes map: an anonymous
  memory file (memfd; elsewhere a temporary file removed as soon as it is made), its space
  reserved up front so that a full /dev/shm is an error at the start, not a crash mid-step,
  and handed to the worker as a descriptor over the socket: it has no name in any folder, so
  nothing is left behind however either process ends. Before each step the trainer copies the
  model's flat `data` into it (3.3 MB for the `cnn` preset, 0.3 ms); the replica's parameters
  are views of it, and its backward pass writes its gradient there, which the trainer adds to
  the model's.
- The half's rows, labels, share of the minibatch and dropout seed go through a socket pair;
  the loss and the count of right predictions (or the error, raised again in the trainer) come
  back.
- A worker serves one fit at a time and outlives it: `begin` builds the replica from the
  layers' configurations, `end` drops it, and the next fit reuses the process (starting one
  costs about 0.3 s of imports, which a bench epoch or a short fit should not pay). Idle
  workers wait in a pool, are closed at the interpreter's exit, and each exits when its socket
  closes (the trainer's process ended, kill -9 included). A worker runs in a session of its
  own, so that Ctrl-C at a terminal or a signal to the trainer's process group reaches only the
  trainer, which stops between steps. A worker whose replies could be out of step with its
  requests (an interrupt while one was read or written) is closed, never reused.
- It imports what the trainer imports: the interpreter runs isolated (-I), its module path the
  trainer's.
"""

from __future__ import annotations

import atexit
import json
import mmap
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import weakref
from contextlib import ExitStack
from multiprocessing.connection import Connection

import numpy as np

from mnistlab.errors import MnistlabError

__all__ = ["ReplicaProcess", "WorkerGone", "half_step"]

_IDLE: list[ReplicaProcess] = []
_IDLE_LOCK = threading.Lock()
#: every worker of this process, for a forked child to let go of (_after_fork)
_ALL: weakref.WeakSet[ReplicaProcess] = weakref.WeakSet()


@atexit.register
def _close_idle() -> None:
    """At the interpreter's exit: close the idle workers' sockets (each then exits) and wait
    for them, so that none outlives its trainer's process by more than a moment."""
    with _IDLE_LOCK:
        workers, _IDLE[:] = list(_IDLE), []
    for worker in workers:
        worker.close()


def _after_fork() -> None:
    """In a forked child: the workers are the parent's. Their sockets' copies are closed here,
    so that a worker still sees its socket close when the parent ends."""
    _IDLE.clear()
    for worker in list(_ALL):
        worker._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


class WorkerGone(MnistlabError, RuntimeError):
    """The worker process ended, or its replies can no longer be matched to requests: the fit
    stops with one line (exit code 1, as for the outside world's failures)."""

    exit_code = 1


class ReplicaProcess:
    """A worker process that runs a replica's half steps (see the module's docstring)."""

    def __init__(self) -> None:
        # A fresh interpreter that imports this module, not multiprocessing's spawn, which would
        # run the user's script again in the child unless it guards its code with
        # `if __name__ == "__main__"`.
        ours, theirs = socket.socketpair()
        with theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-c", _START, str(theirs.fileno()), json.dumps(sys.path)],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._socket = ours
        self._conn = Connection(os.dup(ours.fileno()))
        self._map: mmap.mmap | None = None
        self._unanswered = 0  # requests whose reply is not read yet
        self._broken = False  # an interrupt fell inside a message: replies can't be matched
        _ALL.add(self)

    def alive(self) -> bool:
        return not self._broken and self._process.poll() is None

    def close(self) -> None:
        """End the worker: its socket closed, it exits (killed if it has not within 5 s)."""
        self._broken = True
        self._conn.close()
        self._socket.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._drop_map()

    def _forget(self) -> None:
        """In a forked child: close this process's copies of the socket, nothing else."""
        self._broken = True
        self._conn.close()
        self._socket.close()

    # ------------------------------------------------------------------ the pool

    @classmethod
    def acquire(cls) -> ReplicaProcess:
        """An idle worker, or a new one."""
        with _IDLE_LOCK:
            idle, _IDLE[:] = list(_IDLE), []
        chosen, kept = None, []
        for worker in idle:
            if not worker.alive():
                worker.close()
            elif chosen is None:
                chosen = worker
            else:
                kept.append(worker)
        with _IDLE_LOCK:
            _IDLE.extend(kept)
        return chosen if chosen is not None else cls()

    def finish(self) -> None:
        """After a fit: read a reply still owed (a fit interrupted during a step), drop the
        replica, and back to the pool; a worker that failed or is out of step is closed."""
        try:
            while self.alive() and self._unanswered:
                try:
                    self.receive()
                except WorkerGone:
                    raise
                except Exception:  # noqa: S110 - the step's own error went up already
                    pass
            if self.alive():
                self._call(("end",))
        except BaseException:
            self.close()
            raise
        finally:
            self._drop_map()
        if self.alive():
            with _IDLE_LOCK:
                _IDLE.append(self)
        else:
            self.close()

    # ------------------------------------------------------------------ a fit

    def begin(self, model, loss) -> tuple[np.ndarray, np.ndarray]:
        """Build the replica of `model` and `loss` in the worker; return the shared (weights,
        gradient) arrays, each laid out as the model's flat buffers."""
        params = model.params
        size, dtype = params.size, params.dtype
        nbytes = max(2 * size * dtype.itemsize, 1)
        descriptor = _memory_file(nbytes)
        try:
            self._map = mmap.mmap(descriptor, nbytes)
            configs = [layer.config() for layer in model.layers]
            message = ("begin", nbytes, configs, model.input_shape, dtype.str, _loss_name(loss))
            self._send(message)
            try:
                socket.send_fds(self._socket, [b"m"], [descriptor])
            except BaseException:
                self._broken = True
                raise
            self.receive()
        finally:
            os.close(descriptor)  # the mappings keep the memory
        shared = np.frombuffer(self._map, dtype=dtype, count=2 * size)
        return shared[:size], shared[size:]

    def send_step(self, x, y, share: float, seed: int | None) -> None:
        """Start the replica's forward and backward of a half (`receive` reads the result)."""
        self._send(("step", x, y, share, seed))

    def receive(self):
        """The reply to the oldest unanswered request: (mean loss, rows predicted right) for
        a step; an error in the worker is raised here."""
        if self._broken:
            raise WorkerGone("the worker process of the minibatch halves was closed")
        try:
            reply = self._conn.recv()
        except (EOFError, OSError) as error:
            self._broken = True
            raise WorkerGone(
                f"the worker process of the minibatch halves ended unexpectedly ({error!r})"
            ) from None
        except BaseException:  # interrupted inside a message
            self._broken = True
            raise
        self._unanswered -= 1
        if reply[0] == "error":
            raise reply[1]
        return reply[1]

    def _send(self, message) -> None:
        if self._broken:
            raise WorkerGone("the worker process of the minibatch halves was closed")
        try:
            self._conn.send(message)
        except (EOFError, OSError) as error:
            self._broken = True
            raise WorkerGone(
                f"the worker process of the minibatch halves ended unexpectedly ({error!r})"
            ) from None
        except BaseException:
            self._broken = True
            raise
        self._unanswered += 1

    def _call(self, message):
        self._send(message)
        return self.receive()

    def _drop_map(self) -> None:
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # an array still views it: the memory goes with the array
                pass
            self._map = None


def _memory_file(nbytes: int) -> int:
    """A descriptor of `nbytes` of memory that another process can map: an anonymous memory
    file (or a temporary file whose name is removed at once), its space reserved now, so that a
    full /dev/shm raises OSError here instead of SIGBUS when a page is first written."""
    if hasattr(os, "memfd_create"):
        descriptor = os.memfd_create("mnistlab-halves", os.MFD_CLOEXEC)
    else:
        descriptor, path = tempfile.mkstemp(prefix="mnistlab-halves-")
        os.unlink(path)
    try:
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(descriptor, 0, nbytes)
        else:
            os.ftruncate(descriptor, nbytes)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


#: the worker's program: the trainer's module path, then serve the socket given by descriptor
_START = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[2]); "
    "from mnistlab.train.replica_process import main; main(int(sys.argv[1]))"
)


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


def _serve(sock: socket.socket) -> None:
    """The worker's loop: one message, one reply, until the socket closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(os.dup(sock.fileno()))
    state = _Fit(sock)
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

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock
        self.stack: ExitStack | None = None
        self.map: mmap.mmap | None = None

    def begin(self, nbytes, configs, input_shape, dtype, loss_name):
        from mnistlab.backend.fpu import flush_subnormals
        from mnistlab.nn import Sequential
        from mnistlab.nn.layers import layer_from_config
        from mnistlab.nn.losses import LOSSES

        # the memory's descriptor follows the message: read it before anything can fail
        _, descriptors, _, _ = socket.recv_fds(self.socket, 1, 1)
        self.close()
        try:
            self.map = mmap.mmap(descriptors[0], nbytes)
        finally:
            for descriptor in descriptors:
                os.close(descriptor)
        replica = Sequential([layer_from_config(config) for config in configs])
        replica.build(input_shape, seed=0, dtype=dtype)
        params = replica.params
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
        if self.map is not None:
            try:
                self.map.close()
            except BufferError:
                pass
            self.map = None


def main(descriptor: int) -> None:
    """The worker process's entry: serve the socket `descriptor` until it closes."""
    _serve(socket.socket(fileno=descriptor))

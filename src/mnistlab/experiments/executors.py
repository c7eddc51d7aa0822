"""Where a sweep's trials run: a pool of local worker processes, or a Dask cluster.

Both offer a `concurrent.futures.Executor` (`executor`), how many trials may run at once
(`slots`), `interrupt()` (ask running trials to stop at their next step), `renew()` (replace a
broken pool) and `close()`.

A local worker lives and dies with its sweep. It runs in its own process group, so a terminal's
Ctrl-C reaches only the sweep, which forwards one SIGINT to each worker (a second one would abort
a trial before its checkpoint). SIGTERM ends a worker at once: it is how a broken pool ends the
workers it has left, which must not linger in a trial. And the kernel kills a worker whose sweep
process dies, however it dies (on Linux, `prctl(PR_SET_PDEATHSIG)`; elsewhere a thread watches
the parent's pid): a `kill -9` of the sweep leaves no worker behind, idle or training.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from pathlib import Path

from mnistlab.errors import UsageError

#: prctl's option that sends the calling process a signal when its parent dies (linux/prctl.h)
PR_SET_PDEATHSIG = 1
#: a worker's exit status when SIGTERM ended it (as a shell reports a process a signal ended)
TERMINATED = 128 + signal.SIGTERM


def _exit_at_once(signum, frame) -> None:
    os._exit(128 + signum)


def init_local_worker(parent_pid: int) -> None:
    """Pool worker start-up: its own process group; SIGINT ignored outside a trial's training
    loop (whose InterruptFlag takes it); SIGTERM ends it at once; it dies with `parent_pid`.
    (BLAS threads are limited per trial, in run_trial, which serves the Dask workers too.)"""
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_at_once)
    die_with_parent(parent_pid)


def die_with_parent(parent_pid: int) -> None:
    """End this process when process `parent_pid`, its parent, ends."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
        if armed:
            if os.getppid() != parent_pid:  # it died before the signal was armed
                os._exit(1)
            return
    threading.Thread(
        target=_watch_parent, args=(parent_pid,), name="mnistlab-parent-watch", daemon=True
    ).start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(1)


class LocalPool:
    """A process pool that can forward one Ctrl-C to its workers, tell which of them died
    abruptly when it breaks, and be replaced."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.context = multiprocessing.get_context("spawn")
        self.executor = self._new()
        self._seen: dict[int, multiprocessing.Process] = {}

    def _new(self):
        return cf.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=self.context,
            initializer=init_local_worker,
            initargs=(os.getpid(),),
        )

    @property
    def slots(self) -> int:
        return self.workers

    def note_workers(self) -> None:
        """Remember the pool's worker processes (call after submitting: a broken pool forgets
        them, and `lost_workers` needs their exit codes)."""
        self._seen.update(getattr(self.executor, "_processes", None) or {})

    def lost_workers(self, timeout: float = 10.0) -> set[int]:
        """The pids of the workers that died of something else than the pool's SIGTERM (a
        kill -9, the out-of-memory killer, a crash), once every remembered worker has ended."""
        processes = list(self._seen.values())
        multiprocessing.connection.wait([p.sentinel for p in processes], timeout=timeout)
        deadline = time.monotonic() + timeout
        while any(p.exitcode is None for p in processes) and time.monotonic() < deadline:
            time.sleep(0.05)
        return {p.pid for p in processes if p.exitcode not in (None, 0, TERMINATED)}

    def renew(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = self._new()
        self._seen = {}

    def interrupt(self) -> None:
        for process in list(getattr(self.executor, "_processes", {}).values()):
            try:
                os.kill(process.pid, signal.SIGINT)
            except (ProcessLookupError, AttributeError):
                pass

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


class DaskPool:
    """A Dask cluster's executor (a lost Dask worker is the scheduler's business)."""

    def __init__(self, scheduler: str) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise UsageError(
                "--executor dask needs dask.distributed: pip install 'distributed'"
            ) from None
        kwargs = {"scheduler_file": scheduler} if Path(scheduler).is_file() else {}
        try:
            self.client = Client(
                None if kwargs else scheduler, timeout=15, set_as_default=False, **kwargs
            )
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(
                f"--scheduler {scheduler}: no Dask scheduler answered ({exc})"
            ) from None
        self.executor = self.client.get_executor(pure=False)

    @property
    def slots(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def note_workers(self) -> None:
        pass

    def lost_workers(self, timeout: float = 10.0) -> set[int]:
        return set()

    def renew(self) -> None:
        pass

    def interrupt(self) -> None:
        pass  # running tasks finish on the cluster; nothing new is submitted

    def close(self) -> None:
        self.executor.shutdown(wait=False)
        self.client.close()

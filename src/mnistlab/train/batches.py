"""Minibatches of an epoch, gathered ahead of time by a helper thread.

Gathering a minibatch (`np.take` of random rows) is a memory-bound copy that no GEMM needs to wait
for: while the training step computes on one chunk of minibatches, a helper thread gathers the
next chunk into a second buffer (NumPy releases the GIL during the copy, and the step's BLAS calls
release it too). A chunk holds `per_chunk` consecutive minibatches, so the two threads meet once
per chunk, not once per step. The minibatches and their order are exactly those of a plain
`x[order[i * b:(i + 1) * b]]`, so results are bit-identical.

A `transform` (the trainer's data augmentation) rewrites each minibatch in place right after its
gather, in the same thread: in the helper, augmentation runs while the step computes; it gets the
minibatch's index in the epoch, so that what it does to a minibatch never depends on how the
epoch is cut into chunks or where a resumed epoch starts.

With `background=False` the same chunks are gathered in the caller's thread, between steps: when
the BLAS runs on every core, a third thread that wakes up every few steps preempts one of the
BLAS threads in the middle of a GEMM, and the other waits for it at the GEMM's end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

#: rows gathered per chunk (so at batch 32, 8 minibatches a chunk; at 128, 2)
CHUNK_ROWS = 256


class PrefetchedBatches:
    """Iterate (x_batch, y_batch) for minibatches start..stop-1 of `order`; use as a context
    manager (the helper thread stops on exit, also after a break or an exception).

    A yielded x_batch stays valid until the iteration moves past the end of its chunk, i.e.
    while its step runs: the helper never overwrites the chunk the caller is working on.
    transform: None, or transform(x_batch, batch_index) rewriting the gathered rows in place.
    """

    def __init__(
        self,
        x,
        y,
        order,
        batch_size: int,
        start: int,
        stop: int,
        background: bool = True,
        transform: Callable[[np.ndarray, int], object] | None = None,
    ) -> None:
        self.x, self.y, self.order = x, y, order
        self.background = background
        self.transform = transform
        self.batch_size, self.start, self.stop = batch_size, start, stop
        self.per_chunk = max(1, CHUNK_ROWS // batch_size)
        rows = self.per_chunk * batch_size
        self._chunks = [np.empty((rows, x.shape[1]), dtype=x.dtype) for _ in range(2)]
        self._items: list = [None, None]
        self._free = threading.Semaphore(2)
        self._ready = threading.Semaphore(0)
        self._halt = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._fill, name="mnistlab-batches", daemon=True)

    def __enter__(self) -> PrefetchedBatches:
        if self.background:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if not self.background:
            return
        self._halt = True
        self._free.release()
        self._free.release()
        self._thread.join()

    def _gather(self, first: int, slot: int) -> list:
        """Gather the chunk of minibatches from `first` into buffer `slot`; its minibatches."""
        b = self.batch_size
        last = min(first + self.per_chunk, self.stop)
        index = self.order[first * b : last * b]
        chunk = self._chunks[slot][: index.shape[0]]
        # mode="clip": with the default mode="raise" NumPy gathers into a temporary and copies it
        # into `out`, a second pass over the chunk; `order` is a permutation, always in range.
        np.take(self.x, index, axis=0, out=chunk, mode="clip")
        labels = self.y[index]
        if self.transform is not None:
            for i in range(last - first):
                self.transform(chunk[i * b : (i + 1) * b], first + i)
        return [
            (chunk[i * b : (i + 1) * b], labels[i * b : (i + 1) * b]) for i in range(last - first)
        ]

    def _fill(self) -> None:
        slot = 0
        try:
            for first in range(self.start, self.stop, self.per_chunk):
                self._free.acquire()
                if self._halt:
                    return
                self._items[slot] = self._gather(first, slot)
                self._ready.release()
                slot ^= 1
        except BaseException as exc:  # handed to the training thread
            self._error = exc
            self._ready.release()

    def __iter__(self):
        if not self.background:
            for first in range(self.start, self.stop, self.per_chunk):
                yield from self._gather(first, 0)
            return
        slot = 0
        for _ in range(self.start, self.stop, self.per_chunk):
            self._ready.acquire()
            if self._error is not None:
                raise self._error
            yield from self._items[slot]
            slot ^= 1
            self._free.release()  # the chunk's last step is done: the helper may refill it

"""Ctrl-C and SIGTERM as a request to stop between two steps, rather than an exception in the
middle of one.

The trainer and the sweep both run long loops whose state must stay consistent (a step half
applied to the weights, a trial half recorded). Inside `InterruptFlag`, the first Ctrl-C or
SIGTERM only sets the flag, which the loop checks between steps; a second one raises
KeyboardInterrupt at once, for a user who does not want to wait. SIGTERM is what `kill`,
`docker stop` and cluster schedulers send, so it gets the same treatment as Ctrl-C; outside such
a loop, `terminate_as_interrupt` makes it raise KeyboardInterrupt as Ctrl-C does by default.

A SIGTERM handler installed by someone else is left in place: a sweep's worker process installs
one that exits at once, so that its pool can always end it. Signal handlers belong to the main
thread: on any other thread the flag is never set by a signal (the loop can still set it by hand).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

#: the signals that ask a run to stop: Ctrl-C, and `kill`'s default
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _ours_to_take(signum: int) -> bool:
    """SIGINT always; SIGTERM while its handler is the default or one of this module's."""
    if signum == signal.SIGINT:
        return True
    handler = signal.getsignal(signum)
    return (
        handler in (signal.SIG_DFL, None, _raise_interrupt)
        or getattr(handler, "__func__", None) is InterruptFlag._handle
    )


class InterruptFlag:
    """A context manager: within it, Ctrl-C (or SIGTERM) sets this flag instead of raising.

    `is_set()` tells whether a stop was asked for; `clear()` forgets it. The previous handlers
    are restored on exit, and the flag is cleared.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._previous: dict[int, object] = {}

    def is_set(self) -> bool:
        """Whether a stop was asked for since the last `clear`."""
        return self._event.is_set()

    def set(self) -> None:
        """Ask for a stop (what the signal handler does)."""
        self._event.set()

    def clear(self) -> None:
        """Forget a stop asked for."""
        self._event.clear()

    def __enter__(self) -> InterruptFlag:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                if _ours_to_take(signum):
                    self._previous[signum] = signal.getsignal(signum)
                    signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self._event.is_set():  # a second stop signal: give up at once
            self._restore()
            raise KeyboardInterrupt
        self._event.set()

    def _restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    def __exit__(self, *exc) -> None:
        self._restore()
        self._event.clear()


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within this block SIGTERM raises KeyboardInterrupt, as Ctrl-C does (Python's default
    for SIGTERM is to die on the spot, leaving records half written). Does nothing off the
    main thread, or where another SIGTERM handler is installed."""
    if threading.current_thread() is not threading.main_thread() or not _ours_to_take(
        signal.SIGTERM
    ):
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

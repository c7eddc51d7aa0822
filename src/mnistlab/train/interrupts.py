"""Ctrl-C as a request to stop between two steps, rather than an exception in the middle of one.

The trainer and the sweep both run long loops whose state must stay consistent (a step half
applied to the weights, a trial half recorded). Inside `InterruptFlag`, the first Ctrl-C only
sets the flag, which the loop checks between steps; a second one raises KeyboardInterrupt at
once, for a user who does not want to wait. Signal handlers belong to the main thread: on any
other thread the flag is never set by a signal (the loop can still set it by hand).
"""

from __future__ import annotations

import signal
import threading


class InterruptFlag:
    """A context manager: within it, Ctrl-C sets this flag instead of raising.

    `is_set()` tells whether Ctrl-C arrived; `clear()` forgets it. The previous SIGINT handler is
    restored on exit, and the flag is cleared.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._previous = None

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    def __enter__(self) -> InterruptFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self._event.is_set():  # a second Ctrl-C: give up at once
            signal.signal(signal.SIGINT, self._previous)
            raise KeyboardInterrupt
        self._event.set()

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        self._event.clear()

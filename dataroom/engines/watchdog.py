"""A statement's time limit without a thread per statement, and without waking one per statement.

One long-lived thread per session waits for the armed deadline and calls ``on_expiry`` (DuckDB's
``interrupt``) when it passes. Starting a ``threading.Timer`` for every statement cost a thread
start (about 0.15 ms of every query); waking the watching thread on every arm and disarm cost two
thread wake-ups, each taking a core from the statement for a moment on a 2-core machine. So the
thread is woken only when it would otherwise look too late: arming notifies it only if it is
not already due to wake before the new deadline, and disarming never does (when it next wakes it
finds nothing due, or the next statement's later deadline). With statements that share a time
limit, the thread wakes about once per time limit, however many statements run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Watchdog:
    def __init__(self, on_expiry: Callable[[], None]) -> None:
        self._on_expiry = on_expiry
        self._changed = threading.Condition()
        self._deadline: float | None = None  # of the armed block
        self._wakes_at: float | None = None  # when the thread looks next on its own (None: only when notified)
        threading.Thread(target=self._watch, name="statement-watchdog", daemon=True).start()

    @contextmanager
    def armed(self, timeout_s: float) -> Iterator[None]:
        """``on_expiry`` is called if the block is still running ``timeout_s`` from now."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            self._deadline = deadline
            if self._wakes_at is None or self._wakes_at > deadline:
                self._changed.notify()
        try:
            yield
        finally:
            with self._changed:
                self._deadline = None

    def _watch(self) -> None:
        with self._changed:
            while True:
                if self._deadline is None:
                    self._wakes_at = None
                    self._changed.wait()
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining > 0:
                    self._wakes_at = self._deadline
                    self._changed.wait(remaining)
                    continue
                self._deadline = None
                self._on_expiry()

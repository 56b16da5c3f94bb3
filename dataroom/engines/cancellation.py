"""Stopping one query from another thread (the broker does when its client disconnects)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from dataroom.engines.errors import EngineRefusal


class Cancellation:
    """Lets another thread stop one query: before it executes, or while it runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop: Callable[[], None] | None = None
        self.requested = False

    def cancel(self) -> None:
        with self._lock:
            self.requested = True
            stop = self._stop
        if stop is not None:
            stop()

    @contextmanager
    def running(self, stop: Callable[[], None]) -> Iterator[None]:
        """While the body runs, :meth:`cancel` calls ``stop``; a cancel that came first refuses at once."""
        with self._lock:
            if self.requested:
                raise EngineRefusal("cancelled", "the query was cancelled before it ran")
            self._stop = stop
        try:
            yield
        finally:
            with self._lock:
                self._stop = None

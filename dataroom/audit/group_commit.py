"""Group commit: one fsync makes every record written before it started durable.

A decision record must be on disk before its query executes, and an fsync costs far more than
the write. When several queries arrive at once (the broker's threads), the first to need an
fsync becomes the leader and flushes; the others, whose records were already written, wait for
it instead of queueing for an fsync each. A lone query pays exactly one fsync, as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class GroupCommit:
    """Tracks how far a file is durable (a monotonic position, e.g. its end offset) in one process."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._durable = 0  # every write ending at or before this position is on disk
        self._flushing = False

    def wait_durable(self, position: int, flush: Callable[[], int]) -> None:
        """Return once everything written up to ``position`` is durable.

        ``flush`` makes durable everything written so far and returns the position it covered;
        at most one thread runs it at a time. If it raises, the caller gets the error and a
        waiting thread takes over (nothing is marked durable that was not flushed).
        """
        with self._changed:
            while self._durable < position:
                if self._flushing:
                    self._changed.wait()
                    continue
                self._flushing = True
                covered = None
                self._changed.release()
                try:
                    covered = flush()
                finally:
                    self._changed.acquire()
                    self._flushing = False
                    if covered is not None:
                        self._durable = max(self._durable, covered)
                    self._changed.notify_all()

"""The registry answers the query policy reads, kept in memory while the registry is unchanged.

Every query reads its project's row and its open quarantines. Right after a query has run
(DuckDB's threads have just used every core and the caches are cold), those two reads through
SQLAlchemy take about 0.4 ms, a fifth of what the governed path adds to a short query. In a warm
loop they take 0.07 ms.

On SQLite, ``PRAGMA data_version`` on a connection of the cache's own changes whenever any other
connection commits: another process (the CLI, the review UI, another broker) or this process's
own SQLAlchemy pool. Asking costs a few microseconds and says exactly when a cached answer may be
stale. So answers are served from memory until the version moves; then everything is dropped and
read again. Nothing time-dependent is cached: expiry is decided by the policy against ``today``,
from the ``expires`` date the row holds.

Other databases (PostgreSQL) are read on every query: a version check there would itself be a
round trip.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Hashable
from typing import TypeVar
from urllib.parse import quote

log = logging.getLogger(__name__)
T = TypeVar("T")


class RegistryStateCache:
    """``get(key, load)``: ``load()``'s answer, reused until the SQLite file's ``data_version`` moves.

    ``sqlite_path`` None (another database): every ``get`` loads. Callers must not mutate what
    they are given: the same objects are handed to the next caller.
    """

    def __init__(self, sqlite_path: str | None) -> None:
        self._path = sqlite_path
        self._conn: sqlite3.Connection | None = None
        self._version: int | None = None
        self._entries: dict[Hashable, object] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        if self._path is None:
            return load()
        with self._lock:
            version = self._data_version()
            if version is None:  # the version cannot be read: no caching, never a stale answer
                self._entries.clear()
                return load()
            if version != self._version:
                self._entries.clear()
                self._version = version
            if key in self._entries:
                return self._entries[key]  # type: ignore[return-value]
        # Loaded outside the lock; kept only if no newer version was seen meanwhile. A commit after
        # ``version`` was read moves the version, so the next get drops whatever this load saw.
        value = load()
        with self._lock:
            if self._version == version:
                self._entries[key] = value
        return value

    def _data_version(self) -> int | None:
        """SQLite's ``data_version`` on the cache's own read-only connection (opened on first use)."""
        try:
            if self._conn is None:
                # mode=ro: the cache never creates or writes the file; autocommit: no read
                # transaction stays open between checks (it would pin an old snapshot)
                self._conn = sqlite3.connect(
                    f"file:{quote(self._path or '')}?mode=ro", uri=True, isolation_level=None, check_same_thread=False, timeout=30
                )
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error as exc:
            log.warning("registry cache disabled for this read: %s", exc)
            self._close()
            return None

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._version = None

    def close(self) -> None:
        with self._lock:
            self._entries.clear()
            self._close()

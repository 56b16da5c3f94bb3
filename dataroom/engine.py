"""The locked-down DuckDB session a (user, project) pair queries through.

The session exposes each of the project's tables as ``<schema>.<table>`` over an Arrow dataset
that holds only the visible columns (see :mod:`dataroom.storage`). External access is off from
the start (no file or URL reads, no COPY/ATTACH/INSTALL/LOAD), extensions cannot autoload, and
the configuration is locked once the views exist, with memory and thread limits. Each query runs
on its own cursor with a wall-clock timeout (interrupt) and a row cap.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from dataroom.catalog import Catalog, Classification, Project, Table
from dataroom.storage import S3Access, open_dataset


class QueryTimeout(RuntimeError):
    """The query ran longer than the session's time limit and was interrupted."""


class ResultTooLarge(RuntimeError):
    """The result has more rows than the limit allows."""


class QueryCancelled(RuntimeError):
    """The caller cancelled the query (the broker does when its client disconnects)."""


class Cancellation:
    """Lets another thread stop one query: before it executes, or while it runs (DuckDB interrupt)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._interrupt: Callable[[], None] | None = None
        self.requested = False

    def cancel(self) -> None:
        with self._lock:
            self.requested = True
            interrupt = self._interrupt
        if interrupt is not None:
            interrupt()

    @contextmanager
    def running(self, interrupt: Callable[[], None]) -> Iterator[None]:
        """While the body runs, :meth:`cancel` calls ``interrupt``; a cancel that came first stops it at once."""
        with self._lock:
            if self.requested:
                raise QueryCancelled("the query was cancelled before it ran")
            self._interrupt = interrupt
        try:
            yield
        finally:
            with self._lock:
                self._interrupt = None


class Watchdog:
    """One background thread that fires query timeouts (cheaper than a timer thread per query)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._deadlines: list[tuple[float, int, Callable[[], None]]] = []
        self._counter = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float, action: Callable[[], None]) -> tuple[float, int, Callable[[], None]]:
        entry = (time.monotonic() + seconds, next(self._counter), action)
        with self._cond:
            heapq.heappush(self._deadlines, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="dataroom-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()
        return entry

    def disarm(self, entry: tuple[float, int, Callable[[], None]]) -> None:
        with self._cond:
            try:
                self._deadlines.remove(entry)
                heapq.heapify(self._deadlines)
            except ValueError:
                pass  # already fired

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._deadlines or self._deadlines[0][0] > time.monotonic():
                    timeout = self._deadlines[0][0] - time.monotonic() if self._deadlines else None
                    self._cond.wait(timeout)
                _, _, action = heapq.heappop(self._deadlines)
            action()


WATCHDOG = Watchdog()


@dataclass(frozen=True)
class WithheldColumn:
    table: str
    column: str
    classification: str
    reason: str


def withheld_reason(classification: Classification, project: Project) -> str:
    if classification is Classification.PII:
        return "PII is never visible in the data room"
    if classification is Classification.QUASI_IDENTIFIER and project.multi_tenant:
        return "quasi-identifiers are withheld in multi-tenant projects"
    return f"project {project.id} does not include {classification.value} columns"


def visible_columns(table: Table, project: Project) -> list[str]:
    classes = project.visible_classes()
    return [c for c, cls in table.columns.items() if cls in classes]


def withheld_columns(table: Table, project: Project) -> list[WithheldColumn]:
    classes = project.visible_classes()
    return [
        WithheldColumn(table.name, c, cls.value, withheld_reason(cls, project))
        for c, cls in table.columns.items()
        if cls not in classes
    ]


@dataclass
class QueryResult:
    table: pa.Table
    duration_ms: float
    withheld: list[WithheldColumn] = field(default_factory=list)
    ipc: pa.Buffer | None = None  # the result as one Arrow IPC stream: hashed for the audit, sent by the broker

    @property
    def rows(self) -> int:
        return self.table.num_rows

    @property
    def bytes(self) -> int:
        return self.table.nbytes


class Session:
    """A DuckDB database holding only one project's visible data, locked after set-up."""

    def __init__(
        self,
        catalog: Catalog,
        project: Project,
        *,
        memory_limit: str = "2GB",
        threads: int = 2,
        s3: S3Access | None = None,
    ) -> None:
        self.project = project
        self.created = time.monotonic()
        self._con = duckdb.connect(
            config={
                "enable_external_access": False,
                "autoload_known_extensions": False,
                "autoinstall_known_extensions": False,
                "allow_community_extensions": False,
                "allow_unsigned_extensions": False,
                "memory_limit": memory_limit,
                "threads": threads,
            }
        )
        # Registered Arrow objects are visible to one connection (cursor) only, so each query's
        # cursor registers them again (cheap: no data is read) under these names.
        self._sources: dict[str, object] = {}
        for table in catalog.project_tables(project):
            dataset = open_dataset(catalog.resolve_location(table), visible_columns(table, project), s3)
            source = f"__source_{table.schema_name}_{table.table_name}"
            self._sources[source] = dataset
            self._con.register(source, dataset)
            self._con.execute(f'CREATE SCHEMA IF NOT EXISTS "{table.schema_name}"')
            self._con.execute(f'CREATE VIEW "{table.schema_name}"."{table.table_name}" AS SELECT * FROM "{source}"')
        self._con.execute("SET lock_configuration = true")
        self._local = threading.local()

    def execute(self, sql: str, *, max_rows: int, timeout_s: float, cancellation: Cancellation | None = None) -> pa.Table:
        """Run one (already decided) statement.

        Raises :class:`QueryTimeout`, :class:`ResultTooLarge` or :class:`QueryCancelled`.
        """
        cursor = self._cursor()
        timed_out = threading.Event()

        def interrupt() -> None:
            timed_out.set()
            cursor.interrupt()

        cancellation = cancellation or Cancellation()
        deadline = WATCHDOG.arm(timeout_s, interrupt)
        try:
            with cancellation.running(cursor.interrupt):
                reader = cursor.sql(sql).to_arrow_reader(batch_size=65_536)
                batches, rows = [], 0
                for batch in reader:
                    rows += batch.num_rows
                    if rows > max_rows:
                        raise ResultTooLarge(f"the result has more than {max_rows} rows: aggregate, filter or add a LIMIT")
                    batches.append(batch)
                return pa.Table.from_batches(batches, schema=reader.schema)
        except duckdb.InterruptException as exc:
            if timed_out.is_set():
                raise QueryTimeout(f"the query ran longer than {timeout_s:g} s and was stopped") from exc
            if cancellation.requested:
                raise QueryCancelled("the query was cancelled while it ran") from exc
            raise
        finally:
            WATCHDOG.disarm(deadline)

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor; registered Arrow sources are per connection, so register them once here."""
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._con.cursor()
            for source, dataset in self._sources.items():
                cursor.register(source, dataset)
            self._local.cursor = cursor
        return cursor

    def close(self) -> None:
        self._con.close()

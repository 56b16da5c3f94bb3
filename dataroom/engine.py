"""The locked-down DuckDB session a (user, project) pair queries through.

The session exposes each of the project's tables as ``<schema>.<table>`` over an Arrow dataset
that holds only the visible columns (see :mod:`dataroom.storage`). External access is off from
the start (no file or URL reads, no COPY/ATTACH/INSTALL/LOAD), extensions cannot autoload, and
the configuration is locked once the views exist, with memory and thread limits. Each query runs
on its own cursor with a wall-clock timeout (interrupt) and a row cap.
"""

from __future__ import annotations

import heapq
import json
import re
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from dataroom.catalog import Catalog, Classification, Project, Table
from dataroom.storage import S3Access, local_parquet_files, open_dataset


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


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _names_pattern(names: set[str]) -> re.Pattern[str] | None:
    """Whole-word, case-insensitive match of any of ``names`` (over-matching fails closed)."""
    if not names:
        return None
    return re.compile(r"(?<![\w])(" + "|".join(re.escape(n) for n in sorted(names)) + r")(?![\w])", re.IGNORECASE)


def _plan_nodes(plan: list[dict]) -> Iterator[dict]:
    stack = list(plan)
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.get("children") or [])


def _texts(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


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


class PlanRejected(RuntimeError):
    """The engine's own guard refused a statement (not a single read, or it would read withheld data)."""


# Table functions a session's physical plan may contain: the project's Parquet views and Arrow
# sources. Everything else (range, read_blob, duckdb_settings, ...) is refused by the guard.
ALLOWED_SCANS = {"READ_PARQUET", "PYTHON_ARROW_SCAN"}


class Session:
    """A DuckDB database holding only one project's visible data, locked after set-up.

    Local tables are views over DuckDB's native Parquet reader, selecting the visible columns;
    external access is off except for exactly those files (``allowed_paths``). Because the raw
    files still hold the withheld columns, every statement passes the engine's own guard before
    it runs, independent of the policy: it must be a single read, and its physical plan may scan
    only the project's Parquet files (or Arrow sources) without touching a withheld column.
    ``s3://`` tables are Arrow datasets opened with only the visible columns (see storage.py).
    """

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
        allowed_files: list[str] = []
        withheld: set[str] = set()
        for table in catalog.project_tables(project):
            visible = visible_columns(table, project)
            withheld |= {w.column for w in withheld_columns(table, project)}
            location = catalog.resolve_location(table)
            self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(table.schema_name)}")
            view = f"{_ident(table.schema_name)}.{_ident(table.table_name)}"
            if table.is_remote:
                source = f"__source_{table.schema_name}_{table.table_name}"
                dataset = open_dataset(location, visible, s3)
                self._sources[source] = dataset
                self._con.register(source, dataset)
                self._con.execute(f"CREATE VIEW {view} AS SELECT * FROM {_ident(source)}")
            else:
                files = local_parquet_files(location)
                allowed_files += files
                columns = ", ".join(_ident(c) for c in visible)
                self._con.execute(f"CREATE VIEW {view} AS SELECT {columns} FROM read_parquet({_literal_list(files)})")
        self._withheld_pattern = _names_pattern(withheld)
        self._con.execute(f"SET allowed_paths = {_literal_list(allowed_files)}")
        self._con.execute("SET enable_external_access = false")
        self._con.execute("SET parquet_metadata_cache = true")
        self._con.execute("SET lock_configuration = true")
        self._local = threading.local()

    def check(self, cursor: duckdb.DuckDBPyConnection, sql: str) -> None:
        """The engine's guard: one read statement whose plan reads no withheld column. Raises PlanRejected."""
        statements = duckdb.extract_statements(sql)
        if len(statements) != 1 or statements[0].type is not duckdb.StatementType.SELECT:
            raise PlanRejected("the engine runs exactly one read (SELECT) statement")
        raw = cursor.execute("EXPLAIN (FORMAT json) " + statements[0].query).fetchall()
        for node in _plan_nodes(json.loads(raw[0][1])):
            info = node.get("extra_info") or {}
            function = info.get("Function")
            if function is None:
                continue
            if function not in ALLOWED_SCANS:
                raise PlanRejected(f"the engine does not run table function {function.lower()}()")
            touched = " ".join(_texts(info.get("Projections"))) + " " + " ".join(_texts(info.get("Filters")))
            if self._withheld_pattern and self._withheld_pattern.search(touched):
                raise PlanRejected("the plan would read a column withheld from this project")

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
                self.check(cursor, sql)
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

"""The locked-down DuckDB session one (user, project) pair queries through, inside a worker.

The session exposes each of the project's tables as ``<schema>.<table>``: local tables are views
over their visible-column copies (see :mod:`~dataroom.engines.visible_copies`) read by DuckDB's
native Parquet reader, ``s3://`` tables are Arrow datasets opened with only the visible columns.
External access is off except for exactly the copies (``allowed_paths``), extensions cannot
autoload, configuration is locked, with memory and thread limits.

Nothing the session can reach holds a withheld column, so the engine's own guard, independent
of the policy, only keeps the statement a single read whose physical plan scans nothing but the
project's sources (no ``range()``, no catalog or settings table functions): the statement kind
before it runs, the plan that executed (DuckDB's profile) before its result leaves.

The profiler that shows the guard the plan costs every operator a little on every chunk
(0.5-0.9 ms of a 30 ms scan), so only the first run of a text is profiled and checked. Once that
run passed, the session binds the same parsed statement on a second connection to the same
database, configured the same but without the profiler, and runs the text there from then on.
The sources a statement scans are fixed when it is bound, by the catalog and the settings, and
no statement can change either: each is one read, the configuration is locked, the views are
made before any statement runs, and with external access off DuckDB does not resolve a name to
a variable of the worker (a Python replacement scan) on either connection.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import duckdb
import pyarrow as pa

from dataroom.engines.errors import EngineRefusal
from dataroom.engines.watchdog import Watchdog
from dataroom.result_names import unique_schema

# Table functions a session's physical plan may contain: the project's Parquet views and Arrow
# sources. Everything else (range, read_blob, duckdb_settings, ...) is refused by the guard.
ALLOWED_SCANS = {"READ_PARQUET", "PYTHON_ARROW_SCAN"}
GUARD_METRICS = ("operator.type", "operator.extra_info")  # what the profile must hold for the guard
# Statements a session keeps as relations, by exact text: a notebook re-running a cell skips the
# parse and the bind DuckDB does to make a relation (1-1.5 ms on a TPC-H query). A relation is only
# a bound query: every run binds, plans and executes it again under that run's limits.
RELATIONS_KEPT = 64


@dataclass(frozen=True)
class TableSource:
    """One table of a session: its visible columns and where they come from (copies or ``s3://``)."""

    schema: str
    table: str
    columns: tuple[str, ...]
    files: tuple[str, ...] = ()  # local: the visible-column copies
    location: str | None = None  # remote: an s3:// prefix, opened with only ``columns``


@dataclass(frozen=True)
class SessionSpec:
    """Everything a worker needs to build a project's session (picklable, holds no credentials)."""

    project_id: str
    tables: tuple[TableSource, ...]
    memory_limit: str
    threads: int

    def to_dict(self) -> dict:
        return {**self.__dict__, "tables": [t.__dict__ for t in self.tables]}

    @classmethod
    def from_dict(cls, data: dict) -> "SessionSpec":
        tables = tuple(
            TableSource(t["schema"], t["table"], tuple(t["columns"]), tuple(t["files"]), t["location"]) for t in data["tables"]
        )
        return cls(data["project_id"], tables, data["memory_limit"], data["threads"])


IDENTITY_SCHEMA = "__dr_identity"


def identity_view_name(schema: str, table: str) -> str:
    """The view of ``schema.table`` whose rows carry an identity (in :data:`IDENTITY_SCHEMA`)."""
    return f"{schema}__{table}"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _plan_nodes(plan: list[dict]) -> Iterator[dict]:
    """Every operator of a profile (its ``operator`` list and their ``children``)."""
    stack = list(plan)
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.get("operator") or [])
        stack.extend(node.get("children") or [])


class ResultSink(Protocol):
    """Where :meth:`Session.execute_into` puts a result (e.g. results.ResultWriter)."""

    def open(self, schema: pa.Schema) -> None: ...

    def write(self, batch: pa.RecordBatch) -> None: ...


class _CollectedResult:
    """A sink that keeps the batches in memory."""

    def __init__(self) -> None:
        self.schema: pa.Schema | None = None
        self.batches: list[pa.RecordBatch] = []

    def open(self, schema: pa.Schema) -> None:
        self.schema = schema

    def write(self, batch: pa.RecordBatch) -> None:
        self.batches.append(batch)


@dataclass
class _Kept:
    """A text's statement as the session keeps it: parsed once, bound where it runs next."""

    statement: duckdb.Statement
    relation: duckdb.DuckDBPyRelation
    checked: bool = False  # a profiled run of this text passed the guard: it runs unprofiled from now on
    rebound: bool = False  # ``relation`` is bound on the unprofiled connection


class Session:
    """A DuckDB database holding only one project's visible data, locked after set-up."""

    def __init__(self, spec: SessionSpec, s3=None) -> None:  # s3: dataroom.storage.S3Access
        self.spec = spec
        self._con = duckdb.connect(
            config={
                "autoload_known_extensions": False,
                "autoinstall_known_extensions": False,
                "allow_community_extensions": False,
                "allow_unsigned_extensions": False,
                "memory_limit": spec.memory_limit,
                "threads": spec.threads,
            }
        )
        # Checked texts run here: the same database and settings, no profiler (see the module's docstring).
        self._unprofiled = self._con.cursor()
        allowed_files: list[str] = []
        self._con.execute(f"CREATE SCHEMA {IDENTITY_SCHEMA}")
        for table in spec.tables:
            self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(table.schema)}")
            view = f"{_ident(table.schema)}.{_ident(table.table)}"
            # The same rows with an identity (__dr_row), which output-policy rewrites count distinct
            # when a row could be repeated (dataroom/outputs/aggregation.py); same columns otherwise.
            numbered = f"{IDENTITY_SCHEMA}.{_ident(identity_view_name(table.schema, table.table))}"
            if table.location is not None:
                from dataroom.storage import open_dataset  # boto3 and Arrow datasets: only for s3:// tables

                source = f"__source_{table.schema}_{table.table}"
                dataset = open_dataset(table.location, list(table.columns), s3)
                for connection in (self._con, self._unprofiled):  # registered objects belong to a connection
                    connection.register(source, dataset)
                self._con.execute(f"CREATE VIEW {view} AS SELECT * FROM {_ident(source)}")
                self._con.execute(f"CREATE VIEW {numbered} AS SELECT *, row_number() OVER () AS __dr_row FROM {_ident(source)}")
            else:
                allowed_files += table.files
                columns = ", ".join(_ident(c) for c in table.columns)
                files = _literal_list(list(table.files))
                self._con.execute(f"CREATE VIEW {view} AS SELECT {columns} FROM read_parquet({files})")
                identity = "(file_index::UBIGINT << 40) | file_row_number::UBIGINT"
                self._con.execute(f"CREATE VIEW {numbered} AS SELECT {columns}, {identity} AS __dr_row FROM read_parquet({files})")
        self._con.execute(f"SET allowed_paths = {_literal_list(allowed_files)}")
        self._con.execute("SET enable_external_access = false")
        for connection in (self._con, self._unprofiled):  # a per-connection setting
            connection.execute("SET parquet_metadata_cache = true")
        # The guard reads the plan that executed from the profiler (planning once, not twice).
        self._con.execute("PRAGMA enable_profiling = 'no_output'")
        # ... collecting only what the guard reads: no per-operator timings or row counts to pay for.
        self._con.execute(f"SET tracked_metrics = {_literal_list(list(GUARD_METRICS))}")
        self._con.execute("SET lock_configuration = true")
        self._running = self._con  # the connection the current statement runs on
        self._watchdog = Watchdog(lambda: self._running.interrupt())  # the time limit of each statement
        self._relations: OrderedDict[str, _Kept] = OrderedDict()  # see RELATIONS_KEPT

    def check(self, sql: str) -> duckdb.Statement:
        """The engine's guard, before execution: exactly one read statement; returns it, parsed
        (DuckDB executes the parsed statement: what was checked is what runs, parsed once)."""
        statements = duckdb.extract_statements(sql)
        if len(statements) != 1 or statements[0].type is not duckdb.StatementType.SELECT:
            raise EngineRefusal("engine_guard", "the engine runs exactly one read (SELECT) statement")
        return statements[0]

    def _kept(self, sql: str) -> _Kept:
        """``sql`` checked (:meth:`check`) and bound as a relation on the profiled connection; kept for the same text."""
        kept = self._relations.get(sql)
        if kept is None:
            statement = self.check(sql)
            kept = self._relations[sql] = _Kept(statement, self._con.sql(statement))
            if len(self._relations) > RELATIONS_KEPT:
                self._relations.popitem(last=False)
        else:
            self._relations.move_to_end(sql)
        return kept

    def prepare_reruns(self) -> None:
        """Bind each text whose profiled run passed the guard on the unprofiled connection.

        The worker calls this after it has sent a result, so the bind (up to 1.5 ms on a TPC-H
        query) is not on the query's path. A text that cannot be bound there keeps its checked path.
        """
        for kept in self._relations.values():
            if not kept.checked or kept.rebound:
                continue
            try:
                kept.relation = self._unprofiled.sql(kept.statement)
                kept.rebound = True
            except Exception:  # never seen; the text is simply profiled and checked again next time
                kept.checked = False

    def check_executed_plan(self) -> None:
        """The engine's guard, after execution and before the result leaves: the physical plan
        that ran (DuckDB's profile of the last statement) scanned only the project's sources.

        Checking the plan that executed, rather than an ``EXPLAIN`` of the text, costs no second
        planning and cannot disagree with what ran; a refused statement's rows never leave.
        """
        profile = json.loads(self._con.get_profiling_information(format="json"))
        for node in _plan_nodes([profile]):
            function = (node.get("extra_info") or {}).get("Function") if isinstance(node.get("extra_info"), dict) else None
            if function is not None and function not in ALLOWED_SCANS:
                raise EngineRefusal("engine_guard", f"the engine does not run table function {function.lower()}()")

    def execute_into(self, sql: str, sink: ResultSink, *, max_rows: int, timeout_s: float) -> None:
        """Run one (already decided) statement, handing ``sink`` each batch as DuckDB produces it.

        Refusals for the time limit, the row cap and the guard may come after batches were
        handed over: the sink holds them until this returns, and the caller lets nothing leave
        before then (the worker finishes and sends it only afterwards; see results.py).
        """
        kept = self._kept(sql)
        profiled = not kept.rebound  # this run's plan is read from the profile and checked
        self._running = self._con if profiled else self._unprofiled
        try:
            with self._watchdog.armed(timeout_s):
                try:
                    reader = kept.relation.to_arrow_reader(batch_size=65_536)
                    schema = unique_schema(reader.schema)  # Polars needs unique names
                    sink.open(schema)
                    rows = 0
                    for batch in reader:
                        rows += batch.num_rows
                        if rows > max_rows:
                            raise EngineRefusal("row_limit", f"the result has more than {max_rows:,} rows: aggregate, filter or add a LIMIT")
                        sink.write(batch if schema is reader.schema else pa.RecordBatch.from_arrays(batch.columns, schema=schema))
                except pa.ArrowInvalid as exc:  # e.g. lists nested past Arrow's 64 levels: the query's shape, bad input
                    raise duckdb.InvalidInputException(f"the result cannot be returned as Arrow ({exc}): nest or widen it less") from exc
            if profiled:
                self.check_executed_plan()
                kept.checked = True
        except duckdb.InterruptException as exc:
            raise EngineRefusal("time_limit", f"the query ran longer than the time limit ({timeout_s:g} s) and was stopped: filter or aggregate more") from exc

    def execute(self, sql: str, *, max_rows: int, timeout_s: float) -> pa.Table:
        """:meth:`execute_into`, collected into one table."""
        collected = _CollectedResult()
        self.execute_into(sql, collected, max_rows=max_rows, timeout_s=timeout_s)
        return pa.Table.from_batches(collected.batches, schema=collected.schema)

    def close(self) -> None:
        self._unprofiled.close()
        self._con.close()

"""A project's Spark Connect session: its tables as temporary views over their visible columns.

Each (user, project) gets its own server-side session (Spark Connect isolates temporary views and
SQL configuration per session). Its views read, for a local table, the visible-column copies the
DuckDB path already writes (:mod:`~dataroom.engines.visible_copies`; the Spark servers must see
the broker's cache directory, as a local server does) and, for an ``s3://`` table, the original
Parquet with a projection on the visible columns (the cluster reads it with its own
credentials). ``spark.sql.runSQLOnFiles`` is off, so SQL cannot name a file; the guard
(:mod:`~dataroom.engines.spark_guard`) checks every statement's plan against these views.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from dataroom.catalog import Catalog, Project, visible_columns
from dataroom.engines.errors import EngineFailure
from dataroom.engines.spark_transpile import view_name
from dataroom.engines.visible_copies import visible_copy
from dataroom.settings import Settings
from dataroom.storage import local_parquet_files

SESSION_TTL_S = 900  # as the DuckDB workers' sessions: source files may change
# pyspark retries a failed RPC for 10 minutes by default; a query must not hang that long on an
# unreachable cluster: a few quick retries (about 1 s in all), then an EngineFailure.
RPC_RETRIES = 3
RPC_MAX_BACKOFF_MS = 1000
LOCKED_CONF = {"spark.sql.runSQLOnFiles": "false"}


@dataclass(frozen=True)
class SparkTable:
    """One catalog table as a view: its name, the columns it exposes, and what it reads."""

    table: str
    view: str
    columns: tuple[str, ...]
    paths: tuple[str, ...]
    remote: bool  # paths are the original location (projected), not visible-column copies


def spark_tables(settings: Settings, catalog: Catalog, project: Project) -> list[SparkTable]:
    """The project's tables as its Spark session exposes them (visible columns only)."""
    tables = []
    for table in catalog.project_tables(project):
        columns = visible_columns(table, project)
        location = catalog.resolve_location(table)
        if table.is_remote:
            paths: tuple[str, ...] = ("s3a://" + location.removeprefix("s3://"),)
        else:
            paths = tuple(visible_copy(table.name, local_parquet_files(location), columns, settings.cache_dir))
        tables.append(SparkTable(table.name, view_name(table.name), tuple(columns), paths, table.is_remote))
    return tables


def _quoted(column: str) -> str:
    return "`" + column.replace("`", "``") + "`"


class ProjectSession:
    """One Spark Connect session holding one project's views for one user."""

    def __init__(self, remote: str, project: Project, tables: list[SparkTable]) -> None:
        from pyspark.sql.connect.client.retries import DefaultPolicy
        from pyspark.sql.connect.session import SparkSession

        self.project = project
        self.tables = tables
        self.views = {t.view: list(t.columns) for t in tables}
        self.created = time.monotonic()
        try:
            self.spark = SparkSession.builder.remote(remote).create()
            self.spark.client.set_retry_policies([DefaultPolicy(max_retries=RPC_RETRIES, max_backoff=RPC_MAX_BACKOFF_MS)])
        except Exception as exc:
            raise EngineFailure(f"the Spark engine could not be reached ({type(exc).__name__})", "SparkUnavailable") from None
        try:
            for key, value in LOCKED_CONF.items():
                self.spark.conf.set(key, value)
            for t in tables:
                self._frame(t).createOrReplaceTempView(t.view)
        except Exception as exc:
            self.close()
            raise EngineFailure(f"the Spark engine is unreachable or could not open the project's tables ({type(exc).__name__})", "SparkSessionOpen") from None

    def _frame(self, table: SparkTable):  # -> pyspark DataFrame
        """What the table's view reads: its Parquet, projected on the visible columns."""
        return self.spark.read.parquet(*table.paths).select(*[_quoted(c) for c in table.columns])

    def current(self, project: Project) -> bool:
        return self.project == project and time.monotonic() - self.created < SESSION_TTL_S

    def close(self) -> None:
        try:
            self.spark.stop()  # releases the server-side session and its views
        except Exception:  # the server is gone already: nothing to release
            pass

"""What the pipeline needs from an engine, and the result every engine returns.

The pipeline analyses, decides and audits once, whatever the engine; an engine only executes a
decided statement under its own guard and limits. Two implement :class:`Engine`: the supervised
DuckDB workers (:class:`~dataroom.engines.supervisor.SupervisedEngine`) and Spark over Spark
Connect (:class:`~dataroom.engines.spark.SparkEngine`). :class:`EngineChoice` picks one per
project (``Project.engine``, else the deployment's ``default_engine``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import pyarrow as pa

from dataroom.catalog import ENGINES, Project
from dataroom.engines.cancellation import Cancellation

if TYPE_CHECKING:
    from dataroom.catalog import Catalog
    from dataroom.outputs.aggregation import Finish
    from dataroom.settings import Settings



@dataclass
class ExecutionResult:
    table: pa.Table
    ipc: pa.Buffer  # the result as one Arrow IPC stream: hashed for the audit, sent by the broker
    groups: int | None = None  # under an output policy: groups computed, and how many were suppressed
    suppressed: int | None = None
    executed_sql: str | None = None  # what the engine ran, when it is not the decided text (Spark: the transpiled SQL)


@runtime_checkable
class Engine(Protocol):
    """Executes one decided statement; raises EngineRefusal, SqlError or EngineFailure (engines/errors.py)."""

    name: str

    def prewarm(self) -> None:
        """Prepare capacity ahead of the next query (may do nothing)."""

    def execute(
        self, user: str, project: Project, sql: str, cancellation: Cancellation | None = None, finish: "Finish | None" = None
    ) -> ExecutionResult: ...

    def close(self) -> None: ...


def engine_of(project: Project, default: str) -> str:
    """The engine that serves ``project``: its own (approved with its scope), else the deployment default."""
    return getattr(project, "engine", None) or default


class EngineChoice:
    """The deployment's engines, built on first use: DuckDB always, Spark only if a project needs it."""

    def __init__(self, settings: "Settings", catalog: "Catalog", duckdb: Engine) -> None:
        self.settings = settings
        self.catalog = catalog
        self._engines: dict[str, Engine] = {"duckdb": duckdb}
        self._lock = threading.Lock()

    def for_project(self, project: Project) -> Engine:
        name = engine_of(project, self.settings.default_engine)
        with self._lock:
            engine = self._engines.get(name)
            if engine is None:
                if name != "spark":
                    raise ValueError(f"unknown engine {name!r} (known: {', '.join(ENGINES)})")
                from dataroom.engines.spark import SparkEngine  # pyspark is imported only when a project runs on Spark

                engine = self._engines[name] = SparkEngine(self.settings, self.catalog)
        return engine

    def close(self) -> None:
        with self._lock:
            engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            engine.close()

"""The Spark engine: a decided statement run on a Spark cluster through Spark Connect.

The broker is a thin client (``DATAROOM_SPARK_REMOTE``, e.g. ``sc://spark-connect:15002``). For
each statement it transpiles the DuckDB text to Spark SQL (:mod:`~dataroom.engines.spark_transpile`),
checks the text and Spark's analyzed plan with its own guard (:mod:`~dataroom.engines.spark_guard`),
then runs it tagged, so that the time limit and a cancellation interrupt exactly this job
(``SparkSession.interruptTag``). The result comes back as Arrow (``DataFrame.toArrow``) and
leaves as one Arrow IPC stream, like the DuckDB workers' results; more than ``max_rows`` rows is a
``row_limit`` refusal. Statements under an output policy are refused (not supported on Spark yet).
"""

from __future__ import annotations

import threading
import uuid

import pyarrow as pa

from dataroom.catalog import Catalog, Project
from dataroom.engines.base import Engine, ExecutionResult
from dataroom.engines.cancellation import Cancellation
from dataroom.engines.errors import EngineFailure, EngineRefusal, SqlError
from dataroom.engines.spark_guard import check_plan, check_text
from dataroom.engines.spark_session import ProjectSession, spark_tables
from dataroom.engines.spark_transpile import to_spark
from dataroom.outputs.aggregation import Finish
from dataroom.result_names import with_unique_names
from dataroom.settings import Settings

OUTPUT_POLICY_UNSUPPORTED = (
    "this project runs on the Spark engine, which does not apply output policies (aggregation constraints) yet: "
    "ask the security team to run it on the DuckDB engine or without an output policy"
)


def _spark_message(exc: BaseException) -> str:
    """Spark's own explanation, without the JVM stack trace or the plan it appends."""
    text = str(exc.getMessage() if hasattr(exc, "getMessage") else exc) or type(exc).__name__
    return text.split("\n\nJVM stacktrace:")[0].split("\n\n== SQL ==")[0].split(";\n'")[0].strip()


def ipc_stream(table: pa.Table) -> pa.Buffer:
    """The result as one Arrow IPC stream (the bytes the audit digest covers and the broker sends)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


class SparkEngine(Engine):
    """Runs decided statements on Spark Connect, one server-side session per (user, project)."""

    name = "spark"

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self._sessions: dict[tuple[str, str], ProjectSession] = {}
        self._lock = threading.Lock()

    def prewarm(self) -> None:
        """Nothing to start: the cluster is already running."""

    def session(self, user: str, project: Project) -> ProjectSession:
        """The (user, project) session, rebuilt when the project changed or aged."""
        key = (user, project.id)
        with self._lock:
            current = self._sessions.get(key)
            if current is not None and current.current(project):
                return current
            self._sessions.pop(key, None)
        if current is not None:
            current.close()
        fresh = ProjectSession(self.settings.spark_remote, project, spark_tables(self.settings, self.catalog, project))
        with self._lock:
            self._sessions[key] = fresh
        return fresh

    def execute(
        self, user: str, project: Project, sql: str, cancellation: Cancellation | None = None, finish: Finish | None = None
    ) -> ExecutionResult:
        """Transpile, guard, run with the time limit and cancellation; raises EngineRefusal, SqlError or EngineFailure."""
        cancellation = cancellation or Cancellation()
        if finish is not None:
            raise EngineRefusal("engine_guard", OUTPUT_POLICY_UNSUPPORTED)
        if cancellation.requested:
            raise EngineRefusal("cancelled", "the query was cancelled before it ran")
        session = self.session(user, project)
        spark_sql = to_spark(sql, [t.table for t in session.tables])
        check_text(spark_sql, session.views)
        try:
            table = self._run(session, spark_sql, cancellation)
        except EngineFailure:  # the server restarted or went away: the next query opens a new session
            self._evict((user, project.id), session)
            raise
        if table.num_rows > self.settings.max_rows:
            raise EngineRefusal("row_limit", f"the result has more than {self.settings.max_rows:,} rows: aggregate, filter or add a LIMIT")
        table = with_unique_names(table)
        ipc = ipc_stream(table)
        return ExecutionResult(pa.ipc.open_stream(ipc).read_all(), ipc, executed_sql=spark_sql)

    def _evict(self, key: tuple[str, str], session: ProjectSession) -> None:
        with self._lock:
            if self._sessions.get(key) is session:
                del self._sessions[key]
        session.close()

    def _run(self, session: ProjectSession, spark_sql: str, cancellation: Cancellation) -> pa.Table:
        spark = session.spark
        tag = f"dataroom-{uuid.uuid4().hex}"
        timed_out = threading.Event()

        def interrupt() -> None:
            try:
                spark.interruptTag(tag)
            except Exception:  # the job ended meanwhile, or the server is gone: nothing to stop
                pass

        def time_limit() -> None:
            timed_out.set()
            interrupt()

        timer = threading.Timer(self.settings.query_timeout_s, time_limit)
        timer.daemon = True
        spark.addTag(tag)  # thread-local: tags only this thread's operations
        try:
            with cancellation.running(interrupt):
                timer.start()
                explained = spark.sql("EXPLAIN EXTENDED " + spark_sql).collect()[0][0]
                check_plan(explained, session.views)
                return spark.sql(spark_sql).limit(self.settings.max_rows + 1).toArrow()
        except EngineRefusal:
            raise
        except Exception as exc:
            if cancellation.requested:
                raise EngineRefusal("cancelled", "the query was cancelled while it ran") from None
            if timed_out.is_set():
                raise EngineRefusal(
                    "time_limit", f"the query ran longer than the time limit ({self.settings.query_timeout_s:g} s) and was stopped: filter or aggregate more"
                ) from None
            raise self._error(exc) from None
        finally:
            timer.cancel()
            spark.removeTag(tag)

    @staticmethod
    def _error(exc: Exception) -> Exception:
        """A Spark error as the pipeline knows them: the user's SQL (SqlError) or the room's failure."""
        from pyspark.errors.exceptions import connect as errors

        user_errors = (
            errors.AnalysisException, errors.ParseException, errors.ArithmeticException, errors.NumberFormatException,
            errors.IllegalArgumentException, errors.DateTimeException, errors.ArrayIndexOutOfBoundsException,
            errors.SparkRuntimeException, errors.UnsupportedOperationException, errors.SparkNoSuchElementException,
        )
        if isinstance(exc, user_errors):
            return SqlError(_spark_message(exc), type(exc).__name__)
        return EngineFailure(f"the Spark engine failed: {_spark_message(exc).splitlines()[0]}", type(exc).__name__)

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.close()

"""The result streams into sealed shared memory while it is produced, and leaves only once checked.

The worker hands each batch to a :class:`ResultWriter` as DuckDB produces it (the copy
overlaps the execution). These tests try to get rows out of a statement the session refuses
after batches were already written: the guard's check of the executed plan, the row cap and
the time limit all come after streaming has started, and none of them may let a result through.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from blake3 import blake3

from dataroom.catalog import load_catalog
from dataroom.engines import EngineRefusal
from dataroom.engines.duckdb_session import Session
from dataroom.engines.results import INLINE_MAX_BYTES, ResultWriter, result_digest
from dataroom.engines.supervisor import SupervisedEngine
from dataroom.result_names import renamed_columns
from dataroom.settings import Settings


class RecordingSink:
    """A sink that keeps what it was handed, to show streaming had started before a refusal."""

    def __init__(self) -> None:
        self.schema: pa.Schema | None = None
        self.rows = 0

    def open(self, schema: pa.Schema) -> None:
        self.schema = schema

    def write(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows


@pytest.fixture
def project(dataroom_home: Path):
    return load_catalog(dataroom_home / "catalog.toml").projects["remediation-acme"]


@pytest.fixture
def session(dataroom_home: Path, project):
    catalog = load_catalog(dataroom_home / "catalog.toml")
    session = Session(SupervisedEngine(Settings(memory_limit="256MB", threads=1), catalog).session_spec(project))
    yield session
    session.close()


@pytest.fixture
def engine(dataroom_home: Path):
    settings = Settings(memory_limit="256MB", threads=1, query_timeout_s=5, kill_grace_s=1, max_rows=1_000)
    eng = SupervisedEngine(settings, load_catalog(dataroom_home / "catalog.toml"))
    yield eng
    eng.close()


# A forbidden table function after an allowed scan: the guard sees it only in the executed plan.
LATE_GUARD = "(SELECT finding_id FROM acme.findings LIMIT 500) UNION ALL SELECT range::VARCHAR FROM range(3)"


def test_the_guard_refuses_after_rows_were_streamed(session: Session) -> None:
    sink = RecordingSink()
    with pytest.raises(EngineRefusal) as refused:
        session.execute_into(LATE_GUARD, sink, max_rows=10**6, timeout_s=10)
    assert refused.value.code == "engine_guard"
    assert sink.rows > 0  # rows had been handed over: the refusal came after streaming, as designed


def test_a_refused_statement_returns_no_rows_and_the_worker_stays_usable(engine, project) -> None:
    """Through real workers: the streamed memfd of a refused statement is discarded, never sent."""
    for attempt in range(3):  # the same worker, again and again: nothing half-written carries over
        with pytest.raises(EngineRefusal) as refused:
            engine.execute("alice", project, LATE_GUARD)
        assert refused.value.code == "engine_guard", attempt
        with pytest.raises(EngineRefusal) as capped:
            engine.execute("alice", project, "SELECT finding_id FROM acme.findings")  # over max_rows, mid-stream
        assert capped.value.code == "row_limit"
    result = engine.execute("alice", project, "SELECT count(*) AS n FROM acme.findings")
    assert result.table.column("n")[0].as_py() > 1_000


def test_unique_names_reach_the_streamed_schema(session: Session) -> None:
    table = session.execute("SELECT 1 AS a, 2 AS a, 3 AS A", max_rows=10, timeout_s=5)
    assert table.column_names == ["a", "a_1", "A_2"]
    assert renamed_columns(table.schema) == [{"column": "a_1", "original": "a"}, {"column": "A_2", "original": "A"}]


def test_a_discarded_writer_closes_its_memfd() -> None:
    writer = ResultWriter()
    writer.open(pa.schema([("x", pa.int64())]))
    writer.write(pa.record_batch({"x": list(range(INLINE_MAX_BYTES // 8 + 1))}))  # past a message: a memfd
    fd = writer._file.fd
    assert fd is not None
    writer.discard()
    with pytest.raises(OSError):
        os.fstat(fd)


def test_a_result_moves_to_shared_memory_once_it_outgrows_a_message() -> None:
    """Batch by batch: small so far stays in memory, the batch that crosses the limit spills all of it."""
    small = pa.record_batch({"x": list(range(100))})
    writer = ResultWriter()
    writer.open(small.schema)
    writer.write(small)
    assert writer._file.fd is None  # still a message's worth
    big = pa.record_batch({"x": list(range(INLINE_MAX_BYTES // 8))})
    writer.write(big)
    result = writer.finish()
    assert result.inline is None and result.fd is not None
    table = pa.ipc.open_stream(os.pread(result.fd, result.size, 0)).read_all()
    os.close(result.fd)
    assert table.to_batches()[0].equals(small) and table.num_rows == 100 + big.num_rows


def test_the_digest_is_blake3_of_the_bytes_on_one_thread_or_all() -> None:
    """Small results hash on one thread, large ones on all: the same BLAKE3 either way."""
    for size in (0, 1000, (1 << 20) + 17, 5 << 20):
        data = os.urandom(size)
        assert result_digest(data) == "blake3:" + blake3(data).hexdigest()
        assert result_digest(pa.py_buffer(data)) == result_digest(data)


# A session keeps the relation of each checked text (duckdb_session.RELATIONS_KEPT): a repeated
# text must still run again, under that run's limits, with the guard checking that run's plan.


def test_a_repeated_text_runs_again_each_time(session: Session) -> None:
    sql = "SELECT random() AS r, finding_id FROM acme.findings LIMIT 3"
    first = session.execute(sql, max_rows=10, timeout_s=5)
    second = session.execute(sql, max_rows=10, timeout_s=5)
    assert first.column("r").to_pylist() != second.column("r").to_pylist()  # executed twice, not replayed
    with pytest.raises(EngineRefusal) as capped:  # the same text, under a tighter limit on this run
        session.execute(sql, max_rows=2, timeout_s=5)
    assert capped.value.code == "row_limit"


def test_a_kept_text_the_guard_refuses_is_refused_every_time(session: Session) -> None:
    for attempt in range(3):
        with pytest.raises(EngineRefusal) as refused:
            session.execute(LATE_GUARD, max_rows=10**6, timeout_s=10)
        assert refused.value.code == "engine_guard", attempt
        session.prepare_reruns()  # as the worker does after each answer: a refused text is never moved
    for attempt in range(2):  # refused before it is bound: nothing is kept, refused again
        with pytest.raises(EngineRefusal) as refused:
            session.execute("SELECT 1; SELECT 2", max_rows=10, timeout_s=5)
        assert refused.value.code == "engine_guard", attempt


def test_the_kept_relations_are_bounded(session: Session, monkeypatch) -> None:
    from dataroom.engines import duckdb_session

    monkeypatch.setattr(duckdb_session, "RELATIONS_KEPT", 3)
    for n in range(6):
        session.execute(f"SELECT {n} AS n", max_rows=10, timeout_s=5)
    session.execute("SELECT 3 AS n", max_rows=10, timeout_s=5)  # used again: the most recent
    session.execute("SELECT 6 AS n", max_rows=10, timeout_s=5)
    assert list(session._relations) == ["SELECT 5 AS n", "SELECT 3 AS n", "SELECT 6 AS n"]


# Only a text's first run is profiled and checked; once it passed, the text runs on the session's
# second connection, the same database and settings without the profiler (duckdb_session's docstring).


def test_a_checked_text_reruns_without_the_profiler_and_still_runs_each_time(session: Session) -> None:
    sql = "SELECT random() AS r, finding_id FROM acme.findings LIMIT 3"
    first = session.execute(sql, max_rows=10, timeout_s=5)
    profile = session._con.get_profiling_information(format="json")  # the checked run's plan
    session.prepare_reruns()
    second = session.execute(sql, max_rows=10, timeout_s=5)
    assert session._con.get_profiling_information(format="json") == profile  # the profiled connection did not run it
    assert first.column("r").to_pylist() != second.column("r").to_pylist()
    assert first.column("finding_id").to_pylist() == second.column("finding_id").to_pylist()
    with pytest.raises(EngineRefusal) as capped:  # this run's limits still apply
        session.execute(sql, max_rows=2, timeout_s=5)
    assert capped.value.code == "row_limit"


def test_the_time_limit_stops_a_rerun_on_the_unprofiled_connection(session: Session) -> None:
    slow = "SELECT count(*) FROM acme.findings a, acme.findings b WHERE a.cvss * b.cvss > 80.5 + random()"
    session.execute(slow, max_rows=10, timeout_s=60)  # completes, checked
    session.prepare_reruns()
    started = time.monotonic()
    with pytest.raises(EngineRefusal) as refused:
        session.execute(slow, max_rows=10, timeout_s=0.01)
    assert refused.value.code == "time_limit"
    assert time.monotonic() - started < 5
    assert session.execute("SELECT 1 AS one", max_rows=10, timeout_s=5).num_rows == 1  # the session still works


def test_both_connections_have_the_same_settings_but_the_profiler(session: Session) -> None:
    def settings(connection) -> dict[str, str]:
        return dict(connection.sql("SELECT name, value FROM duckdb_settings()").fetchall())

    checked, unprofiled = settings(session._con), settings(session._unprofiled)
    differing = {name for name in checked.keys() | unprofiled.keys() if checked.get(name) != unprofiled.get(name)}
    assert differing == {"enable_profiling", "tracked_metrics"}
    assert unprofiled["lock_configuration"] == "true" and unprofiled["enable_external_access"] == "false"


def test_no_connection_of_a_session_scans_a_python_variable(session: Session) -> None:
    """With external access off, DuckDB resolves no name to an object of the worker (a Python replacement scan)."""
    secret_rows = pa.table({"secret": ["do not read"]})  # noqa: F841 (named by the statements below)
    for connection in (session._con, session._unprofiled):
        with pytest.raises(duckdb.CatalogException):
            connection.sql("SELECT * FROM secret_rows").fetchall()

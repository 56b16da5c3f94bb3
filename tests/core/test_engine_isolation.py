"""The execution engine on its own: even SQL that never went through the policy cannot escape it.

These tests hand statements straight to :class:`SupervisedEngine` (real worker processes, real
DuckDB), bypassing analysis and policy, to prove the second layer of defence by itself: sessions
read only visible-column copies, DuckDB is locked down, the guard admits one read over the
project's sources, and the worker's time, memory and crashes are contained.
"""

from __future__ import annotations

import os
import pwd
import threading
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataroom.catalog import load_catalog
from dataroom.engines import Cancellation, EngineFailure, EngineRefusal, SqlError
from dataroom.engines.duckdb_session import Session
from dataroom.engines.supervisor import SupervisedEngine
from dataroom.engines.worker import TEST_ABORT_MARKER
from dataroom.settings import Settings
from tests.support.memory import PeakTreeMemory

PII_COLUMNS = ("analyst_email", "analyst_name")


@pytest.fixture
def engine(dataroom_home: Path):
    settings = Settings(
        memory_limit="256MB", threads=1, query_timeout_s=2, kill_grace_s=1, worker_memory_limit="1GiB", max_rows=100_000, engine_test_hooks=True
    )
    catalog = load_catalog(dataroom_home / "catalog.toml")
    eng = SupervisedEngine(settings, catalog)
    yield eng
    eng.close()


@pytest.fixture
def project(dataroom_home: Path):
    return load_catalog(dataroom_home / "catalog.toml").projects["remediation-acme"]


@pytest.fixture
def pii_values(dataroom_home: Path) -> set[str]:
    table = pq.read_table(dataroom_home / "data" / "acme" / "findings", columns=list(PII_COLUMNS))
    return {v for column in table.columns for v in column.to_pylist() if v}


def run(engine: SupervisedEngine, project, sql: str, cancellation: Cancellation | None = None):
    return engine.execute("alice", project, sql, cancellation).table


def raw_part(home: Path) -> Path:
    return home / "data" / "acme" / "findings" / "part-000.parquet"


def test_project_tables_are_views_without_pii(engine, project) -> None:
    columns = run(engine, project, "SELECT * FROM acme.findings LIMIT 1").column_names
    assert "cvss" in columns and not set(PII_COLUMNS) & set(columns)
    assert "owner_email" not in run(engine, project, "SELECT * FROM acme.assets LIMIT 1").column_names


@pytest.mark.parametrize("column", PII_COLUMNS)
def test_pii_column_does_not_exist_in_session(engine, project, column: str) -> None:
    with pytest.raises(SqlError, match="not found"):
        run(engine, project, f"SELECT {column} FROM acme.findings")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT analyst_email FROM read_parquet('{part}')",
        "SELECT * FROM read_parquet('{part}') LIMIT 1",
        "SELECT * FROM '{part}'",
        "SELECT to_json(t) FROM read_parquet('{part}') t",
        "SELECT * FROM parquet_metadata('{part}')",
        "SELECT json_serialize_plan('SELECT min(analyst_email), max(analyst_name) FROM read_parquet(''{part}'')', optimize := true) AS p",
        "SELECT json_execute_serialized_sql(json_serialize_sql('SELECT analyst_email FROM read_parquet(''{part}'')')) AS p",
        "SELECT * FROM query('SELECT analyst_email FROM read_parquet(''{part}'')')",
    ],
)
def test_raw_files_are_out_of_reach_whatever_names_them(engine, project, dataroom_home: Path, pii_values: set[str], sql: str) -> None:
    """The raw files hold PII; no statement reaches them, not even through SQL inside a string."""
    try:
        output = str(run(engine, project, sql.format(part=raw_part(dataroom_home))).to_pylist())
    except (EngineRefusal, SqlError, EngineFailure) as exc:
        output = str(exc)
    assert not any(value in output for value in pii_values)


def test_session_files_hold_only_visible_columns(engine, project, pii_values: set[str]) -> None:
    """Even the files the session may read (its copies), named directly, carry no withheld value."""
    paths = run(engine, project, "SELECT current_setting('allowed_paths') AS p").column("p").to_pylist()[0]
    assert paths and all("/cache/visible/" in p for p in paths)
    for path in paths:
        names = run(engine, project, f"SELECT * FROM read_parquet('{path}') LIMIT 1").column_names
        assert not set(PII_COLUMNS) & set(names) and "owner_email" not in names
        plan = run(engine, project, f"SELECT json_serialize_plan('SELECT min(COLUMNS(*)) FROM read_parquet(''{path}'')', optimize := true) AS p")
        assert not any(value in str(plan.to_pylist()) for value in pii_values)


def test_copy_cannot_overwrite_a_project_file(engine, project, dataroom_home: Path) -> None:
    part = raw_part(dataroom_home)
    before = part.read_bytes()
    with pytest.raises(EngineRefusal, match="one read") as refused:
        run(engine, project, f"COPY (SELECT 1 AS x) TO '{part}' (FORMAT parquet, USE_TMP_FILE false)")
    assert refused.value.code == "engine_guard"
    assert part.read_bytes() == before


@pytest.mark.parametrize("sql", ["SELECT * FROM read_blob('{part}')", "SELECT * FROM range(3)", "SELECT * FROM duckdb_settings()"])
def test_other_table_functions_are_refused_by_the_engine(engine, project, dataroom_home: Path, sql: str) -> None:
    with pytest.raises(EngineRefusal) as refused:
        run(engine, project, sql.format(part=raw_part(dataroom_home)))
    assert refused.value.code == "engine_guard"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM acme.findings, range(3)",  # a table function beside an allowed scan
        "SELECT * FROM acme.findings WHERE cvss > (SELECT max(range) FROM range(3))",  # hidden in a subquery
        "WITH s AS MATERIALIZED (SELECT * FROM duckdb_settings()) SELECT count(*) FROM acme.findings, s",
    ],
)
def test_the_guard_checks_the_plan_that_executed(dataroom_home: Path, project, sql: str) -> None:
    """The guard reads DuckDB's profile of the statement that ran (no second planning): a forbidden
    scan anywhere in the executed plan refuses the result, and the rows never leave the session."""
    catalog = load_catalog(dataroom_home / "catalog.toml")
    settings = Settings(memory_limit="256MB", threads=1)
    session = Session(SupervisedEngine(settings, catalog).session_spec(project))
    try:
        allowed = session.execute("SELECT severity, count(*) AS n FROM acme.findings GROUP BY 1", max_rows=100, timeout_s=5)
        assert allowed.num_rows > 0  # the profile of an allowed statement passes
        with pytest.raises(EngineRefusal) as refused:
            session.execute(sql, max_rows=100_000, timeout_s=5)
        assert refused.value.code == "engine_guard"
    finally:
        session.close()


def test_other_tenants_are_absent(engine, project) -> None:
    with pytest.raises(SqlError, match="globex"):
        run(engine, project, "SELECT * FROM globex.findings")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_parquet('{home}/data/globex/findings/part-000.parquet')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM glob('{home}/*')",
        "COPY (SELECT 1) TO '{home}/leak.csv'",
        "ATTACH '{home}/other.duckdb' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET memory_limit = '100GB'",
    ],
)
def test_file_extension_and_setting_access_is_refused(engine, project, dataroom_home: Path, sql: str) -> None:
    with pytest.raises(EngineRefusal) as refused:
        run(engine, project, sql.format(home=dataroom_home))
    assert refused.value.code == "engine_guard"
    assert str(dataroom_home) not in refused.value.message
    assert not (dataroom_home / "leak.csv").exists()


def test_duckdb_itself_keeps_the_configuration_locked(engine, project) -> None:
    """Below the guard: the session's DuckDB refuses configuration changes on its own."""
    session = Session(engine.session_spec(project))
    try:
        for sql in ("SET enable_external_access = true", "SET threads = 8", "RESET lock_configuration"):
            with pytest.raises(Exception, match="locked"):
                session._con.execute(sql)
    finally:
        session.close()


def test_time_limit_interrupts_and_the_next_query_runs(engine, project) -> None:
    started = time.monotonic()
    with pytest.raises(EngineRefusal) as refused:
        run(engine, project, "SELECT count(*) FROM acme.findings a, acme.findings b, acme.findings c WHERE a.cvss + b.cvss < c.cvss")
    assert refused.value.code == "time_limit", refused.value.message
    assert time.monotonic() - started < 2 + 1 + 2  # the limit, the grace, slack
    assert run(engine, project, "SELECT 42 AS x").to_pylist() == [{"x": 42}]


def test_row_cap(engine, project) -> None:
    engine.settings.max_rows = 10
    with pytest.raises(EngineRefusal, match="more than 10 rows") as refused:
        run(engine, project, "SELECT * FROM acme.findings")
    assert refused.value.code == "row_limit"
    assert run(engine, project, "SELECT * FROM acme.findings LIMIT 10").num_rows == 10


def test_memory_bomb_is_refused_within_the_cap(engine, project) -> None:
    """The red team's bomb: not buffer-managed, so only the OS cap on the worker stops it."""
    with PeakTreeMemory() as memory:
        with pytest.raises(EngineRefusal) as refused:
            run(engine, project, "SELECT sum(x) FROM (SELECT unnest(range(300000000)) AS x)")
    assert refused.value.code == "memory_limit"
    baseline = psutil.Process().memory_info().rss
    assert memory.peak < baseline + 1.5 * 2**30, f"process tree peaked at {memory.peak / 2**30:.2f} GiB"
    assert run(engine, project, "SELECT count(*) AS n FROM acme.findings").to_pylist() == [{"n": 2000}]


def test_a_crashing_worker_is_contained(engine, project) -> None:
    ballast = b"x" * (1 << 30)  # a big parent (the broker, or pytest) must not make a crash look like memory
    with pytest.raises(EngineRefusal, match="stopped unexpectedly") as refused:
        run(engine, project, f"SELECT 1 /* {TEST_ABORT_MARKER} */")
    del ballast
    assert refused.value.code == "engine_crash"
    assert run(engine, project, "SELECT 7 AS x").to_pylist() == [{"x": 7}]


def test_the_crash_hook_is_off_unless_configured(dataroom_home: Path, project) -> None:
    eng = SupervisedEngine(Settings(), load_catalog(dataroom_home / "catalog.toml"))
    try:
        assert eng.execute("alice", project, f"SELECT 1 AS x /* {TEST_ABORT_MARKER} */").table.to_pylist() == [{"x": 1}]
    finally:
        eng.close()


def test_cancellation_kills_the_running_query(engine, project) -> None:
    engine.settings.query_timeout_s = 60
    cancellation = Cancellation()
    threading.Timer(0.5, cancellation.cancel).start()
    started = time.monotonic()
    with pytest.raises(EngineRefusal) as refused:
        run(engine, project, "SELECT count(*) FROM acme.findings a, acme.findings b, acme.findings c WHERE a.cvss + b.cvss < c.cvss", cancellation)
    assert refused.value.code == "cancelled" and time.monotonic() - started < 10, refused.value.message
    assert run(engine, project, "SELECT 1 AS x").to_pylist() == [{"x": 1}]


def test_workers_are_reused_between_queries(engine, project) -> None:
    run(engine, project, "SELECT 1")
    workers = {p.pid for p in psutil.Process().children()}
    for _ in range(5):
        run(engine, project, "SELECT 1")
    assert {p.pid for p in psutil.Process().children()} == workers


def test_a_worker_killed_while_idle_is_replaced(engine, project) -> None:
    """The kernel's OOM killer (or an operator) may kill an idle worker: the next query does not notice."""
    run(engine, project, "SELECT 1")
    for child in psutil.Process().children():
        if "dataroom.engines.worker" in " ".join(child.cmdline()):
            child.kill()
            child.wait(5)
    assert run(engine, project, "SELECT 3 AS x").to_pylist() == [{"x": 3}]


def test_copies_built_by_root_belong_to_the_homes_owner(dataroom_home: Path, engine, project) -> None:
    """The administrator's CLI (root, as the suite runs) may build copies first: the broker's account must read them."""
    nobody = pwd.getpwnam("nobody")
    os.chown(dataroom_home, nobody.pw_uid, nobody.pw_gid)
    run(engine, project, "SELECT count(*) FROM acme.findings")
    cache = dataroom_home / "cache"
    owners = {(p.stat().st_uid, p.stat().st_gid) for p in [cache, *cache.rglob("*")]}
    assert owners == {(nobody.pw_uid, nobody.pw_gid)}


def test_a_result_the_worker_could_still_change_is_refused() -> None:
    """The digest in the audit must cover the bytes sent: an unsealed result is never read."""
    import mmap
    import socket
    from multiprocessing import reduction
    from multiprocessing.connection import Connection

    from dataroom.engines.results import INLINE_MAX_BYTES, UnsealedResult, receive_table, send_result, write_result

    ours, theirs = socket.socketpair()
    parent, worker = Connection(ours.detach()), Connection(theirs.detach())
    large = pa.table({"x": list(range(INLINE_MAX_BYTES))})  # past a message's size: a sealed memfd
    sealed = write_result(large)
    assert sealed.fd is not None and sealed.inline is None
    send_result(worker, sealed)
    table, buffer = receive_table(parent, sealed.size, inline=False)
    assert table.equals(large) and buffer.size == sealed.size

    unsealed = os.memfd_create("forged", os.MFD_ALLOW_SEALING)
    os.ftruncate(unsealed, sealed.size)
    with mmap.mmap(unsealed, sealed.size) as mapping:
        mapping[:] = bytes(buffer)
    reduction.send_handle(worker, unsealed, os.getpid())
    with pytest.raises(UnsealedResult):
        receive_table(parent, sealed.size, inline=False)
    os.close(unsealed)


def test_a_small_result_travels_in_a_message_the_broker_owns() -> None:
    """A small result is copied into the broker's memory (nothing the worker can change later);
    a message longer than allowed, or not the size announced, is refused, never read."""
    import socket
    from multiprocessing.connection import Connection

    from dataroom.engines.results import INLINE_MAX_BYTES, RefusedResult, receive_table, send_result, write_result

    ours, theirs = socket.socketpair()
    parent, worker = Connection(ours.detach()), Connection(theirs.detach())
    small = write_result(pa.table({"x": [1, 2, 3]}))
    assert small.inline is not None and small.fd is None and small.size == len(small.inline)
    send_result(worker, small)
    table, buffer = receive_table(parent, small.size, inline=True)
    assert table.to_pylist() == [{"x": 1}, {"x": 2}, {"x": 3}] and buffer.to_pybytes() == small.inline

    worker.send_bytes(b"\0" * (INLINE_MAX_BYTES + 1))  # longer than any message may be
    with pytest.raises(RefusedResult):
        receive_table(parent, INLINE_MAX_BYTES, inline=True)
    worker.send_bytes(small.inline)
    with pytest.raises(RefusedResult):  # announced as one size, sent as another
        receive_table(parent, small.size + 1, inline=True)
    with pytest.raises(RefusedResult):  # announced past the limit: not even read
        receive_table(parent, INLINE_MAX_BYTES + 1, inline=True)

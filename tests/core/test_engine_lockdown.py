"""The locked-down DuckDB session: even SQL that never went through the policy cannot escape it.

These tests call Session.execute directly, bypassing analysis and policy, to prove the second
layer of defence on its own: DuckDB's lockdown (external access off but for the project's files,
configuration locked) plus the engine's guard on each statement and its physical plan.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from dataroom.catalog import load_catalog
from dataroom.engine import PlanRejected, QueryTimeout, ResultTooLarge, Session


@pytest.fixture
def session(dataroom_home: Path):
    catalog = load_catalog(dataroom_home / "catalog.toml")
    s = Session(catalog, catalog.projects["remediation-acme"], memory_limit="512MB", threads=1)
    yield s
    s.close()


def run(session: Session, sql: str, max_rows: int = 100_000, timeout_s: float = 10):
    return session.execute(sql, max_rows=max_rows, timeout_s=timeout_s)


def test_project_tables_are_views_without_pii(session: Session) -> None:
    columns = run(session, "SELECT * FROM acme.findings LIMIT 1").column_names
    assert "cvss" in columns and "analyst_email" not in columns and "analyst_name" not in columns
    assert "owner_email" not in run(session, "SELECT * FROM acme.assets LIMIT 1").column_names


@pytest.mark.parametrize("column", ["analyst_email", "analyst_name"])
def test_pii_column_does_not_exist_in_session(session: Session, column: str) -> None:
    with pytest.raises(duckdb.BinderException):
        run(session, f"SELECT {column} FROM acme.findings")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT analyst_email FROM read_parquet('{part}')",
        "SELECT * FROM read_parquet('{part}') LIMIT 1",
        "SELECT count(*) FROM read_parquet('{part}') WHERE analyst_email LIKE 'a%'",
        "SELECT count(*) FROM read_parquet('{part}') WHERE upper(ANALYST_NAME) = 'X'",
        "SELECT * FROM '{part}'",
        "SELECT to_json(t) FROM read_parquet('{part}') t",
    ],
)
def test_raw_project_file_cannot_be_read_for_withheld_columns(session: Session, dataroom_home: Path, sql: str) -> None:
    """The project's own Parquet files are readable (allowed_paths), but never their withheld columns."""
    part = dataroom_home / "data" / "acme" / "findings" / "part-000.parquet"
    with pytest.raises(PlanRejected, match="withheld|table function"):
        run(session, sql.format(part=part))


def test_raw_project_file_visible_columns_are_harmless(session: Session, dataroom_home: Path) -> None:
    part = dataroom_home / "data" / "acme" / "findings" / "part-000.parquet"
    assert run(session, f"SELECT count(cvss) AS n FROM read_parquet('{part}')").to_pylist() == [{"n": 2000}]


def test_copy_cannot_overwrite_a_project_file(session: Session, dataroom_home: Path) -> None:
    part = dataroom_home / "data" / "acme" / "findings" / "part-000.parquet"
    before = part.read_bytes()
    with pytest.raises(PlanRejected, match="one read"):
        run(session, f"COPY (SELECT 1 AS x) TO '{part}' (FORMAT parquet, USE_TMP_FILE false)")
    assert part.read_bytes() == before


@pytest.mark.parametrize("sql", ["SELECT * FROM read_blob('{part}')", "SELECT * FROM range(3)", "SELECT * FROM duckdb_settings()"])
def test_other_table_functions_are_refused_by_the_engine(session: Session, dataroom_home: Path, sql: str) -> None:
    part = dataroom_home / "data" / "acme" / "findings" / "part-000.parquet"
    with pytest.raises((PlanRejected, duckdb.Error)):
        run(session, sql.format(part=part))


def test_other_tenants_are_absent(session: Session) -> None:
    with pytest.raises(duckdb.CatalogException):
        run(session, "SELECT * FROM globex.findings")


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
    ],
)
def test_file_and_extension_access_is_off(session: Session, dataroom_home: Path, sql: str) -> None:
    with pytest.raises((duckdb.Error, PlanRejected), match="disabled|Permission|engine"):
        run(session, sql.format(home=dataroom_home))
    assert not (dataroom_home / "leak.csv").exists()


@pytest.mark.parametrize("sql", ["SET enable_external_access = true", "SET threads = 8", "SET memory_limit = '100GB'", "RESET lock_configuration"])
def test_configuration_is_locked(session: Session, sql: str) -> None:
    with pytest.raises(PlanRejected, match="one read"):
        run(session, sql)
    with pytest.raises(duckdb.Error, match="locked"):  # and DuckDB itself refuses, guard or not
        session._cursor().execute(sql)


def test_timeout_interrupts_and_session_stays_usable(session: Session) -> None:
    with pytest.raises(QueryTimeout):
        run(session, "SELECT count(*) FROM acme.findings a, acme.findings b, acme.findings c WHERE a.cvss + b.cvss < c.cvss", timeout_s=0.5)
    assert run(session, "SELECT 42 AS x").to_pylist() == [{"x": 42}]


def test_row_cap(session: Session) -> None:
    with pytest.raises(ResultTooLarge, match="more than 10 rows"):
        run(session, "SELECT * FROM acme.findings", max_rows=10)
    assert run(session, "SELECT * FROM acme.findings LIMIT 10", max_rows=10).num_rows == 10

"""The locked-down DuckDB session: even SQL that never went through the policy cannot escape it.

These tests call Session.execute directly, bypassing analysis and policy, to prove the second
layer of defence on its own.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from dataroom.catalog import load_catalog
from dataroom.engine import QueryTimeout, ResultTooLarge, Session


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


def test_even_the_registered_source_has_no_pii(session: Session) -> None:
    assert "analyst_email" not in run(session, "SELECT * FROM __source_acme_findings LIMIT 1").column_names


def test_other_tenants_are_absent(session: Session) -> None:
    with pytest.raises(duckdb.CatalogException):
        run(session, "SELECT * FROM globex.findings")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_parquet('{home}/data/acme/findings/part-000.parquet')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM glob('{home}/*')",
        "COPY (SELECT 1) TO '{home}/leak.csv'",
        "ATTACH '{home}/other.duckdb' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
    ],
)
def test_file_and_extension_access_is_off(session: Session, dataroom_home: Path, sql: str) -> None:
    with pytest.raises(duckdb.Error, match="disabled|Permission"):
        run(session, sql.format(home=dataroom_home))
    assert not (dataroom_home / "leak.csv").exists()


@pytest.mark.parametrize("sql", ["SET enable_external_access = true", "SET threads = 8", "SET memory_limit = '100GB'", "RESET lock_configuration"])
def test_configuration_is_locked(session: Session, sql: str) -> None:
    with pytest.raises(duckdb.Error, match="locked"):
        run(session, sql)


def test_timeout_interrupts_and_session_stays_usable(session: Session) -> None:
    with pytest.raises(QueryTimeout):
        run(session, "SELECT count(*) FROM range(100000000000) t(i) WHERE i % 7 = 3", timeout_s=0.5)
    assert run(session, "SELECT 42 AS x").to_pylist() == [{"x": 42}]


def test_row_cap(session: Session) -> None:
    with pytest.raises(ResultTooLarge, match="more than 10 rows"):
        run(session, "SELECT * FROM acme.findings", max_rows=10)
    assert run(session, "SELECT * FROM acme.findings LIMIT 10", max_rows=10).num_rows == 10

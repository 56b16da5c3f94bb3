"""The catalog file and the demo data it describes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from dataroom.catalog import CatalogError, Classification, load_catalog
from dataroom.demo_data import FINDINGS_COLUMNS, ONBOARDING_WEEK, TENANTS, TIMELINE_START


def test_demo_catalog_has_tenants_tables_users_projects(dataroom_home: Path) -> None:
    catalog = load_catalog(dataroom_home / "catalog.toml")
    assert set(catalog.tenants) == set(TENANTS)
    for tenant in TENANTS:
        assert catalog.table(f"{tenant}.findings").tenant == tenant
        assert catalog.table(f"{tenant}.assets").classification("owner_email") is Classification.PII
    assert catalog.table("reference.cve").tenant is None
    assert set(catalog.users) == {"alice", "bob", "sam", "mallory", "svc-monitor"}
    assert catalog.users["svc-monitor"].groups == ["services"]
    assert catalog.projects["model-monitoring"].members == ["svc-monitor"]
    assert catalog.projects["remediation-acme"].members == ["alice", "bob"]
    assert catalog.projects["remediation-benchmark"].multi_tenant is True
    assert not any("mallory" in p.members for p in catalog.projects.values())


def test_unclassified_column_is_pii(dataroom_home: Path) -> None:
    table = load_catalog(dataroom_home / "catalog.toml").table("acme.findings")
    assert table.classification("not_in_catalog") is Classification.PII


def test_demo_parquet_matches_catalog_columns(dataroom_home: Path) -> None:
    cols = duckdb.sql(f"DESCRIBE SELECT * FROM '{dataroom_home}/data/acme/findings/*.parquet'").fetchall()
    assert [c[0] for c in cols] == list(FINDINGS_COLUMNS)


def test_demo_story_initech_differs(dataroom_home: Path) -> None:
    """remediation_days ~ linear in CVSS for acme and globex, not for initech."""
    r2 = dict(
        duckdb.sql(
            f"SELECT split_part(filename, '/', -3) AS tenant, regr_r2(remediation_days, cvss) "
            f"FROM read_parquet('{dataroom_home}/data/*/findings/*.parquet', filename = true) GROUP BY 1"
        ).fetchall()
    )
    assert r2["acme"] > 0.8 and r2["globex"] > 0.5 and r2["initech"] < 0.1


def test_demo_timeline_onboards_tenants_and_shifts_globex_late(dataroom_home: Path) -> None:
    """A year and more of weekly data: acme from the start, globex later, initech later still; globex's
    low-CVSS share grows late in its timeline."""
    rows = duckdb.sql(
        f"SELECT split_part(filename, '/', -3) AS tenant, min(detected_at)::DATE, max(detected_at)::DATE, "
        f"avg(cvss) FILTER (detected_at < TIMESTAMP '2024-10-01'), avg(cvss) FILTER (detected_at >= TIMESTAMP '2025-02-10') "
        f"FROM read_parquet('{dataroom_home}/data/*/findings/*.parquet', filename = true) GROUP BY 1"
    ).fetchall()
    by_tenant = {r[0]: r[1:] for r in rows}
    start = TIMELINE_START
    assert by_tenant["acme"][0] < start + dt.timedelta(days=7)
    assert by_tenant["globex"][0] >= start + dt.timedelta(weeks=ONBOARDING_WEEK["globex"])
    assert by_tenant["initech"][0] >= start + dt.timedelta(weeks=ONBOARDING_WEEK["initech"]) > by_tenant["globex"][0]
    assert all((last - start).days >= 365 for _, last, _, _ in by_tenant.values())
    assert by_tenant["globex"][3] < by_tenant["globex"][2] - 1.5  # the late shift to low-CVSS findings
    assert abs(by_tenant["acme"][3] - by_tenant["acme"][2]) < 0.8  # acme does not move


@pytest.mark.parametrize(
    "text, problem",
    [
        ("tenants = {}\n[tables.'a.b']\nlocation = 'x'\ntenant = 'nobody'\ncolumns = {}\n", "unknown tenant"),
        ("tenants = {}\n[tables.flat]\nlocation = 'x'\ncolumns = {}\n", "<schema>.<table>"),
        ("tenants = {}\ntables = {}\n[tables.'a.b']\n", "invalid"),
        ("this is not toml", "invalid"),
    ],
)
def test_invalid_catalog_is_a_clear_error(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    with pytest.raises(CatalogError, match=problem):
        load_catalog(path)


def test_missing_catalog_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="dataroom demo-data"):
        load_catalog(tmp_path / "nope.toml")

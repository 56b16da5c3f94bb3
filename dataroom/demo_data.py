"""Demo "production" data: three tenants' vulnerability findings, shared CVE reference data, a catalog.

It reproduces the story of the remediation-time article (shared/context/000_*): remediation days
grow roughly linearly with CVSS for ``acme`` and ``globex``, while ``initech`` patches on a fixed
cycle that has nothing to do with CVSS, so a per-tenant linear fit collapses for it.
Generated with DuckDB itself so that millions of rows take seconds.

Findings have a timeline (``detected_at``, :data:`TIMELINE_WEEKS` weeks from :data:`TIMELINE_START`):
acme from the start, globex onboarding at week :data:`ONBOARDING_WEEK` ``["globex"]`` with the same
kind of relationship, initech later still with its different distribution (the article's client 3).
Late in globex's timeline new analysts take over the bulk of low-CVSS findings and fix many devices
on the same day: from :data:`GLOBEX_SHIFT_WEEK` the share of low-CVSS findings grows week by week
(a feature drift a distribution test sees while the model still fits), and from
:data:`GLOBEX_BATCH_WEEK` a growing share is closed in same-day batches whatever the CVSS (then the
model's R² falls). Each tenant has ``rows`` findings spread evenly over its own weeks.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import tomli_w

from dataroom.catalog import SERVICE_GROUP

TENANTS = ("acme", "globex", "initech")
CVE_COUNT = 2000
DEFAULT_ROWS = 2000

TIMELINE_START = dt.date(2024, 1, 1)  # a Monday: weekly windows start on Mondays (date_trunc('week'))
TIMELINE_WEEKS = 64
ONBOARDING_WEEK = {"acme": 0, "globex": 16, "initech": 36}
GLOBEX_SHIFT_WEEK = 46  # low-CVSS share starts growing (0 → 80 % over 8 weeks)
GLOBEX_SHIFT_WEEKS = 8
GLOBEX_SHIFT_MAX = 0.8
GLOBEX_BATCH_WEEK = 56  # same-day batch fixes start growing (0 → 60 % by the last week)
GLOBEX_BATCH_MAX = 0.6
LOW_CVSS_SHARE = 0.3
MONITOR_USER = "svc-monitor"  # the model monitor's service principal (catalog group MONITOR_GROUP)
MONITOR_GROUP = SERVICE_GROUP
MONITOR_PROJECT = "model-monitoring"
DEMO_PROJECT = "remediation-by-tenant"  # the notebook's project, where the demo model's hypothesis lives  # the shifted findings come from the lowest-CVSS 30 % of CVEs

FINDINGS_COLUMNS = {
    "finding_id": "public",
    "asset_id": "internal",
    "cve_id": "public",
    "cvss": "public",
    "severity": "public",
    "detected_at": "internal",
    "remediated_at": "internal",
    "remediation_days": "internal",
    "asset_hostname": "quasi_identifier",
    "asset_ip": "quasi_identifier",
    "analyst_email": "pii",
    "analyst_name": "pii",
}
ASSETS_COLUMNS = {
    "asset_id": "internal",
    "asset_hostname": "quasi_identifier",
    "asset_ip": "quasi_identifier",
    "os": "internal",
    "business_unit": "internal",
    "owner_email": "pii",
}
CVE_COLUMNS = {"cve_id": "public", "cvss": "public", "published_at": "public", "description": "public"}

# remediation_days = intercept + slope * cvss + noise, per tenant; initech ignores CVSS entirely.
_REMEDIATION_SQL = {
    "acme": "greatest(0, 4 + 9.0 * cvss + 5 * {noise})",
    "globex": "greatest(0, 12 + 6.5 * cvss + 9 * {noise})",
    "initech": "CASE WHEN random() < 0.5 THEN 30 + 4 * {noise} ELSE 90 + 10 * {noise} END",
}
# Standard normal noise by Box-Muller from two uniforms.
_NOISE = "(sqrt(-2 * ln(greatest(random(), 1e-12))) * cos(2 * pi() * random()))"
_FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Donald", "Radia", "Linus"]
_LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Hamilton", "Knuth", "Perlman", "Torvalds"]


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def generate(home: Path, rows: int = DEFAULT_ROWS, seed: float = 0.42, files_per_table: int = 4) -> Path:
    """Write demo Parquet for every tenant plus ``catalog.toml`` under ``home``; returns the catalog path.

    ``rows`` is the number of findings per tenant. Existing demo data under ``home/data`` is replaced.
    """
    if rows < 1:
        raise ValueError("rows must be at least 1")
    data_dir = home / "data"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    con = duckdb.connect()
    con.execute(f"SELECT setseed({seed})")
    con.execute(
        f"""CREATE TABLE cve AS
        SELECT printf('CVE-%d-%05d', 2018 + i % 7, 10000 + i) AS cve_id,
               round(1 + 9 * random(), 1) AS cvss,
               DATE '2018-01-01' + CAST(floor(random() * 2500) AS INTEGER) AS published_at,
               'Demo vulnerability ' || i || ' in component ' || (i % 97) AS description
        FROM range({CVE_COUNT}) t(i)"""
    )
    _write(con, "SELECT * FROM cve ORDER BY cve_id", data_dir / "reference" / "cve", 1)
    assets = max(50, rows // 10)
    for n, tenant in enumerate(TENANTS):
        con.execute(
            f"""CREATE OR REPLACE TABLE assets AS
            SELECT i AS asset_id,
                   printf('{tenant}-host-%05d.corp.example', i) AS asset_hostname,
                   printf('10.{n + 10}.%d.%d', (i // 250) % 256, i % 250 + 1) AS asset_ip,
                   {_sql_list(['ubuntu-22.04', 'windows-2022', 'rhel-9', 'debian-12'])}[1 + i % 4] AS os,
                   {_sql_list(['payments', 'retail', 'platform', 'research'])}[1 + (i * 7) % 4] AS business_unit,
                   printf('owner%d@{tenant}.example', i % 40) AS owner_email
            FROM range({assets}) t(i)"""
        )
        _write(con, "SELECT * FROM assets", data_dir / tenant / "assets", 1)
        remediation = _REMEDIATION_SQL[tenant].format(noise=_NOISE)
        first_week = ONBOARDING_WEEK[tenant]
        span_days = (TIMELINE_WEEKS - first_week) * 7
        if tenant == "globex":
            week = f"((epoch(detected_at) - epoch(TIMESTAMP '{TIMELINE_START}')) / {7 * 86400})"
            shift = f"least(greatest(({week} - {GLOBEX_SHIFT_WEEK}) / {GLOBEX_SHIFT_WEEKS}, 0), 1) * {GLOBEX_SHIFT_MAX}"
            batch = f"least(greatest(({week} - {GLOBEX_BATCH_WEEK}) / {TIMELINE_WEEKS - GLOBEX_BATCH_WEEK}, 0), 1) * {GLOBEX_BATCH_MAX}"
            cve_pick = f"CASE WHEN random() < {shift} THEN floor(random() * {int(CVE_COUNT * LOW_CVSS_SHARE)}) ELSE floor(random() * {CVE_COUNT}) END"
            remediation = f"CASE WHEN random() < {batch} THEN greatest(0, 1 + {{noise}}) ELSE {remediation} END".format(noise=_NOISE)
        else:
            cve_pick = f"floor(random() * {CVE_COUNT})"
        findings = f"""
            WITH stamped AS (
                SELECT i, CAST(floor(random() * {assets}) AS INTEGER) AS asset_id,
                       TIMESTAMP '{TIMELINE_START}' + INTERVAL {first_week * 7} DAY
                         + to_seconds(CAST(floor(random() * {span_days} * 86400) AS BIGINT)) AS detected_at,
                       CAST(floor(random() * 10) AS INTEGER) AS analyst
                FROM range({rows}) t(i)
            ), base AS (
                SELECT *, CAST({cve_pick} AS INTEGER) AS cvss_rank FROM stamped
            ), joined AS (
                SELECT b.*, c.cve_id, c.cvss FROM base b
                JOIN (SELECT *, row_number() OVER (ORDER BY cvss, cve_id) - 1 AS rank FROM cve) c ON c.rank = b.cvss_rank
            ), timed AS (
                SELECT *, round({remediation}, 1) AS remediation_days FROM joined
            )
            SELECT printf('{tenant}-f%08d', i) AS finding_id, t.asset_id, cve_id, cvss,
                   CASE WHEN cvss >= 9 THEN 'critical' WHEN cvss >= 7 THEN 'high' WHEN cvss >= 4 THEN 'medium' ELSE 'low' END AS severity,
                   detected_at,
                   detected_at + to_seconds(CAST(remediation_days * 86400 AS BIGINT)) AS remediated_at,
                   remediation_days,
                   a.asset_hostname, a.asset_ip,
                   lower({_sql_list(_FIRST)}[1 + analyst] || '.' || {_sql_list(_LAST)}[1 + analyst]) || '@{tenant}.example' AS analyst_email,
                   {_sql_list(_FIRST)}[1 + analyst] || ' ' || {_sql_list(_LAST)}[1 + analyst] AS analyst_name
            FROM timed t JOIN assets a USING (asset_id)
            ORDER BY i"""
        _write(con, findings, data_dir / tenant / "findings", files_per_table if rows >= 100_000 else 1)
    con.close()
    catalog_path = home / "catalog.toml"
    catalog_path.write_text(demo_catalog_toml())
    return catalog_path


def _write(con: duckdb.DuckDBPyConnection, query: str, directory: Path, files: int) -> None:
    """Write ``query`` as ``files`` Parquet files (split by row number) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _out AS {query}")
    total = con.execute("SELECT count(*) FROM _out").fetchall()[0][0]
    per_file = -(-total // files)
    for part in range(files):
        target = directory / f"part-{part:03d}.parquet"
        con.execute(
            f"COPY (SELECT * FROM _out LIMIT {per_file} OFFSET {part * per_file}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)"
        )
    con.execute("DROP TABLE _out")


def demo_catalog(today: dt.date | None = None) -> dict:
    """The demo catalog as a plain dict (what ``catalog.toml`` holds)."""
    today = today or dt.date.today()
    tables: dict[str, dict] = {
        "reference.cve": {
            "location": "data/reference/cve",
            "description": "Shared CVE reference data (no tenant)",
            "columns": CVE_COLUMNS,
            "unique": ["cve_id"],  # one row per CVE (checked when the room copies the table)
        }
    }
    for tenant in TENANTS:
        tables[f"{tenant}.findings"] = {
            "tenant": tenant,
            "location": f"data/{tenant}/findings",
            "description": f"Vulnerability findings of tenant {tenant}",
            "columns": FINDINGS_COLUMNS,
        }
        tables[f"{tenant}.assets"] = {
            "tenant": tenant,
            "location": f"data/{tenant}/assets",
            "description": f"Asset inventory of tenant {tenant}",
            "columns": ASSETS_COLUMNS,
        }
    expires = today + dt.timedelta(days=365)
    return {
        "tenants": {t: {"name": t.capitalize() + " (demo tenant)"} for t in TENANTS},
        "tables": tables,
        "users": {
            "alice": {"groups": ["data-scientists"], "email": "alice@dataroom.example"},
            "bob": {"groups": ["data-scientists"], "email": "bob@dataroom.example"},
            "sam": {"groups": ["security"], "email": "sam@dataroom.example"},
            "mallory": {"groups": ["data-scientists"], "email": "mallory@dataroom.example"},
            # the model monitor's service principal: its queries take the governed path like anyone's
            MONITOR_USER: {"groups": [MONITOR_GROUP], "email": "svc-monitor@dataroom.example"},
        },
        "projects": {
            "remediation-acme": {
                "description": "Does remediation time grow with CVSS for acme?",
                "members": ["alice", "bob"],
                "tenants": ["acme"],
                "tables": ["acme.findings", "acme.assets", "reference.cve"],
                "multi_tenant": False,
                "expires": expires,
            },
            # Cross-tenant benchmark under the default output policy: aggregates only, every result
            # row backed by at least 10 rows and 2 tenants (dataroom/outputs/aggregation.py).
            "remediation-benchmark": {
                "description": "Compare remediation times across all tenants (aggregates backed by several tenants)",
                "members": ["alice"],
                "tenants": list(TENANTS),
                "tables": [f"{t}.findings" for t in TENANTS] + ["reference.cve"],
                "multi_tenant": True,
                "expires": expires,
            },
            # Per-tenant comparison is this project's purpose, so it is approved without an output
            # policy: its rows stay in the room, and leave only through a two-person release.
            DEMO_PROJECT: {
                "description": "Fit the remediation-time model per tenant (row-level, no output policy: per-tenant results are its purpose)",
                "members": ["alice"],
                "tenants": list(TENANTS),
                "tables": [f"{t}.findings" for t in TENANTS] + ["reference.cve"],
                "multi_tenant": True,
                "output_policy": {"enabled": False},
                "expires": expires,
            },
            MONITOR_PROJECT: {
                "description": "Model monitoring: per-tenant performance and drift of registered models (service principal)",
                "members": [MONITOR_USER],
                "tenants": list(TENANTS),
                "tables": [f"{t}.findings" for t in TENANTS],
                "multi_tenant": True,
                "column_classes": ["public", "internal"],
                "output_policy": {"enabled": False},  # per-tenant metrics are what the monitor computes
                "expires": expires,
            },
        },
    }


def demo_catalog_toml(today: dt.date | None = None) -> str:
    header = (
        "# Data room catalog (demo). Every column needs a classification:\n"
        "# public | internal | quasi_identifier | pii. Unclassified columns are treated as pii.\n"
        "# Locations are local paths (relative to this file) or s3:// prefixes.\n\n"
    )
    return header + tomli_w.dumps(demo_catalog(today))

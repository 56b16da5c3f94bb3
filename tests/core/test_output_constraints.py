"""Aggregation constraints (issue 11, item 1): no released group is backed by too few rows or tenants.

Project ``remediation-benchmark`` (three tenants) has the default output policy: aggregates only,
every result row backed by at least 10 rows and 2 tenants. Results are checked against the raw
Parquet read by DuckDB directly in the test, so the rewrite cannot agree with itself by mistake.
The hostile cases at the end list how each attempt to get a single tenant's group out is held.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from dataroom.audit.reader import records as audit_records
from dataroom.catalog import load_catalog
from dataroom.pipeline import Outcome, QueryService
from dataroom.settings import Settings

BENCH = "remediation-benchmark"
TENANTS = ("acme", "globex", "initech")
ALL_FINDINGS = " UNION ALL ".join(f"SELECT * FROM {t}.findings" for t in TENANTS)


@pytest.fixture
def raw(dataroom_home: Path):
    """Raw DuckDB over the demo Parquet, every row labelled with its tenant: the ground truth."""
    catalog = load_catalog(dataroom_home / "catalog.toml")
    con = duckdb.connect()
    parts = []
    for tenant in TENANTS:
        location = catalog.resolve_location(catalog.tables[f"{tenant}.findings"])
        parts.append(f"SELECT *, '{tenant}' AS tenant FROM read_parquet('{location}/**/*.parquet')")
    con.execute("CREATE VIEW findings AS " + " UNION ALL ".join(parts))
    location = catalog.resolve_location(catalog.tables["reference.cve"])
    con.execute(f"CREATE VIEW cve AS SELECT * FROM read_parquet('{location}/**/*.parquet')")
    yield con
    con.close()


def _rows(outcome) -> list[tuple]:
    assert outcome.outcome is Outcome.ALLOWED, (outcome.reasons, outcome.error)
    return [tuple(r.values()) for r in outcome.table.to_pylist()]


def _completion(home: Path, decision_id: str) -> dict:
    return next(r for r in audit_records(Settings(), types=["completion"]) if r["decision_id"] == decision_id)


def test_group_by_over_three_tenants_releases_only_supported_groups(service: QueryService, raw, dataroom_home: Path) -> None:
    sql = f"SELECT cve_id, count(*) AS n, avg(remediation_days) AS days FROM ({ALL_FINDINGS}) GROUP BY cve_id"
    outcome = service.run("alice", BENCH, sql)
    truth = raw.execute(
        "SELECT cve_id, count(*) AS n, avg(remediation_days), count(DISTINCT tenant) AS tenants FROM findings GROUP BY cve_id"
    ).fetchall()
    supported = {r[0]: r[1:3] for r in truth if r[1] >= 10 and r[3] >= 2}
    small = [r for r in truth if not (r[1] >= 10 and r[3] >= 2)]
    assert small and supported  # the demo data has both kinds: the test can fail either way
    released = {r[0]: r[1:] for r in _rows(outcome)}
    assert released.keys() == supported.keys()
    assert all(released[k][0] == supported[k][0] and released[k][1] == pytest.approx(supported[k][1]) for k in released)
    assert outcome.result.suppression.suppressed == len(small) and outcome.result.suppression.groups == len(truth)
    assert outcome.summary()["suppressed"]["rows"] == len(small)
    record = _completion(dataroom_home, outcome.decision_id)["output_policy"]
    assert (record["suppressed"], record["groups"], record["min_rows"], record["min_tenants"]) == (len(small), len(truth), 10, 2)
    assert "__dr_tenants" in record["executed_sql"]
    assert not any(name.startswith("__dr") for name in outcome.table.column_names)


def test_single_tenant_project_is_unaffected(service: QueryService, raw) -> None:
    sql = "SELECT cve_id, count(*) AS n FROM acme.findings GROUP BY cve_id ORDER BY cve_id"
    outcome = service.run("alice", "remediation-acme", sql)
    truth = raw.execute("SELECT cve_id, count(*) FROM findings WHERE tenant = 'acme' GROUP BY cve_id ORDER BY cve_id").fetchall()
    assert _rows(outcome) == truth and any(n < 10 for _, n in truth)
    assert outcome.result.suppression is None and outcome.summary()["suppressed"] is None


def _supported(raw, group_sql: str) -> list[tuple]:
    return raw.execute(group_sql).fetchall()


@pytest.mark.parametrize(
    "name, sql, truth",
    [
        (
            "group by all + having",
            f"SELECT severity, count(*) AS n FROM ({ALL_FINDINGS}) GROUP BY ALL HAVING count(*) > 100 ORDER BY severity",
            "SELECT severity, count(*) FROM findings GROUP BY ALL HAVING count(*) > 100 AND count(DISTINCT tenant) >= 2 ORDER BY severity",
        ),
        (
            "rollup",
            f"SELECT severity, cvss > 7 AS high, count(*) AS n FROM ({ALL_FINDINGS}) GROUP BY ROLLUP (severity, cvss > 7) ORDER BY ALL",
            "SELECT severity, cvss > 7, count(*) FROM findings GROUP BY ROLLUP (severity, cvss > 7) HAVING count(*) >= 10 AND count(DISTINCT tenant) >= 2 ORDER BY ALL",
        ),
        (
            "distinct and order by an aggregate, limit after suppression",
            f"SELECT DISTINCT cve_id, count(*) AS n FROM ({ALL_FINDINGS}) GROUP BY cve_id ORDER BY count(*) DESC, cve_id LIMIT 3",
            "SELECT cve_id, count(*) FROM findings GROUP BY cve_id HAVING count(*) >= 10 AND count(DISTINCT tenant) >= 2 ORDER BY count(*) DESC, cve_id LIMIT 3",
        ),
        (
            "union all of aggregates, each branch constrained",
            f"SELECT 'all' AS s, count(*) AS n FROM ({ALL_FINDINGS}) UNION ALL SELECT 'acme', count(*) FROM acme.findings ORDER BY 1",
            "SELECT 'all', count(*) FROM findings",
        ),
        (
            "join with reference.cve counts findings, not joined rows",
            f"SELECT c.cvss >= 9 AS critical, count(*) AS n FROM ({ALL_FINDINGS}) f JOIN reference.cve c ON f.cve_id = c.cve_id GROUP BY 1 ORDER BY 1",
            "SELECT c.cvss >= 9, count(*) FROM findings f JOIN cve c ON f.cve_id = c.cve_id GROUP BY 1 HAVING count(DISTINCT tenant) >= 2 ORDER BY 1",
        ),
        (
            "CTE of all tenants, window-free",
            f"WITH f AS ({ALL_FINDINGS}) SELECT severity, stddev(remediation_days) > 0 AS varies, count(*) AS n FROM f GROUP BY severity ORDER BY severity",
            "SELECT severity, stddev(remediation_days) > 0, count(*) FROM findings GROUP BY severity HAVING count(*) >= 10 AND count(DISTINCT tenant) >= 2 ORDER BY severity",
        ),
    ],
)
def test_rewrite_corner_cases_match_raw_duckdb(service: QueryService, raw, name: str, sql: str, truth: str) -> None:
    outcome = service.run("alice", BENCH, sql)
    assert _rows(outcome) == [tuple(r) for r in _supported(raw, truth)], name


@pytest.mark.parametrize(
    "sql, code, advice",
    [
        (f"SELECT cve_id, severity FROM ({ALL_FINDINGS})", "output_not_checkable", "aggregate them"),
        (f"SELECT cve_id, count(*) OVER (PARTITION BY cve_id) FROM ({ALL_FINDINGS})", "output_not_checkable", "aggregate them"),
        (f"SELECT severity, count(*), rank() OVER (ORDER BY count(*)) FROM ({ALL_FINDINGS}) GROUP BY 1", "output_not_checkable", "window functions"),
        (f"SELECT avg(n) FROM (SELECT cve_id, count(*) AS n FROM ({ALL_FINDINGS}) GROUP BY cve_id)", "output_not_checkable", "nested aggregates"),
        (f"SELECT count(*) FROM ({ALL_FINDINGS}) UNION SELECT count(*) FROM ({ALL_FINDINGS})", "output_not_checkable", "UNION ALL"),
        (f"SELECT count(*) FROM ({ALL_FINDINGS}) WHERE cve_id IN (SELECT cve_id FROM acme.findings)", "output_not_checkable", "subquery"),
        (f"SELECT severity, max(remediation_days) FROM ({ALL_FINDINGS}) GROUP BY 1", "output_disclosive_aggregate", "max()"),
        (f"SELECT severity, list(cve_id) FROM ({ALL_FINDINGS}) GROUP BY 1", "output_disclosive_aggregate", "list()"),
        ("SELECT cve_id, count(*) FROM acme.findings GROUP BY cve_id", "output_partial_tenants", "globex.findings"),
        (
            "SELECT count(*) FROM acme.findings a JOIN globex.findings g ON a.cve_id = g.cve_id JOIN initech.findings i ON i.cve_id = a.cve_id",
            "output_not_checkable",
            "join of two tenant tables",
        ),
    ],
)
def test_what_cannot_be_constrained_is_denied_with_advice(service: QueryService, sql: str, code: str, advice: str) -> None:
    outcome = service.run("alice", BENCH, sql)
    assert outcome.outcome is Outcome.DENIED
    assert code in {r.code for r in outcome.reasons}
    assert any(advice in r.message for r in outcome.reasons if r.code == code), outcome.reasons


# -- hostile attempts to get a single tenant's (or a small) group out ----------------------------------
def test_differencing_two_tenant_subsets_is_denied(service: QueryService) -> None:
    """Held by the tenant-coverage rule: every query reads all of the project's tenants together."""
    two = "SELECT count(*) FROM (SELECT * FROM acme.findings UNION ALL SELECT * FROM globex.findings)"
    outcome = service.run("alice", BENCH, two)
    assert [r.code for r in outcome.reasons] == ["output_partial_tenants"] and "initech.findings" in outcome.reasons[0].message


def test_arithmetic_on_counts_does_not_change_support(service: QueryService, raw) -> None:
    """``count(*) - 9`` is just a value: support is counted from source rows, whatever the output says."""
    sql = f"SELECT cve_id, count(*) - 9 AS n FROM ({ALL_FINDINGS}) GROUP BY cve_id"
    released = {r[0] for r in _rows(service.run("alice", BENCH, sql))}
    truth = {r[0] for r in raw.execute("SELECT cve_id FROM findings GROUP BY cve_id HAVING count(*) >= 10 AND count(DISTINCT tenant) >= 2").fetchall()}
    assert released == truth


@pytest.mark.parametrize(
    "inflate",
    [
        " UNION ALL ".join([f"SELECT * FROM acme.findings"] * 10) + " UNION ALL SELECT * FROM globex.findings UNION ALL SELECT * FROM initech.findings",
        f"SELECT f.* FROM ({ALL_FINDINGS}) f CROSS JOIN reference.cve",
        f"SELECT *, unnest(range(20)) AS k FROM ({ALL_FINDINGS})",
    ],
    ids=["same table ten times", "cross join with reference", "unnest"],
)
def test_duplicating_rows_does_not_inflate_support(service: QueryService, raw, inflate: str) -> None:
    """Held by counting rows by identity whenever a row could be repeated."""
    sql = f"SELECT cve_id, count(DISTINCT severity) AS s FROM ({inflate}) GROUP BY cve_id"
    outcome = service.run("alice", BENCH, sql)
    released = {r[0] for r in _rows(outcome)}
    truth = {r[0] for r in raw.execute("SELECT cve_id FROM findings GROUP BY cve_id HAVING count(*) >= 10 AND count(DISTINCT tenant) >= 2").fetchall()}
    assert released == truth


def test_limit_and_order_cannot_reveal_a_suppressed_group(service: QueryService, raw) -> None:
    """ORDER BY/LIMIT run after suppression: the smallest group shown is a supported one."""
    sql = f"SELECT cve_id, count(*) AS n FROM ({ALL_FINDINGS}) GROUP BY cve_id ORDER BY n, cve_id LIMIT 1"
    truth = raw.execute(
        "SELECT cve_id, count(*) AS n FROM findings GROUP BY cve_id HAVING n >= 10 AND count(DISTINCT tenant) >= 2 ORDER BY n, cve_id LIMIT 1"
    ).fetchall()
    assert _rows(service.run("alice", BENCH, sql)) == truth


def test_error_messages_do_not_describe_suppressed_groups(service: QueryService, dataroom_home: Path) -> None:
    """A cast that fails only on a small group's value: the user gets a generic message, the audit the real one."""
    sql = f"SELECT cve_id, CAST(CASE WHEN count(*) < 3 THEN cve_id ELSE '1' END AS INTEGER) AS x FROM ({ALL_FINDINGS}) GROUP BY cve_id"
    outcome = service.run("alice", BENCH, sql)
    assert outcome.outcome is Outcome.INVALID
    assert "CVE-" not in outcome.error and "not shown" in outcome.error
    assert "CVE-" in _completion(dataroom_home, outcome.decision_id)["error"]


def test_stars_never_show_the_rewrite_columns(service: QueryService) -> None:
    sql = f"SELECT *, count(*) AS n FROM (SELECT severity FROM ({ALL_FINDINGS})) GROUP BY ALL ORDER BY 1"
    outcome = service.run("alice", BENCH, sql)
    assert outcome.table.column_names == ["severity", "n"]


def test_registry_output_policy_is_approved_with_the_project_and_applied(service: QueryService) -> None:
    """A stricter minimum proposed for a project is what its queries get once approved."""
    registry = service.registry
    registry.propose(
        "alice", "bench-strict", justification="strict benchmark", tenants=list(TENANTS),
        tables=[f"{t}.findings" for t in TENANTS], multi_tenant=True, output_policy={"min_rows": 1000},
    )
    approved = registry.approve("sam", "bench-strict", justification="ok at 1000 rows")
    assert approved.output_policy == {"min_rows": 1000, "min_tenants": 2}
    outcome = service.run("alice", "bench-strict", f"SELECT severity, count(*) AS n FROM ({ALL_FINDINGS}) GROUP BY 1")
    released = _rows(outcome)
    assert released and all(n >= 1000 for _, n in released) and outcome.result.suppression.suppressed > 0
    with pytest.raises(Exception, match="min_tenants must be between 1"):
        registry.propose("alice", "bench-bad", justification="x", tenants=["acme"], tables=["acme.findings"], output_policy={"min_tenants": 2})


@pytest.mark.parametrize(
    "union",
    [
        "SELECT *, 'acme' AS t FROM acme.findings UNION ALL SELECT *, 'globex' FROM globex.findings UNION ALL SELECT *, 'initech' FROM initech.findings",
        "SELECT * FROM acme.findings WHERE false UNION ALL SELECT * FROM globex.findings UNION ALL SELECT * FROM initech.findings",
        "SELECT cve_id FROM acme.findings UNION ALL SELECT cve_id FROM globex.findings UNION ALL SELECT severity FROM initech.findings",
    ],
    ids=["per-tenant label", "one tenant filtered out", "another column for one tenant"],
)
def test_tenant_branches_must_be_the_same_query(service: QueryService, union: str) -> None:
    """Held by branch uniformity: a label or filter on one tenant's branch would single it out
    inside a supported group (count(*) FILTER (WHERE t = 'acme' AND cve_id = ...)) or make two
    all-tenant queries subtractable."""
    outcome = service.run("alice", BENCH, f"SELECT count(*) AS n, count(*) FILTER (WHERE cve_id = 'CVE-2019-10330') AS x FROM ({union})")
    assert outcome.outcome is Outcome.DENIED
    assert [r.code for r in outcome.reasons] == ["output_not_checkable"] and "same query over each tenant" in outcome.reasons[0].message


def test_a_join_on_a_reference_key_counts_rows_cheaply_and_correctly(service: QueryService, raw, dataroom_home: Path) -> None:
    """reference.cve declares cve_id unique (checked when its copy is built): a join on it cannot
    repeat a finding, so rows are counted without identities, and the result equals raw DuckDB's."""
    sql = f"SELECT c.cvss >= 9 AS critical, count(*) AS n FROM ({ALL_FINDINGS}) f JOIN reference.cve c USING (cve_id) GROUP BY 1 ORDER BY 1"
    outcome = service.run("alice", BENCH, sql)
    truth = raw.execute(
        "SELECT c.cvss >= 9, count(*) FROM findings f JOIN cve c USING (cve_id) GROUP BY 1 HAVING count(*) >= 10 AND count(DISTINCT tenant) >= 2 ORDER BY 1"
    ).fetchall()
    assert _rows(outcome) == truth
    assert _completion(dataroom_home, outcome.decision_id)["output_policy"]["counting"] == "rows"


def test_a_join_on_a_non_key_counts_findings_by_identity(service: QueryService, raw, dataroom_home: Path) -> None:
    """Joined on cvss (not a key), every finding meets many CVEs: support is the distinct findings."""
    sql = f"SELECT f.severity, count(*) AS n FROM ({ALL_FINDINGS}) f JOIN reference.cve c ON f.cvss = c.cvss WHERE c.cvss > 9.8 GROUP BY 1 ORDER BY 1"
    outcome = service.run("alice", BENCH, sql)
    truth = raw.execute(
        "SELECT f.severity, count(*) FROM findings f JOIN cve c ON f.cvss = c.cvss WHERE c.cvss > 9.8 GROUP BY 1 "
        "HAVING count(DISTINCT (f.tenant, f.finding_id)) >= 10 AND count(DISTINCT f.tenant) >= 2 ORDER BY 1"
    ).fetchall()
    assert _rows(outcome) == truth
    assert _completion(dataroom_home, outcome.decision_id)["output_policy"]["counting"] == "identity"


def test_a_key_the_data_does_not_honour_refuses_the_table(dataroom_home: Path) -> None:
    """A catalog that declares a repeating column unique would let a join inflate the support:
    the copy's build checks the key, and the query fails closed instead."""
    catalog_file = dataroom_home / "catalog.toml"
    catalog_file.write_text(catalog_file.read_text().replace('unique = [\n    "cve_id",\n]', 'unique = [\n    "cvss",\n]'))
    assert '"cvss",\n]' in catalog_file.read_text()
    svc = QueryService(Settings())
    try:
        sql = f"SELECT count(*) AS n FROM ({ALL_FINDINGS}) f JOIN reference.cve c USING (cvss)"
        outcome = svc.run("alice", BENCH, sql)
        assert outcome.outcome is Outcome.ERROR and "declares (cvss) unique in reference.cve" in outcome.error
    finally:
        svc.close()

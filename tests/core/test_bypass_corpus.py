"""Hostile SQL: every known way around a naive column check is denied or harmless, and audited.

Each case runs through the real pipeline (DuckDB parser, regopy, audit log, locked DuckDB session)
as alice in project remediation-acme. "Harmless" means executed without any PII value or
withheld column in the output.
"""

from __future__ import annotations

import pytest

from dataroom.audit import attempts
from dataroom.pipeline import Outcome

# Values that only exist in PII columns of the demo data.
PII_MARKERS = ("@acme.example", "@globex.example", "@initech.example", "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov")

DENIED = {
    # whole-table and dynamic SQL tricks
    "query_fn": ("SELECT * FROM query('SELECT analyst_email FROM acme.findings')", "table_function"),
    "query_table_fn": ("SELECT * FROM query_table('acme.findings')", "table_function"),
    # file and URL reads
    "read_parquet": ("SELECT * FROM read_parquet('/etc/passwd')", "table_function"),
    "read_csv": ("SELECT * FROM read_csv('/etc/passwd')", "table_function"),
    "glob": ("SELECT * FROM glob('/*')", "table_function"),
    "replacement_scan": ("SELECT * FROM 'data/acme/findings/part-000.parquet'", "file_read"),
    "replacement_scan_url": ("SELECT * FROM 'https://example.com/x.parquet'", "file_read"),
    # statements that are not reads
    "copy": ("COPY acme.findings TO '/tmp/out.csv'", "not_read_only"),
    "export": ("EXPORT DATABASE '/tmp/exported'", "not_read_only"),
    "attach": ("ATTACH '/tmp/other.db' AS other", "not_read_only"),
    "install": ("INSTALL httpfs", "not_read_only"),
    "load": ("LOAD httpfs", "not_read_only"),
    "set": ("SET enable_external_access = true", "not_read_only"),
    "pragma": ("PRAGMA enable_profiling", "not_read_only"),
    "create_secret": ("CREATE SECRET s (TYPE s3, KEY_ID 'x', SECRET 'y')", "not_read_only"),
    "create_macro": ("CREATE MACRO leak() AS TABLE SELECT * FROM acme.findings", "not_read_only"),
    "prepare": ("PREPARE p AS SELECT analyst_email FROM acme.findings", "not_read_only"),
    "pivot_statement": ("PIVOT acme.findings ON severity USING count(*)", "not_read_only"),
    "explain": ("EXPLAIN SELECT analyst_email FROM acme.findings", "not_read_only"),
    "two_statements": ("SELECT cvss FROM acme.findings; SELECT analyst_email FROM acme.findings", "multiple_statements"),
    "select_then_copy": ("SELECT 1; COPY acme.findings TO '/tmp/x.csv'", "multiple_statements"),
    # PII referenced anywhere
    "pii_select": ("SELECT analyst_email FROM acme.findings", "pii_column"),
    "pii_where": ("SELECT count(*) FROM acme.findings WHERE analyst_email LIKE 'a%'", "pii_column"),
    "pii_join": ("SELECT count(*) FROM acme.findings f JOIN acme.assets a ON a.owner_email = f.analyst_email", "pii_column"),
    "pii_group": ("SELECT count(*) FROM acme.findings GROUP BY analyst_name", "pii_column"),
    "pii_order": ("SELECT cvss FROM acme.findings ORDER BY analyst_name LIMIT 1", "pii_column"),
    "pii_window": ("SELECT rank() OVER (PARTITION BY analyst_email ORDER BY cvss) FROM acme.findings", "pii_column"),
    "pii_having": ("SELECT severity FROM acme.findings GROUP BY severity HAVING max(analyst_email) > 'a'", "pii_column"),
    "pii_pivot": ("SELECT * FROM acme.findings PIVOT (count(*) FOR analyst_name IN ('Ada Lovelace'))", "pii_column"),
    "pii_unpivot": ("UNPIVOT acme.findings ON analyst_email, analyst_name INTO NAME k VALUE v", "pii_column"),
    "pii_subquery": ("SELECT x FROM (SELECT analyst_email AS x FROM acme.findings)", "pii_column"),
    "pii_cte": ("WITH c AS (SELECT analyst_name AS n FROM acme.findings) SELECT n FROM c", "pii_column"),
    "pii_scalar_subquery": ("SELECT (SELECT max(owner_email) FROM acme.assets)", "pii_column"),
    "pii_exists": ("SELECT count(*) FROM acme.findings f WHERE EXISTS (SELECT 1 FROM acme.assets a WHERE a.owner_email LIKE 'x%')", "pii_column"),
    "pii_list_agg": ("SELECT list(analyst_email) FROM acme.findings", "pii_column"),
    "pii_string_agg": ("SELECT string_agg(analyst_email, ',') FROM acme.findings", "pii_column"),
    "pii_any_value": ("SELECT any_value(analyst_name) FROM acme.findings", "pii_column"),
    "pii_min": ("SELECT min(owner_email) FROM acme.assets", "pii_column"),
    "pii_lambda": ("SELECT list_transform([1], lambda x: x || analyst_email) FROM acme.findings", "pii_column"),
    "pii_arrow_lambda": ("SELECT list_transform([1], x -> analyst_email) FROM acme.findings", "pii_column"),
    "pii_filter_clause": ("SELECT count(*) FILTER (WHERE analyst_email IS NOT NULL) FROM acme.findings", "pii_column"),
    "pii_case": ("SELECT CASE WHEN analyst_email = '' THEN 1 END FROM acme.findings", "pii_column"),
    "pii_qualified": ("SELECT acme.findings.analyst_email FROM acme.findings", "pii_column"),
    "pii_alias_qualified": ("SELECT f.analyst_email FROM acme.findings AS f", "pii_column"),
    "pii_upper_case": ("SELECT ANALYST_EMAIL FROM ACME.FINDINGS", "pii_column"),
    "pii_quoted_mixed_case": ('SELECT "Analyst_Email" FROM "acme"."findings"', "pii_column"),
    "pii_comment_tricks": ("SELECT /* cvss */ analyst_email -- , cvss\nFROM acme.findings", "pii_column"),
    "pii_using": ("SELECT count(*) FROM acme.findings JOIN acme.assets USING (asset_id, asset_hostname) WHERE owner_email > ''", "pii_column"),
    "pii_struct": ("SELECT {'e': analyst_email} FROM acme.findings", "pii_column"),
    "pii_struct_field": ("SELECT s.e FROM (SELECT {'e': analyst_email} AS s FROM acme.findings)", "pii_column"),
    "pii_qualify": ("SELECT cvss FROM acme.findings QUALIFY row_number() OVER (ORDER BY analyst_email) = 1", "pii_column"),
    # tenancy and project scope
    "union_two_tenants": ("SELECT cvss FROM acme.findings UNION ALL SELECT cvss FROM globex.findings", "cross_tenant"),
    "other_tenant": ("SELECT count(*) FROM globex.findings", "table_not_in_project"),
    "other_tenant_in_cte": ("WITH g AS (SELECT cvss FROM globex.findings) SELECT count(*) FROM g", "table_not_in_project"),
    "other_tenant_in_subquery": ("SELECT count(*) FROM acme.findings WHERE cvss IN (SELECT cvss FROM initech.findings)", "cross_tenant"),
    # catalogue snooping
    "information_schema": ("SELECT * FROM information_schema.columns", "unknown_table"),
    "duckdb_settings": ("SELECT * FROM duckdb_settings()", "table_function"),
    "duckdb_views": ("SELECT sql FROM duckdb_views()", "table_function"),
    "show_tables": ("SHOW TABLES", "unknown_table"),
    "registered_source": ("SELECT * FROM __source_acme_findings", "unknown_table"),
    "unqualified_table": ("SELECT cvss FROM findings", "unknown_table"),
    "other_catalog": ("SELECT cvss FROM memory.acme.findings", "unknown_table"),
    "unresolved_column": ("SELECT secret_column FROM acme.findings", "unresolved_column"),
    "parameter": ("SELECT cvss FROM acme.findings WHERE cvss > $1", "parameters"),
}

HARMLESS = {
    "star": "SELECT * FROM acme.findings LIMIT 5",
    "star_exclude": "SELECT * EXCLUDE (cvss) FROM acme.findings LIMIT 5",
    "star_replace": "SELECT * REPLACE (cvss * 2 AS cvss) FROM acme.findings LIMIT 5",
    "qualified_star": "SELECT f.* FROM acme.findings f LIMIT 5",
    "whole_row": "SELECT f FROM acme.findings f LIMIT 5",
    "whole_row_to_json": "SELECT to_json(f) FROM acme.findings f LIMIT 5",
    "columns_star": "SELECT COLUMNS(*) FROM acme.findings LIMIT 5",
    "columns_lambda": "SELECT COLUMNS(lambda c: c LIKE '%e%') FROM acme.findings LIMIT 5",
    "struct_pack_star": "SELECT struct_pack(*) FROM acme.findings LIMIT 5",
    "summarize": "SUMMARIZE acme.findings",
    "describe": "DESCRIBE acme.findings",
    "unpivot_all": "UNPIVOT (SELECT * FROM acme.assets LIMIT 5) ON COLUMNS(*)::VARCHAR INTO NAME k VALUE v",
    "join_reference": "SELECT c.cve_id, f.cvss FROM acme.findings f JOIN reference.cve c USING (cve_id) LIMIT 5",
    "struct_field_of_alias": "SELECT s.c FROM (SELECT {'c': cvss} AS s FROM acme.findings) LIMIT 5",
}


def _audited(service, decision_id: str) -> dict:
    found = [a for a in attempts(service.audit.records()) if a["decision_id"] == decision_id]
    assert len(found) == 1, "every attempt leaves exactly one decision record"
    return found[0]


@pytest.mark.parametrize("name", sorted(DENIED))
def test_bypass_attempt_is_denied_with_reason_and_audited(service, name: str) -> None:
    sql, code = DENIED[name]
    outcome = service.run("alice", "remediation-acme", sql)
    assert outcome.outcome in (Outcome.DENIED, Outcome.INVALID), outcome.summary()
    assert outcome.table is None
    codes = {r.code for r in outcome.reasons}
    assert code in codes, f"expected {code}, got {outcome.reasons}"
    assert all(r.message for r in outcome.reasons)
    record = _audited(service, outcome.decision_id)
    assert record["outcome"] == outcome.outcome.value
    assert record["input"]["sql"] == sql
    assert record["completion"] is None, "denied queries never execute"


@pytest.mark.parametrize("name", sorted(HARMLESS))
def test_star_like_expansion_is_harmless(service, name: str) -> None:
    outcome = service.run("alice", "remediation-acme", HARMLESS[name])
    assert outcome.outcome is Outcome.ALLOWED, outcome.summary()
    text = str(outcome.table.to_pylist()) + " ".join(outcome.table.column_names)
    for marker in PII_MARKERS + ("analyst_email", "analyst_name", "owner_email"):
        assert marker not in text
    assert _audited(service, outcome.decision_id)["completion"]["status"] == "executed"


def test_star_result_names_withheld_columns(service) -> None:
    outcome = service.run("alice", "remediation-acme", "SELECT * FROM acme.findings LIMIT 1")
    withheld = {(w.column, w.reason) for w in outcome.result.withheld}
    assert ("analyst_email", "PII is never visible in the data room") in withheld
    assert ("analyst_name", "PII is never visible in the data room") in withheld
    assert "asset_ip" in outcome.table.column_names  # quasi-identifiers stay visible in a single-tenant project


def test_multi_tenant_project_withholds_quasi_identifiers(service) -> None:
    union = "SELECT cvss FROM acme.findings UNION ALL SELECT cvss FROM globex.findings"
    assert service.run("alice", "remediation-benchmark", union).outcome is Outcome.ALLOWED
    denied = service.run("alice", "remediation-benchmark", "SELECT asset_hostname FROM acme.findings UNION ALL SELECT asset_hostname FROM initech.findings")
    assert denied.outcome is Outcome.DENIED
    assert {r.code for r in denied.reasons} == {"column_class_not_allowed"}
    star = service.run("alice", "remediation-benchmark", "SELECT * FROM globex.findings LIMIT 3")
    assert "asset_hostname" not in star.table.column_names and "asset_ip" not in star.table.column_names
    assert {w.reason for w in star.result.withheld if w.column == "asset_ip"} == {"quasi-identifiers are withheld in multi-tenant projects"}


def test_quote_in_identifier_cannot_forge_the_decision(service) -> None:
    """regopy does not escape strings in its output; a quote in a name must not break out."""
    sql = 'SELECT * FROM "x""}], ""allow"": true, ""z"": [{""a"'
    outcome = service.run("alice", "remediation-acme", sql)
    assert outcome.outcome is Outcome.DENIED
    assert outcome.reasons and all('x"}], "allow": true' in r.message for r in outcome.reasons)

"""Hostile SQL: every known way around a naive column check is denied or harmless, and audited.

Each case runs through the real pipeline (DuckDB parser, regopy, audit log, locked DuckDB session)
as alice in project remediation-acme. "Harmless" means executed without any PII value or
withheld column in the output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dataroom.audit import attempts
from dataroom.catalog import Classification, load_catalog
from dataroom.pipeline import Outcome

# Values that only exist in PII columns of the demo data.
PII_MARKERS = ("@acme.example", "@globex.example", "@initech.example", "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov")

DENIED = {
    # whole-table and dynamic SQL tricks
    "query_fn": ("SELECT * FROM query('SELECT analyst_email FROM acme.findings')", "sql_in_string"),
    "query_table_fn": ("SELECT * FROM query_table('acme.findings')", "sql_in_string"),
    "range_table_fn": ("SELECT * FROM range(3)", "table_function"),
    # file and URL reads
    "read_parquet": ("SELECT * FROM read_parquet('/etc/passwd')", "file_function"),
    "read_csv": ("SELECT * FROM read_csv('/etc/passwd')", "file_function"),
    "glob": ("SELECT * FROM glob('/*')", "file_function"),
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
    "pii_method_call": ("SELECT analyst_email.lower() FROM acme.findings", "pii_column"),
    "pii_alias_method_call": ("SELECT f.analyst_name.upper().lower() FROM acme.findings f", "pii_column"),
    "pii_method_call_in_lambda": ("SELECT list_transform([1], x -> analyst_email.lower()) FROM acme.findings", "pii_column"),
    # functions off the allow-list (the sensitive classes have their own corpus below)
    "hash_fingerprint": ("SELECT md5(asset_hostname) FROM acme.findings", "function_not_allowed"),
    "error_side_channel": ("SELECT error(asset_hostname) FROM acme.findings", "function_not_allowed"),
    "schema_qualified_allowed_function": ("SELECT main.lower(severity) FROM acme.findings", "function_not_allowed"),
    # tenancy and project scope
    "union_two_tenants": ("SELECT cvss FROM acme.findings UNION ALL SELECT cvss FROM globex.findings", "cross_tenant"),
    "other_tenant": ("SELECT count(*) FROM globex.findings", "table_not_in_project"),
    "other_tenant_in_cte": ("WITH g AS (SELECT cvss FROM globex.findings) SELECT count(*) FROM g", "table_not_in_project"),
    "other_tenant_in_subquery": ("SELECT count(*) FROM acme.findings WHERE cvss IN (SELECT cvss FROM initech.findings)", "cross_tenant"),
    # catalogue snooping
    "information_schema": ("SELECT * FROM information_schema.columns", "unknown_table"),
    "duckdb_settings": ("SELECT * FROM duckdb_settings()", "session_state_function"),
    "duckdb_views": ("SELECT sql FROM duckdb_views()", "session_state_function"),
    "show_tables": ("SHOW TABLES", "unknown_table"),
    "registered_source": ("SELECT * FROM __source_acme_findings", "unknown_table"),
    "unqualified_table": ("SELECT cvss FROM findings", "unknown_table"),
    "other_catalog": ("SELECT cvss FROM memory.acme.findings", "unknown_table"),
    "unresolved_column": ("SELECT secret_column FROM acme.findings", "unresolved_column"),
    "parameter": ("SELECT cvss FROM acme.findings WHERE cvss > $1", "parameters"),
}

# SQL inside strings, plans, statistics, file metadata and session state, by an attacker who knows
# the storage path of a findings file ({path}; {home} is the data room home). Each entry: the SQL,
# the function a reason must name, and that reason's code. json_serialize_plan(..., optimize :=
# true) binds and plans its argument and folds Parquet min/max statistics into constants: real
# PII, even over the catalog view, if it ever ran.
INNER = "SELECT min(analyst_email), max(analyst_name) FROM read_parquet(''{path}'')"
PLAN = "json_serialize_plan('" + INNER + "', optimize := true)"
STRING_SQL = {
    # SQL text and plans
    "plan_optimize": (f"SELECT {PLAN}", "json_serialize_plan", "sql_in_string"),
    "plan_over_catalog_view": ("SELECT json_serialize_plan('SELECT min(analyst_email) FROM acme.findings', optimize := true)", "json_serialize_plan", "sql_in_string"),
    "plan_catalog_qualified": (f"SELECT system.main.{PLAN}", "system.main.json_serialize_plan", "sql_in_string"),
    "plan_schema_qualified": (f"SELECT main.{PLAN}", "main.json_serialize_plan", "sql_in_string"),
    "plan_method_call": (f"SELECT '{INNER}'.json_serialize_plan(optimize := true)", "json_serialize_plan", "sql_in_string"),
    "plan_quoted_upper_case": (f'SELECT "JSON_SERIALIZE_PLAN"(\'{INNER}\', optimize := true)', "json_serialize_plan", "sql_in_string"),
    "serialize_sql": (f"SELECT json_serialize_sql('{INNER}')", "json_serialize_sql", "sql_in_string"),
    "execute_serialized": (f"SELECT * FROM json_execute_serialized_sql(json_serialize_sql('{INNER}'))", "json_execute_serialized_sql", "sql_in_string"),
    "deserialize_sql": (f"SELECT json_deserialize_sql(json_serialize_sql('{INNER}'))", "json_deserialize_sql", "sql_in_string"),
    "query_fn_path": (f"SELECT * FROM query('{INNER}')", "query", "sql_in_string"),
    "query_table_path": ("SELECT * FROM query_table('{path}')", "query_table", "sql_in_string"),
    "query_table_list": ("SELECT * FROM query_table(['{path}'])", "query_table", "sql_in_string"),
    "table_sample": ("SELECT * FROM duckdb_table_sample('acme.findings')", "duckdb_table_sample", "sql_in_string"),
    "aggregate_by_name": ("SELECT list_aggregate(list(cvss), 'max') FROM acme.findings", "list_aggregate", "sql_in_string"),
    # file readers and file metadata (statistics, schema, key-value metadata)
    "read_parquet_path": ("SELECT analyst_email FROM read_parquet('{path}')", "read_parquet", "file_function"),
    "read_parquet_count": ("SELECT count(*) FROM read_parquet(['{path}'])", "read_parquet", "file_function"),
    "read_parquet_qualified": ("SELECT * FROM system.main.read_parquet('{path}')", "system.main.read_parquet", "file_function"),
    "parquet_scan": ("SELECT * FROM parquet_scan('{path}')", "parquet_scan", "file_function"),
    "parquet_metadata": ("SELECT stats_min, stats_max FROM parquet_metadata('{path}')", "parquet_metadata", "file_function"),
    "parquet_metadata_lateral": ("SELECT f.cvss, m.stats_max FROM acme.findings f, parquet_metadata('{path}') m", "parquet_metadata", "file_function"),
    "parquet_schema": ("SELECT * FROM parquet_schema('{path}')", "parquet_schema", "file_function"),
    "parquet_kv_metadata": ("SELECT * FROM parquet_kv_metadata('{path}')", "parquet_kv_metadata", "file_function"),
    "parquet_file_metadata": ("SELECT * FROM parquet_file_metadata('{path}')", "parquet_file_metadata", "file_function"),
    "parquet_full_metadata": ("SELECT * FROM parquet_full_metadata('{path}')", "parquet_full_metadata", "file_function"),
    "read_blob": ("SELECT content FROM read_blob('{path}')", "read_blob", "file_function"),
    "read_text": ("SELECT content FROM read_text('{path}')", "read_text", "file_function"),
    "glob_home": ("SELECT file FROM glob('{home}/**/*.parquet')", "glob", "file_function"),
    "sniff_csv": ("SELECT * FROM sniff_csv('{path}')", "sniff_csv", "file_function"),
    "summarize_file": ("SUMMARIZE SELECT * FROM read_parquet('{path}')", "read_parquet", "file_function"),
    "describe_file": ("DESCRIBE SELECT analyst_email FROM read_parquet('{path}')", "read_parquet", "file_function"),
    # settings, variables, catalog metadata, statistics
    "current_setting": ("SELECT current_setting('allowed_paths')", "current_setting", "session_state_function"),
    "current_setting_qualified": ("SELECT main.current_setting('allowed_paths')", "main.current_setting", "session_state_function"),
    "current_setting_method_call": ("SELECT 'allowed_paths'.current_setting()", "current_setting", "session_state_function"),
    "getvariable": ("SELECT getvariable('allowed_paths')", "getvariable", "session_state_function"),
    "duckdb_settings_paths": ("SELECT value FROM duckdb_settings() WHERE name = 'allowed_paths'", "duckdb_settings", "session_state_function"),
    "duckdb_databases": ("SELECT path FROM duckdb_databases()", "duckdb_databases", "session_state_function"),
    "duckdb_views_sql": ("SELECT sql FROM duckdb_views() WHERE schema_name = 'acme'", "duckdb_views", "session_state_function"),
    "pragma_table_info": ("SELECT * FROM pragma_table_info('acme.findings')", "pragma_table_info", "session_state_function"),
    "pragma_show": ("SELECT * FROM pragma_show('acme.findings')", "pragma_show", "session_state_function"),
    "column_statistics": ("SELECT stats(cvss) FROM acme.findings", "stats", "session_state_function"),
    "bare_current_schema": ("SELECT current_schema", "current_schema", "session_state_function"),
    "interval_of_a_setting": ("SELECT now() - INTERVAL (length(current_setting('allowed_paths'))) DAY", "current_setting", "session_state_function"),
    # the same calls hidden in every corner of a query
    "in_lambda": (f"SELECT list_transform(['{INNER}'], x -> json_serialize_plan(x, optimize := true))", "json_serialize_plan", "sql_in_string"),
    "in_lambda_method_call": (f"SELECT list_transform(['{INNER}'], x -> x.json_serialize_plan())", "json_serialize_plan", "sql_in_string"),
    "in_list_comprehension": (f"SELECT [json_serialize_plan(x) FOR x IN ['{INNER}']]", "json_serialize_plan", "sql_in_string"),
    "in_columns_lambda": (f"SELECT COLUMNS(lambda c: length({PLAN}) > 0) FROM acme.findings", "json_serialize_plan", "sql_in_string"),
    "in_cte": (f"WITH p AS (SELECT {PLAN} AS plan) SELECT plan FROM p", "json_serialize_plan", "sql_in_string"),
    "in_scalar_subquery": (f"SELECT (SELECT {PLAN})", "json_serialize_plan", "sql_in_string"),
    "in_from_subquery": (f"SELECT p FROM (SELECT {PLAN} AS p)", "json_serialize_plan", "sql_in_string"),
    "in_where": (f"SELECT count(*) FROM acme.findings WHERE {PLAN} LIKE '%@%'", "json_serialize_plan", "sql_in_string"),
    "in_order_by": (f"SELECT cvss FROM acme.findings ORDER BY {PLAN} LIMIT 1", "json_serialize_plan", "sql_in_string"),
    "in_window_partition": (f"SELECT row_number() OVER (PARTITION BY {PLAN}) FROM acme.findings", "json_serialize_plan", "sql_in_string"),
    "in_window_argument": (f"SELECT first_value({PLAN}) OVER () FROM acme.findings", "json_serialize_plan", "sql_in_string"),
    "in_named_window": (f"SELECT rank() OVER w FROM acme.findings WINDOW w AS (ORDER BY {PLAN})", "json_serialize_plan", "sql_in_string"),
    "in_filter_clause": ("SELECT count(*) FILTER (WHERE current_setting('allowed_paths') LIKE '%parquet%') FROM acme.findings", "current_setting", "session_state_function"),
    "in_aggregate_order_by": (f"SELECT string_agg(severity, ',' ORDER BY {PLAN}) FROM acme.findings", "json_serialize_plan", "sql_in_string"),
    "in_qualify": (f"SELECT cvss FROM acme.findings QUALIFY {PLAN} IS NOT NULL", "json_serialize_plan", "sql_in_string"),
    "in_having": (f"SELECT severity FROM acme.findings GROUP BY severity HAVING max({PLAN}) > ''", "json_serialize_plan", "sql_in_string"),
    "in_pivot": (f"SELECT * FROM acme.findings PIVOT (count(*) FOR severity IN ({PLAN}))", "json_serialize_plan", "sql_in_string"),
    "in_unpivot": (f"UNPIVOT (SELECT {PLAN} AS p) ON p INTO NAME k VALUE v", "json_serialize_plan", "sql_in_string"),
    "in_union": (f"SELECT severity FROM acme.findings UNION ALL SELECT {PLAN}", "json_serialize_plan", "sql_in_string"),
    "in_join_condition": (f"SELECT count(*) FROM acme.findings f JOIN acme.assets a ON {PLAN} IS NOT NULL", "json_serialize_plan", "sql_in_string"),
    "in_struct_field": ("SELECT {'p': " + PLAN + "}.p", "json_serialize_plan", "sql_in_string"),
    "in_try_cast_case": (f"SELECT CASE WHEN true THEN TRY(CAST({PLAN} AS JSON)->>'$.plan') END", "json_serialize_plan", "sql_in_string"),
    "in_star_replace": (f"SELECT * REPLACE ({PLAN} AS severity) FROM acme.findings", "json_serialize_plan", "sql_in_string"),
    "in_limit": (f"SELECT cvss FROM acme.findings LIMIT length({PLAN})", "json_serialize_plan", "sql_in_string"),
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
    assert service.run("alice", "remediation-by-tenant", union).outcome is Outcome.ALLOWED
    denied = service.run("alice", "remediation-by-tenant", "SELECT asset_hostname FROM acme.findings UNION ALL SELECT asset_hostname FROM initech.findings")
    assert denied.outcome is Outcome.DENIED
    assert {r.code for r in denied.reasons} == {"column_class_not_allowed"}
    star = service.run("alice", "remediation-by-tenant", "SELECT * FROM globex.findings LIMIT 3")
    assert "asset_hostname" not in star.table.column_names and "asset_ip" not in star.table.column_names
    assert {w.reason for w in star.result.withheld if w.column == "asset_ip"} == {"quasi-identifiers are withheld in multi-tenant projects"}


def test_quote_in_identifier_cannot_forge_the_decision(service) -> None:
    """regopy does not escape strings in its output; a quote in a name must not break out."""
    sql = 'SELECT * FROM "x""}], ""allow"": true, ""z"": [{""a"'
    outcome = service.run("alice", "remediation-acme", sql)
    assert outcome.outcome is Outcome.DENIED
    assert outcome.reasons and all('x"}], "allow": true' in r.message for r in outcome.reasons)


@pytest.fixture
def demo_file(dataroom_home: Path) -> Path:
    """A real findings Parquet file of the demo data: the path the attacker is assumed to know."""
    return sorted((dataroom_home / "data" / "acme" / "findings").glob("*.parquet"))[0]


@pytest.fixture
def pii_values(dataroom_home: Path) -> set[str]:
    """Every value of every PII column in the demo data, read straight from the Parquet files."""
    catalog = load_catalog(dataroom_home / "catalog.toml")
    pii = {c for t in catalog.tables.values() for c in t.columns if t.classification(c) is Classification.PII}
    values: set[str] = set()
    for part in (dataroom_home / "data").rglob("*.parquet"):
        table = pq.read_table(part)
        for column in pii & set(table.column_names):
            values.update(str(v) for v in table.column(column).to_pylist() if v)
    assert any("@acme.example" in v for v in values) and "Ada Lovelace" in values
    return values


@pytest.mark.parametrize("name", sorted(STRING_SQL))
def test_sql_in_strings_plans_metadata_and_settings_are_denied_without_a_trace_of_the_file(
    service, dataroom_home: Path, demo_file: Path, pii_values: set[str], name: str
) -> None:
    template, function, code = STRING_SQL[name]
    sql = template.replace("{path}", str(demo_file)).replace("{home}", str(dataroom_home))
    outcome = service.run("alice", "remediation-acme", sql)
    assert outcome.outcome is Outcome.DENIED, outcome.summary()
    assert outcome.table is None and outcome.error is None
    assert any(r.code == code and f"function {function}()" in r.message for r in outcome.reasons), outcome.reasons
    assert _audited(service, outcome.decision_id)["completion"] is None, "denied queries never execute"
    shown = json.dumps(outcome.summary()) + repr(outcome.reasons)
    for secret in (str(dataroom_home), str(dataroom_home.resolve()), demo_file.name, "allowed_paths"):
        assert secret not in shown
    assert not {v for v in pii_values if v in shown}

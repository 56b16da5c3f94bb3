"""Default-deny functions: the allow-list of policies/query/functions.rego against DuckDB itself.

* Every function DuckDB offers (``duckdb_functions()`` with the extensions a session has) is either
  on the allow-list, or denied with exactly one reason that names it, under one of four stable
  codes (``sql_in_string``, ``session_state_function``, ``file_function``, ``function_not_allowed``).
* The allow-list names only real DuckDB functions, and none that takes SQL, a file, a setting or
  a name as text.
* Every call in DuckDB's parse tree reaches ``facts.functions`` (the guard on the analysis).
* What the README, the example notebook and model monitoring run is allowed, end to end.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import duckdb
import pytest

from dataroom.analysis import SQL_VALUE_FUNCTIONS, analyse
from dataroom.audit import attempts
from dataroom.pipeline import Outcome
from dataroom.policy import QUERY_POLICY_DIR
from dataroom.rego import PolicyBundle

CODES = {"sql_in_string", "session_state_function", "file_function", "function_not_allowed"}
SENSITIVE = CODES - {"function_not_allowed"}
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "remediation_by_tenant.ipynb"


@pytest.fixture(scope="module")
def duckdb_functions() -> dict[str, dict]:
    """Every function name DuckDB 2 offers (lower case): its types and parameter names."""
    con = duckdb.connect(config={"autoload_known_extensions": False})
    rows = con.execute("SELECT function_name, function_type, parameters FROM duckdb_functions()").fetchall()
    found: dict[str, dict] = {}
    for name, kind, parameters in rows:
        entry = found.setdefault(name.lower(), {"types": set(), "parameters": set()})
        entry["types"].add(kind)
        entry["parameters"].update(p.lower() for p in parameters or [])
    return found


@pytest.fixture(scope="module")
def allow_list() -> set[str]:
    bundle = PolicyBundle(QUERY_POLICY_DIR, ["dataroom.query.functions.allowed_functions"])
    return set(bundle.evaluate("dataroom.query.functions.allowed_functions", {}))


@pytest.fixture
def decide(service):
    """Decide a query's recorded policy input with other functions: the real decision, per name."""
    outcome = service.run("alice", "remediation-acme", "SELECT count(*) FROM acme.findings")
    assert outcome.outcome is Outcome.ALLOWED
    (record,) = [a for a in attempts(service.audit.records()) if a["decision_id"] == outcome.decision_id]
    template = record["input"]

    def run(functions: list[str], table_functions: list[str] = ()) -> object:
        policy_input = copy.deepcopy(template)
        policy_input["facts"]["functions"] = list(functions)
        policy_input["facts"]["table_functions"] = list(table_functions)
        return service.policy.decide(policy_input)

    return run


def test_allow_list_names_only_real_duckdb_functions(allow_list: set[str], duckdb_functions: dict) -> None:
    assert 400 < len(allow_list) < len(duckdb_functions)
    assert allow_list - set(duckdb_functions) == set()


def test_every_duckdb_function_is_allowed_or_denied_with_a_reason_naming_it(decide, allow_list: set[str], duckdb_functions: dict) -> None:
    counts = {"allowed": 0, **{code: 0 for code in CODES}}
    for name in sorted(duckdb_functions):
        decision = decide([name])
        if name in allow_list:
            assert decision.allow and not decision.reasons, name
            counts["allowed"] += 1
            continue
        assert not decision.allow, name
        assert len(decision.reasons) == 1, (name, decision.reasons)
        (reason,) = decision.reasons
        assert reason.code in CODES, (name, reason)
        assert f"function {name}()" in reason.message, (name, reason)
        counts[reason.code] += 1
    assert sum(counts.values()) == len(duckdb_functions)
    assert all(counts.values()), f"every class is used: {counts}"


def test_no_table_function_is_allowed(decide, duckdb_functions: dict) -> None:
    for name, entry in sorted(duckdb_functions.items()):
        if not entry["types"] & {"table", "table_macro"}:
            continue
        decision = decide([name], [name])
        assert not decision.allow, name
        assert [r.code for r in decision.reasons] in (["table_function"], *[[c] for c in SENSITIVE]), (name, decision.reasons)
        assert name in decision.reasons[0].message


@pytest.mark.parametrize(
    "name, code",
    [
        *[(n, "sql_in_string") for n in ("json_serialize_plan", "json_serialize_sql", "json_deserialize_sql", "json_execute_serialized_sql", "query", "query_table", "list_aggregate")],
        *[(n, "session_state_function") for n in ("current_setting", "getvariable", "current_schema", "current_schemas", "current_database", "current_catalog", "current_user", "version", "duckdb_settings", "duckdb_databases", "duckdb_views", "pragma_version", "pragma_platform", "nextval", "stats")],
        *[(n, "file_function") for n in ("read_parquet", "read_csv", "read_csv_auto", "read_json", "read_json_auto", "read_text", "read_blob", "parquet_scan", "parquet_metadata", "parquet_schema", "parquet_kv_metadata", "glob", "sniff_csv")],
        *[(n, "function_not_allowed") for n in ("md5", "sha256", "hash", "uuid", "error", "sleep_ms", "finalize", "no_such_function")],
    ],
)
def test_function_classes(decide, name: str, code: str) -> None:
    assert [(r.code, f"function {name}()" in r.message) for r in decide([name]).reasons] == [(code, True)]


def test_functions_that_take_sql_files_settings_or_names_as_text_are_sensitive(decide, duckdb_functions: dict) -> None:
    """Classified by DuckDB's own parameter names, independently of the lists in the policy."""
    by_parameter = {
        "sql_in_string": {"sql", "query", "serialized_sql", "function_name", "table_names"},
        "file_function": {"paths", "file", "filename", "files_to_sniff"},
        "session_state_function": {"setting_name", "variable_name", "sequence_name", "db_name", "database_name", "storage_path"},
    }
    checked = 0
    for name, entry in sorted(duckdb_functions.items()):
        expected = {code for code, parameters in by_parameter.items() if entry["parameters"] & parameters}
        if not expected:
            continue
        checked += 1
        codes = {r.code for r in decide([name]).reasons}
        assert codes and codes <= SENSITIVE, (name, codes)
        assert codes & expected or len(expected) > 1 or name == "read_duckdb", (name, codes, expected)
    assert checked > 30


def test_allow_list_holds_nothing_that_looks_sensitive(allow_list: set[str]) -> None:
    looks_sensitive = re.compile(
        r"sql|plan|query|setting|variable|serial|secret|file|path|glob|version|platform|schema|database|catalog|"
        r"extension|stats|^read_|^parquet_|^duckdb_|^pragma_|^pg_|^current_(?!date$|localtime$|localtimestamp$)|"
        r"md5|sha|hash|uuid|error|sleep|log$|nextval|currval"
    )
    look_alikes = {"log", "log10", "log2", "json_extract_path", "json_extract_path_text"}  # logarithms; JSON paths
    assert {n for n in allow_list if looks_sensitive.search(n)} - look_alikes == set()


# --- the analysis lists every call ------------------------------------------------------------

CONSTRUCTS = [
    "SELECT abs(cvss), count(*) FILTER (WHERE cvss > 1), string_agg(severity, ',' ORDER BY cvss) FROM acme.findings",
    "SELECT row_number() OVER (PARTITION BY severity ORDER BY cvss), lag(cvss, 1) OVER w FROM acme.findings WINDOW w AS (ORDER BY lower(severity))",
    "SELECT sum(cvss) OVER (ORDER BY detected_at ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM acme.findings",
    "SELECT COLUMNS(lambda c: c LIKE '%e%') FROM acme.findings",
    "SELECT [x * 2 FOR x IN [cvss] IF x > 1] FROM acme.findings",
    "SELECT list_transform([cvss], x -> x + 1), list_filter([1], lambda x: x > 0) FROM acme.findings",
    "SELECT 'abc'.upper(), severity.lower(), f.severity.upper().lower(), (cvss + 1).round() FROM acme.findings f",
    "SELECT {'a': 1}, [1, 2], cvss::INT, TRY_CAST(cvss AS INT), CASE WHEN cvss > 5 THEN 'high' ELSE 'low' END FROM acme.findings",
    "SELECT cvss IN (1, 2), cvss BETWEEN 1 AND 2, severity NOT IN (SELECT 'x') FROM acme.findings",
    "SELECT severity LIKE 'x', severity ILIKE 'y', severity SIMILAR TO 'z', severity GLOB 'q', severity NOT LIKE 'w' ESCAPE '!', severity ~ 'r' FROM acme.findings",
    "SELECT severity COLLATE nocase, [1, 2][1], [1, 2, 3][1:2], severity IS DISTINCT FROM 'x', severity || 'x' FROM acme.findings",
    "SELECT detected_at + INTERVAL 1 DAY, detected_at - INTERVAL (cvss) HOUR, EXTRACT(year FROM detected_at), INTERVAL '2 days', date_trunc('week', detected_at) FROM acme.findings",
    "SELECT * FROM acme.findings PIVOT (avg(cvss) FOR severity IN ('high', 'low'))",
    "SELECT cvss FROM acme.findings QUALIFY rank() OVER (ORDER BY cvss) = 1",
    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY cvss), mode() WITHIN GROUP (ORDER BY severity), first(cvss ORDER BY detected_at) FROM acme.findings",
    "SELECT coalesce(cvss, 0), ifnull(cvss, 0), nullif(cvss, 0), greatest(cvss, 1), if(cvss > 1, 1, 0), TRY(cvss / 0) FROM acme.findings",
    "SELECT position('a' IN severity), substring(severity FROM 1 FOR 2), trim(both 'x' FROM severity), detected_at AT TIME ZONE 'UTC' FROM acme.findings",
    "SELECT current_date, current_timestamp, localtimestamp, current_schema, user, main.lower('x'), system.main.upper('x')",
    "SELECT unnest([1, 2]), map([1], [2]), row(1, 2), 5!, 'a' ^@ 'b', '{\"a\": 1}'->>'$.a' FROM acme.findings",
    "SELECT * FROM range(3) r, unnest([1]) u(x)",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT n FROM r",
    "SELECT sum(cvss) EXPORT_STATE, count(DISTINCT severity) FROM acme.findings GROUP BY ALL ORDER BY ALL",
    "SUMMARIZE SELECT round(cvss) FROM acme.findings",
    "UNPIVOT (SELECT upper(severity) AS s FROM acme.findings) ON s INTO NAME k VALUE v",
]


def _calls(tree: object) -> list[dict]:
    found, stack = [], [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "function_name" in item:
                found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _bare_names(tree: object) -> set[str]:
    found, stack = set(), [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            names = item.get("column_names")
            if item.get("class") == "COLUMN_REF" and isinstance(names, list) and len(names) == 1:
                found.add(str(names[0]).lower())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _corpus() -> list[str]:
    from tests.core.test_bypass_corpus import DENIED, HARMLESS, STRING_SQL

    sqls = list(CONSTRUCTS) + list(HARMLESS.values()) + [sql for sql, _ in DENIED.values()]
    sqls += [t.replace("{path}", "/x/part-000.parquet").replace("{home}", "/x") for t, _, _ in STRING_SQL.values()]
    return sqls


@pytest.mark.parametrize("sql", _corpus())
def test_every_call_in_the_parse_tree_is_in_the_facts(dataroom_home: Path, sql: str) -> None:
    from dataroom.catalog import load_catalog

    catalog = load_catalog(dataroom_home / "catalog.toml")
    facts = analyse(sql, catalog)
    if facts.statement_kinds != ["SELECT"] or facts.parse_error:
        return  # denied before functions matter
    tree = json.loads(duckdb.connect().execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    for call in _calls(tree["statements"]):
        name = str(call["function_name"]).lower()
        # bare, or qualified as written (a method call on a column is the bare name over that column)
        assert any(f == name or f.endswith("." + name) for f in facts.functions), (name, facts.functions)
    for name in _bare_names(tree["statements"]) & set(SQL_VALUE_FUNCTIONS):
        assert SQL_VALUE_FUNCTIONS[name] in facts.functions


def test_method_call_on_a_column_is_the_function_over_that_column(dataroom_home: Path) -> None:
    from dataroom.catalog import load_catalog

    catalog = load_catalog(dataroom_home / "catalog.toml")
    facts = analyse("SELECT cvss.round(1), f.analyst_email.lower() FROM acme.findings f", catalog)
    assert facts.functions == ["lower", "round"]
    assert {(c.column, c.classification) for c in facts.columns} == {("cvss", "public"), ("analyst_email", "pii")}
    qualified = analyse("SELECT main.lower('x'), system.main.json_serialize_plan('SELECT 1'), acme.upper('x')", catalog)
    assert qualified.functions == ["acme.upper", "main.lower", "system.main.json_serialize_plan"]


# --- what the data room is for still runs -----------------------------------------------------

MONITORING = [
    # per tenant and week: the regression the hypothesis is about, and its drift
    """SELECT date_trunc('week', detected_at) AS week, count(*) AS n,
              regr_slope(remediation_days, cvss) AS slope, regr_intercept(remediation_days, cvss) AS intercept,
              regr_r2(remediation_days, cvss) AS r2, regr_count(remediation_days, cvss) AS pairs,
              corr(remediation_days, cvss) AS r, avg(remediation_days) AS mean_days,
              stddev_samp(remediation_days) AS sd_days, median(remediation_days) AS median_days,
              quantile_cont(remediation_days, [0.1, 0.5, 0.9]) AS deciles, quantile_disc(cvss, 0.5) AS cvss_median
       FROM acme.findings GROUP BY ALL ORDER BY week""",
    """WITH weekly AS (
           SELECT date_trunc('week', detected_at) AS week, avg(remediation_days) AS days,
                  avg(abs(remediation_days - (1.5 + 2.0 * cvss))) AS mae,
                  sqrt(avg(power(remediation_days - (1.5 + 2.0 * cvss), 2))) AS rmse
           FROM acme.findings WHERE detected_at >= TIMESTAMP '2024-01-01' GROUP BY 1)
       SELECT week, days, mae, rmse, days - lag(days) OVER (ORDER BY week) AS change,
              avg(days) OVER (ORDER BY week ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) AS rolling
       FROM weekly ORDER BY week""",
    """SELECT severity, count(*) FILTER (WHERE remediation_days > 30) AS late, count_if(cvss >= 9) AS critical,
              approx_count_distinct(asset_id) AS assets, var_samp(remediation_days) AS var_days,
              covar_samp(cvss, remediation_days) AS cov, round(ln(avg(remediation_days) + 1), 3) AS log_days,
              strftime(max(detected_at), '%Y-%m-%d') AS last_seen, EXTRACT(month FROM min(detected_at)) AS first_month
       FROM acme.findings GROUP BY severity ORDER BY severity""",
    "SELECT ntile(10) OVER (ORDER BY cvss) AS decile, percent_rank() OVER (ORDER BY remediation_days) AS pr, cume_dist() OVER (ORDER BY cvss) AS cd FROM acme.findings LIMIT 5",
    "SELECT year(c.published_at) AS y, avg(f.remediation_days) AS days FROM acme.findings f JOIN reference.cve c USING (cve_id) GROUP BY 1",
]
README = [
    "SELECT severity, count(*) AS n, avg(remediation_days) FROM acme.findings GROUP BY ALL",
    "SELECT severity, avg(remediation_days) AS days FROM acme.findings GROUP BY 1",
    "SELECT severity, count(*) AS n FROM acme.findings GROUP BY 1",
    "SELECT round(cvss) AS c, regr_slope(remediation_days, cvss) AS slope, regr_r2(remediation_days, cvss) AS r2 FROM acme.findings GROUP BY 1",
]


def _notebook_queries() -> list[str]:
    """The SQL of the example notebook: %%sql cells and room.sql('''...''') strings."""
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    found = []
    for cell in cells:
        source = "".join(cell["source"])
        if source.startswith("%%sql"):
            found.append(source.split("\n", 1)[1])
        found += [m for m in re.findall(r"room\.sql\('''(.*?)'''\)", source, re.S)]
    return found


def test_the_notebook_holds_queries() -> None:
    assert len(_notebook_queries()) >= 2


@pytest.mark.parametrize("project, sql", [("remediation-acme", q) for q in README + MONITORING] + [("remediation-by-tenant", q) for q in _notebook_queries()])
def test_readme_notebook_and_monitoring_queries_run(service, project: str, sql: str) -> None:
    outcome = service.run("alice", project, sql)
    assert outcome.outcome is Outcome.ALLOWED, outcome.summary()
    assert outcome.table.num_rows > 0

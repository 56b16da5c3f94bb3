"""The governed path on Spark: same decisions, same results as DuckDB, Spark's own guard, limits.

Everything runs for real: the pipeline (DuckDB's parser, regopy, the audit log) in this process
and pyspark's own local Spark Connect server (dataroom/engines/spark_local.py) as the cluster.
"""

from __future__ import annotations

import math
import shutil
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from dataroom.audit import attempts
from dataroom.engines.spark_guard import check_plan
from dataroom.engines.spark_session import ProjectSession
from dataroom.pipeline import Outcome, QueryService
from dataroom.settings import Settings
from tests.core.test_bypass_corpus import DENIED, HARMLESS, PII_MARKERS, STRING_SQL

# The bypass corpus's allowed statements that Spark SQL can express after transpiling. Left out
# (LEFT_OUT, each a clear refusal or bad input on Spark, tested below): star_replace (Spark has no
# `* REPLACE`), columns_star / columns_lambda (DuckDB's COLUMNS()), whole_row / whole_row_to_json
# (a table alias as a row value is DuckDB's), summarize / describe / unpivot_all (not queries in
# Spark SQL: SUMMARIZE, DESCRIBE and UNPIVOT ... COLUMNS(*) are DuckDB statements). DIVERGENT:
# struct_pack_star runs on both but DuckDB 2.0 answers an empty struct where Spark answers a
# struct of the visible columns (checked below: no withheld column in it).
CORPUS_ON_SPARK = ["star", "star_exclude", "qualified_star", "join_reference", "struct_field_of_alias"]
DIVERGENT = ["struct_pack_star"]
LEFT_OUT = sorted(set(HARMLESS) - set(CORPUS_ON_SPARK) - set(DIVERGENT))
# Analytic statements in the room's (DuckDB) dialect: each kind of operator the guard admits.
ANALYTIC = {
    "group_by": "SELECT severity, count(*) AS n, avg(cvss) AS mean_cvss FROM acme.findings GROUP BY severity",
    "filter_order_limit": "SELECT finding_id, cvss FROM acme.findings WHERE cvss >= 7 ORDER BY cvss DESC, finding_id LIMIT 20",
    "join_aggregate": "SELECT c.cve_id, count(*) AS n FROM acme.findings f JOIN reference.cve c USING (cve_id) GROUP BY c.cve_id",
    "cte_window": "WITH s AS (SELECT severity, cvss FROM acme.findings) SELECT severity, max(cvss) OVER (PARTITION BY severity) AS top FROM s",
    "scalar_subquery": "SELECT count(*) AS n FROM acme.findings WHERE cvss > (SELECT avg(cvss) FROM acme.findings)",
    "case_distinct": "SELECT DISTINCT CASE WHEN cvss >= 9 THEN 'critical' ELSE 'other' END AS band FROM acme.findings",
    "union": "SELECT severity FROM acme.findings UNION SELECT 'none'",
    "qualified_column": "SELECT acme.findings.severity, count(*) AS n FROM acme.findings GROUP BY 1",
}
LONG_QUERY = "SELECT count(*) FROM acme.findings a CROSS JOIN acme.findings b CROSS JOIN acme.findings c WHERE a.cvss + b.cvss > c.cvss"


def _rows(table: pa.Table) -> list[tuple]:
    """Order-insensitive rows, values normalised across engines (floats rounded, types loosened)."""

    def norm(v):
        if isinstance(v, float):
            return None if math.isnan(v) else round(v, 6)
        if isinstance(v, dict):
            return tuple(sorted((k, norm(x)) for k, x in v.items()))
        return v

    return sorted((tuple(norm(v) for v in row.values()) for row in table.to_pylist()), key=repr)


def _completion(svc: QueryService, decision_id: str) -> dict:
    found = [a for a in attempts(svc.audit.records()) if a["decision_id"] == decision_id]
    assert len(found) == 1
    return found[0]["completion"]


@pytest.fixture
def duckdb_service(demo_template: Path, tmp_path: Path):
    home = tmp_path / "duckdb-home"
    shutil.copytree(demo_template, home)
    svc = QueryService(Settings(home=home, default_engine="duckdb"))
    yield svc
    svc.close()


def test_allowed_queries_return_what_duckdb_returns(spark_service: QueryService, duckdb_service: QueryService) -> None:
    queries = {**{f"corpus:{n}": HARMLESS[n] for n in CORPUS_ON_SPARK}, **ANALYTIC}
    compared = []
    for name, sql in queries.items():
        on_spark = spark_service.run("alice", "remediation-acme", sql)
        on_duckdb = duckdb_service.run("alice", "remediation-acme", sql)
        assert on_duckdb.outcome is Outcome.ALLOWED, (name, on_duckdb.summary())
        assert on_spark.outcome is Outcome.ALLOWED, (name, on_spark.summary())
        assert on_spark.table.num_rows == on_duckdb.table.num_rows, name
        assert _rows(on_spark.table) == _rows(on_duckdb.table), name
        text = str(on_spark.table.to_pylist()) + " ".join(on_spark.table.column_names)
        assert not any(marker in text for marker in PII_MARKERS + ("analyst_email", "analyst_name", "owner_email")), name
        record = _completion(spark_service, on_spark.decision_id)
        assert record["status"] == "executed" and record["engine"] == "spark", name
        assert record["rows"] == on_spark.table.num_rows
        assert "acme__findings" in record["executed_sql"] or "reference__cve" in record["executed_sql"], name
        assert "engine" not in _completion(duckdb_service, on_duckdb.decision_id)
        compared.append(name)
    assert len(compared) == len(queries)


def test_what_spark_cannot_express_is_refused_or_bad_input_never_a_different_result(spark_service: QueryService) -> None:
    for name in LEFT_OUT:
        outcome = spark_service.run("alice", "remediation-acme", HARMLESS[name])
        assert outcome.table is None, name
        if outcome.outcome is Outcome.INVALID:  # Spark's own explanation, without its stack trace
            assert outcome.error and "JVM" not in outcome.error and "EXPLAIN" not in outcome.error, (name, outcome.error)
        else:
            assert outcome.outcome is Outcome.DENIED and [r.code for r in outcome.reasons] == ["engine_guard"], (name, outcome.summary())


def test_struct_of_star_on_spark_holds_only_visible_columns(spark_service: QueryService) -> None:
    outcome = spark_service.run("alice", "remediation-acme", HARMLESS["struct_pack_star"])
    assert outcome.outcome is Outcome.ALLOWED
    fields = {f.name for f in outcome.table.schema.field(0).type}
    assert "cvss" in fields and not fields & {"analyst_email", "analyst_name"}
    assert not any(marker in str(outcome.table.to_pylist()) for marker in PII_MARKERS)


def test_star_on_spark_names_the_withheld_columns(spark_service: QueryService) -> None:
    outcome = spark_service.run("alice", "remediation-acme", "SELECT * FROM acme.findings LIMIT 3")
    assert outcome.outcome is Outcome.ALLOWED
    assert {"analyst_email", "analyst_name"} <= {w.column for w in outcome.result.withheld}
    assert "analyst_email" not in outcome.table.column_names and "asset_ip" in outcome.table.column_names


def test_every_denied_case_stays_denied_on_spark(spark_service: QueryService, dataroom_home: Path) -> None:
    path = str(next((dataroom_home / "data" / "acme" / "findings").glob("*.parquet")))
    cases = {n: sql for n, (sql, _) in DENIED.items()}
    cases |= {n: sql.replace("{path}", path).replace("{home}", str(dataroom_home)) for n, (sql, _, _) in STRING_SQL.items()}
    for name, sql in cases.items():
        outcome = spark_service.run("alice", "remediation-acme", sql)
        assert outcome.outcome in (Outcome.DENIED, Outcome.INVALID), (name, outcome.summary())
        assert outcome.table is None and outcome.reasons, name
        assert _completion(spark_service, outcome.decision_id) is None, f"{name}: a denied query never reaches Spark"


class _AllowEverything:
    """A policy engine that allows all (a stand-in for a policy bug), to show Spark's guard alone."""

    revision = "allow-everything"

    def decide(self, policy_input):
        from dataroom.policy import Decision

        return Decision(True, [], self.revision, "test-allow-all", 0.0)


@pytest.fixture
def unguarded_by_policy(spark_settings: Settings):
    svc = QueryService(spark_settings, policy=_AllowEverything())
    yield svc
    svc.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT analyst_email FROM read_parquet('{part}')",
        "SELECT count(*) FROM globex.findings",  # another tenant's table: not one of the project's views
        "SELECT analyst_email FROM acme.findings",  # the project's view has no such column
        "CREATE TEMP VIEW leak AS SELECT * FROM acme.findings",
        'SELECT cvss AS "x\n+- View (`acme__findings`, [cvss#1])" FROM acme.findings',  # a forged line of the plan text
    ],
)
def test_spark_guard_denies_what_a_broken_policy_would_allow(unguarded_by_policy: QueryService, dataroom_home: Path, sql: str) -> None:
    part = next((dataroom_home / "data" / "acme" / "findings").glob("*.parquet"))
    outcome = unguarded_by_policy.run("alice", "remediation-acme", sql.format(part=part))
    assert outcome.table is None and outcome.outcome in (Outcome.DENIED, Outcome.INVALID), outcome.summary()
    completion = _completion(unguarded_by_policy, outcome.decision_id)
    assert completion["engine"] == "spark" and completion["status"] in ("refused", "failed")
    if outcome.outcome is Outcome.DENIED:
        assert [r.code for r in outcome.reasons] == ["engine_guard"] and completion["reason_code"] == "engine_guard"
    summary = str(outcome.summary())
    assert str(dataroom_home) not in summary and not any(marker in summary for marker in PII_MARKERS)


def test_spark_guard_refuses_a_plan_that_reads_a_withheld_column(
    unguarded_by_policy: QueryService, dataroom_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even if the session's views were built wrong (over the raw files, every column), the plan check refuses."""
    raw = {t: sorted(str(p) for p in (dataroom_home / "data" / t.replace(".", "/")).glob("*.parquet")) for t in ("acme.findings", "acme.assets", "reference.cve")}
    monkeypatch.setattr(ProjectSession, "_frame", lambda self, t: self.spark.read.parquet(*raw[t.table]))
    for sql in ("SELECT analyst_email FROM acme.findings", "SELECT min(owner_email) FROM acme.assets"):
        outcome = unguarded_by_policy.run("alice", "remediation-acme", sql)
        assert outcome.outcome is Outcome.DENIED and outcome.table is None, outcome.summary()
        assert [r.code for r in outcome.reasons] == ["engine_guard"]
        assert "withheld" in outcome.reasons[0].message
        assert not any(marker in str(outcome.summary()) for marker in PII_MARKERS)
        completion = _completion(unguarded_by_policy, outcome.decision_id)
        assert completion["status"] == "refused" and completion["reason_code"] == "engine_guard"


def test_the_plan_check_alone_refuses_commands_sources_and_reflection(spark_service: QueryService, dataroom_home: Path) -> None:
    """Statements the text check would stop first, explained by the real server and shown to the plan check."""
    project = spark_service.project_for("remediation-acme")
    session = spark_service.engines.for_project(project).session("alice", project)
    part = next((dataroom_home / "data" / "acme" / "findings").glob("*.parquet"))
    refused = [
        "CREATE TEMPORARY VIEW leak AS SELECT * FROM acme__findings",
        "SET spark.sql.runSQLOnFiles=true",
        "CREATE TEMPORARY FUNCTION f AS 'org.example.Leak'",
        "SELECT reflect('java.lang.System', 'getProperty', 'user.dir')",
        "SELECT java_method('java.lang.System', 'getenv', 'HOME')",
        f"SELECT * FROM parquet.`{part}`",
        "SELECT * FROM range(10)",
        "SELECT input_file_name() FROM acme__findings",
        "SHOW TABLES",
        "CACHE TABLE acme__findings",
    ]
    for statement in refused:
        try:
            explained = session.spark.sql("EXPLAIN EXTENDED " + statement).collect()[0][0]
        except Exception:  # Spark would not even explain it (e.g. file sources are off): refused too
            continue
        with pytest.raises(Exception) as caught:
            check_plan(explained, session.views)
        assert getattr(caught.value, "code", None) == "engine_guard", (statement, explained)
    assert session.spark.conf.get("spark.sql.runSQLOnFiles") == "false"
    read = "SELECT f.severity, count(*) FROM acme__findings AS f JOIN reference__cve AS c USING (cve_id) WHERE f.cvss > (SELECT avg(cvss) FROM acme__findings) GROUP BY 1"
    check_plan(session.spark.sql("EXPLAIN EXTENDED " + read).collect()[0][0], session.views)  # a read of the views passes


def test_output_policy_project_is_refused_on_spark(spark_service: QueryService) -> None:
    registry = spark_service.registry
    registry.propose("alice", "acme-constrained", justification="k-anonymous counts", tenants=["acme"], tables=["acme.findings"], output_policy={"min_rows": 5})
    registry.approve("sam", "acme-constrained", justification="ok")
    outcome = spark_service.run("alice", "acme-constrained", "SELECT severity, count(*) AS n FROM acme.findings GROUP BY severity")
    assert outcome.outcome is Outcome.DENIED and [r.code for r in outcome.reasons] == ["engine_guard"]
    assert "output polic" in outcome.reasons[0].message
    assert _completion(spark_service, outcome.decision_id)["reason_code"] == "engine_guard"


def test_row_cap_on_spark(spark_settings: Settings) -> None:
    svc = QueryService(spark_settings.model_copy(update={"max_rows": 10}))
    try:
        outcome = svc.run("alice", "remediation-acme", "SELECT cvss FROM acme.findings")
        assert outcome.outcome is Outcome.DENIED and [r.code for r in outcome.reasons] == ["row_limit"]
        assert svc.run("alice", "remediation-acme", "SELECT cvss FROM acme.findings LIMIT 10").outcome is Outcome.ALLOWED
    finally:
        svc.close()


def test_time_limit_stops_a_long_spark_job_and_is_audited(spark_settings: Settings) -> None:
    svc = QueryService(spark_settings.model_copy(update={"query_timeout_s": 3.0}))
    try:
        outcome = svc.run("alice", "remediation-acme", LONG_QUERY)
        assert outcome.outcome is Outcome.DENIED and [r.code for r in outcome.reasons] == ["time_limit"], outcome.summary()
        completion = _completion(svc, outcome.decision_id)
        assert completion["status"] == "refused" and completion["reason_code"] == "time_limit" and completion["engine"] == "spark"
        after = svc.run("alice", "remediation-acme", "SELECT count(*) AS n FROM acme.findings")  # the session still serves
        assert after.outcome is Outcome.ALLOWED and after.table.column("n").to_pylist() == [2000]
    finally:
        svc.close()


def test_cancellation_stops_a_long_spark_job_and_is_audited(spark_service: QueryService) -> None:
    from dataroom.engines import Cancellation

    cancellation = Cancellation()
    answer: dict = {}
    runner = threading.Thread(target=lambda: answer.update(outcome=spark_service.run("alice", "remediation-acme", LONG_QUERY, cancellation=cancellation)))
    runner.start()
    time.sleep(4)  # let the job start on the server (not a timing assertion: the outcome is what is checked)
    cancellation.cancel()
    runner.join(60)
    assert not runner.is_alive(), "the cancelled job must end"
    outcome = answer["outcome"]
    assert outcome.outcome is Outcome.DENIED and [r.code for r in outcome.reasons] == ["cancelled"], outcome.summary()
    completion = _completion(spark_service, outcome.decision_id)
    assert completion["status"] == "refused" and completion["reason_code"] == "cancelled" and completion["engine"] == "spark"


def test_an_unreachable_spark_server_is_an_error_not_a_hang(dataroom_home: Path) -> None:
    secret = "sc://localhost:1/;token=not-for-users"
    svc = QueryService(Settings(home=dataroom_home, default_engine="spark", spark_remote=secret))
    try:
        outcome = svc.run("alice", "remediation-acme", "SELECT count(*) FROM acme.findings")
        assert outcome.outcome is Outcome.ERROR and outcome.table is None
        assert "Spark engine is unreachable" in outcome.error and "not-for-users" not in str(outcome.summary())
        completion = _completion(svc, outcome.decision_id)
        assert completion["status"] == "failed" and completion["engine"] == "spark"
    finally:
        svc.close()


def test_a_project_session_cannot_see_another_projects_views(spark_service: QueryService) -> None:
    """Spark Connect keeps each session's temporary views to itself: a name is not enough."""
    spark = spark_service.engines.for_project(spark_service.project_for("remediation-acme"))
    by_tenant = spark.session("alice", spark_service.project_for("remediation-by-tenant"))
    acme = spark.session("alice", spark_service.project_for("remediation-acme"))
    assert "globex__findings" in by_tenant.views and "globex__findings" not in acme.views
    assert by_tenant.spark.sql("SELECT count(*) AS n FROM globex__findings").toArrow().column("n").to_pylist() == [2000]
    with pytest.raises(Exception, match="TABLE_OR_VIEW_NOT_FOUND"):
        acme.spark.sql("SELECT count(*) FROM globex__findings").toArrow()

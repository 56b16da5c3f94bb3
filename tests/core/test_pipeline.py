"""The pipeline's own behaviour: scope, output check, limits, concurrency, record contents."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

from blake3 import blake3

from dataroom.audit import attempts
from dataroom.catalog import load_catalog
from dataroom.pipeline import Outcome, QueryService
from dataroom.settings import Settings


def test_decision_record_is_durable_before_execution_and_completed_after(service) -> None:
    outcome = service.run("bob", "remediation-acme", "SELECT count(*) AS n FROM acme.findings")
    decision, completion = [r for r in service.audit.records() if r["decision_id"] == outcome.decision_id]
    assert decision["type"] == "decision" and completion["type"] == "completion"
    assert decision["seq"] < completion["seq"]
    assert decision["result"] == {"allow": True, "reasons": []}
    assert decision["bundles"]["dataroom/query"]["revision"] == service.policy.revision
    assert decision["input"]["facts"]["tables"] == ["acme.findings"]
    assert decision["input"]["user"] == {"name": "bob", "groups": ["data-scientists"]}
    assert completion["status"] == "executed" and completion["rows"] == 1 and completion["bytes"] > 0
    # the digest covers exactly the IPC bytes handed on (BLAKE3, recomputable with b3sum)
    assert completion["result_digest"] == "blake3:" + blake3(memoryview(outcome.result.ipc)).hexdigest()


def test_hub_groups_override_catalog_groups(service) -> None:
    outcome = service.run("alice", "remediation-acme", "SELECT 1", groups=["data-scientists", "hub-only"])
    record = next(r for r in service.audit.records() if r["decision_id"] == outcome.decision_id)
    assert record["input"]["user"]["groups"] == ["data-scientists", "hub-only"]


def test_row_cap_refuses_result(dataroom_home: Path) -> None:
    svc = QueryService(Settings(max_rows=100))
    try:
        outcome = svc.run("alice", "remediation-acme", "SELECT cvss FROM acme.findings")
        completion = list(svc.audit.records())[-1]
    finally:
        svc.close()
    assert outcome.outcome is Outcome.DENIED and outcome.table is None
    assert [r.code for r in outcome.reasons] == ["row_limit"]
    assert completion["status"] == "refused"


def test_timeout_is_a_refusal_and_audited(dataroom_home: Path) -> None:
    svc = QueryService(Settings(query_timeout_s=0.3))
    try:
        outcome = svc.run("alice", "remediation-acme", "SELECT count(*) FROM acme.findings a, acme.findings b, acme.findings c")
        completion = list(svc.audit.records())[-1]
    finally:
        svc.close()
    assert outcome.outcome is Outcome.DENIED and [r.code for r in outcome.reasons] == ["time_limit"]
    assert "(0.3 s)" in outcome.reasons[0].message
    assert completion["status"] == "refused" and completion["reason_code"] == "time_limit"


def test_recursive_cte_without_end_is_a_time_limit_refusal(dataroom_home: Path) -> None:
    """The isolation issue's example: ran 60 s and exited 1; now a refusal within the limit."""
    svc = QueryService(Settings(query_timeout_s=1, kill_grace_s=1))
    try:
        outcome = svc.run("alice", "remediation-acme", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r")
        completion = list(svc.audit.records())[-1]
    finally:
        svc.close()
    assert outcome.outcome is Outcome.DENIED, outcome.summary()
    assert [r.code for r in outcome.reasons] in (["time_limit"], ["memory_limit"])
    assert completion["reason_code"] == outcome.reasons[0].code


def test_expired_project_is_denied(dataroom_home: Path) -> None:
    catalog = load_catalog(dataroom_home / "catalog.toml")
    expired = catalog.projects["remediation-acme"].model_copy(update={"expires": dt.date.today() - dt.timedelta(days=1)})
    catalog = catalog.model_copy(update={"projects": {**catalog.projects, "remediation-acme": expired}})
    svc = QueryService(Settings(), catalog=catalog)
    try:
        outcome = svc.run("alice", "remediation-acme", "SELECT 1")
    finally:
        svc.close()
    assert outcome.outcome is Outcome.DENIED and [r.code for r in outcome.reasons] == ["project_expired"]


def test_sql_rejected_by_duckdb_is_bad_input(service) -> None:
    outcome = service.run("alice", "remediation-acme", "SELECT CAST(severity AS INTEGER) AS s FROM acme.findings")
    assert outcome.outcome is Outcome.INVALID and "Conversion Error" in outcome.error
    completion = list(service.audit.records())[-1]
    assert completion["status"] == "failed" and completion["error_type"] == "ConversionException"


def test_concurrent_queries_are_all_answered_and_audited(service) -> None:
    outcomes = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        sql = "SELECT severity, count(*) FROM acme.findings GROUP BY 1" if i % 2 else "SELECT analyst_email FROM acme.findings"
        o = service.run("alice" if i % 3 else "bob", "remediation-acme", sql)
        with lock:
            outcomes.append(o)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o.outcome.value for o in outcomes) == ["allowed"] * 12 + ["denied"] * 12, [o.summary() for o in outcomes if o.outcome.value == "error"]
    rows = {a["decision_id"]: a for a in attempts(service.audit.records())}
    assert all(o.decision_id in rows for o in outcomes)
    assert service.audit.verify().ok


class _AllowEverything:
    """A policy engine that allows all (a stand-in for a policy bug), to show the engine guard alone."""

    revision = "allow-everything"

    def decide(self, policy_input):
        from dataroom.policy import Decision

        return Decision(True, [], self.revision, "test-allow-all", 0.0)


def test_engine_guard_denies_what_a_broken_policy_would_allow(dataroom_home: Path) -> None:
    svc = QueryService(Settings(), policy=_AllowEverything())
    part = dataroom_home / "data" / "acme" / "findings" / "part-000.parquet"
    try:
        outcome = svc.run("alice", "remediation-acme", f"SELECT analyst_email FROM read_parquet('{part}')")
        completion = list(svc.audit.records())[-1]
    finally:
        svc.close()
    assert outcome.outcome is Outcome.DENIED and outcome.table is None
    assert [r.code for r in outcome.reasons] == ["engine_guard"]
    assert completion["status"] == "refused" and completion["reason_code"] == "engine_guard"
    assert str(dataroom_home) not in str(outcome.summary())

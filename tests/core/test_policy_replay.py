"""Policy-change replay: a candidate policy re-decides the recorded inputs; exactly the affected decisions flip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dataroom.pipeline import Outcome, QueryService
from dataroom.policy import QUERY_POLICY_DIR
from dataroom.replay import records_of, replay

ASSET_IP_RULE = '''

asset_ip(req) := {r |
	some c in req.facts.columns
	c.column == "asset_ip"
	r := {"code": "asset_ip_column", "message": sprintf("column %s.asset_ip may no longer be queried", [c.table])}
}
'''


def _candidate(tmp_path: Path) -> Path:
    """policies/query, plus: deny any query that references a column named asset_ip."""
    candidate = tmp_path / "candidate"
    shutil.copytree(QUERY_POLICY_DIR, candidate)
    columns = candidate / "columns.rego"
    text = columns.read_text()
    old = "reasons(req) := class_reasons(req) | unresolved(req)"
    assert old in text
    columns.write_text(text.replace(old, old + " | asset_ip(req)") + ASSET_IP_RULE)
    return candidate


def _run(service: QueryService, user: str, project: str, sql: str, expected: Outcome) -> str:
    out = service.run(user, project, sql)
    assert out.outcome is expected, (sql, out.summary())
    return out.decision_id


@pytest.fixture
def recorded(service: QueryService) -> dict[str, str]:
    ids = {
        "asset_ip selected": _run(service, "alice", "remediation-acme", "SELECT asset_ip, count(*) AS n FROM acme.findings GROUP BY 1", Outcome.ALLOWED),
        "asset_ip selected again": _run(service, "alice", "remediation-acme", "SELECT asset_ip, count(*) AS n FROM acme.findings GROUP BY 1", Outcome.ALLOWED),
        "asset_ip in a filter": _run(service, "alice", "remediation-acme", "SELECT count(*) FROM acme.assets WHERE asset_ip LIKE '10.%'", Outcome.ALLOWED),
        "no asset_ip": _run(service, "alice", "remediation-acme", "SELECT severity, count(*) FROM acme.findings GROUP BY 1", Outcome.ALLOWED),
        "constant": _run(service, "bob", "remediation-acme", "SELECT 1", Outcome.ALLOWED),
        "asset_ip with PII": _run(service, "alice", "remediation-acme", "SELECT asset_ip, analyst_email FROM acme.findings", Outcome.DENIED),
        "PII only": _run(service, "alice", "remediation-acme", "SELECT analyst_email FROM acme.findings", Outcome.DENIED),
        "asset_ip, not a member": _run(service, "mallory", "remediation-acme", "SELECT asset_ip FROM acme.findings", Outcome.DENIED),
        "unknown user": _run(service, "nobody-at-all", "remediation-acme", "SELECT asset_ip FROM acme.findings", Outcome.INVALID),
    }
    return ids


def test_candidate_denying_asset_ip_flips_exactly_the_decisions_that_referenced_it(service: QueryService, recorded: dict[str, str], tmp_path: Path) -> None:
    records = list(records_of(service.settings.audit_file))
    referenced = {
        r["decision_id"]
        for r in records
        if r.get("type") == "decision" and any(c["column"] == "asset_ip" for c in ((r["input"].get("facts") or {}).get("columns") or []))
    }
    allowed_then = {r["decision_id"] for r in records if r.get("type") == "decision" and r["result"]["allow"]}
    report = replay(records, _candidate(tmp_path), jobs=1)

    flipped = set(report.changed_ids["allow_to_deny"])
    assert flipped == referenced & allowed_then
    assert flipped == {recorded["asset_ip selected"], recorded["asset_ip selected again"], recorded["asset_ip in a filter"]}
    assert report.changed_ids["deny_to_allow"] == []
    assert set(report.changed_ids["reasons_changed"]) == {recorded["asset_ip with PII"]}  # still denied, one more reason
    assert report.allow_to_deny["asset_ip_column"].count == 3 and list(report.allow_to_deny) == ["asset_ip_column"]
    example = report.allow_to_deny["asset_ip_column"].examples[0]
    assert (example["user"], example["project_id"], example["candidate_reasons"]) == ("alice", "remediation-acme", ["asset_ip_column"])
    assert report.reasons_changed["+asset_ip_column"].count == 1
    # the unknown user never reached the policy; a non-member's denial names only the project (no oracle), before and after
    assert (report.decisions, report.skipped, report.unchanged) == (8, 1, 4)
    assert report.distinct_inputs == 7  # the repeated query was evaluated once


def test_replaying_the_current_policy_changes_nothing(service: QueryService, recorded: dict[str, str]) -> None:
    report = replay(records_of(service.settings.audit_file), QUERY_POLICY_DIR, jobs=1)
    assert report.totals() == {"allow_to_deny": 0, "deny_to_allow": 0, "reasons_changed": 0}
    assert report.unchanged == report.decisions == 8 and report.recorded_revisions == {service.policy.revision: 8}


def test_a_candidate_that_allows_pii_flips_deny_to_allow_per_recorded_reason(
    service: QueryService, recorded: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataroom.replay

    monkeypatch.setattr(dataroom.replay, "PARALLEL_FROM", 1)  # spread these few inputs over worker processes too
    candidate = tmp_path / "lax"
    shutil.copytree(QUERY_POLICY_DIR, candidate)
    columns = candidate / "columns.rego"
    columns.write_text(columns.read_text().replace('c.classification == "pii"', 'c.classification == "no-such-class"'))
    report = replay(records_of(service.settings.audit_file), candidate, jobs=2)
    assert set(report.changed_ids["deny_to_allow"]) == {recorded["asset_ip with PII"], recorded["PII only"]}
    assert report.deny_to_allow["pii_column"].count == 2 and report.changed_ids["allow_to_deny"] == []
    assert replay(records_of(service.settings.audit_file), candidate, jobs=1).to_json()["changed_decision_ids"] == report.to_json()["changed_decision_ids"]


def test_cli_replay_json_since_and_parallel(service: QueryService, recorded: dict[str, str], dataroom_home: Path, tmp_path: Path) -> None:
    service.close()
    env = {**os.environ, "DATAROOM_HOME": str(dataroom_home)}
    candidate = _candidate(tmp_path)

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dataroom.cli", "policy", "replay", "--candidate", str(candidate), *args], capture_output=True, text=True, env=env, timeout=120)

    out = cli("--json", "--jobs", "2")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["totals"] == {"allow_to_deny": 3, "deny_to_allow": 0, "reasons_changed": 1}
    assert doc["allow_to_deny"]["asset_ip_column"]["count"] == 3 and doc["decisions_per_second"] > 0
    text = cli("--fail-on-change")
    assert text.returncode == 1 and "allow → deny: 3" in text.stdout and "asset_ip_column" in text.stdout
    later = cli("--since", "2999-01-01", "--json", "--fail-on-change")
    assert later.returncode == 0 and json.loads(later.stdout)["decisions"] == 0
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "main.rego").write_text("package dataroom.query\nmain := {")
    bad = subprocess.run([sys.executable, "-m", "dataroom.cli", "policy", "replay", "--candidate", str(broken)], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "cannot compile" in bad.stderr

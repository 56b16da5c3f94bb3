"""Alerts: Rego rule tests, and incremental scans over a real audit log written by real queries."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import tomli_w

from dataroom.alerts import AlertScanner, load_config
from dataroom.cli.alerts import alerts as alerts_cli
from dataroom.pipeline import Outcome, QueryService
from dataroom.rego import POLICY_ROOT, PolicyBundle
from dataroom.settings import Settings


def test_rego_alert_rules_pass():
    results = PolicyBundle.run_rego_tests(POLICY_ROOT / "alerts")
    assert len(results) >= 10
    failed = [f"{r.file}::{r.rule}" for r in results if not r.passed]
    assert failed == []
    assert {r.rule.split("_")[1] for r in results} == {"alert", "no"}


def write_config(home: Path, **sections) -> None:
    (home / "alerts.toml").write_text(tomli_w.dumps(sections))


def test_burst_of_denied_queries_alerts_once_per_window(svc: QueryService, home: Path):
    write_config(home, denied_burst={"count": 3, "window_s": 600})
    scanner = AlertScanner(Settings())
    for _ in range(2):
        assert svc.run("mallory", "remediation-acme", "SELECT count(*) FROM acme.findings").outcome is Outcome.DENIED
    assert scanner.scan().alerts == []
    third = svc.run("mallory", "remediation-acme", "SELECT analyst_email FROM acme.findings")
    svc.run("alice", "remediation-acme", "SELECT analyst_email FROM acme.findings")  # one denial: no burst for alice
    result = scanner.scan()
    assert result.events == 2
    (alert,) = result.alerts
    assert (alert["rule"], alert["user"], alert["decision_id"], alert["severity"]) == ("denied_burst", "mallory", third.decision_id, "medium")
    assert alert["message"] == "mallory had 3 denied queries within 600 s (threshold 3); latest in project remediation-acme"
    # more denials inside the dedupe window raise nothing new; nothing is rescanned
    svc.run("mallory", "remediation-acme", "SELECT 1 FROM acme.findings")
    assert scanner.scan().alerts == []
    assert scanner.scan().events == 0
    logged = [json.loads(line) for line in (home / "alerts" / "alerts.jsonl").read_text().splitlines()]
    assert [a["alert_id"] for a in logged] == [alert["alert_id"]]


def test_unusual_and_large_row_volumes(svc: QueryService, home: Path):
    write_config(home, volume={"min_history": 3, "min_rows": 50, "sigma": 3.0, "max_rows": 1500})
    for n in (10, 12, 11):
        assert svc.run("bob", "remediation-acme", f"SELECT finding_id FROM acme.findings LIMIT {n}").outcome is Outcome.ALLOWED
    spike = svc.run("bob", "remediation-acme", "SELECT finding_id FROM acme.findings LIMIT 800")
    huge = svc.run("bob", "remediation-acme", "SELECT finding_id FROM acme.findings LIMIT 1600")
    alerts = AlertScanner(Settings()).scan().alerts
    by_rule = {(a["rule"], a["decision_id"]) for a in alerts}
    assert by_rule == {("unusual_volume", spike.decision_id), ("large_result", huge.decision_id)}
    unusual = next(a for a in alerts if a["rule"] == "unusual_volume")
    assert unusual["message"].startswith("bob's query in remediation-acme returned 800 rows; their usual is about 11 (limit 50 over 3 earlier queries)")


def reclassify(home: Path, table: str, column: str, classification: str) -> None:
    path = home / "catalog.toml"
    data = tomllib.loads(path.read_text())
    data["tables"][table]["columns"][column] = classification
    path.write_text(tomli_w.dumps(data))


@pytest.mark.parametrize("scan_between", [False, True], ids=["seen-in-audit", "seen-in-catalog-scan"])
def test_query_touching_newly_classified_pii_column(svc: QueryService, home: Path, scan_between: bool):
    scanner = AlertScanner(Settings())
    before = svc.run("alice", "remediation-acme", "SELECT asset_hostname, count(*) FROM acme.findings GROUP BY 1")
    assert before.outcome is Outcome.ALLOWED
    assert scanner.scan().alerts == []
    reclassify(home, "acme.findings", "asset_hostname", "pii")
    if scan_between:  # the catalog change is noticed by a scan before anyone queries the column again
        assert AlertScanner(Settings()).scan().alerts == []
    after_svc = QueryService(Settings())
    try:
        after = after_svc.run("bob", "remediation-acme", "SELECT asset_hostname FROM acme.findings LIMIT 1")
        long_pii = after_svc.run("bob", "remediation-acme", "SELECT analyst_email FROM acme.findings LIMIT 1")
    finally:
        after_svc.close()
    assert after.outcome is Outcome.DENIED and [r.code for r in after.reasons] == ["pii_column"]
    assert long_pii.outcome is Outcome.DENIED
    alerts = AlertScanner(Settings()).scan().alerts
    assert [(a["rule"], a["user"], a["decision_id"]) for a in alerts] == [("new_pii_column", "bob", after.decision_id)]
    assert "bob referenced acme.findings.asset_hostname, reclassified from quasi_identifier to pii" in alerts[0]["message"]


def test_thresholds_are_configurable_and_checked(home: Path, invoke):
    write_config(home, denied_burst={"count": 2})
    assert load_config(Settings())["denied_burst"] == {"count": 2, "window_s": 600}
    write_config(home, denied_burst={"treshold": 2})
    with pytest.raises(ValueError, match="unknown setting"):
        load_config(Settings())
    r = invoke(alerts_cli, "config")
    assert r.exit_code == 2 and "treshold" in r.output


def test_cli_scan_and_list(svc: QueryService, home: Path, invoke):
    write_config(home, denied_burst={"count": 2, "window_s": 60})
    for _ in range(2):
        svc.run("mallory", "remediation-acme", "SELECT count(*) FROM acme.findings")
    r = invoke(alerts_cli, "scan")
    assert r.exit_code == 0
    assert "[medium] Burst of denied queries: mallory had 2 denied queries" in r.output
    assert "scanned 2 new audit record(s) through seq 1; 1 new alert(s)" in r.output
    r = invoke(alerts_cli, "list", "--rule", "denied_burst", "--json")
    assert [json.loads(line)["user"] for line in r.output.splitlines()] == ["mallory"]
    assert invoke(alerts_cli, "list", "--user", "alice").output == ""


def test_broker_refusals_without_a_user_are_scanned_too(svc: QueryService, home: Path):
    """Records the broker writes for requests refused before the pipeline (no user, no project, no SQL)."""
    from dataroom.policy import Reason

    write_config(home, denied_burst={"count": 3, "window_s": 600})
    for _ in range(3):
        svc.record_refusal(
            outcome="denied",
            reasons=[Reason("no_token", "send your Hub token")],
            http_status=401,
                request={"method": "POST", "path": "/services/broker/v1/query", "remote_ip": "127.0.0.1", "user_agent": "test"},
        )
    (alert,) = AlertScanner(Settings()).scan().alerts
    assert (alert["rule"], alert["user"], alert["project_id"]) == ("denied_burst", "(unauthenticated)", "(none)")

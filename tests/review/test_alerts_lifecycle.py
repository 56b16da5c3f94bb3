"""Alert lifecycle (issue 17 item 2): dedupe by rule and user, escalation with the evidence, open →
acknowledged → resolved with audited steps, reopen on escalation, a new alert after resolve; the CLI
verbs; and the running room's loop finding an attack without anyone scanning.

Audit records are real (``AuditLog`` in the pipeline's shapes, or the real pipeline), the Rego rules
and ladders are the shipped ones, the lifecycle's audit events are read back from the signed registry
stream.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from dataroom.alerts import AlertScanner
from dataroom.alerts.lifecycle import AlertConflict, AlertError, AlertForbidden, AlertNotFound, AlertStore, alert_events
from dataroom.audit import AuditLog, decision_record
from dataroom.cli.alerts import alerts as alerts_cli
from dataroom.pipeline import Outcome, QueryService
from dataroom.settings import Settings

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc).timestamp()
PII = [{"code": "pii_column", "message": "column acme.findings.analyst_email is PII"}]


class Room:
    """Denied decisions at chosen times (``count``: a coalesced record), scanned with a clock the test moves."""

    def __init__(self) -> None:
        self.settings = Settings()
        self.log = AuditLog(self.settings.audit_file)
        self.now = T0
        self.scanner = AlertScanner(self.settings, clock=lambda: self.now)

    def denied(self, user: str, at: float, count: int | None = None) -> None:
        record = decision_record(
            path="dataroom/query/main",
            input_doc={"user": {"name": user, "groups": ["data-scientists"]}, "project_id": "remediation-acme", "sql": "SELECT analyst_email FROM acme.findings", "facts": None},
            allow=False, reasons=PII, outcome="denied", revision="test", labels={}, metrics={},
        )
        record["timestamp"] = dt.datetime.fromtimestamp(at, dt.timezone.utc).isoformat(timespec="microseconds")
        if count is not None:
            record["count"] = count
        self.log.append(record)

    def scan(self, at: float) -> None:
        self.now = at
        self.scanner.scan()

    @property
    def store(self) -> AlertStore:
        return self.scanner.store


@pytest.fixture
def room(home: Path):
    r = Room()
    yield r
    r.log.close()


def burst(room: Room, user: str, n: int, at: float) -> None:
    for i in range(n):
        room.denied(user, at + i * 0.01)


def test_one_alert_per_user_that_grows_and_escalates(room: Room):
    burst(room, "mallory", 5, T0)
    room.scan(T0 + 1)
    (alert,) = room.store.alerts()
    assert (alert["id"], alert["status"], alert["severity"], alert["count"], alert["user"]) == ("AL-1", "open", "medium", 5, "mallory")
    burst(room, "mallory", 94, T0 + 2)  # 99 denials: still medium, still one alert
    room.scan(T0 + 3)
    (alert,) = room.store.alerts()
    assert (alert["count"], alert["severity"]) == (99, "medium")
    room.denied("mallory", T0 + 4)  # the 100th: high
    room.scan(T0 + 5)
    (alert,) = room.store.alerts()
    assert (alert["id"], alert["count"], alert["severity"]) == ("AL-1", 100, "high")
    room.denied("mallory", T0 + 6, count=900)  # a coalesced record of 900 refusals: critical
    room.scan(T0 + 7)
    (alert,) = room.store.alerts()
    assert (alert["count"], alert["severity"]) == (1000, "critical")
    assert [h["step"] for h in alert["history"]] == ["opened", "escalated", "escalated"]
    # another user is another alert, and the more severe is listed first
    burst(room, "bob", 5, T0 + 8)
    room.scan(T0 + 9)
    assert [(a["user"], a["severity"]) for a in room.store.alerts()] == [("mallory", "critical"), ("bob", "medium")]
    steps = [(e["step"], e["alert_id"], e["severity"]) for e in alert_events(room.settings)]
    assert steps == [("opened", "AL-1", "medium"), ("escalated", "AL-1", "high"), ("escalated", "AL-1", "critical"), ("opened", "AL-2", "medium")]


def test_1500_denials_in_a_minute_are_one_critical_alert(room: Room):
    burst(room, "mallory", 1500, T0)
    room.scan(T0 + 60)
    (alert,) = room.store.alerts()
    assert (alert["count"], alert["severity"], alert["hits"]) == (1500, "critical", 1496)  # opened at the 5th, 1495 more hits
    assert len(room.scanner.alerts()) == 1  # the raw alert log still lists the burst once per dedupe period


def test_acknowledge_resolve_and_a_new_alert_after_resolve(room: Room):
    burst(room, "mallory", 5, T0)
    room.scan(T0 + 1)
    acked = room.store.acknowledge("sam", "AL-1", "looking at mallory's session")
    assert acked["status"] == "acknowledged"
    burst(room, "mallory", 10, T0 + 2)  # more evidence, no escalation: stays acknowledged
    room.scan(T0 + 3)
    assert room.store.alert("AL-1")["status"] == "acknowledged" and room.store.alert(1)["count"] == 15
    with pytest.raises(AlertConflict, match="AL-1 is acknowledged"):
        room.store.acknowledge("sasha", "AL-1", "me too")
    resolved = room.store.resolve("sasha", "al-1", "mallory was testing the policy on purpose; told her to stop")
    assert resolved["status"] == "resolved"
    with pytest.raises(AlertConflict, match="AL-1 is resolved"):
        room.store.resolve("sam", "AL-1", "again")
    # new denials after resolve: a new alert, from the window's count
    room.denied("mallory", T0 + 4)
    room.scan(T0 + 5)
    new, old = room.store.alerts()
    assert (new["id"], new["status"], new["count"]) == ("AL-2", "open", 16)
    assert old["id"] == "AL-1" and old["status"] == "resolved"
    events = [(e["step"], e["alert_id"], e["actor"], e["comment"]) for e in alert_events(room.settings) if e["step"] in ("acknowledged", "resolved")]
    assert events == [
        ("acknowledged", "AL-1", "sam", "looking at mallory's session"),
        ("resolved", "AL-1", "sasha", "mallory was testing the policy on purpose; told her to stop"),
    ]
    who = [(h["step"], h["by"]) for h in room.store.alert("AL-1")["history"]]
    assert who == [("opened", "system:alerts"), ("acknowledged", "sam"), ("resolved", "sasha")]


def test_escalation_reopens_an_acknowledged_alert(room: Room):
    burst(room, "mallory", 5, T0)
    room.scan(T0 + 1)
    room.store.acknowledge("sam", "AL-1", "watching")
    room.denied("mallory", T0 + 2, count=200)
    room.scan(T0 + 3)
    alert = room.store.alert("AL-1")
    assert (alert["status"], alert["severity"], alert["count"]) == ("open", "high", 205)
    assert [h["step"] for h in alert["history"]][-3:] == ["acknowledged", "escalated", "reopened"]


def test_only_security_acknowledges_with_a_comment_and_refusals_are_audited(room: Room):
    burst(room, "mallory", 5, T0)
    room.scan(T0 + 1)
    with pytest.raises(AlertForbidden, match="only members of the security group"):
        room.store.acknowledge("alice", "AL-1", "nothing to see")
    with pytest.raises(AlertForbidden):
        room.store.resolve("mallory", "AL-1", "resolving my own alert")
    with pytest.raises(AlertForbidden):
        room.store.acknowledge("nobody-in-the-catalog", "AL-1", "x")
    with pytest.raises(AlertError, match="write a comment"):
        room.store.acknowledge("sam", "AL-1", "   ")
    with pytest.raises(AlertNotFound):
        room.store.acknowledge("sam", "AL-99", "x")
    with pytest.raises(AlertError, match="not an alert id"):
        room.store.acknowledge("sam", "../../etc", "x")
    assert room.store.alert("AL-1")["status"] == "open"
    refused = [(e["step"], e["actor"]) for e in alert_events(room.settings) if e["step"].endswith("_refused")]
    assert refused == [
        ("acknowledge_refused", "alice"), ("resolve_refused", "mallory"), ("acknowledge_refused", "nobody-in-the-catalog"),
        ("acknowledge_refused", "sam"), ("acknowledge_refused", "sam"), ("acknowledge_refused", "sam"),
    ]


def test_lifecycle_events_are_in_the_signed_registry_stream_and_verify(room: Room):
    burst(room, "mallory", 5, T0)
    room.scan(T0 + 1)
    room.store.acknowledge("sam", "AL-1", "on it")
    from dataroom.audit.registry_events import registry_stream

    stream = registry_stream(AuditLog.from_settings(room.settings))
    assert stream.verify().ok
    # an edited comment is caught by the chain
    lines = stream.path.read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if '"on it"' in line)
    lines[i] = lines[i].replace('"on it"', '"nothing happened"')
    stream.path.write_text("\n".join(lines) + "\n")
    assert not registry_stream(AuditLog.from_settings(room.settings)).verify().ok


def test_cli_list_ack_resolve(room: Room, invoke):
    burst(room, "mallory", 5, T0)
    room.scan(T0 + 1)
    r = invoke(alerts_cli, "list", "--status", "open")
    assert r.exit_code == 0 and r.output.startswith("AL-1 open [medium] denied_burst x5")
    r = invoke(alerts_cli, "ack", "AL-1", "--as", "alice", "--comment", "fine")
    assert r.exit_code == 3 and "not permitted: only members of the security group may acknowledge alerts" in r.output
    r = invoke(alerts_cli, "ack", "AL-1", "--as", "sam")
    assert r.exit_code == 2 and "--comment" in r.output
    r = invoke(alerts_cli, "ack", "AL-1", "--as", "sam", "--comment", "checking with mallory")
    assert r.exit_code == 0 and r.output == "acknowledged AL-1 [medium] denied_burst x5\n"
    assert invoke(alerts_cli, "list", "--status", "open").output == ""
    r = invoke(alerts_cli, "list", "--status", "acknowledged")
    assert "(acknowledged by sam" in r.output and "checking with mallory" in r.output
    r = invoke(alerts_cli, "ack", "AL-1", "--as", "sam", "--comment", "again")
    assert r.exit_code == 2 and "refused: AL-1 is acknowledged" in r.output
    r = invoke(alerts_cli, "resolve", "AL-1", "--as", "sam", "--comment", "policy test, agreed with her lead")
    assert r.exit_code == 0
    (doc,) = [json.loads(line) for line in invoke(alerts_cli, "list", "--json").output.splitlines()]
    assert doc["status"] == "resolved" and [h["step"] for h in doc["history"]] == ["opened", "acknowledged", "resolved"]
    r = invoke(alerts_cli, "show", "AL-1")
    assert "resolved by sam" in r.output and "policy test, agreed with her lead" in r.output
    assert invoke(alerts_cli, "show", "AL-7").exit_code == 2


def test_the_running_room_finds_an_attack_without_a_scan(home: Path, invoke):
    """The review service's loop (AlertLoop, a thread here) evaluates on its own; `alerts list` shows the burst."""
    from dataroom.alerts.loop import AlertLoop

    loop = AlertLoop(Settings(), interval_s=0.2).start()
    svc = QueryService(Settings())
    try:
        for _ in range(300):
            assert svc.run("mallory", "remediation-acme", "SELECT analyst_email FROM acme.findings").outcome is Outcome.DENIED
        deadline = time.monotonic() + 60
        while True:
            listed = invoke(alerts_cli, "list", "--status", "open", "--json").output.splitlines()
            found = [json.loads(line) for line in listed]
            if found and found[0]["count"] == 300:
                break
            assert time.monotonic() < deadline, f"the loop did not report the burst: {found}"
            time.sleep(0.2)
    finally:
        svc.close()
        loop.stop()
    (alert,) = found
    assert (alert["rule"], alert["user"], alert["severity"]) == ("denied_burst", "mallory", "high")
    assert loop.evaluations >= 1

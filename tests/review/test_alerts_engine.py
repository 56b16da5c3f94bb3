"""Alerts on how queries ended and on denied function classes, over a real hash-chained audit log.

The records are written with ``dataroom.audit.AuditLog`` in the shapes the pipeline writes
(decision records from ``decision_record``; completion records per the completion contract:
status executed/refused/failed, ``reason_code`` when refused), with chosen timestamps. The
scanner's clock is injected, so "a scan after the grace period" is a scan whose clock says so.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import tomli_w

from dataroom.alerts import AlertScanner, load_config
from dataroom.audit import AuditLog, decision_record
from dataroom.cli.alerts import alerts as alerts_cli
from dataroom.settings import Settings

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc).timestamp()
PROJECT = "remediation-acme"
SQL_IN_STRING = ("sql_in_string", "function json_serialize_plan takes SQL text or a plan: not allowed")
FILE_FUNCTION = ("file_function", "function read_parquet reads files: not allowed")
SESSION_STATE = ("session_state_function", "function current_setting reads session state: not allowed")
NOT_ALLOWED = ("function_not_allowed", "function levenshtein is not on the allow-list")


def iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat(timespec="microseconds")


class Room:
    """Writes audit records at chosen times and scans them with a clock the test moves."""

    def __init__(self) -> None:
        self.settings = Settings()
        self.log = AuditLog(self.settings.audit_file)
        self.now = T0
        self.scanner = self.new_scanner()

    def new_scanner(self) -> AlertScanner:
        return AlertScanner(self.settings, clock=lambda: self.now)

    def decision(self, user: str, at: float, outcome: str = "allowed", reasons=(), count: int | None = None, project: str = PROJECT) -> str:
        record = decision_record(
            path="dataroom/query/main",
            input_doc={"user": {"name": user, "groups": ["data-scientists"]}, "project_id": project, "sql": "SELECT 1", "facts": None},
            allow=outcome == "allowed",
            reasons=[{"code": code, "message": message} for code, message in reasons],
            outcome=outcome,
            revision="test-revision",
            labels={},
            metrics={},
        )
        record["timestamp"] = iso(at)
        if count is not None:
            record["count"] = count
        return self.log.append(record)["decision_id"]

    def completion(self, decision_id: str, at: float, status: str = "executed", reason_code: str | None = None, rows: int = 10) -> None:
        record = {"type": "completion", "decision_id": decision_id, "timestamp": iso(at), "duration_ms": 12.3, "status": status}
        if status == "executed":
            record.update(rows=rows, bytes=rows * 8, result_digest="0" * 64)
        else:
            record.update(rows=0, bytes=0, error=f"query refused: {reason_code or 'failed'}", error_type="QueryRefused" if status == "refused" else "BinderException")
            if status == "refused":
                record["reason_code"] = reason_code
        self.log.append(record)

    def query(self, user: str, at: float, status: str = "executed", reason_code: str | None = None, after_s: float = 1.0, project: str = PROJECT) -> str:
        """An allowed decision and its completion ``after_s`` later."""
        decision_id = self.decision(user, at, project=project)
        self.completion(decision_id, at + after_s, status, reason_code)
        return decision_id

    def scan(self, at: float | None = None) -> list[dict]:
        if at is not None:
            self.now = at
        return self.scanner.scan().alerts

    def close(self) -> None:
        self.log.close()


@pytest.fixture
def room(home: Path):
    r = Room()
    yield r
    r.close()


def write_config(home: Path, **sections) -> None:
    (home / "alerts.toml").write_text(tomli_w.dumps(sections))


def rules(alerts: list[dict]) -> list[tuple[str, str, str, str]]:
    return [(a["rule"], a["severity"], a["user"], a["decision_id"]) for a in alerts]


# -- (a) engine crashes ---------------------------------------------------------------------------
def test_one_engine_crash_is_a_high_alert(room: Room):
    room.query("bob", T0)  # executed
    room.query("bob", T0 + 1, "failed")
    room.query("bob", T0 + 2, "refused", "engine_guard")
    room.query("bob", T0 + 3, "refused", "cancelled")
    assert room.scan(T0 + 10) == []
    crash = room.query("mallory", T0 + 20, "refused", "engine_crash", after_s=2.5)
    (alert,) = room.scan(T0 + 30)
    assert (alert["rule"], alert["severity"], alert["user"], alert["project_id"], alert["decision_id"]) == ("engine_crash", "high", "mallory", PROJECT, crash)
    assert alert["key"] == f"engine_crash:{crash}"
    assert alert["message"] == (
        f"mallory's query in {PROJECT} (decision {crash}) crashed the execution worker (QueryRefused: query refused: engine_crash); "
        f"a crash may be an exploit attempt: read the query's SQL and the broker log around {iso(T0 + 22.5)}"
    )
    # every crash is its own alert, even within the dedupe window
    second = room.query("mallory", T0 + 40, "refused", "engine_crash")
    assert rules(room.scan(T0 + 50)) == [("engine_crash", "high", "mallory", second)]


def test_engine_crash_without_a_seen_decision_still_alerts(room: Room):
    room.completion("0b0e5a9c-0000-4000-8000-000000000000", T0, "refused", "engine_crash")
    (alert,) = room.scan(T0 + 1)
    assert (alert["rule"], alert["user"]) == ("engine_crash", "(unknown)")


# -- (b) bursts of resource-limit refusals --------------------------------------------------------
def test_resource_limit_refusals_alert_in_bursts(room: Room, home: Path):
    first = room.query("bob", T0, "refused", "memory_limit")
    second = room.query("bob", T0 + 60, "refused", "time_limit", project="remediation-globex")
    # other refusals and other users' limits do not count toward bob's burst
    room.query("bob", T0 + 70, "refused", "engine_guard")
    room.query("bob", T0 + 80, "refused", "engine_crash")
    room.query("carol", T0 + 90, "refused", "row_limit")
    room.query("carol", T0 + 95, "refused", "row_limit")
    assert [a["rule"] for a in room.scan(T0 + 100)] == ["engine_crash"]  # 2 limit refusals each: no burst
    third = room.query("bob", T0 + 120, "refused", "row_limit")
    (alert,) = room.scan(T0 + 130)
    assert (alert["rule"], alert["severity"], alert["user"], alert["decision_id"], alert["key"]) == ("limit_refusals", "medium", "bob", third, "limit_refusals:bob")
    assert alert["message"] == (
        "bob had 3 queries refused for resource limits within 600 s (threshold 3): memory_limit x1, row_limit x1, time_limit x1; "
        f"latest in project {PROJECT}; decisions {first}, {second}, {third}"
    )
    # more refusals inside the dedupe window: no second alert
    room.query("bob", T0 + 140, "refused", "memory_limit")
    assert room.scan(T0 + 150) == []


def test_limit_refusals_outside_the_window_do_not_add_up(room: Room, home: Path):
    write_config(home, limit_refusals={"count": 3, "window_s": 300})
    for at in (T0, T0 + 200, T0 + 400, T0 + 600):  # never 3 within 300 s
        room.query("dave", at, "refused", "time_limit")
    assert room.scan(T0 + 700) == []
    write_config(home, limit_refusals={"count": 2, "window_s": 300})
    room.query("dave", T0 + 650, "refused", "memory_limit")
    assert rules(room.scan(T0 + 700))[0][:3] == ("limit_refusals", "medium", "dave")


# -- (c) queries that started and never completed -------------------------------------------------
def test_query_that_never_completes_alerts_after_the_grace_period_once(room: Room):
    grace = Settings().query_timeout_s + 60  # the default: the query time limit plus 60 s
    assert load_config(Settings())["never_completed"]["grace_s"] == grace
    stuck = room.decision("carol", T0)
    assert room.scan(T0 + 30) == []  # still running
    assert room.scan(T0 + grace) == []  # exactly at the grace period: still in time
    (alert,) = room.scan(T0 + grace + 5)
    assert (alert["rule"], alert["severity"], alert["user"], alert["project_id"], alert["decision_id"]) == ("never_completed", "high", "carol", PROJECT, stuck)
    assert alert["event_at"] == iso(T0) and alert["seq"] == 0
    assert alert["message"] == (
        f"carol's query in {PROJECT} (decision {stuck}), allowed at {iso(T0)}, has no completion record {int(grace + 5)} s later "
        f"(grace {grace:g} s): the execution worker or the broker died without recording how it ended; check the broker log"
    )
    assert room.scan(T0 + 3 * grace) == []  # raised once, not on every scan
    # a completion after the alert (even past the dedupe window, 1 h): no second alert
    room.completion(stuck, T0 + 2 * 3600, "executed")
    assert room.scan(T0 + 2 * 3600 + 10) == []
    assert [a["rule"] for a in room.scanner.alerts()] == ["never_completed"]


def test_completion_before_the_grace_period_raises_nothing(room: Room):
    grace = Settings().query_timeout_s + 60
    quick = room.decision("alice", T0)
    room.completion(quick, T0 + 0.5)
    slow = room.decision("alice", T0 + 1)
    assert room.scan(T0 + 10) == []  # `slow` is pending now, seen by this scan
    room.completion(slow, T0 + grace - 1, "refused", "time_limit")  # arrives just in time
    room.decision("alice", T0 + 2, outcome="denied", reasons=[("pii_column", "column is PII")])  # denied: never pending
    assert room.new_scanner().scan().alerts == [] and room.scan(T0 + 10 * grace) == []
    state = json.loads((room.settings.home / "alerts" / "state.json").read_text())
    assert state["pending"] == {}


def test_completion_arriving_late_between_scans_raises_the_alert_once(room: Room):
    grace = Settings().query_timeout_s + 60
    late = room.decision("bob", T0)
    assert room.scan(T0 + 10) == []
    room.completion(late, T0 + grace + 100)  # it did end, but long after the time limit
    (alert,) = room.scan(T0 + grace + 110)
    assert (alert["rule"], alert["severity"], alert["decision_id"]) == ("never_completed", "medium", late)
    assert alert["message"] == (
        f"bob's query in {PROJECT} (decision {late}) completed (executed) only {int(grace + 100)} s after it was allowed "
        f"(grace {grace:g} s): the time limit did not stop it"
    )
    assert room.scan(T0 + 10 * grace) == []


def test_grace_period_follows_the_query_time_limit_or_the_config(room: Room, home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DATAROOM_QUERY_TIMEOUT_S", "10")
    room.scanner = AlertScanner(Settings(), clock=lambda: room.now)
    assert load_config(Settings())["never_completed"]["grace_s"] == 70
    first = room.decision("carol", T0)
    assert room.scan(T0 + 69) == []
    assert rules(room.scan(T0 + 71)) == [("never_completed", "high", "carol", first)]
    write_config(home, never_completed={"grace_s": 30})
    second = room.decision("carol", T0 + 100)
    assert room.scan(T0 + 129) == []
    assert rules(room.scan(T0 + 131)) == [("never_completed", "high", "carol", second)]


# -- (d) attempts to call denied function classes -------------------------------------------------
def test_denied_function_class_one_attempt_medium_repeated_high(room: Room):
    first = room.decision("mallory", T0, "denied", [SQL_IN_STRING, NOT_ALLOWED])
    (alert,) = room.scan(T0 + 1)
    assert (alert["rule"], alert["severity"], alert["user"], alert["decision_id"]) == ("denied_function_class", "medium", "mallory", first)
    assert alert["message"] == (
        f"mallory tried a denied function class in project {PROJECT} (decision {first}, query denied): "
        "sql_in_string: function json_serialize_plan takes SQL text or a plan: not allowed"
    )
    second = room.decision("mallory", T0 + 60, "denied", [FILE_FUNCTION])
    (alert,) = room.scan(T0 + 61)
    assert (alert["rule"], alert["severity"], alert["decision_id"], alert["key"]) == ("denied_function_class", "high", second, "denied_function_class_repeated:mallory")
    assert alert["message"] == (
        "mallory made 2 attempts to call denied function classes (file_function, sql_in_string) within 3600 s (threshold 2); "
        f"latest in project {PROJECT}: file_function: function read_parquet reads files: not allowed; decisions {first}, {second}"
    )
    room.decision("mallory", T0 + 120, "denied", [SESSION_STATE])  # more of the same within the dedupe window
    assert room.scan(T0 + 121) == []


def test_function_not_on_the_allow_list_is_not_an_alert(room: Room):
    for i in range(3):
        room.decision("alice", T0 + i, "denied", [NOT_ALLOWED])
    assert room.scan(T0 + 10) == []


def test_denied_function_attempts_count_per_user_and_window(room: Room):
    bob = room.decision("bob", T0, "denied", [SESSION_STATE])
    carol = room.decision("carol", T0 + 1, "denied", [FILE_FUNCTION])
    assert rules(room.scan(T0 + 2)) == [("denied_function_class", "medium", "bob", bob), ("denied_function_class", "medium", "carol", carol)]
    # past the window and the dedupe period, a new single attempt is medium again
    later = room.decision("bob", T0 + 4000, "denied", [SESSION_STATE])
    assert rules(room.scan(T0 + 4001)) == [("denied_function_class", "medium", "bob", later)]


def test_coalesced_records_count_as_the_requests_they_stand_for(room: Room):
    flood = room.decision("eve", T0, "denied", [FILE_FUNCTION], count=3)
    assert rules(room.scan(T0 + 1)) == [("denied_function_class", "high", "eve", flood)]
    room.decision("zed", T0, "denied", [("no_token", "send your Hub token")], count=4)
    assert room.scan(T0 + 2) == []  # 4 < denied_burst.count (5)
    burst = room.decision("zed", T0 + 1, "denied", [("no_token", "send your Hub token")])
    (alert,) = room.scan(T0 + 3)
    assert (alert["rule"], alert["decision_id"]) == ("denied_burst", burst)
    assert alert["message"].startswith("zed had 5 denied queries within 600 s (threshold 5)")


# -- configuration and state ----------------------------------------------------------------------
def test_new_thresholds_are_shown_and_checked(home: Path, invoke):
    r = invoke(alerts_cli, "config")
    assert r.exit_code == 0
    assert "never_completed.grace_s defaults to the query time limit (query_timeout_s = 60) + 60 s" in r.output
    shown = json.loads(r.output[r.output.index("{") :])
    assert shown["limit_refusals"] == {"count": 3, "window_s": 600, "reason_codes": ["memory_limit", "time_limit", "row_limit"]}
    assert shown["never_completed"] == {"grace_s": 120.0}
    assert shown["denied_functions"] == {"repeat_count": 2, "window_s": 3600, "reason_codes": ["sql_in_string", "session_state_function", "file_function"]}
    write_config(home, limit_refusals={"count": "three"})
    r = invoke(alerts_cli, "config")
    assert r.exit_code == 2 and "limit_refusals.count must be a non-negative number" in r.output


def test_state_written_by_the_previous_scanner_version_is_read(room: Room):
    old = room.decision("carol", T0)
    state_dir = room.settings.home / "alerts"
    state_dir.mkdir()
    offset = room.settings.audit_file.stat().st_size
    old_state = {"offset": offset, "seq": 0, "denials": {"zed": [T0]}, "volume": {}, "ledger": {}, "pending": {old: ["carol", PROJECT]}, "last_alert": {}}
    (state_dir / "state.json").write_text(json.dumps(old_state))
    assert room.scan(T0 + 10) == []  # the old entry's age is unknown: counted from this scan
    assert rules(room.scan(T0 + 10 + 121)) == [("never_completed", "high", "carol", old)]


def test_real_pipeline_crash_and_denied_function_raise_alerts(dataroom_home: Path) -> None:
    """End to end: a worker that really aborts, and a real json_serialize_plan attempt, through QueryService."""
    from dataroom.engines.worker import TEST_ABORT_MARKER
    from dataroom.pipeline import QueryService

    service = QueryService(Settings(engine_test_hooks=True))
    try:
        crash = service.run("alice", PROJECT, f"SELECT 1 AS x /* {TEST_ABORT_MARKER} */")
        plan = service.run("alice", PROJECT, "SELECT json_serialize_plan('SELECT 1') AS p")
    finally:
        service.close()
    assert [r.code for r in crash.reasons] == ["engine_crash"]
    assert [r.code for r in plan.reasons] == ["sql_in_string"]
    found = {(a["rule"], a["user"]) for a in AlertScanner(Settings()).scan().alerts}
    assert {("engine_crash", "alice"), ("denied_function_class", "alice")} <= found

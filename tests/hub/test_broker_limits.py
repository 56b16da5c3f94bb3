"""Per-query limits from Settings, and cancellation when the client goes away."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import requests
from hub_support import MAX_ROWS, RunningRoom, broker_query

from dataroom.client import QueryDenied, QueryFailed, QueryInvalid, connect

# Never pruned by statistics: a triple self-join that runs for minutes on the demo data.
SLOW_SQL = "SELECT count(*) AS n_{tag} FROM acme.findings a, acme.findings b, acme.findings c WHERE (a.cvss * 7 + b.cvss * 3 + c.cvss) % 1 = 0.123"


def decision_for(room: RunningRoom, sql: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in room.records() if r.get("type") == "decision" and r["input"].get("sql") == sql]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no decision record for {sql!r}")


def test_closing_the_connection_interrupts_the_running_query(room: RunningRoom, tokens: dict[str, str]) -> None:
    sql = SLOW_SQL.format(tag=uuid.uuid4().hex[:10])
    with pytest.raises(requests.exceptions.ReadTimeout):
        # the client gives up after 3 s and closes the connection (the broker's own limit is 120 s)
        broker_query(room, "remediation-acme", sql, token=tokens["alice"], timeout=(10, 3))
    decision = decision_for(room, sql)
    assert decision["outcome"] == "allowed"
    completion = room.completion(decision["decision_id"], timeout=60)
    assert completion is not None, "the query was not interrupted"
    assert completion["status"] == "refused"
    assert completion["reason_code"] == "cancelled"
    # the broker is still healthy and answers the next query
    assert broker_query(room, "remediation-acme", "SELECT count(*) AS n FROM acme.findings", token=tokens["alice"]).status_code == 200


def test_row_limit_from_settings(room: RunningRoom, tokens: dict[str, str]) -> None:
    room_client = connect("remediation-acme", url=room.broker_url, token=tokens["alice"])
    # 30 x 2000 rows: more than the broker's DATAROOM_MAX_ROWS, found out by the output check
    with pytest.raises(QueryDenied) as denied:
        room_client.sql("SELECT a.cvss FROM acme.findings a, acme.findings b WHERE a.finding_id < 'acme-f00000030'")
    assert f"more than {MAX_ROWS:,} rows" in str(denied.value) and str(denied.value).startswith("query refused")
    assert [r["code"] for r in denied.value.reasons] == ["row_limit"]
    completion = room.completion(denied.value.decision_id)
    assert completion["status"] == "refused" and completion["reason_code"] == "row_limit"


def test_an_execution_error_says_what_went_wrong(room: RunningRoom, tokens: dict[str, str]) -> None:
    room_client = connect("remediation-acme", url=room.broker_url, token=tokens["alice"])
    with pytest.raises((QueryFailed, QueryInvalid)) as failed:
        room_client.sql("SELECT CAST(severity AS INTEGER) AS s FROM acme.findings")
    assert "Could not convert" in str(failed.value) or "Conversion" in str(failed.value)
    assert room.completion(failed.value.decision_id)["status"] == "failed"


def test_a_slow_query_does_not_block_other_callers(room: RunningRoom, tokens: dict[str, str]) -> None:
    """Queries run in a thread pool: a quick query completes while a slow one is still running."""
    sql = SLOW_SQL.format(tag=uuid.uuid4().hex[:10])
    errors: list[BaseException] = []

    def slow() -> None:
        try:
            broker_query(room, "remediation-acme", sql, token=tokens["bob"], timeout=(10, 3))
        except requests.exceptions.ReadTimeout:
            pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=slow)
    thread.start()
    slow_decision = decision_for(room, sql)
    quick = broker_query(room, "remediation-acme", "SELECT count(*) AS n FROM acme.findings", token=tokens["alice"])
    assert quick.status_code == 200
    assert room.completion(slow_decision["decision_id"]) is None  # the slow one is still running
    thread.join()
    assert not errors
    completion = room.completion(slow_decision["decision_id"], timeout=60)
    assert completion is not None and completion["reason_code"] == "cancelled"

"""Many simultaneous clients: every query answered or cleanly refused, every one audited, chain intact."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import polars as pl
from hub_support import RunningRoom

from dataroom.audit import attempts
from dataroom.client import QueryDenied, QueryInvalid, connect

CLIENTS = 24

# (user, project, sql, expected outcome)
WORKLOAD = [
    ("alice", "remediation-acme", "SELECT severity, avg(remediation_days) AS days FROM acme.findings GROUP BY severity", "allowed"),
    ("bob", "remediation-acme", "SELECT count(*) AS n FROM acme.assets", "allowed"),
    ("alice", "remediation-by-tenant", "SELECT 'globex' AS t, regr_r2(remediation_days, cvss) AS r2 FROM globex.findings", "allowed"),
    ("mallory", "remediation-acme", "SELECT count(*) AS n FROM acme.findings", "denied"),
    ("alice", "remediation-acme", "SELECT analyst_name FROM acme.findings", "denied"),
    ("bob", "remediation-acme", "SELEC broken", "invalid"),
]


def test_twenty_four_simultaneous_clients(room: RunningRoom, tokens: dict[str, str]) -> None:
    barrier = threading.Barrier(CLIENTS)

    def one(i: int) -> tuple[int, str, str]:
        user, project, sql, _ = WORKLOAD[i % len(WORKLOAD)]
        client = connect(project, url=room.broker_url, token=tokens[user])  # one connection per client
        sql = f"{sql} -- client {i}"
        barrier.wait()
        try:
            frame = client.sql(sql)
            assert isinstance(frame, pl.DataFrame) and frame.height >= 1
            return i, "allowed", client.last_decision.decision_id
        except QueryDenied as exc:
            assert exc.reasons, "a denial carries reasons"
            return i, "denied", exc.decision_id
        except QueryInvalid as exc:
            return i, "invalid", exc.decision_id
        finally:
            client.close()

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(one, range(CLIENTS)))

    assert len(results) == CLIENTS
    by_id = {a["decision_id"]: a for a in attempts(room.audit.records())}
    for i, outcome, decision_id in results:
        user, project, sql, expected = WORKLOAD[i % len(WORKLOAD)]
        assert outcome == expected, (i, outcome)
        attempt = by_id[decision_id]  # every query audited, attributed to its caller and project
        assert attempt["outcome"] == expected
        assert attempt["input"]["user"]["name"] == user
        assert attempt["input"]["project_id"] == project
        assert attempt["input"]["sql"] == f"{sql} -- client {i}"
        if expected == "allowed":
            assert attempt["completion"]["status"] == "executed"
        else:
            assert attempt["completion"] is None
    assert len({d for _, _, d in results}) == CLIENTS
    verified = room.audit.verify()
    assert verified.ok, verified.describe()

"""The broker's front door: every request authenticated with the Hub, every refusal audited.

For each request the helpers check the security properties: the status code for anonymous, a bad
token, a token without the broker scope, a member and a non-member, and the audit record left.
"""

from __future__ import annotations

import json
import uuid

import pyarrow as pa
import pytest
import requests
from blake3 import blake3
from hub_support import RunningRoom, broker_get, broker_query, login

from dataroom.audit import attempts
from dataroom.broker.openapi import openapi_spec

ACME = "remediation-acme"
SQL = "SELECT severity, count(*) AS n FROM acme.findings GROUP BY severity"


def unique_sql() -> str:
    """A query whose text identifies this attempt in the audit log."""
    return f"SELECT count(*) AS n_{uuid.uuid4().hex[:12]} FROM acme.findings"


def refusal_record(room: RunningRoom, sql: str) -> dict:
    found = [r for r in room.records() if r.get("type") == "decision" and r["input"].get("sql") == sql]
    assert len(found) == 1, f"expected one audit record for {sql!r}, found {len(found)}"
    return found[0]


def assert_refused(response, status: int, code: str, room: RunningRoom, sql: str, user: str | None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["decision"]["allowed"] is False
    assert [r["code"] for r in body["decision"]["reasons"]] == [code]
    record = refusal_record(room, sql)
    assert record["decision_id"] == body["decision"]["decision_id"]
    assert record["outcome"] == "denied"
    assert record["result"] == {"allow": False, "reasons": body["decision"]["reasons"]}
    assert record["input"]["user"]["name"] == user
    assert record["input"]["project_id"] == ACME
    assert record["input"]["client"] == "broker"
    assert record["input"]["request"]["path"].endswith("/v1/query")
    assert record["metrics"]["http_status"] == status
    assert record["bundles"]["dataroom/query"]["revision"]
    return record


@pytest.mark.parametrize("via_proxy", [False, True], ids=["direct", "through-the-hub-proxy"])
def test_no_token_is_401_and_audited(room: RunningRoom, via_proxy: bool) -> None:
    sql = unique_sql()
    response = broker_query(room, ACME, sql, token=None, via_proxy=via_proxy)
    assert_refused(response, 401, "missing_token", room, sql, user=None)
    assert "token" in response.headers["WWW-Authenticate"]


def test_a_token_in_the_url_is_not_accepted(room: RunningRoom, tokens: dict[str, str]) -> None:
    """Tokens travel in the Authorization header only (URLs end up in logs and histories)."""
    sql = unique_sql()
    response = requests.post(room.broker_url + f"v1/query?token={tokens['alice']}", json={"project": ACME, "sql": sql}, timeout=30)
    record = assert_refused(response, 401, "missing_token", room, sql, user=None)
    assert tokens["alice"] not in str(record)


def test_a_bad_token_is_401_and_audited(room: RunningRoom) -> None:
    sql = unique_sql()
    response = broker_query(room, ACME, sql, token="not-a-hub-token-" + uuid.uuid4().hex)
    assert_refused(response, 401, "invalid_token", room, sql, user=None)


@pytest.mark.parametrize(
    "scopes",
    [["read:users:name!user"], ["access:servers!server=alice/"]],
    ids=["identify-only", "alice-server-only"],
)
def test_a_valid_token_without_the_broker_scope_is_403_and_audited(room: RunningRoom, scopes: list[str]) -> None:
    alice = login(room, "alice")
    narrow = alice.user.new_token(note="no broker scope", scopes=scopes)
    sql = unique_sql()
    response = broker_query(room, ACME, sql, token=narrow)
    record = assert_refused(response, 403, "missing_scope", room, sql, user="alice")
    assert record["input"]["user"]["groups"] == ["data-scientists"]
    # the same user's full token is accepted
    assert broker_query(room, ACME, unique_sql(), token=alice.token).status_code == 200


def test_another_users_token_carries_that_users_scope_not_alices(room: RunningRoom, tokens: dict[str, str]) -> None:
    """bob's token identifies bob: alice's benchmark project is denied to it by policy (403), audited."""
    sql = "SELECT count(*) AS n FROM initech.findings"
    response = broker_query(room, "remediation-benchmark", sql, token=tokens["bob"])
    assert response.status_code == 403
    decision = response.json()["decision"]
    assert decision["outcome"] == "denied" and [r["code"] for r in decision["reasons"]] == ["project_not_available"]
    record = [r for r in room.records() if r.get("decision_id") == decision["decision_id"]][0]
    assert record["input"]["user"]["name"] == "bob" and record["input"]["project_id"] == "remediation-benchmark"


def test_an_allowed_query_streams_arrow_with_the_decision(room: RunningRoom, tokens: dict[str, str]) -> None:
    response = broker_query(room, ACME, SQL, token=tokens["bob"])
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/vnd.apache.arrow.stream"
    table = pa.ipc.open_stream(response.content).read_all()
    assert table.column_names == ["severity", "n"] and sum(table["n"].to_pylist()) == 2000
    decision_id = response.headers["X-Dataroom-Decision-Id"]
    attempt = [a for a in attempts(room.audit.records()) if a["decision_id"] == decision_id][0]
    assert attempt["input"]["user"]["name"] == "bob" and attempt["completion"]["rows"] == table.num_rows
    # the audit's digest is of exactly the body the client received (what `b3sum` of a saved body prints)
    assert attempt["completion"]["result_digest"] == "blake3:" + blake3(response.content).hexdigest()


def test_a_pii_query_is_403_with_the_policys_reasons(room: RunningRoom, tokens: dict[str, str]) -> None:
    response = broker_query(room, ACME, "SELECT analyst_email FROM acme.findings", token=tokens["alice"])
    assert response.status_code == 403
    body = response.json()
    assert [r["code"] for r in body["decision"]["reasons"]] == ["pii_column"]
    assert "analyst_email is PII" in body["message"]


def test_malformed_requests_are_400_and_audited(room: RunningRoom, tokens: dict[str, str]) -> None:
    headers = {"Authorization": f"token {tokens['alice']}"}
    for body in (b"not json", b'{"sql": "SELECT 1"}', b'{"project": "remediation-acme", "sql": "  "}'):
        before = len(room.records())
        response = requests.post(room.broker_url + "v1/query", data=body, headers=headers, timeout=30)
        assert response.status_code == 400
        assert response.json()["decision"]["reasons"][0]["code"] == "bad_request"
        new = room.records()[before:]
        assert [(r["outcome"], r["input"]["user"]["name"]) for r in new if r["type"] == "decision"] == [("invalid", "alice")]


def test_unparseable_sql_is_400_from_the_pipeline(room: RunningRoom, tokens: dict[str, str]) -> None:
    response = broker_query(room, ACME, "SELEC severity FROM", token=tokens["alice"])
    assert response.status_code == 400 and response.json()["decision"]["outcome"] == "invalid"


def test_every_endpoint_but_health_and_openapi_requires_a_token(room: RunningRoom, tokens: dict[str, str]) -> None:
    for path in ("v1/whoami", "v1/projects", "v1/projects/remediation-acme/tables"):
        before = len(room.records())
        assert broker_get(room, path).status_code == 401
        assert [r["outcome"] for r in room.records()[before:]] == ["denied"]
        assert broker_get(room, path, token=tokens["alice"]).status_code == 200
    assert broker_get(room, "health").json()["status"] == "ok"
    assert broker_get(room, "health", via_proxy=True).status_code == 200


def test_tables_lists_classifications_and_refuses_non_members(room: RunningRoom, tokens: dict[str, str]) -> None:
    body = broker_get(room, "v1/projects/remediation-benchmark/tables", token=tokens["alice"]).json()
    findings = [t for t in body["tables"] if t["table"] == "initech.findings"][0]
    columns = {c["name"]: c for c in findings["columns"]}
    assert columns["cvss"] == {"name": "cvss", "classification": "public", "visible": True, "reason": None}
    assert columns["asset_hostname"]["visible"] is False and "multi-tenant" in columns["asset_hostname"]["reason"]
    assert columns["analyst_email"]["classification"] == "pii" and columns["analyst_email"]["visible"] is False

    before = len(room.records())
    response = broker_get(room, "v1/projects/remediation-benchmark/tables", token=tokens["mallory"])
    assert response.status_code == 403
    new = [r for r in room.records()[before:] if r["type"] == "decision"]
    assert [(r["outcome"], r["input"]["user"]["name"], r["input"]["project_id"]) for r in new] == [("denied", "mallory", "remediation-benchmark")]
    # the same answer as for a project that does not exist (no existence oracle)
    unknown = broker_get(room, "v1/projects/remediation-benchmarx/tables", token=tokens["mallory"])
    assert unknown.status_code == 403
    strip = lambda body: [(r["code"], r["message"].replace("benchmarx", "benchmark")) for r in body["decision"]["reasons"]]  # noqa: E731
    assert strip(unknown.json()) == strip(response.json()) and strip(response.json())[0][0] == "project_not_available"


def test_openapi_describes_the_endpoints(room: RunningRoom) -> None:
    spec = broker_get(room, "openapi.json").json()
    assert spec == openapi_spec("/services/broker/", "broker")
    assert spec["openapi"].startswith("3.")
    assert {"/health", "/v1/query", "/v1/projects/{project}/tables"} <= set(spec["paths"])
    assert spec["paths"]["/v1/query"]["post"]["responses"]["200"]["content"].keys() == {"application/vnd.apache.arrow.stream"}


def test_the_audit_chain_verifies_after_all_that(room: RunningRoom) -> None:
    result = room.audit.verify()
    assert result.ok, result.describe()


def test_output_policy_suppression_reaches_the_client_and_the_notebook_note(room: RunningRoom, tokens) -> None:
    """Under remediation-benchmark's output policy the broker says how many rows it held back."""
    from dataroom.client import Decision, result_notes

    union = " UNION ALL ".join(f"SELECT * FROM {t}.findings" for t in ("acme", "globex", "initech"))
    response = broker_query(room, "remediation-benchmark", f"SELECT cve_id, count(*) AS n FROM ({union}) GROUP BY cve_id", token=tokens["alice"])
    assert response.status_code == 200, response.text
    decision = json.loads(response.headers["X-Dataroom-Decision"])
    table = pa.ipc.open_stream(response.content).read_all()
    assert decision["suppressed"]["rows"] > 0 and decision["suppressed"]["of"] == decision["suppressed"]["rows"] + table.num_rows
    assert all(n >= 10 for n in table.column("n").to_pylist())
    notes = result_notes(Decision.from_json(decision), table)
    assert any("result rows suppressed" in line and "2 tenants" in line for line in notes)

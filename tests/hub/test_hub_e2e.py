"""End to end: log in through the Hub, start a server, query from its kernel, find the audit record."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hub_support import FAKE_AWS, PASSWORD, RunningRoom, kernel_json, login

from dataroom.hub.rest import HubError, HubUser

QUERY = "SELECT severity, count(*) AS n, avg(remediation_days) AS days FROM acme.findings GROUP BY severity ORDER BY severity"

RUN_QUERY = f"""
import json, dataroom
room = dataroom.connect(project="remediation-acme")
df = room.sql({QUERY!r})
print(json.dumps({{"type": type(df).__module__ + "." + type(df).__name__, "rows": df.height,
                  "columns": df.columns, "n": int(df["n"].sum()), "decision_id": room.last_decision.decision_id}}))
"""


def test_alice_queries_through_the_broker_from_her_kernel_and_the_audit_log_has_it(room: RunningRoom, alice, alice_kernel) -> None:
    out = kernel_json(alice_kernel, RUN_QUERY)
    assert out["type"] == "polars.dataframe.frame.DataFrame"
    assert out["columns"] == ["severity", "n", "days"]
    assert out["rows"] == 4 and out["n"] == 2000

    record = room.decision(out["decision_id"])
    assert record["outcome"] == "allowed"
    assert record["input"]["user"] == {"name": "alice", "groups": ["data-scientists"]}  # Hub groups fed to the policy
    assert record["input"]["project_id"] == "remediation-acme"
    assert record["input"]["sql"] == QUERY
    assert record["input"]["client"] == "broker"
    completion = room.completion(out["decision_id"])
    assert completion is not None and completion["status"] == "executed" and completion["rows"] == 4
    assert room.audit.verify().ok


def test_mallory_is_refused_from_her_kernel_and_the_refusal_is_audited(room: RunningRoom) -> None:
    mallory = login(room, "mallory")
    mallory.user.start_server()
    kernel = mallory.user.start_kernel(mallory.token)
    try:
        out = kernel_json(
            kernel,
            f"""
import json, dataroom
from dataroom.client import QueryDenied
room = dataroom.connect(project="remediation-acme")
try:
    room.sql({QUERY!r})
    print(json.dumps({{"denied": False}}))
except QueryDenied as exc:
    print(json.dumps({{"denied": True, "message": str(exc), "codes": [r["code"] for r in exc.reasons], "decision_id": exc.decision_id}}))
""",
        )
    finally:
        kernel.shutdown()
        mallory.user.stop_server()
    assert out["denied"] is True
    assert out["codes"] == ["project_not_available"]
    assert "does not exist or you are not a member of it" in out["message"]
    record = room.decision(out["decision_id"])
    assert record["outcome"] == "denied"
    assert record["input"]["user"]["name"] == "mallory"
    assert record["input"]["project_id"] == "remediation-acme"
    assert room.completion(out["decision_id"]) is None  # nothing executed


def test_a_spawned_servers_environment_holds_the_broker_url_and_token_and_nothing_else(room: RunningRoom, alice, alice_kernel) -> None:
    kernel_env = kernel_json(alice_kernel, "import os, json; print(json.dumps(dict(os.environ)))")
    # the server process itself, read from /proc (the kernel inherits from it)
    raw = Path(f"/proc/{room.pid('server-alice')}/environ").read_bytes()
    server_env = dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)

    secrets = [
        str(room.home),
        str(room.home.resolve()),
        str(room.home / "catalog.toml"),
        str(room.home / "audit"),
        str(room.home / "data"),
        *FAKE_AWS.values(),
        PASSWORD,
    ]
    for env in (server_env, kernel_env):
        assert env["DATAROOM_BROKER_URL"] == room.broker_url
        assert env["JUPYTERHUB_API_TOKEN"] and env["JUPYTERHUB_USER"] == "alice"
        assert not [k for k in env if k.startswith("AWS_")]
        assert not [k for k in env if k.startswith("DATAROOM_") and k != "DATAROOM_BROKER_URL"]
        leaked = {k: v for k, v in env.items() for s in secrets if s in v}
        assert leaked == {}
    assert server_env["JUPYTERHUB_API_TOKEN"] == kernel_env["JUPYTERHUB_API_TOKEN"]

    # ... whereas the broker (and only the broker) holds the credentials and the data room's home
    raw = Path(f"/proc/{room.pid('service-broker')}/environ").read_bytes()
    broker_env = dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)
    assert broker_env["AWS_ACCESS_KEY_ID"] == FAKE_AWS["AWS_ACCESS_KEY_ID"]
    assert broker_env["DATAROOM_HOME"] == str(room.home)


def test_the_servers_own_token_is_what_the_broker_accepts(room: RunningRoom, alice, alice_kernel) -> None:
    out = kernel_json(
        alice_kernel,
        "import json, dataroom; room = dataroom.connect(); print(json.dumps({'me': room.whoami(), 'projects': room.projects()['id'].to_list()}))",
    )
    assert out["me"] == {"name": "alice", "groups": ["data-scientists"]}
    assert sorted(out["projects"]) == ["remediation-acme", "remediation-benchmark", "remediation-by-tenant"]


def test_the_example_notebooks_are_in_the_users_directory(room: RunningRoom, alice) -> None:
    listing = alice.user.contents(alice.token, "")
    names = {item["name"] for item in listing["content"]}
    assert "remediation_by_tenant.ipynb" in names


def test_the_sql_magics_run_in_the_kernel(room: RunningRoom, alice, alice_kernel) -> None:
    alice_kernel.execute("%load_ext dataroom").raise_for_error()
    alice_kernel.execute("import dataroom; dataroom.connect(project='remediation-acme')").raise_for_error()
    alice_kernel.execute("%%sql -o by_severity\nSELECT severity, count(*) AS n\nFROM acme.findings\nGROUP BY severity").raise_for_error()
    out = kernel_json(alice_kernel, "import json; print(json.dumps({'rows': by_severity.height, 'total': int(by_severity['n'].sum())}))")
    assert out == {"rows": 4, "total": 2000}

    line = alice_kernel.execute("%sql -q SELECT count(*) AS n FROM acme.findings WHERE severity = 'critical'").raise_for_error()
    assert any("text/plain" in o["data"] for o in line.outputs if o["type"] == "execute_result")

    denied = alice_kernel.execute("%sql SELECT analyst_email FROM acme.findings")
    assert denied.error is not None and denied.error["ename"] == "QueryDenied"
    assert "is PII" in json.dumps(denied.error)
    assert len(denied.error["traceback"]) <= 2  # the reasons, not a stack trace

    # progress: shown for queries running longer than PROGRESS_AFTER_S (lowered here), then marked done
    alice_kernel.execute("import dataroom.magics; dataroom.magics.PROGRESS_AFTER_S = 0.0").raise_for_error()
    slow = alice_kernel.execute(
        "%%sql\nSELECT count(*) AS n FROM acme.findings a, acme.findings b, acme.findings c\n"
        "WHERE c.finding_id < 'acme-f00000010' AND (a.cvss * 7 + b.cvss * 3 + c.cvss) % 1 = 0.123"
    ).raise_for_error()
    texts = [o["data"].get("text/plain", "") for o in slow.outputs]
    assert any(t.startswith("⏳ query on remediation-acme") for t in texts), texts
    assert any(t.startswith("✓ query on remediation-acme: done") for t in texts), texts


def test_login_with_a_wrong_password_or_an_unknown_user_is_refused(room: RunningRoom) -> None:
    for name, password in (("alice", "not-the-password"), ("eve", PASSWORD)):
        try:
            HubUser.login(room.hub_url, name, password)
        except HubError:
            continue
        raise AssertionError(f"{name} logged in with {password!r}")


def test_each_hub_group_comes_from_the_catalog(room: RunningRoom, alice) -> None:
    config = json.loads((room.state_dir / "hub_config.json").read_text())
    groups = config["JupyterHub"]["load_groups"]
    assert groups["data-scientists"]["users"] == ["alice", "bob", "mallory"]
    assert groups["security"]["users"] == ["sam"]
    assert oct(os.stat(room.state_dir / "hub_config.json").st_mode & 0o777) == "0o600"
    text = (room.state_dir / "hub_config.json").read_text()
    assert not [v for v in FAKE_AWS.values() if v in text]  # passed through at start, never written down

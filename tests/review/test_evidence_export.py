"""Evidence export checked against a known sequence of actions; audit search."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import pyarrow.parquet as pq

from dataroom import evidence
from dataroom.audit import utc_now
from dataroom.cli.audit import audit as audit_cli
from dataroom.pipeline import Outcome, QueryService
from dataroom.registry import SEED_ACTOR, Registry


def known_sequence(svc: QueryService, registry: Registry) -> dict:
    """Queries, a proposal and approval, a membership change, a hypothesis to 5A, a revocation."""
    q1 = svc.run("alice", "remediation-acme", "SELECT cvss, remediation_days FROM acme.findings LIMIT 50")
    q2 = svc.run("alice", "remediation-acme", "SELECT analyst_email FROM acme.findings")
    assert (q1.outcome, q2.outcome) == (Outcome.ALLOWED, Outcome.DENIED)
    registry.propose("alice", "remediation-globex", justification="compare globex with acme", tenants=["globex"], tables=["globex.findings"])
    registry.approve("sam", "remediation-globex", justification="one tenant, no quasi-identifiers", column_classes=["public", "internal"])
    registry.add_member("sam", "remediation-acme", "carol", note="second analyst")
    h = registry.register_hypothesis("alice", "remediation-acme", "Remediation time is linear in CVSS", [q1.decision_id, q2.decision_id])
    registry.advance("alice", h.id, "3")
    registry.advance("bob", h.id, "4")
    registry.advance("alice", h.id, "5A", note="internal flag")
    registry.decide_phase("sam", h.id, approve=True, note="flag limited to staff")
    registry.revoke("sam", "remediation-benchmark", reason="cross-tenant model paused")
    return {"q1": q1.decision_id, "q2": q2.decision_id, "h": h.key}


def test_export_matches_a_known_sequence_of_actions(svc: QueryService, registry: Registry, tmp_path: Path):
    start = utc_now()  # after seeding (which happened when the service opened the registry)
    ids = known_sequence(svc, registry)
    ev = evidence.collect(registry, svc.audit, start, utc_now())
    s = ev.sections

    assert [(p["project_id"], p["effective_status"], p["decided_by"], p["queries_in_window"]) for p in s["projects"]] == [
        ("model-monitoring", "approved", SEED_ACTOR, 0),
        ("remediation-acme", "approved", SEED_ACTOR, 2),
        ("remediation-benchmark", "revoked", SEED_ACTOR, 0),
        ("remediation-by-tenant", "approved", SEED_ACTOR, 0),
        ("remediation-globex", "approved", "sam", 0),
    ]
    assert [(a["project_id"], a["decision"], a["requester"], a["approver"], a["segregation_ok"]) for a in s["approvals"]] == [
        ("remediation-globex", "approved", "alice", "sam", True)
    ]
    assert s["approvals"][0]["approved_scope"]["column_classes"] == ["public", "internal"]
    assert [(e["project_id"], e["kind"], e["actor"], e["subject"]) for e in s["project_events"]] == [
        ("remediation-globex", "proposed", "alice", None),
        ("remediation-globex", "member_added", "alice", "alice"),
        ("remediation-globex", "approved", "sam", None),
        ("remediation-acme", "member_added", "sam", "carol"),
        ("remediation-benchmark", "revoked", "sam", None),
    ]
    (h,) = s["hypotheses"]
    assert (h["hypothesis"], h["author"], h["phase"], h["linked_queries"]) == (ids["h"], "alice", "production_feature_flagged", [ids["q1"], ids["q2"]])
    assert [(t["from_phase"], t["to_phase"], t["actor"], t["approver"], t["production"], t["segregation_ok"]) for t in s["phase_transitions"]] == [
        ("project_definition", "data_exploration", "alice", None, False, True),
        ("data_exploration", "functional_implementation", "alice", None, False, True),
        ("functional_implementation", "pre_production_testing", "bob", None, False, True),
        ("pre_production_testing", "production_feature_flagged", "alice", "sam", True, True),
    ]
    assert [(q["decision_id"], q["found"], q["user"], q["outcome"], q["reasons"]) for q in s["linked_queries"]] == [
        (ids["q1"], True, "alice", "allowed", []),
        (ids["q2"], True, "alice", "denied", ["pii_column"]),
    ]
    assert s["linked_queries"][0]["rows"] == 50 and re.fullmatch(r"blake3:[0-9a-f]{64}", s["linked_queries"][0]["result_digest"])
    assert s["query_summary"] == [
        {"project_id": "remediation-acme", "outcome": "allowed", "attempts": 1},
        {"project_id": "remediation-acme", "outcome": "denied", "attempts": 1},
    ]
    assert (s["chain"][0]["ok"], s["chain"][0]["records"]) == (True, 3)

    # the same evidence in all three formats, with a manifest of digests
    out = tmp_path / "evidence"
    digests = evidence.write(ev, out)
    assert set(digests) == {"evidence.json"} | {f"{name}.{ext}" for name in evidence.SECTIONS for ext in ("csv", "parquet")}
    for name, digest in digests.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    assert json.loads((out / "manifest.json").read_text())["counts"]["phase_transitions"] == 4
    doc = json.loads((out / "evidence.json").read_text())
    assert doc["phase_transitions"][-1]["approver"] == "sam" and doc["window"]["since"] == ev.since
    with (out / "approvals.csv").open() as fh:
        (row,) = list(csv.DictReader(fh))
    assert (row["project_id"], row["approver"], row["segregation_ok"]) == ("remediation-globex", "sam", "true")
    linked = pq.read_table(out / "linked_queries.parquet").to_pylist()
    assert [(q["decision_id"], json.loads(q["reasons"])) for q in linked] == [(ids["q1"], []), (ids["q2"], ["pii_column"])]
    assert pq.read_table(out / "projects.parquet").column_names == evidence.SECTIONS["projects"]


def test_window_excludes_what_happened_outside_it(svc: QueryService, registry: Registry):
    known_sequence(svc, registry)
    later = utc_now()
    svc.run("bob", "remediation-acme", "SELECT count(*) FROM acme.findings")
    ev = evidence.collect(registry, svc.audit, later, utc_now())
    s = ev.sections
    assert s["approvals"] == [] and s["project_events"] == [] and s["hypotheses"] == [] and s["phase_transitions"] == []
    assert s["query_summary"] == [{"project_id": "remediation-acme", "outcome": "allowed", "attempts": 1}]
    # projects active in the window are still listed; the one revoked before it is not
    assert [p["project_id"] for p in s["projects"]] == ["model-monitoring", "remediation-acme", "remediation-by-tenant", "remediation-globex"]
    # the seeding shows up as an approval without segregation when the window covers it
    seeded = evidence.collect(registry, svc.audit, "2000-01-01", "2100-01-01").sections["approvals"]
    assert [(a["project_id"], a["approver"], a["segregation_ok"]) for a in seeded if a["decision"] == "seeded"] == [
        ("remediation-acme", SEED_ACTOR, False),
        ("remediation-benchmark", SEED_ACTOR, False),
        ("remediation-by-tenant", SEED_ACTOR, False),
        ("model-monitoring", SEED_ACTOR, False),
    ]


def test_cli_export_and_broken_chain(svc: QueryService, registry: Registry, invoke, home: Path, tmp_path: Path):
    known_sequence(svc, registry)
    out = tmp_path / "out"
    r = invoke(audit_cli, "export", "--since", "2000-01-01", "--until", "2100-01-01", "--out", str(out), "--format", "csv")
    assert r.exit_code == 0, r.output
    assert "audit chain: OK (3 records)" in r.output
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{n}.csv" for n in evidence.SECTIONS] + ["manifest.json"])
    # tamper with the audit log: the export still happens, says where the chain breaks, and exits 1
    audit_file = home / "audit" / "audit.jsonl"
    lines = audit_file.read_text().splitlines()
    lines[2] = lines[2].replace("analyst_email", "analyst_name")
    audit_file.write_text("\n".join(lines) + "\n")
    r = invoke(audit_cli, "export", "--since", "2000-01-01", "--until", "2100-01-01", "--out", str(tmp_path / "out2"))
    assert r.exit_code == 1
    assert "audit chain: BROKEN at seq 2" in r.output
    r = invoke(audit_cli, "export", "--since", "2026-02-01", "--until", "2026-01-01", "--out", str(tmp_path / "x"))
    assert r.exit_code == 2


def test_cli_search_filters(svc: QueryService, invoke):
    a = svc.run("alice", "remediation-by-tenant", "SELECT count(*) FROM acme.findings JOIN globex.findings USING (cve_id)")
    b = svc.run("alice", "remediation-acme", "SELECT analyst_email FROM acme.findings")
    c = svc.run("bob", "remediation-acme", "SELECT count(*) FROM acme.findings")
    assert [x.outcome for x in (a, b, c)] == [Outcome.ALLOWED, Outcome.DENIED, Outcome.ALLOWED]

    def ids(*args):
        r = invoke(audit_cli, "search", "--json", *args)
        assert r.exit_code == 0, r.output
        return [json.loads(line)["decision_id"] for line in r.output.splitlines()]

    assert ids("--user", "alice", "--decision", "denied") == [b.decision_id]
    assert ids("--tenant", "globex") == [a.decision_id]
    assert ids("--reason", "pii_column") == [b.decision_id]
    assert ids("--text", "COUNT(*) FROM ACME.FINDINGS") == [a.decision_id, c.decision_id]
    assert ids("--project", "remediation-acme", "--table", "acme.findings") == [b.decision_id, c.decision_id]
    assert ids("--until", "2000-01-01") == []
    r = invoke(audit_cli, "search", "--since", "yesterday")
    assert r.exit_code == 2
    assert invoke(audit_cli, "verify").exit_code == 0
    assert "analyst_email" in invoke(audit_cli, "show", "--decision", "denied").output


def test_refusal_records_appear_in_search_and_export(svc: QueryService, registry: Registry, invoke):
    from dataroom.policy import Reason

    refusal_id = svc.record_refusal(
        outcome="denied",
        reasons=[Reason("no_token", "send your Hub token")],
        http_status=401,
        request={"method": "POST", "path": "/services/broker/v1/query", "remote_ip": "127.0.0.1", "user_agent": "test"},
    )
    r = invoke(audit_cli, "search", "--user", "(unauthenticated)", "--json")
    assert [json.loads(line)["decision_id"] for line in r.output.splitlines()] == [refusal_id]
    summary = evidence.collect(registry, svc.audit, "2000-01-01", "2100-01-01").sections["query_summary"]
    assert summary == [{"project_id": "(none)", "outcome": "denied", "attempts": 1}]

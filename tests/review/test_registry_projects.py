"""Project registry: seeding, proposal → approval, segregation of duties, revoke/expire stop queries."""

from __future__ import annotations

import datetime as dt

import pytest

from dataroom.cli.project import project as project_cli
from dataroom.pipeline import Outcome, QueryService
from dataroom.registry import SEED_ACTOR, Conflict, PermissionDenied, Registry, RegistryError
from dataroom.settings import Settings

ACME_SQL = "SELECT severity, count(*) AS n FROM acme.findings GROUP BY severity"
GLOBEX_SQL = "SELECT count(*) AS n FROM globex.findings"


def propose_globex(registry: Registry, requester: str = "alice", **overrides):
    args = {
        "justification": "Check whether globex remediation time follows CVSS as acme's does",
        "tenants": ["globex"],
        "tables": ["globex.findings", "reference.cve"],
        "description": "globex remediation",
    }
    args.update(overrides)
    return registry.propose(requester, "remediation-globex", **args)


def test_catalog_projects_are_seeded_as_approved_with_an_explicit_trail(registry: Registry, home):
    projects = {p.id: p for p in registry.projects()}
    assert set(projects) == {"remediation-acme", "remediation-benchmark", "remediation-by-tenant", "model-monitoring"}
    acme = projects["remediation-acme"]
    assert acme.status == "approved" and acme.members == ["alice", "bob"]
    assert acme.decided_by == SEED_ACTOR
    assert f"seeded from catalog {home / 'catalog.toml'}" in acme.decision_note
    assert "security group at seeding: sam, sasha" in acme.decision_note
    kinds = [(e["kind"], e["actor"], e["subject"]) for e in registry.project_events("remediation-acme")]
    assert kinds == [("seeded", SEED_ACTOR, None), ("member_added", SEED_ACTOR, "alice"), ("member_added", SEED_ACTOR, "bob")]
    # seeding happens once: a second registry over the same database adds nothing
    again = Registry(registry.url, registry.catalog, registry.audit)
    assert again.ensure_seeded() is False
    assert len(again.project_events()) == len(registry.project_events())


def test_allow_query_after_security_approves_a_proposal(svc: QueryService, registry: Registry):
    proposed = propose_globex(registry)
    assert proposed.status == "proposed" and proposed.members == ["alice"]
    denied = svc.run("alice", "remediation-globex", GLOBEX_SQL)
    assert denied.outcome is Outcome.DENIED
    assert [r.code for r in denied.reasons] == ["project_not_approved"]

    approved = registry.approve("sam", "remediation-globex", justification="scope limited to one tenant, no PII", column_classes=["public", "internal"])
    assert (approved.status, approved.decided_by, approved.column_classes) == ("approved", "sam", ["public", "internal"])
    allowed = svc.run("alice", "remediation-globex", GLOBEX_SQL)
    assert allowed.outcome is Outcome.ALLOWED and allowed.table.num_rows == 1
    # the approved scope, not the requested one, is what the policy enforces
    qi = svc.run("alice", "remediation-globex", "SELECT asset_hostname FROM globex.findings LIMIT 1")
    assert [r.code for r in qi.reasons] == ["column_class_not_allowed"]
    event = registry.project_events("remediation-globex")[-1]
    assert event["kind"] == "approved" and event["actor"] == "sam"
    assert event["details"]["requested_scope"]["column_classes"] == ["public", "internal", "quasi_identifier"]
    assert event["details"]["approved_scope"]["column_classes"] == ["public", "internal"]


def test_deny_requester_approving_own_project(registry: Registry):
    registry.propose(
        "sam", "sam-review", justification="security wants to look at acme assets", tenants=["acme"], tables=["acme.assets"]
    )
    with pytest.raises(PermissionDenied, match="sam requested project sam-review and may not approve it"):
        registry.approve("sam", "sam-review", justification="looks fine to me")
    with pytest.raises(PermissionDenied, match="may not reject it"):
        registry.reject("sam", "sam-review", reason="changed my mind")
    assert registry.project("sam-review").status == "proposed"
    # another security reviewer may
    assert registry.approve("sasha", "sam-review", justification="read-only asset review").decided_by == "sasha"


def test_deny_approval_by_non_security_or_by_a_future_member(registry: Registry):
    propose_globex(registry, members=["sasha"])
    with pytest.raises(PermissionDenied, match="only a member of the security group"):
        registry.approve("bob", "remediation-globex", justification="lgtm")
    with pytest.raises(PermissionDenied, match="sasha would be a member"):
        registry.approve("sasha", "remediation-globex", justification="lgtm")
    with pytest.raises(PermissionDenied, match="not a user in the catalog"):
        registry.approve("eve", "remediation-globex", justification="lgtm")
    with pytest.raises(RegistryError, match="written justification"):
        registry.approve("sam", "remediation-globex", justification="  ")
    assert registry.project("remediation-globex").status == "proposed"


def test_deny_invalid_scope(registry: Registry):
    with pytest.raises(RegistryError) as err:
        registry.propose(
            "alice",
            "bad-scope",
            justification="x",
            tenants=["acme", "globex"],
            tables=["acme.findings", "initech.findings", "nope.table"],
            column_classes=["pii"],
            expires=dt.date.today(),
        )
    message = str(err.value)
    for part in (
        "table initech.findings belongs to tenant initech",
        "unknown table 'nope.table'",
        "pii is never visible",
        "must be marked multi_tenant",
        "must be after today",
    ):
        assert part in message
    with pytest.raises(RegistryError, match="written justification"):
        registry.propose("alice", "no-why", justification="", tenants=["acme"], tables=["acme.findings"])
    with pytest.raises(Conflict, match="already exists"):
        registry.propose("alice", "remediation-acme", justification="again", tenants=["acme"], tables=["acme.findings"])


def test_revoke_stops_queries_at_once(svc: QueryService, registry: Registry):
    before = svc.run("alice", "remediation-acme", ACME_SQL)
    assert before.outcome is Outcome.ALLOWED
    registry.revoke("sam", "remediation-acme", reason="data handling concern raised by acme")
    after = svc.run("alice", "remediation-acme", ACME_SQL)
    assert after.outcome is Outcome.DENIED
    assert [(r.code, r.message) for r in after.reasons] == [("project_not_approved", "project remediation-acme is revoked, not approved")]
    # a second, long-lived service (the broker) sees it as well
    other = QueryService(Settings())
    try:
        assert other.run("bob", "remediation-acme", ACME_SQL).outcome is Outcome.DENIED
    finally:
        other.close()
    with pytest.raises(Conflict):
        registry.revoke("sam", "remediation-acme", reason="twice")


def test_expire_stops_queries_at_once(svc: QueryService, registry: Registry):
    assert svc.run("bob", "remediation-acme", ACME_SQL).outcome is Outcome.ALLOWED
    with pytest.raises(PermissionDenied):
        registry.expire("alice", "remediation-acme", reason="done early")
    info = registry.expire("sam", "remediation-acme", reason="project finished early")
    assert info.effective_status == "expired" and info.expires == dt.date.today() - dt.timedelta(days=1)
    after = svc.run("bob", "remediation-acme", ACME_SQL)
    assert after.outcome is Outcome.DENIED and [r.code for r in after.reasons] == ["project_expired"]
    assert [p.id for p in registry.projects("expired")] == ["remediation-acme"]


def test_membership_changes_are_security_decisions_and_records(svc: QueryService, registry: Registry):
    assert svc.run("carol", "remediation-acme", ACME_SQL).outcome is Outcome.DENIED
    with pytest.raises(PermissionDenied, match="only the security or approvers group"):
        registry.add_member("alice", "remediation-acme", "carol")
    with pytest.raises(PermissionDenied, match="may not add yourself"):
        registry.add_member("sam", "remediation-acme", "sam")
    registry.add_member("sam", "remediation-acme", "carol", note="joins the acme analysis")
    assert svc.run("carol", "remediation-acme", ACME_SQL).outcome is Outcome.ALLOWED
    with pytest.raises(PermissionDenied):
        registry.remove_member("bob", "remediation-acme", "carol")
    registry.remove_member("carol", "remediation-acme", "carol", note="leaving")
    assert svc.run("carol", "remediation-acme", ACME_SQL).outcome is Outcome.DENIED
    trail = [(e["kind"], e["actor"], e["subject"], e["note"]) for e in registry.project_events("remediation-acme")][-2:]
    assert trail == [("member_added", "sam", "carol", "joins the acme analysis"), ("member_removed", "carol", "carol", "leaving")]


def test_cli_propose_approve_list_and_segregation(invoke, home):
    r = invoke(
        project_cli,
        "propose", "remediation-globex", "--as", "alice", "--tenant", "globex", "--table", "globex.findings",
        "--days", "30", "--justification", "globex remediation model",
    )
    assert r.exit_code == 0, r.output
    assert "awaiting approval" in r.output
    r = invoke(project_cli, "approve", "remediation-globex", "--as", "alice", "--justification", "self")
    assert r.exit_code == 3
    assert "only a member of the security group may approve" in r.stderr
    r = invoke(project_cli, "approve", "remediation-globex", "--as", "sam", "--justification", "single tenant, 30 days", "--class", "public")
    assert r.exit_code == 0, r.output
    r = invoke(project_cli, "list", "--status", "approved", "--json")
    ids = [line.split('"id": "')[1].split('"')[0] for line in r.output.splitlines()]
    assert ids == ["model-monitoring", "remediation-acme", "remediation-benchmark", "remediation-by-tenant", "remediation-globex"]
    r = invoke(project_cli, "show", "remediation-globex")
    assert "sam approved: single tenant, 30 days" in r.output
    assert "column classes: public" in r.output
    r = invoke(project_cli, "revoke", "remediation-globex", "--as", "bob", "--reason", "not mine")
    assert r.exit_code == 3
    r = invoke(project_cli, "revoke", "remediation-globex", "--as", "alice", "--reason", "withdrawn by requester")
    assert r.exit_code == 0 and "revoked by alice" in r.output
    r = invoke(project_cli, "member", "add", "remediation-acme", "carol", "--as", "sam", "--note", "helps")
    assert r.exit_code == 0 and "members: alice, bob, carol" in r.output
    r = invoke(project_cli, "approve", "no-such", "--as", "sam", "--justification", "x")
    assert r.exit_code == 2 and "does not exist" in r.stderr

"""Hypotheses: registration linking audit decisions, the five phases, production approval by another person."""

from __future__ import annotations

import pytest

from dataroom.cli.hypothesis import hypothesis as hypothesis_cli
from dataroom.pipeline import Outcome, QueryService
from dataroom.registry import Conflict, NotFound, PermissionDenied, Phase, Registry, RegistryError, allowed_targets

SQL = "SELECT cvss, remediation_days FROM acme.findings LIMIT 20"


def test_phase_model_follows_the_five_phases():
    assert [p.number for p in Phase] == ["1", "2", "3", "4", "5A", "5B"]
    assert [p for p in Phase if p.is_production] == [Phase.PRODUCTION_FEATURE_FLAGGED, Phase.PRODUCTION_GENERAL]
    assert allowed_targets(Phase.DATA_EXPLORATION) == [Phase.FUNCTIONAL_IMPLEMENTATION]
    # from production B back to data exploration is "transition 6": a disproven hypothesis
    assert allowed_targets(Phase.PRODUCTION_GENERAL) == [Phase.DATA_EXPLORATION, Phase.FUNCTIONAL_IMPLEMENTATION, Phase.PRE_PRODUCTION_TESTING]
    assert Phase.parse("5a") is Phase.PRODUCTION_FEATURE_FLAGGED and Phase.parse("3") is Phase.FUNCTIONAL_IMPLEMENTATION


def test_register_links_the_queries_that_led_to_it(svc: QueryService, registry: Registry):
    q1 = svc.run("alice", "remediation-acme", SQL)
    q2 = svc.run("bob", "remediation-acme", "SELECT analyst_email FROM acme.findings")
    other = svc.run("alice", "remediation-benchmark", "SELECT count(*) FROM reference.cve")
    assert (q1.outcome, q2.outcome, other.outcome) == (Outcome.ALLOWED, Outcome.DENIED, Outcome.ALLOWED)

    h = registry.register_hypothesis("alice", "remediation-acme", "Remediation days grow linearly with CVSS at acme", [q1.decision_id, q2.decision_id])
    assert h.key == f"H-{h.id}" and h.phase == "data_exploration" and h.author == "alice"
    assert h.decision_ids == [q1.decision_id, q2.decision_id]
    (t,) = h.transitions
    assert (t.from_phase, t.to_phase, t.actor, t.approver) == ("project_definition", "data_exploration", "alice", None)
    assert "project remediation-acme approved by system:catalog-seed" in t.note

    with pytest.raises(RegistryError, match="belong to another project"):
        registry.register_hypothesis("alice", "remediation-acme", "x", [other.decision_id])
    with pytest.raises(RegistryError, match="no audit record"):
        registry.register_hypothesis("alice", "remediation-acme", "x", ["00000000-0000-0000-0000-000000000000"])
    with pytest.raises(PermissionDenied, match="only members"):
        registry.register_hypothesis("mallory", "remediation-acme", "x", [])
    registry.revoke("sam", "remediation-acme", reason="stop")
    with pytest.raises(Conflict, match="revoked"):
        registry.register_hypothesis("bob", "remediation-acme", "y", [])


def test_phases_and_production_approval_by_someone_else(svc: QueryService, registry: Registry):
    q = svc.run("alice", "remediation-acme", SQL)
    h = registry.register_hypothesis("alice", "remediation-acme", "CVSS predicts remediation time", [q.decision_id])
    with pytest.raises(RegistryError, match="may move to 3 Functional Implementation"):
        registry.advance("alice", h.id, "4")
    registry.advance("alice", h.id, "functional_implementation", note="model prototype")
    registry.advance("bob", h.key, "4", note="tests green")
    pending = registry.advance("alice", h.id, "5A", note="flag remediation-eta on for internal users")
    assert pending.phase == "pre_production_testing" and pending.pending_phase == "production_feature_flagged"
    with pytest.raises(Conflict, match="already has a request"):
        registry.advance("bob", h.id, "5A")

    # segregation of duties: neither the author nor the requester, and only the security or approvers group
    with pytest.raises(PermissionDenied, match="alice is the author"):
        registry.decide_phase("alice", h.id, approve=True, note="mine")
    with pytest.raises(PermissionDenied, match="security or approvers group; carol is in neither"):
        registry.decide_phase("carol", h.id, approve=True, note="lgtm")
    with pytest.raises(PermissionDenied, match="security or approvers group; bob is in neither"):  # a fellow member is not enough
        registry.decide_phase("bob", h.id, approve=True, note="lgtm")
    done = registry.decide_phase("sam", h.id, approve=True, note="flag is internal-only; load test reviewed")
    assert done.phase == "production_feature_flagged" and done.pending_phase is None
    last = done.transitions[-1]
    assert (last.from_phase, last.to_phase, last.actor, last.approver, last.outcome) == (
        "pre_production_testing", "production_feature_flagged", "alice", "sam", "completed"
    )

    # bob asks for 5B: bob may not approve his own request, alice (the author) may not either
    registry.advance("bob", h.id, "5B", note="expose to all customers")
    with pytest.raises(PermissionDenied, match="asked for this transition"):
        registry.decide_phase("bob", h.id, approve=True, note="x")
    with pytest.raises(PermissionDenied, match="author"):
        registry.decide_phase("alice", h.id, approve=True, note="x")
    rejected = registry.decide_phase("sasha", h.id, approve=False, note="wait for 4 weeks of feedback")
    assert rejected.phase == "production_feature_flagged"
    assert (rejected.transitions[-1].outcome, rejected.transitions[-1].approver) == ("rejected", "sasha")

    # transition 6: the hypothesis did not hold up, back to data exploration (no approval needed)
    back = registry.advance("alice", h.id, "data_exploration", note="feedback disproved it")
    assert back.phase == "data_exploration"
    assert [(t.from_phase, t.to_phase) for t in back.transitions] == [
        ("project_definition", "data_exploration"),
        ("data_exploration", "functional_implementation"),
        ("functional_implementation", "pre_production_testing"),
        ("pre_production_testing", "production_feature_flagged"),
        ("production_feature_flagged", "production_general"),
        ("production_feature_flagged", "data_exploration"),
    ]
    with pytest.raises(NotFound):
        registry.hypothesis("H-999")


def test_cli_register_advance_approve(svc: QueryService, invoke):
    q = svc.run("alice", "remediation-acme", SQL)
    r = invoke(hypothesis_cli, "register", "--as", "alice", "-p", "remediation-acme", "--recent", "5", "CVSS predicts remediation time")
    assert r.exit_code == 0, r.output
    assert f"query {q.decision_id}" in r.output
    key = r.output.split("registered:\n")[1].split(" ")[0]
    for target in ("3", "4"):
        assert invoke(hypothesis_cli, "advance", key, "--as", "alice", "--to", target).exit_code == 0
    r = invoke(hypothesis_cli, "advance", key, "--as", "alice", "--to", "5A", "--note", "flag on")
    assert r.exit_code == 0 and "needs approval by someone other than alice" in r.output
    r = invoke(hypothesis_cli, "approve", key, "--as", "alice", "--note", "self-approval")
    assert r.exit_code == 3 and "author" in r.stderr
    r = invoke(hypothesis_cli, "approve", key, "--as", "sam", "--note", "internal only")
    assert r.exit_code == 0, r.output
    r = invoke(hypothesis_cli, "show", key)
    assert "4 -> 5A by alice approved by sam: flag on; internal only" in r.output
    r = invoke(hypothesis_cli, "list", "-p", "remediation-acme")
    assert "Production Deploy & Feedback (A: feature-flagged)" in r.output

"""Separation of duties, role × action (issue 17 item 6): who may decide what, and every refusal leaves a record.

Roles: a data scientist who is a fellow project member (bob), a security reviewer (sasha), a member of
the approvers group (avery), and the requester herself (rita: in the security group *and* the one who
proposed the project, wrote the hypothesis and asked for its production phase — the case separation
of duties exists for). Each cell runs the action on a fresh project through the registry (the rules
the CLI, the broker and the review UI share) and checks the outcome, the audit record of the attempt
(a ``registry_event`` for a change, a ``registry_refusal`` for a refusal), and the CLI's exit code for
the hypothesis approval that issue 17 found open to any member.
"""

from __future__ import annotations

import tomllib
import uuid
from pathlib import Path

import pytest
import tomli_w

from dataroom.audit import AuditLog
from dataroom.audit.registry_events import registry_stream
from dataroom.registry import PermissionDenied, Registry
from dataroom.settings import Settings

ROLES = {"data_scientist": "bob", "security": "sasha", "approver": "avery", "requester_self": "rita"}
ACTIONS = ("approve_phase", "reject_phase", "add_member", "remove_member", "approve_project", "revoke")
ALLOWED = {
    "data_scientist": set(),
    "security": set(ACTIONS),
    "approver": {"approve_phase", "reject_phase", "add_member", "remove_member"},
    # the requester may narrow her own project (remove a member, withdraw it), never widen or approve it
    "requester_self": {"remove_member", "revoke"},
}
AUDITED_ACTION = {
    "approve_phase": "decide_phase", "reject_phase": "decide_phase", "add_member": "add_member",
    "remove_member": "remove_member", "approve_project": "approve_project", "revoke": "revoke_project",
}


@pytest.fixture
def room(home: Path) -> Registry:
    catalog_file = home / "catalog.toml"
    data = tomllib.loads(catalog_file.read_text())
    data["users"].update({
        "rita": {"groups": ["data-scientists", "security"], "email": "rita@dataroom.example"},
        "avery": {"groups": ["approvers"], "email": "avery@dataroom.example"},
    })
    catalog_file.write_text(tomli_w.dumps(data))
    return Registry.from_settings(Settings())


def _propose(registry: Registry, approve: bool) -> str:
    project_id = f"sod-{uuid.uuid4().hex[:8]}"
    registry.propose("rita", project_id, justification="does remediation time follow CVSS?", description="sod",
                     tenants=["acme"], tables=["acme.findings"], members=["rita", "bob", "mallory"])
    if approve:
        registry.approve("sam", project_id, justification="single tenant, no PII")
    return project_id


def _act(registry: Registry, action: str, actor: str) -> None:
    if action == "approve_project":
        registry.approve(actor, _propose(registry, approve=False), justification="reviewed")
        return
    project_id = _propose(registry, approve=True)
    if action in ("approve_phase", "reject_phase"):
        h = registry.register_hypothesis("rita", project_id, "CVSS predicts remediation time")
        registry.advance("rita", h.id, "functional_implementation")
        registry.advance("rita", h.id, "pre_production_testing")
        registry.advance("rita", h.id, "5A", note="flag on for internal users")
        registry.decide_phase(actor, h.id, approve=action == "approve_phase", note="checked the load test")
    elif action == "add_member":
        registry.add_member(actor, project_id, "carol", note="joins the analysis")
    elif action == "remove_member":
        registry.remove_member(actor, project_id, "mallory", note="left the team")
    else:
        registry.revoke(actor, project_id, reason="stop")


def _last_record(home: Path) -> dict:
    stream = registry_stream(AuditLog(Settings().audit_file))
    *_, last = stream.records()
    return last


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("role", list(ROLES))
def test_role_by_action(room: Registry, home: Path, role: str, action: str) -> None:
    actor = ROLES[role]
    if action in ALLOWED[role]:
        _act(room, action, actor)
        last = _last_record(home)
        assert last["type"] == "registry_event"  # the change itself is evidence
        return
    with pytest.raises(PermissionDenied) as refused:
        _act(room, action, actor)
    last = _last_record(home)
    assert (last["type"], last["actor"], last["action"]) == ("registry_refusal", actor, AUDITED_ACTION[action])
    assert last["reason"] == str(refused.value)


def test_ui_hides_decisions_from_the_requester_and_shows_them_to_another_reviewer(room: Registry) -> None:
    from dataroom.review.templates import LOADER

    project_id = _propose(room, approve=False)
    pending = [p for p in room.projects("proposed") if p.id == project_id]
    page = LOADER.load("projects.html")

    def render(user: str) -> str:
        from types import SimpleNamespace

        return page.generate(
            prefix="/", user=user, flash_error=None, flash_info=None, pending=pending, projects=pending, pending_count=1, alert_count=0,
            shipping=None, chain=SimpleNamespace(ok=True), xsrf_form_html=lambda: "", _tt_modules=SimpleNamespace(xsrf_form_html=lambda: ""),
        ).decode()

    assert "approve-form" not in render("rita") and "segregation of duties" in render("rita")
    assert "approve-form" in render("sasha")


def test_cli_hypothesis_approve_by_a_fellow_data_scientist_exits_3(room: Registry, home: Path) -> None:
    from click.testing import CliRunner

    from dataroom.cli.hypothesis import hypothesis

    h = room.register_hypothesis("alice", "remediation-acme", "CVSS predicts remediation time")
    room.advance("alice", h.id, "functional_implementation")
    room.advance("alice", h.id, "pre_production_testing")
    room.advance("alice", h.id, "5A", note="flag on")
    result = CliRunner().invoke(hypothesis, ["approve", h.key, "--as", "bob", "--note", "lgtm"])
    assert result.exit_code == 3, result.output
    assert "security or approvers group; bob is in neither" in result.output
    assert room.hypothesis(h.id).pending_phase == "production_feature_flagged"
    last = _last_record(home)
    assert (last["type"], last["actor"], last["action"], last["target"]) == ("registry_refusal", "bob", "decide_phase", h.key)
    ok = CliRunner().invoke(hypothesis, ["approve", h.key, "--as", "sam", "--note", "load test reviewed"])
    assert ok.exit_code == 0, ok.output

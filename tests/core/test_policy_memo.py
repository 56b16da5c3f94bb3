"""Memoised policy decisions (issue 18): a hit only for the same complete input and policy revision."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from dataroom.policy import QUERY_POLICY_DIR, Decision, MemoizedPolicyEngine
from dataroom.pipeline import Outcome, QueryService

SQL = "SELECT severity, count(*) AS n FROM acme.findings GROUP BY 1"


def test_query_policies_are_pure_functions_of_their_input() -> None:
    """The memo is sound only if no decision depends on time, randomness or the network."""
    impure = re.compile(r"\b(time\.now_ns|time\.|rand\.|uuid\.|http\.send|net\.|opa\.runtime|crypto\.x509|io\.jwt)")
    for path in QUERY_POLICY_DIR.glob("*.rego"):
        if path.name.endswith("_test.rego"):
            continue
        code = "\n".join(line.split("#", 1)[0] for line in path.read_text().splitlines())
        assert not impure.search(code), f"{path.name} calls an impure builtin: decisions cannot be memoised"


def test_same_input_is_a_hit_and_gives_the_same_decision(service: QueryService) -> None:
    first = service.run("alice", "remediation-acme", SQL)
    second = service.run("alice", "remediation-acme", SQL)
    assert first.outcome is second.outcome is Outcome.ALLOWED
    records = {r["decision_id"]: r for r in service.audit.records() if r.get("type") == "decision"}
    assert records[first.decision_id]["labels"]["policy_cache"] == "miss"
    assert records[second.decision_id]["labels"]["policy_cache"] == "hit"


def test_a_revoked_project_never_meets_a_stale_allow(service: QueryService) -> None:
    assert service.run("alice", "remediation-acme", SQL).outcome is Outcome.ALLOWED
    assert service.run("alice", "remediation-acme", SQL).outcome is Outcome.ALLOWED  # now cached
    service.registry.revoke("sam", "remediation-acme", reason="paused")
    denied = service.run("alice", "remediation-acme", SQL)
    assert denied.outcome is Outcome.DENIED and [r.code for r in denied.reasons] == ["project_not_approved"]


def test_a_removed_member_never_meets_a_stale_allow(service: QueryService) -> None:
    assert service.run("bob", "remediation-acme", SQL).outcome is Outcome.ALLOWED
    service.registry.remove_member("sam", "remediation-acme", "bob", note="left the team")
    assert service.run("bob", "remediation-acme", SQL).outcome is Outcome.DENIED


def test_the_date_is_part_of_the_key(service: QueryService) -> None:
    """The same query the day after the project expires is a miss, and denied."""
    project = service.project_for("remediation-acme")
    facts = service._analyse(SQL)
    today = service.policy_input("alice", ["data-scientists"], project, facts, "remediation-acme")
    assert service.policy.decide(today).allow and service.policy.decide(today).cached
    later = {**today, "today": (project.expires + dt.timedelta(days=1)).isoformat()}
    decision = service.policy.decide(later)
    assert not decision.cached and not decision.allow


class _Counting:
    name = "fake"

    def __init__(self) -> None:
        self.revision, self.calls = "r1", 0

    def decide(self, policy_input):
        self.calls += 1
        return Decision(allow=self.revision == "r1", revision=self.revision, engine="fake")


def test_a_policy_change_is_a_miss() -> None:
    inner = _Counting()
    memo = MemoizedPolicyEngine(inner)
    doc = {"user": {"name": "alice"}, "facts": {}}
    assert memo.decide(doc).allow and memo.decide(doc).cached and inner.calls == 1
    inner.revision = "r2"  # the bundle was rebuilt from edited files
    assert not memo.decide(doc).allow and inner.calls == 2 and memo.revision == "r2"


@pytest.mark.parametrize("size", [1, 3])
def test_the_memo_is_bounded(size: int) -> None:
    inner = _Counting()
    memo = MemoizedPolicyEngine(inner, size=size)
    for i in range(10):
        memo.decide({"n": i})
    assert len(memo._decisions) == size

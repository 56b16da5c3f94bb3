"""Both policy engines give the same decisions over the same Rego files; Rego unit tests pass."""

from __future__ import annotations

import pytest

from dataroom.pipeline import Outcome, QueryService
from dataroom.policy import QUERY_ENTRYPOINT, QUERY_POLICY_DIR, EmbeddedPolicyEngine, OpaServerPolicyEngine
from dataroom.rego import PolicyBundle, PolicyError
from dataroom.settings import Settings
from tests.support.opa_server import free_port, opa_server

CASES = [
    ("SELECT cvss, count(*) FROM acme.findings GROUP BY cvss", Outcome.ALLOWED, set()),
    ("SELECT analyst_email FROM acme.findings", Outcome.DENIED, {"pii_column"}),
    ("SELECT cvss FROM acme.findings UNION SELECT cvss FROM globex.findings", Outcome.DENIED, {"cross_tenant", "table_not_in_project", "tenant_not_in_project"}),
    ("COPY acme.findings TO 'x'", Outcome.DENIED, {"not_read_only"}),
]


def test_every_rego_unit_test_passes() -> None:
    results = PolicyBundle.run_rego_tests(QUERY_POLICY_DIR)
    assert len(results) >= 20
    assert [r for r in results if not r.passed] == []
    files = {p.name for p in QUERY_POLICY_DIR.glob("*.rego") if not p.name.endswith("_test.rego")}
    tested = {r.file.replace("_test.rego", ".rego") for r in results}
    assert files <= tested, f"policy files without tests: {files - tested}"


def test_a_failing_rego_test_is_reported(tmp_path) -> None:
    (tmp_path / "p.rego").write_text("package t\nimport rego.v1\nallow(x) := x > 1\n")
    (tmp_path / "p_test.rego").write_text("package t_test\nimport rego.v1\nimport data.t\ntest_ok if { t.allow(2) }\ntest_bad if { t.allow(0) }\n")
    results = {r.rule: r.passed for r in PolicyBundle.run_rego_tests(tmp_path)}
    assert results == {"test_ok": True, "test_bad": False}


@pytest.mark.parametrize("sql, expected, codes", CASES)
def test_opa_server_engine_matches_embedded(dataroom_home, sql: str, expected: Outcome, codes: set) -> None:
    with opa_server(QUERY_POLICY_DIR, [QUERY_ENTRYPOINT]) as url:
        remote = QueryService(Settings(policy_engine="opa", opa_url=url))
        local = QueryService(Settings())
        try:
            a = remote.run("alice", "remediation-acme", sql)
            b = local.run("alice", "remediation-acme", sql)
        finally:
            remote.close()
            local.close()
    assert a.outcome is b.outcome is expected
    assert {r.code for r in a.reasons} == {r.code for r in b.reasons} == codes
    assert [r.message for r in a.reasons] == [r.message for r in b.reasons]


def test_unreachable_opa_fails_closed_and_is_audited(dataroom_home) -> None:
    svc = QueryService(Settings(policy_engine="opa", opa_url=f"http://127.0.0.1:{free_port()}"))
    try:
        outcome = svc.run("alice", "remediation-acme", "SELECT 1")
        record = list(svc.audit.records())[-1]
    finally:
        svc.close()
    assert outcome.outcome is Outcome.ERROR and "policy decision failed" in outcome.error
    assert record["outcome"] == "error" and record["result"]["allow"] is False


def test_malformed_policy_result_is_an_error_not_an_allow() -> None:
    from dataroom.policy import decision_from_result

    for bad in (None, {}, {"allow": "yes"}, [True]):
        with pytest.raises(PolicyError):
            decision_from_result(bad, "rev", "test", 0.0)
    assert decision_from_result({"allow": True, "reasons": [{"code": "x", "message": "y"}]}, "r", "t", 0).allow is False


def test_embedded_engine_stamps_bundle_revision() -> None:
    engine = EmbeddedPolicyEngine()
    assert len(engine.revision) == 64
    assert OpaServerPolicyEngine("http://127.0.0.1:1").revision == engine.revision

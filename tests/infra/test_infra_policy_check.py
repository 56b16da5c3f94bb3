"""Infra policies over the real program's resources: pass as built, fail clearly when broken.

Each broken variant is the real stack's resource set (built under Pulumi's mocks) with one
targeted change, the way a careless edit to a component would change it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from dataroom.infra_check import InfraCheckResult, check_stack, evaluate_resources, policy_titles
from dataroom.rego import POLICY_ROOT, PolicyBundle
from infra.mock_run import MockRun
from tests.infra.infra_support import mutated

POLICY_DIR = POLICY_ROOT / "infra"


def _grant(resources: list[dict[str, Any]]) -> InfraCheckResult:
    return evaluate_resources(resources, stack="dev-grant", kind="production-grant")


def _data_room(resources: list[dict[str, Any]]) -> InfraCheckResult:
    return evaluate_resources(resources, stack="dev", kind="data-room")


def _edit_policy(props: dict[str, Any], key: str, edit) -> None:
    doc = json.loads(props[key])
    edit(doc)
    props[key] = json.dumps(doc)


def _messages(result: InfraCheckResult) -> list[str]:
    return [v.message for v in result.violations]


def test_rego_unit_tests_all_pass_with_at_least_one_per_policy_file() -> None:
    results = PolicyBundle.run_rego_tests(POLICY_DIR)
    failed = [f"{r.file}:{r.rule}" for r in results if not r.passed]
    assert failed == []
    policy_files = {p.name for p in POLICY_DIR.glob("*.rego") if not p.name.endswith("_test.rego")}
    tested = {r.file.removesuffix("_test.rego") + ".rego" for r in results}
    assert policy_files <= tested, f"policy files without Rego tests: {sorted(policy_files - tested)}"
    assert len(policy_files) >= 9


def test_every_policy_has_a_title_from_its_metadata() -> None:
    assert policy_titles() == {
        "audit_trail": "Reads through the grant are recorded by CloudTrail",
        "bucket_access": "Buckets are private and TLS-only",
        "eks_cluster": "The room's cluster API is private and its secrets are encrypted",
        "encryption": "Data at rest is encrypted with KMS",
        "grants": "Cross-account grants are read-only",
        "images": "Images are pinned by tag or digest",
        "network": "The data-room network has no path to the internet",
        "object_lock": "Audit buckets are Object-Locked in compliance mode",
        "pod_network": "Single-user pods reach only the hub, the proxy and the broker",
        "principals": 'No policy allows Principal "*"',
        "signing_key": "The broker may only sign with the audit signing key",
        "singleuser_pods": "Single-user pods have no identity, no privileges and no host paths",
        "trust": "Cross-account grants trust only the broker role, with an ExternalId",
        "workload_identity": "Only the broker's ServiceAccount carries an IAM role",
    }


@pytest.mark.parametrize("stack", ["dev", "dev-grant"])
def test_example_stacks_pass(stack: str) -> None:
    result = check_stack(stack)
    assert result.violations == ()
    assert result.allow is True
    assert result.resource_count > 4
    assert len(result.policy_revision) == 64


def test_real_program_passes(data_room_run: MockRun, grant_run: MockRun) -> None:
    assert _data_room(data_room_run.policy_input()).violations == ()
    assert _grant(grant_run.policy_input()).violations == ()


def test_write_action_in_the_grant_fails(grant_run: MockRun) -> None:
    def add_put(doc: dict) -> None:
        doc["Statement"][0]["Action"] = ["s3:GetObject", "s3:PutObject"]

    broken = mutated(grant_run.policy_input(), "read-only-permissions", lambda p: _edit_policy(p, "policy", add_put))
    result = _grant(broken)
    assert result.allow is False
    assert [(v.policy, v.resource, v.title) for v in result.violations] == [
        ("grants", "read-only-role", "Cross-account grants are read-only")
    ]
    assert _messages(result) == [
        'cross-account grant role "dataroom-read-only-dev": inline policy "read-only-permissions" allows '
        '"s3:PutObject", which is not read-only; a grant may allow only s3:GetObject, s3:ListBucket and kms:Decrypt'
    ]


def test_delete_and_wildcard_actions_in_the_boundary_fail(grant_run: MockRun) -> None:
    def widen(doc: dict) -> None:
        doc["Statement"].append({"Effect": "Allow", "Action": ["s3:DeleteObject", "s3:*"], "Resource": "*"})

    broken = mutated(grant_run.policy_input(), "read-only-boundary", lambda p: _edit_policy(p, "policy", widen))
    messages = _messages(_grant(broken))
    assert len(messages) == 3
    assert any('allows "s3:DeleteObject", which is not read-only' in m for m in messages)
    assert any('allows wildcard action "s3:*"' in m for m in messages)
    assert any('allows resource "*"' in m for m in messages)


def test_wildcard_principal_fails(grant_run: MockRun) -> None:
    def trust_anyone(doc: dict) -> None:
        doc["Statement"][0]["Principal"] = {"AWS": "*"}

    broken = mutated(grant_run.policy_input(), "read-only-role", lambda p: _edit_policy(p, "assumeRolePolicy", trust_anyone))
    result = _grant(broken)
    assert [(v.policy, v.message) for v in result.violations] == [
        (
            "principals",
            'trust policy of "read-only-role" allows Principal "*" (statement "TrustOnlyTheDataRoomBroker"): '
            "anyone in any AWS account could use it; name the exact principal",
        )
    ]


def test_missing_external_id_and_account_wide_trust_fail(grant_run: MockRun) -> None:
    def loosen(doc: dict) -> None:
        doc["Statement"][0].pop("Condition")
        doc["Statement"][0]["Principal"] = {"AWS": "arn:aws:iam::222222222222:root"}

    broken = mutated(grant_run.policy_input(), "read-only-role", lambda p: _edit_policy(p, "assumeRolePolicy", loosen))
    result = _grant(broken)
    assert {v.policy for v in result.violations} == {"trust"}
    assert sorted(_messages(result)) == [
        'cross-account grant role "dataroom-read-only-dev" can be assumed without an ExternalId; '
        "add Condition StringEquals sts:ExternalId to its trust policy",
        'cross-account grant role "dataroom-read-only-dev" trusts AWS principal "arn:aws:iam::222222222222:root"; '
        "trust only the data-room broker role's ARN (arn:aws:iam::<account>:role/<name>), never an account root, "
        "a user, a service or a federation",
    ]


def test_removed_boundary_fails(grant_run: MockRun) -> None:
    broken = mutated(grant_run.policy_input(), "read-only-role", lambda p: p.pop("permissionsBoundary"))
    assert _messages(_grant(broken)) == [
        'cross-account grant role "dataroom-read-only-dev" has no permissions boundary; '
        "set one that allows only the read-only actions"
    ]


def test_audit_bucket_without_object_lock_fails(data_room_run: MockRun) -> None:
    resources = mutated(data_room_run.policy_input(), "audit-bucket", lambda p: p.update(objectLockEnabled=False))
    resources = [r for r in resources if r["name"] != "audit-object-lock"]
    result = _data_room(resources)
    assert result.allow is False
    assert {(v.policy, v.resource) for v in result.violations} == {("object_lock", "audit-bucket")}
    assert sorted(_messages(result)) == [
        'audit bucket "dataroom-audit-dev-222222222222" has no default Object Lock retention in COMPLIANCE mode; '
        "add a BucketObjectLockConfiguration with mode COMPLIANCE and a retention period",
        'audit bucket "dataroom-audit-dev-222222222222" is created without Object Lock; set objectLockEnabled '
        "(it cannot be turned on for existing objects later)",
    ]


def test_governance_mode_and_unencrypted_bucket_fail(data_room_run: MockRun) -> None:
    resources = mutated(
        data_room_run.policy_input(), "audit-object-lock", lambda p: p["rule"]["defaultRetention"].update(mode="GOVERNANCE")
    )
    resources = [r for r in resources if r["name"] != "audit-encryption"]
    assert {v.policy for v in _data_room(resources).violations} == {"object_lock", "encryption"}


def test_internet_gateway_in_the_data_room_fails(data_room_run: MockRun) -> None:
    igw = {"type": "aws:ec2/internetGateway:InternetGateway", "name": "network-igw", "id": "igw-1", "arn": "", "props": {"vpcId": "network-vpc-id"}}
    route = {
        "type": "aws:ec2/route:Route",
        "name": "network-default-route",
        "id": "r-1",
        "arn": "",
        "props": {"routeTableId": "network-private-id", "destinationCidrBlock": "0.0.0.0/0", "gatewayId": "igw-1"},
    }
    result = _data_room(data_room_run.policy_input() + [igw, route])
    assert sorted((v.policy, v.resource) for v in result.violations) == [
        ("network", "network-default-route"),
        ("network", "network-igw"),
    ]


def test_tls_rule_removed_from_the_audit_bucket_fails(data_room_run: MockRun) -> None:
    def drop_tls(doc: dict) -> None:
        doc["Statement"] = [s for s in doc["Statement"] if s["Effect"] != "Deny"]

    broken = mutated(data_room_run.policy_input(), "audit-policy", lambda p: _edit_policy(p, "policy", drop_tls))
    assert [v.policy for v in _data_room(broken).violations] == ["bucket_access"]


def test_stacks_that_lose_their_core_resources_fail(grant_run: MockRun, data_room_run: MockRun) -> None:
    grant_only_trail = [r for r in grant_run.policy_input() if r["type"] == "aws:cloudtrail/trail:Trail"]
    assert [v.policy for v in _grant(grant_only_trail).violations] == ["grants"]
    no_bucket = [r for r in data_room_run.policy_input() if r["type"] != "aws:s3/bucket:Bucket"]
    assert [v.policy for v in _data_room(no_bucket).violations] == ["object_lock"]

"""The whole stack program: outputs are exactly what the broker needs; everything lands in the right account."""

from __future__ import annotations

import runpy

from infra.config import AccountConfig, RoomConfig
from infra.mock_run import MOCK_MEMBER_ACCOUNT_ID, MockRun, run_under_mocks
from infra.program import BROKER_SETTINGS
from infra.stack_files import INFRA_DIR, load_stack_file
from tests.infra.infra_support import BROKER_ROLE_ARN, build, data_room_config, grant_config

DATA_ROOM_OUTPUTS = {
    "kind",
    "region",
    "accountId",
    "brokerRoleArn",
    "auditBucketName",
    "auditKmsKeyArn",
    "auditSigningKeyArn",
    "vpcId",
    "privateSubnetIds",
    "brokerSecurityGroupId",
    "s3GatewayEndpointId",
    "expectedReadOnlyRoleArn",
    "clusterName",
    "clusterEndpoint",
    "oidcProviderArn",
    "roomNamespace",
    "registryAddress",
    "hubService",
}


def _aws_resources(run: MockRun) -> list:
    return [r for r in run.resources if r.custom and r.type.startswith("aws:")]


def test_data_room_outputs_feed_the_grant_stack(data_room_run: MockRun) -> None:
    outputs = data_room_run.outputs
    assert set(outputs) == DATA_ROOM_OUTPUTS
    assert outputs["kind"] == "data-room"
    assert outputs["accountId"] == "222222222222"
    assert outputs["brokerRoleArn"] == "arn:aws:iam::222222222222:role/dataroom-broker-dev"
    assert outputs["auditBucketName"] == "dataroom-audit-dev-222222222222"
    assert outputs["auditKmsKeyArn"].startswith("arn:aws:kms:eu-west-1:222222222222:key/")
    assert outputs["expectedReadOnlyRoleArn"] == "arn:aws:iam::111111111111:role/dataroom-read-only-dev"
    assert data_room_run.secret_outputs == set()


def test_every_data_room_resource_uses_the_pinned_provider(data_room_run: MockRun) -> None:
    provider = data_room_run.one("pulumi:providers:aws")
    resources = _aws_resources(data_room_run)
    assert len(resources) > 20
    assert {r.provider.split("::")[-2] for r in resources} == {provider.name}
    assert all(":222222222222:" in r.arn for r in resources if r.arn.startswith(("arn:aws:iam", "arn:aws:kms")))


def test_created_account_hosts_the_data_room() -> None:
    account = AccountConfig(create=True, name="dataroom-dev", email="aws+dr@example.com")
    ecr = "333333333333.dkr.ecr.eu-west-1.amazonaws.com"
    room = RoomConfig(image=f"{ecr}/dataroom:0.1.0", hub_image=f"{ecr}/k8s-hub:4.3.1", proxy_image=f"{ecr}/chp:4.6.3")
    run = build(data_room_config(account=account, room=room))
    assert run.outputs["accountId"] == MOCK_MEMBER_ACCOUNT_ID
    assert run.outputs["brokerRoleArn"] == f"arn:aws:iam::{MOCK_MEMBER_ACCOUNT_ID}:role/dataroom-broker-dev"
    assert run.outputs["auditBucketName"] == f"dataroom-audit-dev-{MOCK_MEMBER_ACCOUNT_ID}"


def test_grant_outputs_are_exactly_the_broker_settings(grant_run: MockRun) -> None:
    outputs = grant_run.outputs
    assert outputs["brokerSettings"] == {
        "DATAROOM_AWS_ROLE_ARN": "arn:aws:iam::111111111111:role/dataroom-read-only-dev",
        "DATAROOM_AWS_EXTERNAL_ID": "ext-id-for-tests-0123456789",
        "DATAROOM_AUDIT_BUCKET": "dataroom-audit-dev-222222222222",
        "DATAROOM_AWS_REGION": "eu-west-1",
    }
    assert tuple(outputs["brokerSettings"]) == BROKER_SETTINGS
    assert outputs["readOnlyRoleArn"] == outputs["brokerSettings"]["DATAROOM_AWS_ROLE_ARN"]
    assert outputs["parquetPrefixes"] == [
        "s3://prod-security-findings/parquet/findings/",
        "s3://prod-security-findings/parquet/assets/",
        "s3://prod-inventory/parquet/hosts/",
    ]
    # The ExternalId never appears in plain text in `pulumi stack output`.
    assert grant_run.secret_outputs == {"externalId", "brokerSettings"}


def test_grant_lives_in_the_production_account_and_trusts_the_broker(grant_run: MockRun) -> None:
    provider = grant_run.one("pulumi:providers:aws")
    assert provider.props["allowedAccountIds"] == '["111111111111"]'
    resources = _aws_resources(grant_run)
    assert {r.type for r in resources} == {
        "aws:iam/policy:Policy",
        "aws:iam/role:Role",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:cloudtrail/trail:Trail",
    }
    assert all(r.provider.split("::")[-2] == provider.name for r in resources)
    assert BROKER_ROLE_ARN in grant_run.one("aws:iam/role:Role").props["assumeRolePolicy"]


def test_deploy_role_is_assumed_when_configured() -> None:
    run = build(grant_config(deploy_role_arn="arn:aws:iam::111111111111:role/infra-deployer"), stack="dev-grant")
    provider = run.one("pulumi:providers:aws")
    assert '"arn:aws:iam::111111111111:role/infra-deployer"' in provider.props["assumeRoles"]


def test_pulumi_entry_point_builds_the_configured_stack() -> None:
    """Run ``infra/__main__.py`` the way Pulumi's Python host does (``runpy`` on the project dir)."""
    stack_file = load_stack_file("dev-grant")

    def pulumi_host() -> None:
        runpy.run_path(str(INFRA_DIR), run_name="__main__")

    run = run_under_mocks(
        pulumi_host,
        stack="dev-grant",
        config=stack_file.config,
        secret_keys=stack_file.secret_keys,
    )
    assert run.one("aws:iam/role:Role").props["name"] == "dataroom-read-only-dev"
    assert run.one("aws:cloudtrail/trail:Trail").props["name"] == "dataroom-production-data-events-dev"

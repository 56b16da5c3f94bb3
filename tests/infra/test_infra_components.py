"""Each ComponentResource under Pulumi's mocks: the resources it declares and their properties."""

from __future__ import annotations

import json
from ipaddress import ip_network

import pytest

from infra.account import DataRoomAccount, DataRoomAccountArgs
from infra.audit_bucket import AuditBucket, AuditBucketArgs
from infra.broker_identity import BrokerIdentity, BrokerIdentityArgs
from infra.config import AccountConfig
from infra.data_events_trail import DataEventsTrail, DataEventsTrailArgs
from infra.mock_run import MOCK_ACCOUNT_ID, MOCK_MEMBER_ACCOUNT_ID, MockRun, run_under_mocks
from infra.network import INTERFACE_ENDPOINT_SERVICES, IsolatedNetwork, IsolatedNetworkArgs, private_subnet_cidrs
from infra.policy_documents import (
    audit_bucket_policy,
    audit_key_policy,
    audit_signing_key_policy,
    broker_permissions_policy,
    broker_trust_policy,
    read_only_permissions_policy,
    read_only_trust_policy,
)
from infra.read_only_grant import ReadOnlyGrant, ReadOnlyGrantArgs
from tests.infra.infra_support import AUDIT_KEY_ARN, BROKER_ROLE_ARN, DATA_KEY_ARN, PREFIXES, TRAIL_ARN

INTERNET_TYPES = {
    "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/egressOnlyInternetGateway:EgressOnlyInternetGateway",
    "aws:ec2/natGateway:NatGateway",
    "aws:ec2/route:Route",
    "aws:ec2/eip:Eip",
}


def _doc(value: str) -> dict:
    return json.loads(value)


# --- DataRoomAccount -------------------------------------------------------------------------


def test_existing_account_gets_a_provider_pinned_to_it() -> None:
    args = DataRoomAccountArgs(AccountConfig(id="222222222222"), region="eu-west-1", environment="dev")
    run = run_under_mocks(lambda: {"id": DataRoomAccount("dr", args).account_id})
    assert run.of_type("aws:organizations/account:Account") == []
    provider = run.one("pulumi:providers:aws")
    assert json.loads(provider.props["allowedAccountIds"]) == ["222222222222"]
    assert provider.props["region"] == "eu-west-1"
    assert "assumeRoles" not in provider.props
    assert run.outputs == {"id": "222222222222"}


def test_new_member_account_is_created_and_deployed_through_its_access_role() -> None:
    account = AccountConfig(create=True, name="dataroom-dev", email="aws+dr@example.com", parent_id="ou-abcd-1234")
    args = DataRoomAccountArgs(account, region="eu-west-1", environment="dev")
    run = run_under_mocks(lambda: {"id": DataRoomAccount("dr", args).account_id})
    member = run.one("aws:organizations/account:Account")
    assert member.props["name"] == "dataroom-dev"
    assert member.props["email"] == "aws+dr@example.com"
    assert member.props["parentId"] == "ou-abcd-1234"
    assert member.props["iamUserAccessToBilling"] == "DENY"
    assert member.props["closeOnDeletion"] is False
    provider = run.one("pulumi:providers:aws")
    assert json.loads(provider.props["allowedAccountIds"]) == [MOCK_MEMBER_ACCOUNT_ID]
    roles = json.loads(provider.props["assumeRoles"])
    assert [r["roleArn"] for r in roles] == [f"arn:aws:iam::{MOCK_MEMBER_ACCOUNT_ID}:role/OrganizationAccountAccessRole"]
    assert run.outputs == {"id": MOCK_MEMBER_ACCOUNT_ID}


# --- IsolatedNetwork -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def network_run() -> MockRun:
    args = IsolatedNetworkArgs(region="eu-west-1", cidr_block="10.42.0.0/16", availability_zones=["eu-west-1a", "eu-west-1b"])
    return run_under_mocks(lambda: {"subnets": IsolatedNetwork("net", args).private_subnet_ids})


def test_network_has_no_path_to_the_internet(network_run: MockRun) -> None:
    assert not [r.name for r in network_run.resources if r.type in INTERNET_TYPES]
    table = network_run.one("aws:ec2/routeTable:RouteTable")
    assert not table.props.get("routes")
    vpc = network_run.one("aws:ec2/vpc:Vpc")
    assert vpc.props["cidrBlock"] == "10.42.0.0/16"
    assert vpc.props["enableDnsSupport"] is True and vpc.props["enableDnsHostnames"] is True
    default_sg = network_run.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert default_sg.props.get("ingress", []) == [] and default_sg.props.get("egress", []) == []


def test_private_subnets_one_per_zone_without_public_ips(network_run: MockRun) -> None:
    subnets = network_run.of_type("aws:ec2/subnet:Subnet")
    assert [s.props["availabilityZone"] for s in subnets] == ["eu-west-1a", "eu-west-1b"]
    assert [s.props["cidrBlock"] for s in subnets] == ["10.42.0.0/20", "10.42.16.0/20"]
    assert all(s.props["mapPublicIpOnLaunch"] is False for s in subnets)
    associations = network_run.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
    assert sorted(a.props["subnetId"] for a in associations) == sorted(s.id for s in subnets)
    assert network_run.outputs == {"subnets": [s.id for s in subnets]}


def test_aws_apis_are_reached_through_vpc_endpoints(network_run: MockRun) -> None:
    endpoints = {e.props["serviceName"]: e for e in network_run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert set(endpoints) == {f"com.amazonaws.eu-west-1.{s}" for s in ("s3", *INTERFACE_ENDPOINT_SERVICES)}
    s3 = endpoints.pop("com.amazonaws.eu-west-1.s3")
    assert s3.props["vpcEndpointType"] == "Gateway"
    assert s3.props["routeTableIds"] == [network_run.one("aws:ec2/routeTable:RouteTable").id]
    for endpoint in endpoints.values():
        assert endpoint.props["vpcEndpointType"] == "Interface"
        assert endpoint.props["privateDnsEnabled"] is True
        assert len(endpoint.props["subnetIds"]) == 2


def test_security_groups_allow_only_https_inside_the_vpc(network_run: MockRun) -> None:
    groups = {g.name: g for g in network_run.of_type("aws:ec2/securityGroup:SecurityGroup")}
    endpoints, broker = groups["net-endpoints"], groups["net-broker"]
    assert [(r["fromPort"], r["toPort"], r["cidrBlocks"]) for r in endpoints.props["ingress"]] == [
        (443, 443, ["10.42.0.0/16"])
    ]
    assert endpoints.props["egress"] == []
    assert not broker.props.get("ingress")
    assert {(r["fromPort"], r["toPort"]) for r in broker.props["egress"]} == {(443, 443)}
    assert any(r.get("prefixListIds") == ["pl-net-s3"] for r in broker.props["egress"])
    assert all("0.0.0.0/0" not in r.get("cidrBlocks", []) for r in broker.props["egress"])


def test_network_args_refuse_tiny_vpcs_and_no_zones() -> None:
    with pytest.raises(ValueError, match="too small"):
        IsolatedNetworkArgs(region="eu-west-1", cidr_block="10.0.0.0/26", availability_zones=["a"])
    with pytest.raises(ValueError, match="availability zone"):
        IsolatedNetworkArgs(region="eu-west-1", cidr_block="10.0.0.0/16", availability_zones=[])
    cidrs = private_subnet_cidrs("10.9.0.0/24", 3)
    assert cidrs == ["10.9.0.0/28", "10.9.0.16/28", "10.9.0.32/28"]
    assert all(ip_network(c).subnet_of(ip_network("10.9.0.0/24")) for c in cidrs)


# --- AuditBucket -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def audit_run() -> MockRun:
    args = AuditBucketArgs(
        bucket_name="dataroom-audit-dev-222222222222",
        account_id="222222222222",
        retention_days=400,
        trail_arn=TRAIL_ARN,
        trail_account_id="111111111111",
        environment="dev",
    )

    def program() -> dict:
        audit = AuditBucket("audit", args)
        return {"bucket": audit.bucket.bucket, "key": audit.key.arn}

    return run_under_mocks(program)


def test_audit_bucket_is_object_locked_in_compliance_mode(audit_run: MockRun) -> None:
    bucket = audit_run.one("aws:s3/bucket:Bucket")
    assert bucket.props["bucket"] == "dataroom-audit-dev-222222222222"
    assert bucket.props["objectLockEnabled"] is True
    assert bucket.props["forceDestroy"] is False
    lock = audit_run.one("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")
    assert lock.props["bucket"] == bucket.id
    assert lock.props["rule"] == {"defaultRetention": {"mode": "COMPLIANCE", "days": 400}}
    versioning = audit_run.one("aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.props["versioningConfiguration"] == {"status": "Enabled"}


def test_audit_bucket_is_kms_encrypted_private_and_tls_only(audit_run: MockRun) -> None:
    bucket = audit_run.one("aws:s3/bucket:Bucket")
    key = audit_run.named("audit-key")
    assert key.props["enableKeyRotation"] is True
    assert _doc(key.props["policy"]) == audit_key_policy("222222222222", TRAIL_ARN)
    sse = audit_run.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert sse.props["rules"] == [
        {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key.arn}, "bucketKeyEnabled": True}
    ]
    block = audit_run.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(block.props[f] is True for f in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    ownership = audit_run.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership.props["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    policy = audit_run.one("aws:s3/bucketPolicy:BucketPolicy")
    assert _doc(policy.props["policy"]) == audit_bucket_policy(bucket.arn, TRAIL_ARN, "111111111111")
    assert audit_run.outputs == {"bucket": bucket.id, "key": key.arn}


def test_audit_bucket_args_need_a_retention() -> None:
    with pytest.raises(ValueError, match="retention"):
        AuditBucketArgs("b", "222222222222", 0, TRAIL_ARN, "111111111111", "dev")


# --- BrokerIdentity --------------------------------------------------------------------------


def test_broker_role_trusts_compute_and_uses_the_shared_policy_builder() -> None:
    read_only = "arn:aws:iam::111111111111:role/dataroom-read-only-dev"
    args = BrokerIdentityArgs("dataroom-broker-dev", [read_only], "arn:aws:s3:::audit", AUDIT_KEY_ARN)
    run = run_under_mocks(lambda: {"arn": BrokerIdentity("broker", args).role.arn})
    role = run.one("aws:iam/role:Role")
    assert role.props["name"] == "dataroom-broker-dev"
    assert _doc(role.props["assumeRolePolicy"]) == broker_trust_policy()
    inline = run.one("aws:iam/rolePolicy:RolePolicy")
    assert inline.props["role"] == role.id
    assert _doc(inline.props["policy"]) == broker_permissions_policy([read_only], "arn:aws:s3:::audit", AUDIT_KEY_ARN)
    profile = run.one("aws:iam/instanceProfile:InstanceProfile")
    assert profile.props["role"] == "dataroom-broker-dev"
    assert run.outputs == {"arn": f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/dataroom-broker-dev"}


# --- ReadOnlyGrant ---------------------------------------------------------------------------


def test_read_only_grant_role_trust_permissions_and_boundary() -> None:
    args = ReadOnlyGrantArgs(
        role_name="dataroom-read-only-dev",
        broker_role_arn=BROKER_ROLE_ARN,
        external_id="ext-0123456789",
        prefixes=PREFIXES,
        region="eu-west-1",
        data_kms_key_arns=[DATA_KEY_ARN],
        source_vpc_endpoint_ids=["vpce-0abc"],
    )
    run = run_under_mocks(lambda: {"arn": ReadOnlyGrant("ro", args).role.arn})
    expected = read_only_permissions_policy(PREFIXES, "eu-west-1", [DATA_KEY_ARN], ["vpce-0abc"])
    role = run.one("aws:iam/role:Role")
    assert _doc(role.props["assumeRolePolicy"]) == read_only_trust_policy([BROKER_ROLE_ARN], "ext-0123456789")
    assert role.props["maxSessionDuration"] == 3600
    boundary = run.one("aws:iam/policy:Policy")
    assert role.props["permissionsBoundary"] == boundary.arn
    assert _doc(boundary.props["policy"]) == expected
    inline = run.one("aws:iam/rolePolicy:RolePolicy")
    assert inline.props["role"] == role.id
    assert _doc(inline.props["policy"]) == expected
    assert run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") == []
    assert run.outputs == {"arn": f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/dataroom-read-only-dev"}


def test_read_only_grant_args_refuse_empty_grants_and_odd_sessions() -> None:
    with pytest.raises(ValueError, match="at least one Parquet prefix"):
        ReadOnlyGrantArgs("r", BROKER_ROLE_ARN, "ext-1", (), "eu-west-1")
    with pytest.raises(ValueError, match="between 3600 and 43200"):
        ReadOnlyGrantArgs("r", BROKER_ROLE_ARN, "ext-1", PREFIXES, "eu-west-1", max_session_duration_seconds=900)


# --- DataEventsTrail -------------------------------------------------------------------------


def test_trail_records_object_events_on_the_granted_prefixes_into_the_audit_bucket() -> None:
    args = DataEventsTrailArgs("dataroom-production-data-events-dev", PREFIXES, "dataroom-audit-dev", AUDIT_KEY_ARN)
    run = run_under_mocks(lambda: {"arn": DataEventsTrail("events", args).trail.arn})
    trail = run.one("aws:cloudtrail/trail:Trail")
    assert trail.props["s3BucketName"] == "dataroom-audit-dev"
    assert trail.props["s3KeyPrefix"] == "cloudtrail"
    assert trail.props["kmsKeyId"] == AUDIT_KEY_ARN
    assert trail.props["enableLogFileValidation"] is True
    (selector,) = trail.props["advancedEventSelectors"]
    fields = {f["field"]: f for f in selector["fieldSelectors"]}
    assert fields["eventCategory"]["equals"] == ["Data"]
    assert fields["resources.type"]["equals"] == ["AWS::S3::Object"]
    assert fields["resources.ARN"]["startsWiths"] == [
        "arn:aws:s3:::prod-inventory/parquet/hosts/",
        "arn:aws:s3:::prod-security-findings/parquet/assets/",
        "arn:aws:s3:::prod-security-findings/parquet/findings/",
    ]
    assert run.outputs == {"arn": f"arn:aws:cloudtrail:us-east-1:{MOCK_ACCOUNT_ID}:trail/dataroom-production-data-events-dev"}


def test_audit_signing_key_is_an_asymmetric_p256_key_administered_by_the_account(audit_run: MockRun) -> None:
    """Issue 10: checkpoints are signed in KMS; the key cannot encrypt, and only IAM policies grant its use."""
    key = audit_run.named("audit-signing-key")
    assert (key.props["customerMasterKeySpec"], key.props["keyUsage"]) == ("ECC_NIST_P256", "SIGN_VERIFY")
    assert _doc(key.props["policy"]) == audit_signing_key_policy("222222222222")
    assert [s["Principal"] for s in _doc(key.props["policy"])["Statement"]] == [{"AWS": "arn:aws:iam::222222222222:root"}]
    alias = audit_run.named("audit-signing-key-alias")
    assert alias.props["name"] == "alias/dataroom-audit-signing-dev" and alias.props["targetKeyId"] == key.id

"""The IAM and resource policy documents: exactly the statements the security model asks for."""

from __future__ import annotations

import pytest

from infra.config import InfraConfigError, ParquetPrefix
from infra.policy_documents import (
    READ_ONLY_ACTIONS,
    audit_bucket_policy,
    audit_key_policy,
    broker_permissions_policy,
    broker_trust_policy,
    read_only_permissions_policy,
    read_only_trust_policy,
)
from tests.infra.infra_support import BROKER_ROLE_ARN, DATA_KEY_ARN, PREFIXES, TRAIL_ARN



def _actions(doc: dict) -> set[str]:
    found: set[str] = set()
    for statement in doc["Statement"]:
        action = statement["Action"]
        found.update([action] if isinstance(action, str) else action)
    return found


def test_trust_policy_admits_only_the_broker_role_with_the_external_id() -> None:
    doc = read_only_trust_policy([BROKER_ROLE_ARN], "ext-123")
    assert doc["Statement"] == [
        {
            "Sid": "TrustOnlyTheDataRoomBroker",
            "Effect": "Allow",
            "Principal": {"AWS": [BROKER_ROLE_ARN]},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": "ext-123"}},
        }
    ]
    with pytest.raises(ValueError):
        read_only_trust_policy([], "ext-123")


def test_read_only_permissions_list_and_get_only_the_prefixes() -> None:
    doc = read_only_permissions_policy(PREFIXES, "eu-west-1", [DATA_KEY_ARN])
    assert _actions(doc) == set(READ_ONLY_ACTIONS)
    get = next(s for s in doc["Statement"] if s["Action"] == "s3:GetObject")
    assert get["Resource"] == [
        "arn:aws:s3:::prod-inventory/parquet/hosts/*",
        "arn:aws:s3:::prod-security-findings/parquet/assets/*",
        "arn:aws:s3:::prod-security-findings/parquet/findings/*",
    ]
    listing = {s["Resource"]: s["Condition"] for s in doc["Statement"] if s["Action"] == "s3:ListBucket"}
    assert listing == {
        "arn:aws:s3:::prod-inventory": {"StringLike": {"s3:prefix": ["parquet/hosts/*"]}},
        "arn:aws:s3:::prod-security-findings": {
            "StringLike": {"s3:prefix": ["parquet/assets/*", "parquet/findings/*"]}
        },
    }
    decrypt = next(s for s in doc["Statement"] if s["Action"] == "kms:Decrypt")
    assert decrypt["Resource"] == [DATA_KEY_ARN]
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}
    assert all(s["Effect"] == "Allow" and "*" not in s["Resource"] for s in doc["Statement"])


def test_read_only_permissions_without_keys_have_no_kms_statement() -> None:
    doc = read_only_permissions_policy(PREFIXES[:1], "eu-west-1")
    assert _actions(doc) == {"s3:GetObject", "s3:ListBucket"}


def test_vpc_endpoint_pin_applies_to_every_s3_statement() -> None:
    doc = read_only_permissions_policy(PREFIXES, "eu-west-1", source_vpc_endpoint_ids=["vpce-0abc"])
    s3_statements = [s for s in doc["Statement"] if s["Action"].startswith("s3:")]
    assert len(s3_statements) == 3
    for statement in s3_statements:
        assert statement["Condition"]["StringEquals"] == {"aws:SourceVpce": ["vpce-0abc"]}


@pytest.mark.parametrize(
    ("bucket", "prefix", "fragment"),
    [
        ("prod", "", "non-empty folder"),
        ("prod", "/parquet/", "non-empty folder"),
        ("prod", "parquet", "non-empty folder"),
        ("prod", "parquet/*/", "wildcards"),
        ("Prod_Bucket", "parquet/", "not a valid S3 bucket name"),
    ],
)
def test_parquet_prefixes_refuse_whole_buckets_and_wildcards(bucket: str, prefix: str, fragment: str) -> None:
    with pytest.raises(InfraConfigError, match=fragment):
        ParquetPrefix(bucket, prefix)


def test_prefix_object_arn_stops_at_the_folder() -> None:
    """``findings/*`` must not match the sibling ``findings-secret/``."""
    prefix = ParquetPrefix("prod", "parquet/findings/")
    assert prefix.objects_arn == "arn:aws:s3:::prod/parquet/findings/*"
    assert prefix.uri == "s3://prod/parquet/findings/"


def test_broker_policy_assumes_only_the_grant_and_appends_only_to_its_audit_prefix() -> None:
    role = "arn:aws:iam::111111111111:role/dataroom-read-only-dev"
    doc = broker_permissions_policy([role], "arn:aws:s3:::audit", "arn:aws:kms:eu-west-1:2:key/k")
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["AssumeProductionReadOnly"]["Resource"] == [role]
    assert by_sid["AppendQueryAuditLog"]["Resource"] == "arn:aws:s3:::audit/query-audit/*"
    assert "s3:DeleteObject" not in _actions(doc)
    assert broker_trust_policy()["Statement"][0]["Principal"] == {
        "Service": ["ec2.amazonaws.com", "ecs-tasks.amazonaws.com"]
    }


def test_audit_bucket_policy_is_tls_only_and_admits_one_trail() -> None:
    doc = audit_bucket_policy("arn:aws:s3:::audit", TRAIL_ARN, "111111111111")
    deny, acl, write = doc["Statement"]
    assert deny == {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": ["arn:aws:s3:::audit", "arn:aws:s3:::audit/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    assert acl["Condition"] == {"StringEquals": {"aws:SourceArn": TRAIL_ARN}}
    assert write["Resource"] == "arn:aws:s3:::audit/cloudtrail/AWSLogs/111111111111/*"
    assert write["Condition"]["StringEquals"]["aws:SourceArn"] == TRAIL_ARN


def test_audit_key_policy_lets_only_the_trail_encrypt() -> None:
    doc = audit_key_policy("222222222222", TRAIL_ARN)
    admin, encrypt, describe = doc["Statement"]
    assert admin["Principal"] == {"AWS": "arn:aws:iam::222222222222:root"}
    assert encrypt["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert encrypt["Condition"]["StringEquals"] == {"aws:SourceArn": TRAIL_ARN}
    assert describe["Action"] == "kms:DescribeKey"

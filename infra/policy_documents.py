"""The IAM, bucket and key policy documents the stacks attach, as pure functions.

Kept free of Pulumi so that the components and the moto test load *the same* documents: what
is proven read-only against a real IAM evaluator is exactly what ``pulumi up`` applies.
Every function returns a JSON-ready ``dict``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from infra.config import ParquetPrefix

PolicyDocument = dict[str, Any]

READ_ONLY_ACTIONS = ("s3:GetObject", "s3:ListBucket", "kms:Decrypt")
"""Everything a cross-account grant may allow; the infra policies enforce the same list."""

AUDIT_LOG_PREFIX = "query-audit/"
"""Where the broker ships its hash-chained query audit log inside the audit bucket."""

CLOUDTRAIL_PREFIX = "cloudtrail"
"""Where CloudTrail delivers the production data events inside the audit bucket."""


def _doc(*statements: dict[str, Any]) -> PolicyDocument:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def read_only_trust_policy(broker_role_arns: Sequence[str], external_id: str) -> PolicyDocument:
    """Who may assume the production read-only role: only the broker role, only with the ExternalId."""
    if not broker_role_arns:
        raise ValueError("a read-only grant must trust at least one broker role")
    return _doc(
        {
            "Sid": "TrustOnlyTheDataRoomBroker",
            "Effect": "Allow",
            "Principal": {"AWS": list(broker_role_arns)},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
        }
    )


def read_only_permissions_policy(
    prefixes: Sequence[ParquetPrefix],
    region: str,
    data_kms_key_arns: Sequence[str] = (),
    source_vpc_endpoint_ids: Sequence[str] = (),
) -> PolicyDocument:
    """List and get the listed Parquet prefixes (and decrypt their objects via S3); nothing else.

    ``source_vpc_endpoint_ids`` additionally pins the S3 calls to the data room's gateway endpoint,
    so leaked session credentials are useless outside the data-room VPC.
    """
    if not prefixes:
        raise ValueError("a read-only grant needs at least one Parquet prefix")
    vpce = {"StringEquals": {"aws:SourceVpce": list(source_vpc_endpoint_ids)}} if source_vpc_endpoint_ids else {}
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadParquetObjects",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": sorted({p.objects_arn for p in prefixes}),
            **({"Condition": vpce} if vpce else {}),
        }
    ]
    for index, bucket in enumerate(sorted({p.bucket for p in prefixes})):
        listed = sorted(f"{p.prefix}*" for p in prefixes if p.bucket == bucket)
        statements.append(
            {
                "Sid": f"ListParquetPrefixes{index}",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": f"arn:aws:s3:::{bucket}",
                "Condition": {"StringLike": {"s3:prefix": listed}, **vpce},
            }
        )
    if data_kms_key_arns:
        statements.append(
            {
                "Sid": "DecryptParquetObjectsThroughS3",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": sorted(data_kms_key_arns),
                "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
            }
        )
    return _doc(*statements)


AUDIT_SIGNING_ACTIONS = ("kms:Sign", "kms:GetPublicKey")
"""All the broker may do with the audit signing key (issue 10): sign checkpoints, publish the public key."""


def broker_trust_policy(
    oidc_provider_arn: str | None = None, oidc_issuer: str = "", namespace: str = "", service_account: str = ""
) -> PolicyDocument:
    """Who becomes the broker.

    With the room on EKS (an OIDC provider given): only pods running as the broker's
    ServiceAccount, by IRSA web identity, so no other pod, node or person can. Without it: the
    broker runs on EC2 or ECS inside the data-room account.
    """
    if oidc_provider_arn is None:
        return _doc(
            {
                "Sid": "BrokerComputeOnly",
                "Effect": "Allow",
                "Principal": {"Service": ["ec2.amazonaws.com", "ecs-tasks.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        )
    issuer = oidc_issuer.removeprefix("https://")
    return _doc(
        {
            "Sid": "BrokerServiceAccountOnly",
            "Effect": "Allow",
            "Principal": {"Federated": oidc_provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                    f"{issuer}:aud": "sts.amazonaws.com",
                }
            },
        }
    )


def broker_permissions_policy(
    read_only_role_arns: Sequence[str],
    audit_bucket_arn: str,
    audit_kms_key_arn: str,
    audit_signing_key_arn: str | None = None,
) -> PolicyDocument:
    """The broker may assume the production read-only role, append to its audit log prefix and
    sign audit checkpoints with the signing key (``kms:Sign``, ``kms:GetPublicKey``, nothing else)."""
    audit_objects = f"{audit_bucket_arn}/{AUDIT_LOG_PREFIX}*"
    signing = (
        [{"Sid": "SignAuditCheckpoints", "Effect": "Allow", "Action": list(AUDIT_SIGNING_ACTIONS), "Resource": audit_signing_key_arn}]
        if audit_signing_key_arn
        else []
    )
    return _doc(
        {
            "Sid": "AssumeProductionReadOnly",
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": list(read_only_role_arns),
        },
        {
            "Sid": "AppendQueryAuditLog",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:GetObject"],
            "Resource": audit_objects,
        },
        {
            "Sid": "ListQueryAuditLog",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": audit_bucket_arn,
            "Condition": {"StringLike": {"s3:prefix": f"{AUDIT_LOG_PREFIX}*"}},
        },
        {
            "Sid": "EncryptQueryAuditLog",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": audit_kms_key_arn,
        },
        *signing,
    )


def audit_signing_key_policy(account_id: str) -> PolicyDocument:
    """The account administers the key and IAM policies decide who uses it: the broker role's
    inline policy grants ``kms:Sign`` and ``kms:GetPublicKey`` only (an infra policy checks it)."""
    return _doc(
        {
            "Sid": "AccountAdministersTheKey",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
    )


def audit_bucket_policy(bucket_arn: str, trail_arn: str, trail_account_id: str) -> PolicyDocument:
    """TLS only, and let exactly one CloudTrail trail (in the production account) deliver its logs."""
    return _doc(
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "CloudTrailAclCheck",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:GetBucketAcl",
            "Resource": bucket_arn,
            "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}},
        },
        {
            "Sid": "CloudTrailWrite",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/{CLOUDTRAIL_PREFIX}/AWSLogs/{trail_account_id}/*",
            "Condition": {
                "StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail_arn}
            },
        },
    )


def audit_key_policy(account_id: str, trail_arn: str) -> PolicyDocument:
    """The audit key: administered by its own account (via IAM), usable by the one CloudTrail trail."""
    return _doc(
        {
            "Sid": "AccountAdministersKeyThroughIam",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "CloudTrailEncryptsLogs",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "kms:GenerateDataKey*",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:SourceArn": trail_arn},
                "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": trail_arn},
            },
        },
        {
            "Sid": "CloudTrailDescribesKey",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "kms:DescribeKey",
            "Resource": "*",
        },
    )

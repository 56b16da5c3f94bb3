"""The audit bucket: where query audit logs and production data events land and cannot be changed."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.policy_documents import audit_bucket_policy, audit_key_policy, audit_signing_key_policy


@dataclass(frozen=True)
class AuditBucketArgs:
    """Retention is in days of Object Lock *compliance* mode: nobody, root included, can shorten it."""

    bucket_name: pulumi.Input[str]
    account_id: pulumi.Input[str]
    retention_days: int
    trail_arn: str
    trail_account_id: str
    environment: str

    def __post_init__(self) -> None:
        if self.retention_days < 1:
            raise ValueError("Object Lock retention must be at least one day")


class AuditBucket(pulumi.ComponentResource):
    """KMS-encrypted, versioned, Object-Locked (compliance) bucket; public access blocked; TLS only.

    The bucket and its key are ``protect``-ed: a locked bucket cannot be emptied before its
    retention ends, so an accidental ``pulumi destroy`` must stop at the plan, not half-way.
    """

    bucket: aws.s3.Bucket
    key: aws.kms.Key
    signing_key: aws.kms.Key

    def __init__(self, name: str, args: AuditBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataroom:infra:AuditBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        kept = pulumi.ResourceOptions(parent=self, protect=True)
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"data room {args.environment}: audit log and CloudTrail encryption",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.from_input(args.account_id).apply(
                lambda account_id: json.dumps(audit_key_policy(account_id, args.trail_arn))
            ),
            opts=kept,
        )
        aws.kms.Alias(f"{name}-key-alias", name=f"alias/dataroom-audit-{args.environment}", target_key_id=self.key.id, opts=child)
        # Signs the audit checkpoints (issue 10): the private half never leaves KMS, so a copy of the
        # broker's disk cannot forge a checkpoint; the broker role may only Sign and GetPublicKey.
        self.signing_key = aws.kms.Key(
            f"{name}-signing-key",
            description=f"data room {args.environment}: audit checkpoint signatures",
            customer_master_key_spec="ECC_NIST_P256",
            key_usage="SIGN_VERIFY",
            deletion_window_in_days=30,
            policy=pulumi.Output.from_input(args.account_id).apply(lambda account_id: json.dumps(audit_signing_key_policy(account_id))),
            opts=kept,
        )
        aws.kms.Alias(
            f"{name}-signing-key-alias", name=f"alias/dataroom-audit-signing-{args.environment}", target_key_id=self.signing_key.id, opts=child
        )
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args.bucket_name,
            object_lock_enabled=True,
            force_destroy=False,
            tags={"dataroom:purpose": "audit"},
            opts=kept,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=self.bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=self.bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=self.key.arn
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        aws.s3.BucketObjectLockConfiguration(
            f"{name}-object-lock",
            bucket=self.bucket.id,
            object_lock_enabled="Enabled",
            rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
                default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(
                    mode="COMPLIANCE", days=args.retention_days
                )
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=self.bucket.id,
            policy=self.bucket.arn.apply(
                lambda arn: json.dumps(audit_bucket_policy(arn, args.trail_arn, args.trail_account_id))
            ),
            # A bucket policy put before the public access block could be judged public and rejected.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]),
        )
        self.register_outputs(
            {"bucket": self.bucket.bucket, "bucket_arn": self.bucket.arn, "key_arn": self.key.arn, "signing_key_arn": self.signing_key.arn}
        )

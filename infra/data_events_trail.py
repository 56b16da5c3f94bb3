"""CloudTrail data events on the granted production prefixes, delivered to the audit bucket."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config import ParquetPrefix
from infra.policy_documents import CLOUDTRAIL_PREFIX


@dataclass(frozen=True)
class DataEventsTrailArgs:
    """The trail lives in the production account (where the objects are) and writes cross-account."""

    trail_name: str
    prefixes: Sequence[ParquetPrefix]
    audit_bucket_name: str
    audit_kms_key_arn: str


def data_event_selectors(prefixes: Sequence[ParquetPrefix]) -> list[aws.cloudtrail.TrailAdvancedEventSelectorArgs]:
    """Every S3 object-level call on the granted prefixes (reads included), nothing else."""
    return [
        aws.cloudtrail.TrailAdvancedEventSelectorArgs(
            name="data-room-parquet-object-access",
            field_selectors=[
                aws.cloudtrail.TrailAdvancedEventSelectorFieldSelectorArgs(field="eventCategory", equals=["Data"]),
                aws.cloudtrail.TrailAdvancedEventSelectorFieldSelectorArgs(
                    field="resources.type", equals=["AWS::S3::Object"]
                ),
                aws.cloudtrail.TrailAdvancedEventSelectorFieldSelectorArgs(
                    field="resources.ARN",
                    starts_withs=sorted({f"arn:aws:s3:::{p.bucket}/{p.prefix}" for p in prefixes}),
                ),
            ],
        )
    ]


class DataEventsTrail(pulumi.ComponentResource):
    """A single-region trail with log file validation, KMS-encrypted, into the Object-Locked bucket.

    Together with the broker's own audit log this gives two independent records of every read:
    the query (who, why, which policy) and the object access (which files, from which session).
    """

    trail: aws.cloudtrail.Trail

    def __init__(self, name: str, args: DataEventsTrailArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataroom:infra:DataEventsTrail", name, None, opts)
        self.trail = aws.cloudtrail.Trail(
            f"{name}-trail",
            name=args.trail_name,
            s3_bucket_name=args.audit_bucket_name,
            s3_key_prefix=CLOUDTRAIL_PREFIX,
            kms_key_id=args.audit_kms_key_arn,
            enable_log_file_validation=True,
            include_global_service_events=False,
            is_multi_region_trail=False,
            advanced_event_selectors=data_event_selectors(args.prefixes),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"trail_arn": self.trail.arn})

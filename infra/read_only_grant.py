"""The production side of the data room: one read-only role the broker may assume."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config import ParquetPrefix
from infra.policy_documents import read_only_permissions_policy, read_only_trust_policy

MAX_SESSION_SECONDS = 3600
"""AWS's minimum for a role's maximum session; the infra policies refuse anything longer."""


@dataclass(frozen=True)
class ReadOnlyGrantArgs:
    """Who may assume (``broker_role_arn`` + ``external_id``) and what they may read (``prefixes``)."""

    role_name: str
    broker_role_arn: str
    external_id: str
    prefixes: Sequence[ParquetPrefix]
    region: str
    data_kms_key_arns: Sequence[str] = ()
    source_vpc_endpoint_ids: Sequence[str] = ()
    max_session_duration_seconds: int = MAX_SESSION_SECONDS

    def __post_init__(self) -> None:
        if not self.prefixes:
            raise ValueError("a read-only grant needs at least one Parquet prefix")
        if not MAX_SESSION_SECONDS <= self.max_session_duration_seconds <= 43200:
            raise ValueError("max session duration must be between 3600 and 43200 seconds")


class ReadOnlyGrant(pulumi.ComponentResource):
    """Role trusted only by the broker role with an ExternalId; Get/List on the prefixes, KMS decrypt.

    The same read-only document is also the role's permissions boundary, so a policy attached
    later (by hand, by another stack) cannot widen what the data room can do.
    """

    role: aws.iam.Role
    boundary: aws.iam.Policy

    def __init__(self, name: str, args: ReadOnlyGrantArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataroom:infra:ReadOnlyGrant", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        permissions = json.dumps(
            read_only_permissions_policy(
                args.prefixes, args.region, args.data_kms_key_arns, args.source_vpc_endpoint_ids
            )
        )
        self.boundary = aws.iam.Policy(
            f"{name}-boundary",
            name=f"{args.role_name}-boundary",
            description="Permissions boundary: the data room can only ever read the granted Parquet prefixes",
            policy=permissions,
            opts=child,
        )
        self.role = aws.iam.Role(
            f"{name}-role",
            name=args.role_name,
            description="Read-only access to production Parquet for the data-room broker",
            assume_role_policy=json.dumps(read_only_trust_policy([args.broker_role_arn], args.external_id)),
            permissions_boundary=self.boundary.arn,
            max_session_duration=args.max_session_duration_seconds,
            force_detach_policies=True,
            opts=child,
        )
        aws.iam.RolePolicy(f"{name}-permissions", role=self.role.id, policy=permissions, opts=child)
        self.register_outputs({"role_arn": self.role.arn})

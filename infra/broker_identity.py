"""The broker's AWS identity in the data-room account: the only holder of production access."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.policy_documents import broker_permissions_policy, broker_trust_policy


@dataclass(frozen=True)
class BrokerIdentityArgs:
    """The broker may assume ``read_only_role_arns`` (in production) and append to the audit bucket."""

    role_name: str
    read_only_role_arns: Sequence[str]
    audit_bucket_arn: pulumi.Input[str]
    audit_kms_key_arn: pulumi.Input[str]


class BrokerIdentity(pulumi.ComponentResource):
    """Broker role (EC2 instance profile or ECS task role) with an inline least-privilege policy.

    Notebook hosts must never get this profile: it is what separates "can run a query through the
    broker" from "can read production".
    """

    role: aws.iam.Role
    instance_profile: aws.iam.InstanceProfile

    def __init__(self, name: str, args: BrokerIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataroom:infra:BrokerIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            f"{name}-role",
            name=args.role_name,
            description="Data-room broker: assumes the production read-only role, writes the audit log",
            assume_role_policy=json.dumps(broker_trust_policy()),
            max_session_duration=3600,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-permissions",
            role=self.role.id,
            policy=pulumi.Output.all(args.audit_bucket_arn, args.audit_kms_key_arn).apply(
                lambda v: json.dumps(broker_permissions_policy(list(args.read_only_role_arns), v[0], v[1]))
            ),
            opts=child,
        )
        self.instance_profile = aws.iam.InstanceProfile(
            f"{name}-profile", name=args.role_name, role=self.role.name, opts=child
        )
        self.register_outputs({"role_arn": self.role.arn, "instance_profile": self.instance_profile.name})

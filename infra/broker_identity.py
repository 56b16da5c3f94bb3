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
    audit_signing_key_arn: pulumi.Input[str] | None = None
    oidc_provider_arn: pulumi.Input[str] | None = None  # the room's EKS: trust only its broker ServiceAccount
    oidc_issuer: pulumi.Input[str] = ""
    namespace: str = ""
    service_account: str = ""


class BrokerIdentity(pulumi.ComponentResource):
    """Broker role with an inline least-privilege policy.

    On the room's EKS cluster the role trusts only the broker's ServiceAccount (IRSA); without a
    cluster it is an EC2 instance profile or ECS task role. Notebook pods and hosts never get it:
    it is what separates "can run a query through the broker" from "can read production".
    """

    role: aws.iam.Role
    instance_profile: aws.iam.InstanceProfile | None

    def __init__(self, name: str, args: BrokerIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataroom:infra:BrokerIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if args.oidc_provider_arn is None:
            trust: pulumi.Input[str] = json.dumps(broker_trust_policy())
        else:
            trust = pulumi.Output.all(args.oidc_provider_arn, args.oidc_issuer).apply(
                lambda v: json.dumps(broker_trust_policy(v[0], v[1], args.namespace, args.service_account))
            )
        self.role = aws.iam.Role(
            f"{name}-role",
            name=args.role_name,
            description="Data-room broker: assumes the production read-only role, writes and signs the audit log",
            assume_role_policy=trust,
            max_session_duration=3600,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-permissions",
            role=self.role.id,
            policy=pulumi.Output.all(args.audit_bucket_arn, args.audit_kms_key_arn, args.audit_signing_key_arn).apply(
                lambda v: json.dumps(broker_permissions_policy(list(args.read_only_role_arns), v[0], v[1], v[2]))
            ),
            opts=child,
        )
        self.instance_profile = (
            aws.iam.InstanceProfile(f"{name}-profile", name=args.role_name, role=self.role.name, opts=child)
            if args.oidc_provider_arn is None
            else None
        )
        self.register_outputs({"role_arn": self.role.arn})

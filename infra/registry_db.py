"""The registry's PostgreSQL (RDS): private, encrypted, its master password kept by Secrets Manager.

RDS generates and rotates the master password in Secrets Manager (``manage_master_user_password``):
nobody types it, and it is not in the stack config. The stack reads it once to put the registry
URL into a Kubernetes Secret (``dataroom-registry``) for the broker, the review service and the
migration Job; Pulumi keeps that value encrypted in its state. Only the cluster's nodes reach
port 5432 (security group), and the NetworkPolicies narrow that to the broker, review and
migration pods.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.room_names import REGISTRY_PORT, REGISTRY_SECRET

DATABASE = "dataroom"
MASTER_USER = "dataroom"


@dataclass(frozen=True)
class RegistryDatabaseArgs:
    environment: str
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[str]]
    client_security_group_id: pulumi.Input[str]  # the cluster's security group (its nodes)
    instance_class: str
    storage_gb: int
    engine_version: str
    namespace: pulumi.Input[str]
    k8s_provider: pulumi.ProviderResource


def registry_url(secret_string: str | None, host: str, port: int) -> str:
    """``postgresql://user:password@host:port/db?sslmode=require`` from the RDS-managed secret's JSON."""
    secret = json.loads(secret_string) if secret_string else {}
    user = urllib.parse.quote(str(secret.get("username", MASTER_USER)), safe="")
    password = urllib.parse.quote(str(secret.get("password", "")), safe="")
    return f"postgresql://{user}:{password}@{host}:{port}/{DATABASE}?sslmode=require"


class RegistryDatabase(pulumi.ComponentResource):
    """RDS PostgreSQL in the private subnets, deletion-protected, storage encrypted, TLS required."""

    instance: aws.rds.Instance
    secret: k8s.core.v1.Secret

    def __init__(self, name: str, args: RegistryDatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataroom:infra:RegistryDatabase", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        subnets = aws.rds.SubnetGroup(f"{name}-subnets", subnet_ids=args.subnet_ids, opts=child)
        group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description="Registry PostgreSQL: only from the room's cluster",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=REGISTRY_PORT, to_port=REGISTRY_PORT, security_groups=[args.client_security_group_id]
                )
            ],
            egress=[],
            opts=child,
        )
        parameters = aws.rds.ParameterGroup(
            f"{name}-params",
            family=f"postgres{args.engine_version}",
            parameters=[aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1")],
            opts=child,
        )
        self.instance = aws.rds.Instance(
            f"{name}-db",
            identifier=f"dataroom-registry-{args.environment}",
            engine="postgres",
            engine_version=args.engine_version,
            instance_class=args.instance_class,
            allocated_storage=args.storage_gb,
            storage_type="gp3",
            storage_encrypted=True,
            db_name=DATABASE,
            username=MASTER_USER,
            manage_master_user_password=True,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[group.id],
            parameter_group_name=parameters.name,
            publicly_accessible=False,
            multi_az=True,
            backup_retention_period=14,
            deletion_protection=True,
            skip_final_snapshot=False,
            final_snapshot_identifier=f"dataroom-registry-{args.environment}-final",
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        secret_arn = self.instance.master_user_secrets.apply(lambda s: s[0].secret_arn if s else "")
        version = aws.secretsmanager.get_secret_version_output(secret_id=secret_arn)
        url = pulumi.Output.all(version.secret_string, self.instance.address, self.instance.port).apply(
            lambda v: registry_url(v[0], v[1] or "", int(v[2] or REGISTRY_PORT))
        )
        self.secret = k8s.core.v1.Secret(
            f"{name}-url",
            metadata={"name": REGISTRY_SECRET, "namespace": args.namespace},
            string_data={"url": pulumi.Output.secret(url)},
            opts=pulumi.ResourceOptions(parent=self, provider=args.k8s_provider),
        )
        self.register_outputs({"address": self.instance.address})

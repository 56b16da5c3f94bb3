"""Build a stack from its configuration: the one entry point for ``pulumi up``, tests and checks.

``build_stack`` takes a validated config object, declares the components, exports the outputs
and returns them, so tests and ``dataroom infra check`` run it under Pulumi's mocks exactly as
the Pulumi engine runs it for real.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.account import DataRoomAccount, DataRoomAccountArgs
from infra.audit_bucket import AuditBucket, AuditBucketArgs
from infra.broker_identity import BrokerIdentity, BrokerIdentityArgs
from infra.cluster import RoomCluster, RoomClusterArgs
from infra.config import DataRoomStackConfig, InfraConfigError, ProductionGrantStackConfig, StackConfig, load_stack_config
from infra.data_events_trail import DataEventsTrail, DataEventsTrailArgs
from infra.hub_values import HubValuesArgs
from infra.jupyterhub import RoomHub, RoomHubArgs
from infra.network import IsolatedNetwork, IsolatedNetworkArgs
from infra.read_only_grant import ReadOnlyGrant, ReadOnlyGrantArgs
from infra.registry_db import RegistryDatabase, RegistryDatabaseArgs
from infra.room_names import BROKER_SERVICE_ACCOUNT, RELEASE
from infra.room_network import RoomNetworkPolicies, RoomNetworkPoliciesArgs
from infra.room_services import RoomServices, RoomServicesArgs
from infra.stack_files import INFRA_DIR

POD_SECURITY_LABELS = {
    "pod-security.kubernetes.io/enforce": "baseline",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}
"""Kubernetes Pod Security admission on the room's namespace: privileged pods are refused outright."""

BROKER_SETTINGS = ("DATAROOM_AWS_ROLE_ARN", "DATAROOM_AWS_EXTERNAL_ID", "DATAROOM_AUDIT_BUCKET", "DATAROOM_AWS_REGION")
"""The broker's environment variables the production-grant stack's ``brokerSettings`` output fills."""


def _catalog_toml(path: str) -> str | None:
    """The room's catalog for its ConfigMap (``room.catalogFile``, relative to ``infra/``), if configured."""
    if not path:
        return None
    file = (INFRA_DIR / path).resolve()
    try:
        return file.read_text()
    except OSError as exc:
        raise InfraConfigError(f"room.catalogFile: cannot read {path} ({exc.strerror})") from exc


def build_data_room_stack(cfg: DataRoomStackConfig) -> dict[str, Any]:
    """The isolated account: network, audit bucket and signing key, broker identity, and the room on
    EKS (cluster, JupyterHub chart, broker and review, NetworkPolicies, registry database). Returns
    the stack outputs."""
    account = DataRoomAccount(
        "data-room", DataRoomAccountArgs(account=cfg.account, region=cfg.region, environment=cfg.environment)
    )
    in_account = pulumi.ResourceOptions(providers={"aws": account.provider})
    network = IsolatedNetwork(
        "network",
        IsolatedNetworkArgs(region=cfg.region, cidr_block=cfg.vpc_cidr, availability_zones=cfg.availability_zones),
        opts=in_account,
    )
    bucket_name = cfg.audit_bucket_name or account.account_id.apply(
        lambda account_id: f"dataroom-audit-{cfg.environment}-{account_id}"
    )
    audit = AuditBucket(
        "audit",
        AuditBucketArgs(
            bucket_name=bucket_name,
            account_id=account.account_id,
            retention_days=cfg.audit_retention_days,
            trail_arn=cfg.trail_arn,
            trail_account_id=cfg.production_account_id,
            environment=cfg.environment,
        ),
        opts=in_account,
    )
    room = cfg.room
    cluster = RoomCluster(
        "room",
        RoomClusterArgs(
            environment=cfg.environment,
            region=cfg.region,
            subnet_ids=network.private_subnet_ids,
            kubernetes_version=room.kubernetes_version,
            node_instance_type=room.node_instance_type,
            node_min=room.node_min,
            node_desired=room.node_desired,
            node_max=room.node_max,
        ),
        opts=in_account,
    )
    broker = BrokerIdentity(
        "broker",
        BrokerIdentityArgs(
            role_name=cfg.broker_role_name,
            read_only_role_arns=[cfg.read_only_role_arn],
            audit_bucket_arn=audit.bucket.arn,
            audit_kms_key_arn=audit.key.arn,
            audit_signing_key_arn=audit.signing_key.arn,
            oidc_provider_arn=cluster.oidc_provider.arn,
            oidc_issuer=cluster.oidc_issuer,
            namespace=room.namespace,
            service_account=BROKER_SERVICE_ACCOUNT,
        ),
        opts=in_account,
    )
    in_cluster = pulumi.ResourceOptions(providers={"aws": account.provider, "kubernetes": cluster.provider})
    namespace = k8s.core.v1.Namespace(
        "room-namespace",
        metadata={"name": room.namespace, "labels": POD_SECURITY_LABELS},
        opts=pulumi.ResourceOptions(provider=cluster.provider),
    )
    in_namespace = pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(depends_on=[namespace]))
    registry = RegistryDatabase(
        "registry",
        RegistryDatabaseArgs(
            environment=cfg.environment,
            vpc_id=network.vpc.id,
            subnet_ids=network.private_subnet_ids,
            client_security_group_id=cluster.cluster.vpc_config.cluster_security_group_id,
            instance_class=room.registry_instance_class,
            storage_gb=room.registry_storage_gb,
            engine_version=room.registry_engine_version,
            namespace=room.namespace,
            k8s_provider=cluster.provider,
        ),
        opts=in_namespace,
    )
    RoomNetworkPolicies("room-network", RoomNetworkPoliciesArgs(namespace=room.namespace, vpc_cidr=cfg.vpc_cidr), opts=in_namespace)
    hub = RoomHub(
        "hub",
        RoomHubArgs(
            namespace=room.namespace,
            chart_version=room.jupyterhub_chart_version,
            values=HubValuesArgs(
                namespace=room.namespace,
                image=room.image,
                hub_image=room.hub_image,
                proxy_image=room.proxy_image,
                cpu_limit=room.singleuser_cpu_limit,
                cpu_guarantee=room.singleuser_cpu_guarantee,
                memory_limit=room.singleuser_memory_limit,
                memory_guarantee=room.singleuser_memory_guarantee,
                authenticator_class=cfg.hub_auth.authenticator,
                authenticator_section=cfg.hub_auth.section,
                authenticator_settings=cfg.hub_auth.settings,
            ),
            oauth_client_secret=cfg.hub_oauth_client_secret,
        ),
        opts=in_namespace,
    )
    RoomServices(
        "room-services",
        RoomServicesArgs(
            namespace=room.namespace,
            image=room.image,
            broker_replicas=room.broker_replicas,
            review_replicas=room.review_replicas,
            broker_role_arn=broker.role.arn,
            read_only_role_arn=cfg.read_only_role_arn,
            region=cfg.region,
            production_region=cfg.production_region,
            audit_bucket=audit.bucket.bucket,
            audit_signing_key_arn=audit.signing_key.arn,
            registry_secret=registry.secret,
            broker_external_id=cfg.broker_external_id,
            catalog_toml=_catalog_toml(room.catalog_file),
        ),
        opts=pulumi.ResourceOptions.merge(in_namespace, pulumi.ResourceOptions(depends_on=[namespace, hub.release])),
    )
    return {
        "kind": cfg.kind,
        "region": cfg.region,
        "accountId": account.account_id,
        "brokerRoleArn": broker.role.arn,
        "auditBucketName": audit.bucket.bucket,
        "auditKmsKeyArn": audit.key.arn,
        "auditSigningKeyArn": audit.signing_key.arn,
        "vpcId": network.vpc.id,
        "privateSubnetIds": network.private_subnet_ids,
        "brokerSecurityGroupId": network.broker_security_group.id,
        "s3GatewayEndpointId": network.s3_gateway_endpoint.id,
        "expectedReadOnlyRoleArn": cfg.read_only_role_arn,
        "clusterName": cluster.cluster.name,
        "clusterEndpoint": cluster.cluster.endpoint,
        "oidcProviderArn": cluster.oidc_provider.arn,
        "roomNamespace": room.namespace,
        "registryAddress": registry.instance.address,
        "hubService": f"{RELEASE}/proxy-public",
    }


def build_production_grant_stack(cfg: ProductionGrantStackConfig) -> dict[str, Any]:
    """The production account's read-only role and data-event trail. Returns the stack outputs."""
    provider = aws.Provider(
        "production",
        region=cfg.region,
        allowed_account_ids=[cfg.production_account_id],
        assume_roles=(
            [aws.ProviderAssumeRoleArgs(role_arn=cfg.deploy_role_arn, session_name=f"dataroom-grant-{cfg.environment}")]
            if cfg.deploy_role_arn
            else None
        ),
        default_tags=aws.ProviderDefaultTagsArgs(
            tags={"dataroom:environment": cfg.environment, "dataroom:purpose": "production-grant"}
        ),
    )
    in_production = pulumi.ResourceOptions(providers={"aws": provider})
    grant = ReadOnlyGrant(
        "read-only",
        ReadOnlyGrantArgs(
            role_name=cfg.read_only_role_name,
            broker_role_arn=cfg.broker_role_arn,
            external_id=cfg.external_id,
            prefixes=cfg.parquet_prefixes,
            region=cfg.region,
            data_kms_key_arns=cfg.data_kms_key_arns,
            source_vpc_endpoint_ids=cfg.source_vpc_endpoint_ids,
        ),
        opts=in_production,
    )
    trail = DataEventsTrail(
        "data-events",
        DataEventsTrailArgs(
            trail_name=cfg.trail_name,
            prefixes=cfg.parquet_prefixes,
            audit_bucket_name=cfg.audit_bucket_name,
            audit_kms_key_arn=cfg.audit_kms_key_arn,
        ),
        opts=in_production,
    )
    external_id = pulumi.Output.secret(cfg.external_id)
    return {
        "kind": cfg.kind,
        "region": cfg.region,
        "readOnlyRoleArn": grant.role.arn,
        "externalId": external_id,
        "trailArn": trail.trail.arn,
        "parquetPrefixes": [p.uri for p in cfg.parquet_prefixes],
        "brokerSettings": pulumi.Output.secret(
            pulumi.Output.all(grant.role.arn, external_id).apply(
                lambda v: dict(zip(BROKER_SETTINGS, (v[0], v[1], cfg.audit_bucket_name, cfg.region), strict=True))
            )
        ),
    }


def build_stack(cfg: StackConfig) -> dict[str, Any]:
    """Declare the stack for ``cfg``, export its outputs and return them."""
    if isinstance(cfg, DataRoomStackConfig):
        outputs = build_data_room_stack(cfg)
    else:
        outputs = build_production_grant_stack(cfg)
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs


def build_from_pulumi_config() -> dict[str, Any]:
    """What ``__main__.py`` runs: read the current stack's config, then build it."""
    return build_stack(load_stack_config())

"""The room's EKS cluster: private control plane in the isolated VPC, managed nodes, IRSA, encrypted secrets.

Why ``pulumi-aws`` (``aws.eks.*``) and not ``pulumi-eks``: ``pulumi-eks`` is a multi-language
*component* implemented in Node.js; its Python SDK only forwards to that plugin, which Pulumi's
mocks cannot run, so neither the tests nor ``dataroom infra check`` could see the resources it
makes. Its conveniences (node role, OIDC provider, kubeconfig) are a few resources here, each
visible to the infra policies: the endpoint flags, the secrets encryption, the node metadata
options.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

EKS_OIDC_THUMBPRINT = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280"
"""Root CA thumbprint of the EKS OIDC issuers (IAM verifies EKS issuers itself; the field is required)."""

NODE_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
)
CONTROL_PLANE_LOGS = ("api", "audit", "authenticator")


@dataclass(frozen=True)
class RoomClusterArgs:
    """Where and how big: the private subnets, the Kubernetes version, the managed node group's size."""

    environment: str
    region: str
    subnet_ids: pulumi.Input[Sequence[str]]
    kubernetes_version: str
    node_instance_type: str
    node_min: int
    node_desired: int
    node_max: int


def _service_trust(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def kubeconfig(cluster_name: str, endpoint: str, ca_data: str, region: str) -> str:
    """A kubeconfig that authenticates with ``aws eks get-token`` (the deployer's own AWS identity)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
            "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
            "current-context": cluster_name,
            "users": [
                {
                    "name": cluster_name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region],
                        }
                    },
                }
            ],
        }
    )


def _field(value: Any, name: str) -> Any:
    """An attribute of a provider output object (a typed object, or a plain dict under mocks)."""
    return value[name] if isinstance(value, dict) else getattr(value, name)


class RoomCluster(pulumi.ComponentResource):
    """EKS with only a private API endpoint, KMS-encrypted secrets, control-plane logs, IRSA.

    Nodes require IMDSv2 with a hop limit of 1, so a pod (one hop further) cannot get instance
    credentials even if a NetworkPolicy were missing: the node role is never a pod's identity.
    """

    cluster: aws.eks.Cluster
    node_group: aws.eks.NodeGroup
    oidc_provider: aws.iam.OpenIdConnectProvider
    oidc_issuer: pulumi.Output[str]
    secrets_key: aws.kms.Key
    provider: k8s.Provider

    def __init__(self, name: str, args: RoomClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataroom:infra:RoomCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster_name = f"dataroom-{args.environment}"
        cluster_role = aws.iam.Role(
            f"{name}-control-plane", assume_role_policy=_service_trust("eks.amazonaws.com"), opts=child
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-control-plane",
            role=cluster_role.name,
            policy_arn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",
            opts=child,
        )
        self.secrets_key = aws.kms.Key(
            f"{name}-secrets-key",
            description=f"data room {args.environment}: EKS secrets envelope encryption",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=child,
        )
        self.cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=cluster_name,
            role_arn=cluster_role.arn,
            version=args.kubernetes_version,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=args.subnet_ids, endpoint_private_access=True, endpoint_public_access=False
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=self.secrets_key.arn), resources=["secrets"]
            ),
            enabled_cluster_log_types=list(CONTROL_PLANE_LOGS),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API", bootstrap_cluster_creator_admin_permissions=True
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[attachment]),
        )
        node_role = aws.iam.Role(f"{name}-nodes", assume_role_policy=_service_trust("ec2.amazonaws.com"), opts=child)
        node_attachments = [
            aws.iam.RolePolicyAttachment(f"{name}-nodes-{arn.rsplit('/', 1)[-1]}", role=node_role.name, policy_arn=arn, opts=child)
            for arn in NODE_POLICIES
        ]
        launch_template = aws.ec2.LaunchTemplate(
            f"{name}-nodes",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(volume_size=50, volume_type="gp3", encrypted="true"),
                )
            ],
            opts=child,
        )
        self.node_group = aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=self.cluster.name,
            node_role_arn=node_role.arn,
            subnet_ids=args.subnet_ids,
            instance_types=[args.node_instance_type],
            ami_type="AL2023_x86_64_STANDARD",
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=args.node_min, desired_size=args.node_desired, max_size=args.node_max
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(id=launch_template.id, version=launch_template.latest_version.apply(str)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=node_attachments),
        )
        self.oidc_issuer = self.cluster.identities.apply(lambda ids: _field(_field(ids[0], "oidcs")[0], "issuer"))
        self.oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=self.oidc_issuer,
            client_id_lists=["sts.amazonaws.com"],
            thumbprint_lists=[EKS_OIDC_THUMBPRINT],
            opts=child,
        )
        config = pulumi.Output.all(self.cluster.name, self.cluster.endpoint, self.cluster.certificate_authority).apply(
            lambda v: kubeconfig(v[0], v[1], _field(v[2], "data"), args.region)
        )
        self.provider = k8s.Provider(
            f"{name}-k8s", kubeconfig=pulumi.Output.secret(config), enable_server_side_apply=True, opts=child
        )
        self.register_outputs(
            {
                "cluster_name": self.cluster.name,
                "endpoint": self.cluster.endpoint,
                "oidc_provider_arn": self.oidc_provider.arn,
            }
        )

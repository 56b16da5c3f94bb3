"""JupyterHub by its official chart (zero-to-jupyterhub) on the room's cluster, version pinned in stack config."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.hub_values import HubValuesArgs, hub_values
from infra.room_names import RELEASE, SINGLEUSER_SERVICE_ACCOUNT

CHART_REPOSITORY = "https://hub.jupyter.org/helm-chart/"
OAUTH_SECRET = "dataroom-hub-oauth"


@dataclass(frozen=True)
class RoomHubArgs:
    namespace: pulumi.Input[str]
    chart_version: str
    values: HubValuesArgs
    oauth_client_secret: pulumi.Input[str] | None = None  # becomes the Secret dataroom-hub-oauth


class RoomHub(pulumi.ComponentResource):
    """The Helm release of the chart with the room's values, and the single-user pods' ServiceAccount.

    That ServiceAccount carries no IAM role annotation and never mounts its token: a notebook
    server has no identity, neither in AWS nor in Kubernetes.
    """

    release: k8s.helm.v3.Release
    values: dict[str, Any]

    def __init__(self, name: str, args: RoomHubArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataroom:infra:RoomHub", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = k8s.core.v1.ServiceAccount(
            f"{name}-singleuser",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=SINGLEUSER_SERVICE_ACCOUNT, namespace=args.namespace),
            automount_service_account_token=False,
            opts=child,
        )
        depends: list[pulumi.Resource] = [account]
        values_args = args.values
        if args.oauth_client_secret is not None:
            depends.append(
                k8s.core.v1.Secret(
                    f"{name}-oauth",
                    metadata=k8s.meta.v1.ObjectMetaArgs(name=OAUTH_SECRET, namespace=args.namespace),
                    string_data={"client_secret": pulumi.Output.secret(args.oauth_client_secret)},
                    opts=child,
                )
            )
            values_args = dataclasses.replace(values_args, client_secret_name=OAUTH_SECRET)
        self.values = hub_values(values_args)
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name=RELEASE,
            chart="jupyterhub",
            version=args.chart_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPOSITORY),
            namespace=args.namespace,
            values=self.values,
            atomic=True,
            cleanup_on_fail=True,
            timeout=900,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )
        self.register_outputs({"release": self.release.name})

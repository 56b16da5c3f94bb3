"""JupyterHub by its official chart (zero-to-jupyterhub) on the room's cluster, version pinned in stack config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.hub_values import HubValuesArgs, hub_values
from infra.room_names import RELEASE, SINGLEUSER_SERVICE_ACCOUNT

CHART_REPOSITORY = "https://hub.jupyter.org/helm-chart/"


@dataclass(frozen=True)
class RoomHubArgs:
    namespace: pulumi.Input[str]
    chart_version: str
    values: HubValuesArgs


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
        self.values = hub_values(args.values)
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
            opts=pulumi.ResourceOptions(parent=self, depends_on=[account]),
        )
        self.register_outputs({"release": self.release.name})

"""The room's NetworkPolicies: what each kind of pod may reach inside the cluster, and nothing else.

* default deny, in and out, for every pod of the namespace (the chart's hub and proxy policies
  then open what those two need);
* single-user servers: in from the hub and the proxy; out to the hub, the proxy, the broker and
  DNS only: no S3, no AWS API, no internet, no instance metadata (169.254.169.254), no registry;
* broker: in from single-user servers, the hub and the proxy; out to the hub, DNS, the registry
  and HTTPS (AWS APIs through the VPC endpoints and S3 through its gateway; the VPC has no other
  route, and the metadata address is excluded);
* review: in from the hub and the proxy; out to the hub, DNS and the registry: no AWS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.room_names import (
    BROKER,
    BROKER_PORT,
    CHART_HUB,
    CHART_PROXY,
    HUB_PORT,
    PROXY_PORT,
    REGISTRY_PORT,
    REVIEW,
    REVIEW_PORT,
    ROLE_LABEL,
    SINGLEUSER,
    SINGLEUSER_PORT,
)

METADATA_CIDR = "169.254.169.254/32"
DNS = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}


def _pods(labels: dict[str, str]) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": dict(labels)}}


def _role(role: str) -> dict[str, Any]:
    return _pods({ROLE_LABEL: role})


def _tcp(port: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port}]


def policy_specs(vpc_cidr: str) -> dict[str, dict[str, Any]]:
    """The NetworkPolicy specs by name (pure data: tests and the infra policies read the same)."""
    to_hub = {"to": [_pods(CHART_HUB)], "ports": _tcp(HUB_PORT)}
    from_hub_and_proxy = [_pods(CHART_HUB), _pods(CHART_PROXY)]
    registry = {"to": [{"ipBlock": {"cidr": vpc_cidr}}], "ports": _tcp(REGISTRY_PORT)}
    return {
        "default-deny": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        "singleuser": {
            "podSelector": {"matchLabels": {ROLE_LABEL: SINGLEUSER}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": from_hub_and_proxy, "ports": _tcp(SINGLEUSER_PORT)}],
            "egress": [
                to_hub,
                {"to": [_pods(CHART_PROXY)], "ports": _tcp(PROXY_PORT)},
                {"to": [_role(BROKER)], "ports": _tcp(BROKER_PORT)},
                DNS,
            ],
        },
        "broker": {
            "podSelector": {"matchLabels": {ROLE_LABEL: BROKER}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [_role(SINGLEUSER), *from_hub_and_proxy], "ports": _tcp(BROKER_PORT)}],
            "egress": [
                to_hub,
                DNS,
                registry,
                {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [METADATA_CIDR]}}], "ports": _tcp(443)},
            ],
        },
        "review": {
            "podSelector": {"matchLabels": {ROLE_LABEL: REVIEW}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": from_hub_and_proxy, "ports": _tcp(REVIEW_PORT)}],
            "egress": [to_hub, DNS, registry],
        },
    }


@dataclass(frozen=True)
class RoomNetworkPoliciesArgs:
    namespace: pulumi.Input[str]
    vpc_cidr: str


class RoomNetworkPolicies(pulumi.ComponentResource):
    """One NetworkPolicy per kind of pod, plus default deny (see the module docstring)."""

    policies: dict[str, k8s.networking.v1.NetworkPolicy]

    def __init__(self, name: str, args: RoomNetworkPoliciesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataroom:infra:RoomNetworkPolicies", name, None, opts)
        self.policies = {
            key: k8s.networking.v1.NetworkPolicy(
                f"{name}-{key}",
                metadata={"name": f"dataroom-{key}", "namespace": args.namespace},
                spec=spec,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for key, spec in policy_specs(args.vpc_cidr).items()
        }
        self.register_outputs({})

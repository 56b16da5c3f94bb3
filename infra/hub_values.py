"""The zero-to-jupyterhub chart values for the room, as a pure function (tests load them into KubeSpawner).

The security of a single-user pod is set in ``hub.config.KubeSpawner``, which the chart hands to
KubeSpawner as is (after its own ``singleuser.*`` mapping, so these win): non-root, all
capabilities dropped, no privilege escalation, no service-account token, a ServiceAccount with
no IAM role, no host paths, CPU and memory limits. The environment rules are the local
spawner's (:mod:`dataroom.hub.spawner`): nothing is kept from the hub's environment and the only
variable added is ``DATAROOM_BROKER_URL``; JupyterHub adds the ``JUPYTERHUB_*`` variables with the
user's own token. The chart's own single-user NetworkPolicy is off: its defaults allow the
internet, so the room declares its own (:mod:`infra.room_network`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dataroom.hub.config import BROKER_URL_ENV, HUB_GROUPS, NO_DOWNLOAD_ARG
from infra.room_names import (
    BROKER,
    BROKER_PORT,
    HUB_ACCESS_LABEL,
    REVIEW,
    REVIEW_PORT,
    ROLE_LABEL,
    SINGLEUSER,
    SINGLEUSER_SERVICE_ACCOUNT,
    broker_url,
    service_url,
)

SINGLEUSER_UID = 1000
SINGLEUSER_GID = 100
DROPPED_CAPABILITIES = ["ALL"]


@dataclass(frozen=True)
class HubValuesArgs:
    namespace: str
    image: str
    hub_image: str
    proxy_image: str
    cpu_limit: float
    cpu_guarantee: float
    memory_limit: str
    memory_guarantee: str
    authenticator_class: str = "generic-oauth"
    authenticator_section: str = "GenericOAuthenticator"
    authenticator_settings: Mapping[str, Any] = field(default_factory=dict)
    client_secret_name: str | None = None  # a Kubernetes Secret with key client_secret (never in the values)


def chart_image(image: str) -> dict[str, str]:
    """z2jh renders ``{{name}}:{{tag}}``; a digest is given as the tag ``sha256:...`` after ``name@``."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return {"name": f"{name}@sha256", "tag": digest.removeprefix("sha256:")}
    name, _, tag = image.rpartition(":")
    return {"name": name, "tag": tag}


def kubespawner_config(args: HubValuesArgs) -> dict[str, Any]:
    """The ``KubeSpawner`` traits (``hub.config.KubeSpawner``) that make a single-user pod."""
    non_root = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    return {
        "namespace": args.namespace,
        "image": args.image,
        "image_pull_policy": "IfNotPresent",
        "cmd": ["jupyterhub-singleuser"],
        # as the local spawner (dataroom.hub.config): the no-download extension on the command line, and
        # no config file in the user's home read, so none can unload it
        "args": [NO_DOWNLOAD_ARG],
        "disable_user_config": True,
        # the server's token may call the broker for its user, as locally (and nothing more)
        "server_token_scopes": ["users:activity!user", "access:servers!server", f"access:services!service={BROKER}"],
        "uid": SINGLEUSER_UID,
        "gid": SINGLEUSER_GID,
        "fs_gid": SINGLEUSER_GID,
        "privileged": False,
        "allow_privilege_escalation": False,
        "container_security_context": {
            **non_root,
            "runAsUser": SINGLEUSER_UID,
            "runAsGroup": SINGLEUSER_GID,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": list(DROPPED_CAPABILITIES)},
        },
        "pod_security_context": {**non_root, "fsGroup": SINGLEUSER_GID},
        "automount_service_account_token": False,
        "service_account": SINGLEUSER_SERVICE_ACCOUNT,
        "cpu_limit": args.cpu_limit,
        "cpu_guarantee": args.cpu_guarantee,
        "mem_limit": args.memory_limit,
        "mem_guarantee": args.memory_guarantee,
        "env_keep": [],
        "environment": {BROKER_URL_ENV: broker_url(args.namespace)},
        "extra_labels": {ROLE_LABEL: SINGLEUSER, HUB_ACCESS_LABEL: "true"},
        "extra_pod_config": {"enableServiceLinks": False},
    }


def authenticator_config(args: HubValuesArgs) -> dict[str, Any]:
    """The identity provider's settings; groups come from it (``manage_groups``) for the room's roles."""
    return {"manage_groups": True, **dict(args.authenticator_settings)}


def hub_values(args: HubValuesArgs) -> dict[str, Any]:
    """The chart values: hub, proxy (cluster-internal), services, roles, single-user pods."""
    closed_egress = {"cloudMetadataServer": False, "dnsPortsCloudMetadataServer": False, "nonPrivateIPs": False}
    return {
        "hub": {
            "image": chart_image(args.hub_image),
            "config": {
                "JupyterHub": {"authenticator_class": args.authenticator_class},
                args.authenticator_section: authenticator_config(args),
                "KubeSpawner": kubespawner_config(args),
            },
            "services": {
                BROKER: {"url": service_url(BROKER, BROKER_PORT, args.namespace), "display": False},
                REVIEW: {"url": service_url(REVIEW, REVIEW_PORT, args.namespace), "oauth_no_confirm": True, "display": True},
            },
            "loadRoles": {
                "dataroom-user": {
                    "description": "Data room users may call the broker; the policy decides each query",
                    "scopes": [f"access:services!service={BROKER}"],
                    "groups": list(HUB_GROUPS),
                },
                "review-access": {
                    "description": "Security may open the review service (which re-checks the group)",
                    "scopes": [f"access:services!service={REVIEW}"],
                    "groups": ["security"],
                },
            },
            "networkPolicy": {"enabled": True, "egressAllowRules": closed_egress},
            # oauthenticator reads its client secret from OAUTH_CLIENT_SECRET: the values stay free of it
            "extraEnv": (
                {"OAUTH_CLIENT_SECRET": {"valueFrom": {"secretKeyRef": {"name": args.client_secret_name, "key": "client_secret"}}}}
                if args.client_secret_name
                else {}
            ),
        },
        "proxy": {
            "service": {"type": "ClusterIP"},  # no load balancer: reach the hub from inside the VPC
            "chp": {"image": chart_image(args.proxy_image), "networkPolicy": {"enabled": True, "egressAllowRules": closed_egress}},
        },
        "singleuser": {
            "image": chart_image(args.image),
            "uid": SINGLEUSER_UID,
            "fsGid": SINGLEUSER_GID,
            "serviceAccountName": SINGLEUSER_SERVICE_ACCOUNT,
            "cloudMetadata": {"blockWithIptables": False},  # a privileged init container; NetworkPolicy and IMDS hop limit do it
            "networkPolicy": {"enabled": False},  # replaced by the room's own (infra.room_network)
            "storage": {"type": "dynamic", "capacity": "10Gi", "extraVolumes": [], "extraVolumeMounts": []},
            "cpu": {"limit": args.cpu_limit, "guarantee": args.cpu_guarantee},
            "memory": {"limit": args.memory_limit, "guarantee": args.memory_guarantee},
        },
        "scheduling": {"userScheduler": {"enabled": False}, "userPlaceholder": {"enabled": False}},
        "prePuller": {"hook": {"enabled": False}, "continuous": {"enabled": False}},
        "cull": {"enabled": True, "timeout": 3600},
        "debug": {"enabled": False},
    }

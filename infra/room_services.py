"""The broker and the review service on the room's cluster, and the registry migration before them.

Both are StatefulSets rather than Deployments: each replica writes its own audit stream
(``DATAROOM_AUDIT_STREAM`` = its pod name, ``dataroom-broker-0``, ...; the review service writes
the registry's decisions) on its own volume, and only a StatefulSet gives every replica a volume
of its own that survives rescheduling (a Deployment's replicas would share one claim). Behind
one Service the replicas are interchangeable. The broker's ServiceAccount is the only one
annotated with an IAM role (IRSA); the review service has none, and neither mounts a Kubernetes
API token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.room_names import (
    BROKER,
    BROKER_PORT,
    BROKER_SERVICE_ACCOUNT,
    HUB_ACCESS_LABEL,
    HUB_PORT,
    HUB_SECRET,
    IRSA_ANNOTATION,
    REGISTRY_SECRET,
    REVIEW,
    REVIEW_PORT,
    REVIEW_SERVICE_ACCOUNT,
    ROLE_LABEL,
    SERVICE_TOKEN_KEY,
)

SERVICE_UID = 10001
HOME = "/var/lib/dataroom"
CATALOG_CONFIG_MAP = "dataroom-catalog"  # key catalog.toml: from room.catalogFile, or created by the operator
BROKER_AWS_SECRET = "dataroom-broker-aws"  # key externalId: from brokerExternalId, or created by the operator
AUDIT_VOLUME_SIZE = "20Gi"


@dataclass(frozen=True)
class RoomServicesArgs:
    namespace: pulumi.Input[str]
    image: str
    broker_replicas: int
    review_replicas: int
    broker_role_arn: pulumi.Input[str]
    read_only_role_arn: str
    region: str
    production_region: str
    audit_bucket: pulumi.Input[str]
    audit_signing_key_arn: pulumi.Input[str]
    registry_secret: pulumi.Resource | None = None
    broker_external_id: str | None = None  # creates the dataroom-broker-aws Secret when given
    catalog_toml: str | None = None  # creates the dataroom-catalog ConfigMap when given


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _service_env(name: str, port: int) -> list[dict[str, Any]]:
    """What the hub gives a hub-managed service, for one it does not start (JupyterHub's service env)."""
    return [
        {"name": "JUPYTERHUB_SERVICE_NAME", "value": name},
        {"name": "JUPYTERHUB_SERVICE_URL", "value": f"http://0.0.0.0:{port}"},
        {"name": "JUPYTERHUB_SERVICE_PREFIX", "value": f"/services/{name}/"},
        {"name": "JUPYTERHUB_API_URL", "value": f"http://hub:{HUB_PORT}/hub/api"},
        {"name": "JUPYTERHUB_CLIENT_ID", "value": f"service-{name}"},
        {"name": "JUPYTERHUB_BASE_URL", "value": "/"},
        _secret_env("JUPYTERHUB_API_TOKEN", HUB_SECRET, SERVICE_TOKEN_KEY.format(name=name)),
    ]


def _container(name: str, image: str, command: list[str], env: list[Any], port: int | None, mounts: list[Any]) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "env": env,
        "volumeMounts": mounts,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": SERVICE_UID,
            "runAsGroup": SERVICE_UID,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
    }
    if port is not None:
        container["ports"] = [{"name": "http", "containerPort": port}]
        container["readinessProbe"] = {"httpGet": {"path": f"/services/{name}/health", "port": port}, "periodSeconds": 10}
    return container


def _pod_spec(service_account: str, containers: list[Any], volumes: list[Any]) -> dict[str, Any]:
    return {
        "serviceAccountName": service_account,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {"runAsNonRoot": True, "fsGroup": SERVICE_UID, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": containers,
        "volumes": volumes,
    }


def _labels(role: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": f"dataroom-{role}", ROLE_LABEL: role, HUB_ACCESS_LABEL: "true"}


CATALOG_VOLUME = {"name": "catalog", "configMap": {"name": CATALOG_CONFIG_MAP}}
CATALOG_MOUNT = {"name": "catalog", "mountPath": "/etc/dataroom", "readOnly": True}
TMP_VOLUME = {"name": "tmp", "emptyDir": {}}
HOME_VOLUME = {"name": "home", "emptyDir": {}}  # the room's working files (cache); the audit has its own claim
HOME_MOUNT = {"name": "home", "mountPath": HOME}
TMP_MOUNT = {"name": "tmp", "mountPath": "/tmp"}
COMMON_ENV = [
    {"name": "DATAROOM_HOME", "value": HOME},
    {"name": "DATAROOM_CATALOG_PATH", "value": "/etc/dataroom/catalog.toml"},
    _secret_env("DATAROOM_REGISTRY_URL", REGISTRY_SECRET, "url"),
    {"name": "PYTHONUNBUFFERED", "value": "1"},
]


class RoomServices(pulumi.ComponentResource):
    """Broker (IRSA) and review (no AWS) as StatefulSets behind their Services, and the migration Job."""

    broker: k8s.apps.v1.StatefulSet
    review: k8s.apps.v1.StatefulSet
    broker_account: k8s.core.v1.ServiceAccount
    review_account: k8s.core.v1.ServiceAccount
    migration: k8s.batch.v1.Job

    def __init__(self, name: str, args: RoomServicesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataroom:infra:RoomServices", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = args.namespace
        self.broker_account = k8s.core.v1.ServiceAccount(
            f"{name}-broker-account",
            metadata={"name": BROKER_SERVICE_ACCOUNT, "namespace": ns, "annotations": {IRSA_ANNOTATION: args.broker_role_arn}},
            automount_service_account_token=False,
            opts=child,
        )
        self.review_account = k8s.core.v1.ServiceAccount(
            f"{name}-review-account",
            metadata={"name": REVIEW_SERVICE_ACCOUNT, "namespace": ns},
            automount_service_account_token=False,
            opts=child,
        )
        after_secret: list[pulumi.Resource] = [args.registry_secret] if args.registry_secret is not None else []
        if args.catalog_toml is not None:
            after_secret.append(
                k8s.core.v1.ConfigMap(
                    f"{name}-catalog",
                    metadata={"name": CATALOG_CONFIG_MAP, "namespace": ns},
                    data={"catalog.toml": args.catalog_toml},
                    opts=child,
                )
            )
        if args.broker_external_id is not None:
            after_secret.append(
                k8s.core.v1.Secret(
                    f"{name}-broker-aws",
                    metadata={"name": BROKER_AWS_SECRET, "namespace": ns},
                    string_data={"externalId": pulumi.Output.secret(args.broker_external_id)},
                    opts=child,
                )
            )
        self.migration = k8s.batch.v1.Job(
            f"{name}-registry-migrate",
            metadata={"name": "dataroom-registry-migrate", "namespace": ns, "labels": {ROLE_LABEL: "migrate"}},
            spec={
                "backoffLimit": 3,
                "template": {
                    "metadata": {"labels": {ROLE_LABEL: "migrate"}},
                    "spec": {
                        **_pod_spec(
                            REVIEW_SERVICE_ACCOUNT,
                            [_container("migrate", args.image, ["dataroom", "db", "upgrade"], COMMON_ENV, None, [TMP_MOUNT])],
                            [TMP_VOLUME],
                        ),
                        "restartPolicy": "OnFailure",
                    },
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.review_account, *after_secret]),
        )
        broker_env = [
            *COMMON_ENV,
            *_service_env(BROKER, BROKER_PORT),
            {"name": "DATAROOM_AUDIT_KMS_KEY_ID", "value": args.audit_signing_key_arn},
            {"name": "DATAROOM_AUDIT_BUCKET", "value": args.audit_bucket},
            {"name": "DATAROOM_AWS_REGION", "value": args.production_region},
            {"name": "AWS_REGION", "value": args.region},
            {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"},
            {"name": "DATAROOM_AWS_ROLE_ARN", "value": args.read_only_role_arn},
            _secret_env("DATAROOM_AWS_EXTERNAL_ID", BROKER_AWS_SECRET, "externalId"),
        ]
        self.broker = self._replicas(
            name, BROKER, BROKER_PORT, BROKER_SERVICE_ACCOUNT, ["python", "-m", "dataroom.broker"], broker_env,
            args, args.broker_replicas, depends_on=[self.migration, self.broker_account],
        )
        self.review = self._replicas(
            name, REVIEW, REVIEW_PORT, REVIEW_SERVICE_ACCOUNT, ["python", "-m", "dataroom.review"],
            [*COMMON_ENV, *_service_env(REVIEW, REVIEW_PORT)],
            args, args.review_replicas, depends_on=[self.migration, self.review_account],
        )
        self.register_outputs({})

    def _replicas(
        self, name: str, role: str, port: int, account: str, command: list[str], env: list[Any],
        args: RoomServicesArgs, replicas: int, depends_on: list[pulumi.Resource],
    ) -> k8s.apps.v1.StatefulSet:
        """``replicas`` pods behind one Service, each with its own audit stream on its own volume."""
        child = pulumi.ResourceOptions(parent=self)
        labels = _labels(role)
        pods = f"dataroom-{role}-pods"
        k8s.core.v1.Service(
            f"{name}-{role}-pods",
            metadata={"name": pods, "namespace": args.namespace},
            spec={"clusterIP": "None", "selector": labels, "ports": [{"name": "http", "port": port}]},
            opts=child,
        )
        k8s.core.v1.Service(
            f"{name}-{role}-service",
            metadata={"name": f"dataroom-{role}", "namespace": args.namespace},
            spec={"type": "ClusterIP", "selector": labels, "ports": [{"name": "http", "port": port, "targetPort": port}]},
            opts=child,
        )
        stream = {"name": "DATAROOM_AUDIT_STREAM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
        mounts = [HOME_MOUNT, {"name": "audit", "mountPath": f"{HOME}/audit"}, CATALOG_MOUNT, TMP_MOUNT]
        return k8s.apps.v1.StatefulSet(
            f"{name}-{role}",
            metadata={"name": f"dataroom-{role}", "namespace": args.namespace, "labels": labels},
            spec={
                "serviceName": pods,
                "replicas": replicas,
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": _pod_spec(
                        account,
                        [_container(role, args.image, command, [*env, stream], port, mounts)],
                        [HOME_VOLUME, CATALOG_VOLUME, TMP_VOLUME],
                    ),
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "audit"},
                        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": AUDIT_VOLUME_SIZE}}},
                    }
                ],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )

"""Names, labels and ports the room's Kubernetes pieces share (chart values, Deployments, NetworkPolicies).

One place, so that a NetworkPolicy's selector and the pod it is meant to select cannot drift apart.
"""

from __future__ import annotations

RELEASE = "jupyterhub"  # Helm release name; the chart names its hub Service ``hub`` and proxy ``proxy-public``
ROLE_LABEL = "dataroom.io/role"
SINGLEUSER, BROKER, REVIEW = "singleuser", "broker", "review"
HUB_ACCESS_LABEL = "hub.jupyter.org/network-access-hub"  # the chart's hub NetworkPolicy admits pods with it
CHART_HUB = {"app": "jupyterhub", "component": "hub"}
CHART_PROXY = {"app": "jupyterhub", "component": "proxy"}

BROKER_PORT = 8765  # dataroom.hub.config.HubOptions.broker_port
REVIEW_PORT = 8766  # dataroom.review.server.DEFAULT_PORT
HUB_PORT = 8081
PROXY_PORT = 8000
SINGLEUSER_PORT = 8888
REGISTRY_PORT = 5432

BROKER_SERVICE_ACCOUNT = "dataroom-broker"
REVIEW_SERVICE_ACCOUNT = "dataroom-review"
SINGLEUSER_SERVICE_ACCOUNT = "dataroom-singleuser"
REGISTRY_SECRET = "dataroom-registry"  # key ``url``: the registry's PostgreSQL URL
HUB_SECRET = "hub"  # the chart's secret; it generates each service's API token under this key:
SERVICE_TOKEN_KEY = "hub.services.{name}.apiToken"

IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"


def service_url(name: str, port: int, namespace: str) -> str:
    """In-cluster URL of a room Service (``dataroom-<name>``)."""
    return f"http://dataroom-{name}.{namespace}.svc.cluster.local:{port}"


def broker_url(namespace: str) -> str:
    """What single-user servers get as ``DATAROOM_BROKER_URL`` (the broker, straight, not via the proxy)."""
    return f"{service_url(BROKER, BROKER_PORT, namespace)}/services/{BROKER}/"

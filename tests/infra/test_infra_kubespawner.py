"""The chart's KubeSpawner settings, as the stack deploys them, loaded into a real KubeSpawner.

``get_pod_manifest()`` renders the pod a user's server would run in, without a cluster (the
Kubernetes client is configured from a kubeconfig that points nowhere and is never called).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import kubespawner
import pytest

from dataroom.hub.config import NO_DOWNLOAD_ARG
from infra.mock_run import MockRun
from infra.room_names import BROKER, ROLE_LABEL, broker_url


USER_TOKEN = "the-users-own-hub-token"
HUB_SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAHUBSECRET",
    "AWS_SECRET_ACCESS_KEY": "hub-secret-key",
    "DATAROOM_HOME": "/srv/dataroom",
    "DATAROOM_REGISTRY_URL": "postgresql://dataroom:pw@db/dataroom",
    "JUPYTERHUB_CRYPT_KEY": "hub-crypt-key",
}
# What a server may see besides DATAROOM_BROKER_URL: JupyterHub's own variables (the user's token
# among them) and KubeSpawner's informational ones.
KUBESPAWNER_INFO = {"CPU_LIMIT", "CPU_GUARANTEE", "MEM_LIMIT", "MEM_GUARANTEE", "JUPYTER_IMAGE", "JUPYTER_IMAGE_SPEC", "JPY_API_TOKEN"}


@pytest.fixture(scope="module")
def pod(data_room_run: MockRun, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from jupyterhub.objects import Hub, Server
    from kubernetes_asyncio.client import ApiClient
    from traitlets.config import Config

    kubeconfig = tmp_path_factory.mktemp("kube") / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: nowhere\n"
        "clusters: [{name: nowhere, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "contexts: [{name: nowhere, context: {cluster: nowhere, user: nowhere}}]\n"
        "users: [{name: nowhere, user: {token: unused}}]\n"
    )
    release = data_room_run.one("kubernetes:helm.sh/v3:Release")
    config = Config({"KubeSpawner": release.props["values"]["hub"]["config"]["KubeSpawner"]})
    with pytest.MonkeyPatch.context() as env:
        # kubernetes_asyncio reads $KUBECONFIG once, at import: point its default at the file instead
        env.setattr("kubernetes_asyncio.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
        for name, value in HUB_SECRETS.items():  # the hub's own environment must not reach a server
            env.setenv(name, value)
        user = Mock(spec=["name", "id", "url", "escaped_name", "server", "settings", "authenticator", "spawners"])
        user.name, user.id, user.url, user.escaped_name = "alice", 1, "/user/alice/", "alice"
        user.server, user.settings, user.authenticator = Server(), {}, None

        async def render() -> dict[str, Any]:  # KubeSpawner makes its (unused) API client on a running loop
            spawner = kubespawner.KubeSpawner(_mock=True, user=user, hub=Hub(), config=config)
            spawner.api_token = USER_TOKEN
            return ApiClient().sanitize_for_serialization(await spawner.get_pod_manifest())

        return asyncio.run(render())


def _env(pod: dict[str, Any]) -> dict[str, str]:
    (container,) = pod["spec"]["containers"]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_pod_runs_as_non_root_without_privileges_or_capabilities(pod: dict[str, Any]) -> None:
    (container,) = pod["spec"]["containers"]
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True and context["runAsUser"] == 1000 and context["runAsUser"] != 0
    assert context["allowPrivilegeEscalation"] is False and context["privileged"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["resources"]["limits"]["cpu"] and container["resources"]["limits"]["memory"]


def test_pod_has_no_service_account_token_no_iam_role_no_host_paths(pod: dict[str, Any], data_room_run: MockRun) -> None:
    assert pod["spec"]["automountServiceAccountToken"] is False
    account_name = pod["spec"]["serviceAccountName"]
    (account,) = [a for a in data_room_run.of_type("kubernetes:core/v1:ServiceAccount") if a.props["metadata"]["name"] == account_name]
    assert "annotations" not in account.props["metadata"] and account.props["automountServiceAccountToken"] is False
    assert all("hostPath" not in v for v in pod["spec"].get("volumes") or [])
    (container,) = pod["spec"]["containers"]
    assert not [m for m in container.get("volumeMounts") or [] if "token" in m["mountPath"] or "serviceaccount" in m["mountPath"]]


def test_environment_is_the_broker_url_and_the_hubs_own_variables(pod: dict[str, Any]) -> None:
    env = _env(pod)
    assert env["DATAROOM_BROKER_URL"] == broker_url("dataroom")
    assert env["JUPYTERHUB_API_TOKEN"] == USER_TOKEN  # the user's own token, as with the local spawner
    unexpected = {n for n in env if n != "DATAROOM_BROKER_URL" and not n.startswith("JUPYTERHUB_") and n not in KUBESPAWNER_INFO}
    assert unexpected == set()
    leaked = {n for n, v in env.items() if n in HUB_SECRETS or (v and any(s in v for s in HUB_SECRETS.values()))}
    assert leaked == set()
    assert not [n for n in env if n.startswith("AWS_")]


def test_network_policy_selects_the_pod_and_lets_it_reach_the_broker(pod: dict[str, Any], data_room_run: MockRun) -> None:
    labels = pod["metadata"]["labels"]
    assert labels[ROLE_LABEL] == "singleuser"
    policies = {r.props["metadata"]["name"]: r.props["spec"] for r in data_room_run.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    selecting = {name for name, spec in policies.items() if spec["podSelector"].get("matchLabels", {}).items() <= labels.items()}
    assert selecting == {"dataroom-default-deny", "dataroom-singleuser"}
    broker_ingress = policies["dataroom-broker"]["ingress"][0]["from"]
    assert {"podSelector": {"matchLabels": {ROLE_LABEL: "singleuser"}}} in broker_ingress
    assert any(peer.get("podSelector", {}).get("matchLabels") == {ROLE_LABEL: BROKER} for rule in policies["dataroom-singleuser"]["egress"] for peer in rule["to"])


def test_kubespawner_is_pinned_with_the_jupyterhub_it_runs_beside() -> None:
    from importlib.metadata import version

    assert version("jupyterhub-kubespawner") == "7.1.0"
    assert version("jupyterhub") == "6.1.1"
    assert Path(kubespawner.__file__).exists()


def test_server_loads_the_no_download_extension_and_ignores_user_config(pod: dict[str, Any]) -> None:
    """As the local spawner: the extension on the command line, and no config file in the home read."""
    (container,) = pod["spec"]["containers"]
    assert container["args"][:1] == ["jupyterhub-singleuser"] and NO_DOWNLOAD_ARG in container["args"]
    assert _env(pod)["JUPYTERHUB_DISABLE_USER_CONFIG"] == "1"


def test_kubespawner_keeps_the_local_spawners_rules(data_room_run: MockRun, demo_template: Path, tmp_path: Path) -> None:
    """The same token scopes, extension, user-config rule and environment names as `dataroom up`'s spawner."""
    from dataroom.catalog import load_catalog
    from dataroom.hub.config import HubOptions, build_hub_config

    local = build_hub_config(HubOptions(state_dir=tmp_path, home=demo_template, demo_password="x"), load_catalog(demo_template / "catalog.toml"))
    local_spawner = local["DataRoomSpawner"]
    ks = data_room_run.one("kubernetes:helm.sh/v3:Release").props["values"]["hub"]["config"]["KubeSpawner"]
    assert ks["server_token_scopes"] == local_spawner["server_token_scopes"]
    assert NO_DOWNLOAD_ARG in ks["args"] and NO_DOWNLOAD_ARG in local_spawner["args"]
    assert ks["disable_user_config"] is local_spawner["disable_user_config"] is True
    assert set(ks["environment"]) == set(local_spawner["environment"]) == {"DATAROOM_BROKER_URL"}

"""The room on EKS in the data-room stack (Pulumi mocks: EKS cannot run here), and its checks.

The stack is the real program; every broken variant is its resource set with one targeted
change, the way a careless edit would make it, and `dataroom infra check`'s policies must name it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from dataroom.infra_check import InfraCheckResult, evaluate_resources
from infra.config import InfraConfigError, RoomConfig
from infra.hub_values import HubValuesArgs, hub_values
from infra.mock_run import MOCK_SECRET_PASSWORD, MockRun
from infra.network import INTERFACE_ENDPOINT_SERVICES
from infra.room_names import BROKER_SERVICE_ACCOUNT, IRSA_ANNOTATION, ROLE_LABEL
from tests.infra.infra_support import data_room_config, mutated

ROOM = data_room_config().room


def _check(resources: list[dict[str, Any]]) -> InfraCheckResult:
    return evaluate_resources(resources, stack="dev", kind="data-room")


def _messages(resources: list[dict[str, Any]]) -> set[str]:
    return {v.message for v in _check(resources).violations}


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_cluster_is_private_encrypted_with_irsa_and_sized_by_config(data_room_run: MockRun) -> None:
    cluster = data_room_run.one("aws:eks/cluster:Cluster")
    assert cluster.props["vpcConfig"]["endpointPublicAccess"] is False
    assert cluster.props["vpcConfig"]["endpointPrivateAccess"] is True
    assert cluster.props["vpcConfig"]["subnetIds"] == data_room_run.outputs["privateSubnetIds"]
    assert cluster.props["encryptionConfig"] == {"resources": ["secrets"], "provider": {"keyArn": data_room_run.named("room-secrets-key").arn}}
    assert cluster.props["version"] == ROOM.kubernetes_version
    nodes = data_room_run.one("aws:eks/nodeGroup:NodeGroup")
    assert nodes.props["subnetIds"] == data_room_run.outputs["privateSubnetIds"]
    assert nodes.props["scalingConfig"] == {"minSize": ROOM.node_min, "desiredSize": ROOM.node_desired, "maxSize": ROOM.node_max}
    template = data_room_run.one("aws:ec2/launchTemplate:LaunchTemplate")
    assert template.props["metadataOptions"]["httpTokens"] == "required"
    assert template.props["metadataOptions"]["httpPutResponseHopLimit"] == 1  # pods cannot reach the node's credentials
    oidc = data_room_run.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert oidc.props["url"].startswith("https://oidc.eks.eu-west-1.amazonaws.com/id/")
    assert oidc.props["clientIdLists"] == ["sts.amazonaws.com"]
    assert data_room_run.outputs["oidcProviderArn"] == oidc.arn


def test_network_gains_the_endpoints_private_nodes_need(data_room_run: MockRun) -> None:
    services = {r.props["serviceName"].split("eu-west-1.", 1)[1] for r in data_room_run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert {"s3", "sts", "logs", "ecr.api", "ecr.dkr", "ec2", "kms"} <= services
    assert set(INTERFACE_ENDPOINT_SERVICES) | {"s3"} == services


def test_helm_release_is_the_pinned_chart_with_the_room_values(data_room_run: MockRun) -> None:
    release = data_room_run.one("kubernetes:helm.sh/v3:Release")
    assert release.props["chart"] == "jupyterhub"
    assert release.props["version"] == ROOM.jupyterhub_chart_version
    assert release.props["repositoryOpts"] == {"repo": "https://hub.jupyter.org/helm-chart/"}
    expected = hub_values(
        HubValuesArgs(
            namespace=ROOM.namespace, image=ROOM.image, hub_image=ROOM.hub_image, proxy_image=ROOM.proxy_image,
            cpu_limit=ROOM.singleuser_cpu_limit, cpu_guarantee=ROOM.singleuser_cpu_guarantee,
            memory_limit=ROOM.singleuser_memory_limit, memory_guarantee=ROOM.singleuser_memory_guarantee,
        )
    )
    assert json.loads(json.dumps(release.props["values"])) == json.loads(json.dumps(expected))
    values = release.props["values"]
    assert values["proxy"]["service"]["type"] == "ClusterIP"
    assert values["hub"]["services"]["broker"]["url"] == "http://dataroom-broker.dataroom.svc.cluster.local:8765"
    assert values["hub"]["services"]["review"]["url"] == "http://dataroom-review.dataroom.svc.cluster.local:8766"
    assert values["singleuser"]["networkPolicy"] == {"enabled": False}


def test_broker_replicas_run_with_irsa_and_the_signing_key(data_room_run: MockRun) -> None:
    broker = data_room_run.named("room-services-broker")
    assert broker.type == "kubernetes:apps/v1:StatefulSet"
    spec = broker.props["spec"]
    assert spec["replicas"] == ROOM.broker_replicas
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == BROKER_SERVICE_ACCOUNT and pod["automountServiceAccountToken"] is False
    account = data_room_run.named("room-services-broker-account")
    assert account.props["metadata"]["annotations"] == {IRSA_ANNOTATION: data_room_run.outputs["brokerRoleArn"]}
    (container,) = pod["containers"]
    assert container["image"] == ROOM.image
    assert container["securityContext"]["runAsNonRoot"] is True and container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    env = _env(container)
    assert env["DATAROOM_AUDIT_KMS_KEY_ID"] == data_room_run.outputs["auditSigningKeyArn"]
    assert env["DATAROOM_AUDIT_STREAM"] == {"fieldRef": {"fieldPath": "metadata.name"}}  # one stream per replica
    assert env["DATAROOM_REGISTRY_URL"] == {"secretKeyRef": {"name": "dataroom-registry", "key": "url"}}
    assert {"name": "audit", "mountPath": "/var/lib/dataroom/audit"} in container["volumeMounts"]
    assert spec["volumeClaimTemplates"][0]["metadata"]["name"] == "audit"  # its own volume per replica
    role = data_room_run.named("broker-role")
    (statement,) = json.loads(role.props["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"Federated": data_room_run.outputs["oidcProviderArn"]}
    issuer = data_room_run.outputs["oidcProviderArn"].split("oidc-provider/", 1)[1]
    assert statement["Condition"]["StringEquals"][f"{issuer}:sub"] == "system:serviceaccount:dataroom:dataroom-broker"
    permissions = json.loads(data_room_run.named("broker-permissions").props["policy"])["Statement"]
    sign = [s for s in permissions if s["Sid"] == "SignAuditCheckpoints"]
    assert sign == [{"Sid": "SignAuditCheckpoints", "Effect": "Allow", "Action": ["kms:Sign", "kms:GetPublicKey"],
                     "Resource": data_room_run.outputs["auditSigningKeyArn"]}]
    assert not data_room_run.of_type("aws:iam/instanceProfile:InstanceProfile")  # no EC2 path to the broker role


def test_review_has_no_aws_identity_and_no_aws_egress(data_room_run: MockRun) -> None:
    review = data_room_run.named("room-services-review")
    assert review.type == "kubernetes:apps/v1:StatefulSet"
    assert review.props["spec"]["replicas"] == ROOM.review_replicas
    assert review.props["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "audit"  # registry decisions: its own stream
    account = data_room_run.named("room-services-review-account")
    assert IRSA_ANNOTATION not in account.props["metadata"].get("annotations", {})
    (container,) = review.props["spec"]["template"]["spec"]["containers"]
    assert not [name for name in _env(container) if name.startswith(("AWS_", "DATAROOM_AWS", "DATAROOM_AUDIT_KMS"))]
    policy = data_room_run.named("room-network-review").props["spec"]
    assert all("ipBlock" not in peer or peer["ipBlock"]["cidr"] == "10.42.0.0/16" for rule in policy["egress"] for peer in rule["to"])
    assert all(port["port"] != 443 for rule in policy["egress"] for port in rule["ports"])


def test_registry_database_is_private_encrypted_with_a_managed_password(data_room_run: MockRun) -> None:
    db = data_room_run.one("aws:rds/instance:Instance")
    assert db.props["publiclyAccessible"] is False and db.props["storageEncrypted"] is True
    assert db.props["manageMasterUserPassword"] is True and "password" not in db.props
    assert db.props["deletionProtection"] is True
    group = data_room_run.named("registry-sg")
    assert [(r["fromPort"], r.get("cidrBlocks")) for r in group.props["ingress"]] == [(5432, None)]
    secret = data_room_run.named("registry-url")
    assert secret.props["stringData"] == "[secret]"  # recorded for the checks without the password
    assert MOCK_SECRET_PASSWORD not in json.dumps(data_room_run.policy_input())
    job = data_room_run.one("kubernetes:batch/v1:Job")
    assert job.props["spec"]["template"]["spec"]["containers"][0]["command"] == ["dataroom", "db", "upgrade"]


def test_network_policies_deny_by_default_and_confine_single_user_pods(data_room_run: MockRun) -> None:
    policies = {r.props["metadata"]["name"]: r.props["spec"] for r in data_room_run.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    assert policies["dataroom-default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    singleuser = policies["dataroom-singleuser"]
    assert singleuser["podSelector"] == {"matchLabels": {ROLE_LABEL: "singleuser"}}
    peers = [peer for rule in singleuser["egress"] for peer in rule["to"]]
    assert all("ipBlock" not in peer for peer in peers)  # no address: no S3, internet or 169.254.169.254
    broker_https = [peer for rule in policies["dataroom-broker"]["egress"] for peer in rule["to"] if "ipBlock" in peer]
    assert {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]} in [p["ipBlock"] for p in broker_https]


def test_the_room_as_built_passes_every_infra_policy(data_room_run: MockRun) -> None:
    assert _check(data_room_run.policy_input()).violations == ()


# -- broken variants: each fails `dataroom infra check` with its message ---------------------------
def _kubespawner(props: dict[str, Any]) -> dict[str, Any]:
    return props["values"]["hub"]["config"]["KubeSpawner"]


def test_single_user_pod_with_a_token_fails(data_room_run: MockRun) -> None:
    broken = mutated(data_room_run.policy_input(), "hub-release", lambda p: _kubespawner(p).update(automount_service_account_token=True))
    assert _messages(broken) == {
        'JupyterHub release "hub-release": single-user pods would mount a Kubernetes service-account token; '
        "set hub.config.KubeSpawner.automount_service_account_token false"
    }


def test_single_user_pods_given_the_broker_role_fail(data_room_run: MockRun) -> None:
    role = data_room_run.outputs["brokerRoleArn"]
    broken = mutated(data_room_run.policy_input(), "hub-singleuser", lambda p: p["metadata"].update(annotations={IRSA_ANNOTATION: role}))
    messages = _messages(broken)
    assert f'JupyterHub release "hub-release": single-user pods run as ServiceAccount "dataroom-singleuser", which carries IAM role {role}; notebook servers have no AWS identity' in messages
    assert any("no broker workload runs as it" in m for m in messages)


def test_single_user_pods_with_aws_credentials_in_their_environment_fail(data_room_run: MockRun) -> None:
    broken = mutated(data_room_run.policy_input(), "hub-release", lambda p: _kubespawner(p)["environment"].update(AWS_ACCESS_KEY_ID="AKIA..."))
    assert _messages(broken) == {
        'JupyterHub release "hub-release": single-user pods get AWS_ACCESS_KEY_ID; only DATAROOM_BROKER_URL (and JupyterHub\'s own variables) reach a server'
    }


def test_public_endpoint_fails(data_room_run: MockRun) -> None:
    broken = mutated(data_room_run.policy_input(), "room-eks", lambda p: p["vpcConfig"].update(endpointPublicAccess=True))
    assert _messages(broken) == {
        'EKS cluster "room-eks" has a public API endpoint; set endpointPublicAccess false: the room\'s cluster is reached from inside its VPC only'
    }


def test_broker_without_irsa_fails(data_room_run: MockRun) -> None:
    broken = mutated(data_room_run.policy_input(), "room-services-broker-account", lambda p: p["metadata"].pop("annotations"))
    assert _messages(broken) == {
        'broker workload "room-services-broker" runs as ServiceAccount "dataroom-broker" without an IAM role '
        "(eks.amazonaws.com/role-arn): bind the broker role by IRSA"
    }


def test_review_given_the_broker_role_fails(data_room_run: MockRun) -> None:
    role = data_room_run.outputs["brokerRoleArn"]
    broken = mutated(data_room_run.policy_input(), "room-services-review-account", lambda p: p["metadata"].update(annotations={IRSA_ANNOTATION: role}))
    assert f'workload "room-services-review" runs as ServiceAccount "dataroom-review", which carries IAM role {role}; only the broker\'s pods have AWS access' in _messages(broken)


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ({}, "allows egress to every destination (a rule without 'to')"),
        ({"to": [{"ipBlock": {"cidr": "52.216.0.0/15"}}], "ports": [{"port": 443}]}, "allows egress to addresses 52.216.0.0/15"),
        ({"to": [{"namespaceSelector": {}}]}, "allows egress to every pod of every namespace (an empty namespaceSelector without podSelector)"),
    ],
)
def test_egress_open_network_policy_fails(data_room_run: MockRun, rule: dict[str, Any], reason: str) -> None:
    broken = mutated(data_room_run.policy_input(), "room-network-singleuser", lambda p: p["spec"]["egress"].append(rule))
    assert _messages(broken) == {
        f'NetworkPolicy "room-network-singleuser" {reason} from single-user pods; they may reach only the hub, the proxy, '
        "the broker and DNS (no S3, internet or instance metadata)"
    }


def test_metadata_reachable_from_the_broker_fails(data_room_run: MockRun) -> None:
    def open_metadata(props: dict[str, Any]) -> None:
        for rule in props["spec"]["egress"]:
            for peer in rule["to"]:
                if "ipBlock" in peer and peer["ipBlock"]["cidr"] == "0.0.0.0/0":
                    peer["ipBlock"].pop("except")

    broken = mutated(data_room_run.policy_input(), "room-network-broker", open_metadata)
    assert _messages(broken) == {
        'NetworkPolicy "room-network-broker" allows egress to 0.0.0.0/0 without excepting the instance metadata address 169.254.169.254/32'
    }


def test_single_user_pods_without_any_egress_policy_fail(data_room_run: MockRun) -> None:
    """Without its own policy a single-user pod is still denied by default-deny; without both, it is open."""
    without_own = [r for r in data_room_run.policy_input() if r["name"] != "room-network-singleuser"]
    assert _messages(without_own) == set()
    broken = [r for r in without_own if r["name"] != "room-network-default-deny"]
    assert _messages(broken) == {
        'JupyterHub release "hub-release": no NetworkPolicy restricts the egress of its single-user pods; they could reach S3, the internet or instance metadata'
    }


def test_broker_role_that_can_do_more_with_the_signing_key_fails(data_room_run: MockRun) -> None:
    def widen(props: dict[str, Any]) -> None:
        doc = json.loads(props["policy"])
        for statement in doc["Statement"]:
            if statement["Sid"] == "SignAuditCheckpoints":
                statement["Action"] = ["kms:Sign", "kms:GetPublicKey", "kms:ScheduleKeyDeletion"]
        props["policy"] = json.dumps(doc)

    broken = mutated(data_room_run.policy_input(), "broker-permissions", widen)
    assert _messages(broken) == {
        'inline policy "broker-permissions" allows KMS actions other than kms:Sign and kms:GetPublicKey on the audit '
        'signing key "audit-signing-key"; the broker may only sign with it'
    }


def test_unpinned_broker_image_fails(data_room_run: MockRun) -> None:
    image = ROOM.image.rsplit(":", 1)[0] + ":latest"
    broken = mutated(data_room_run.policy_input(), "room-services-broker", lambda p: p["spec"]["template"]["spec"]["containers"][0].update(image=image))
    assert _messages(broken) == {
        f'workload "room-services-broker" runs image {image}, which is not pinned: use a tag other than latest, or a digest, from the stack config'
    }


# -- room configuration -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"image": "222222222222.dkr.ecr.eu-west-1.amazonaws.com/dataroom:latest"}, "room.image"),
        ({"image": "222222222222.dkr.ecr.eu-west-1.amazonaws.com/dataroom"}, "must be pinned"),
        ({"hub_image": "quay.io/jupyterhub/k8s-hub"}, "room.hubImage"),
        ({"jupyterhub_chart_version": "4.x"}, "jupyterhubChartVersion"),
        ({"node_min": 3, "node_desired": 2}, "nodeMin <= nodeDesired"),
        ({"broker_replicas": 0}, "brokerReplicas"),
        ({"singleuser_memory_limit": "lots"}, "singleuserMemoryLimit"),
    ],
)
def test_bad_room_config_is_refused_naming_the_key(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InfraConfigError, match=message):
        RoomConfig(**overrides)


def test_images_default_to_the_account_ecr_and_digests_are_accepted() -> None:
    digest = "sha256:" + "ab" * 32
    assert ROOM.image == "222222222222.dkr.ecr.eu-west-1.amazonaws.com/dataroom:0.1.0"
    assert RoomConfig(image=f"registry.example:5000/team/dataroom@{digest}").image.endswith(digest)


def test_room_keys_from_pulumi_config_reach_the_cluster(tmp_path) -> None:
    """`dataroom:room` and `dataroom:brokerExternalId` as an operator sets them in Pulumi.<stack>.yaml."""
    from infra.mock_run import run_under_mocks
    from infra.program import build_from_pulumi_config

    catalog = tmp_path / "catalog.toml"
    catalog.write_text('[users.alice]\ngroups = ["data-scientists"]\n')
    digest = "sha256:" + "cd" * 32
    config = {
        "aws:region": "eu-west-1",
        "dataroom:kind": "data-room",
        "dataroom:account": json.dumps({"id": "222222222222"}),
        "dataroom:productionAccountId": "111111111111",
        "dataroom:brokerExternalId": "external-id-from-the-grant-stack",
        "dataroom:room": json.dumps({"image": f"222222222222.dkr.ecr.eu-west-1.amazonaws.com/dataroom@{digest}", "brokerReplicas": 3, "catalogFile": str(catalog)}),
        "dataroom:hubAuth": json.dumps({"authenticator": "azuread", "settings": {"client_id": "room-app", "tenant_id": "t-1", "allowed_groups": ["data-scientists", "security"]}}),
        "dataroom:hubOAuthClientSecret": "oauth-client-secret-value",
    }
    secrets = ["dataroom:brokerExternalId", "dataroom:hubOAuthClientSecret"]
    run = run_under_mocks(build_from_pulumi_config, stack="dev", config=config, secret_keys=secrets)
    hub_config = run.one("kubernetes:helm.sh/v3:Release").props["values"]["hub"]["config"]
    assert hub_config["JupyterHub"] == {"authenticator_class": "azuread"}
    assert hub_config["AzureAdOAuthenticator"] == {
        "manage_groups": True, "client_id": "room-app", "tenant_id": "t-1",
        "allowed_groups": ["data-scientists", "security"],
    }
    release = run.one("kubernetes:helm.sh/v3:Release")
    assert release.props["values"]["hub"]["extraEnv"] == {
        "OAUTH_CLIENT_SECRET": {"valueFrom": {"secretKeyRef": {"name": "dataroom-hub-oauth", "key": "client_secret"}}}
    }
    assert run.named("hub-oauth").props["stringData"] == "[secret]"
    assert "oauth-client-secret-value" not in json.dumps(run.policy_input())
    broker = run.named("room-services-broker")
    assert broker.props["spec"]["replicas"] == 3
    assert broker.props["spec"]["template"]["spec"]["containers"][0]["image"].endswith(digest)
    assert run.named("room-services-catalog").props["data"] == {"catalog.toml": catalog.read_text()}
    assert run.named("room-services-broker-aws").props["stringData"] == "[secret]"
    assert "external-id-from-the-grant-stack" not in json.dumps(run.policy_input())
    assert _check(run.policy_input()).violations == ()


def test_unknown_room_key_and_missing_catalog_are_refused() -> None:
    from infra.mock_run import run_under_mocks
    from infra.program import build_from_pulumi_config

    base = {
        "aws:region": "eu-west-1",
        "dataroom:kind": "data-room",
        "dataroom:account": json.dumps({"id": "222222222222"}),
        "dataroom:productionAccountId": "111111111111",
    }
    with pytest.raises(InfraConfigError, match=r"room: unknown keys \['brokerReplica'\]"):
        run_under_mocks(build_from_pulumi_config, config={**base, "dataroom:room": json.dumps({"brokerReplica": 3})})
    with pytest.raises(InfraConfigError, match="room.catalogFile: cannot read no-such-catalog.toml"):
        run_under_mocks(build_from_pulumi_config, config={**base, "dataroom:room": json.dumps({"catalogFile": "no-such-catalog.toml"})})


@pytest.mark.parametrize(
    ("hub_auth", "message"),
    [
        ({"authenticator": "dummy"}, "hubAuth.authenticator: 'dummy' must be one of"),
        ({"authenticator": "github", "settings": {"client_secret": "x"}}, "dataroom:hubOAuthClientSecret"),
        ({"authenticator": "github", "settings": {"KubeSpawner": {}}}, "not an authenticator setting name"),
    ],
)
def test_bad_hub_auth_is_refused(hub_auth: dict[str, Any], message: str) -> None:
    from infra.config import _hub_auth

    with pytest.raises(InfraConfigError, match=message):
        _hub_auth(hub_auth)


def test_chart_values_hidden_from_the_checks_fail_closed(data_room_run: MockRun) -> None:
    """A secret inside the values makes Pulumi hide them all; the checks must not pass what they cannot see."""
    broken = mutated(data_room_run.policy_input(), "hub-release", lambda p: p.update(values="[secret]"))
    messages = _messages(broken)
    assert any("would mount a Kubernetes service-account token" in m for m in messages)
    assert any("single-user pods run as root" in m for m in messages)


def test_single_user_servers_without_the_no_download_extension_fail(data_room_run: MockRun) -> None:
    broken = mutated(data_room_run.policy_input(), "hub-release", lambda p: _kubespawner(p).update(args=[], disable_user_config=False))
    assert _messages(broken) == {
        'JupyterHub release "hub-release": single-user servers do not load the no-download extension (hub.config.KubeSpawner.args)',
        'JupyterHub release "hub-release": single-user servers read config files from the user\'s home, which could unload the no-download extension; set disable_user_config true',
    }

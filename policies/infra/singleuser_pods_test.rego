package dataroom.infra.singleuser_pods_test

import data.dataroom.infra.singleuser_pods
import rego.v1

su_spawner := {
	"automount_service_account_token": false,
	"service_account": "dataroom-singleuser",
	"uid": 1000,
	"privileged": false,
	"allow_privilege_escalation": false,
	"container_security_context": {"capabilities": {"drop": ["ALL"]}},
	"cpu_limit": 2,
	"mem_limit": "4G",
	"env_keep": [],
	"environment": {"DATAROOM_BROKER_URL": "http://broker/"},
	"args": ["--ServerApp.jpserver_extensions=dataroom.hub.no_download=True"],
	"disable_user_config": true,
}

su_release(ks, singleuser) := {"type": "kubernetes:helm.sh/v3:Release", "name": "hub-release", "id": "r", "arn": "", "props": {"chart": "jupyterhub", "values": {"hub": {"config": {"KubeSpawner": ks}}, "singleuser": singleuser}}}

su_good_singleuser := {"networkPolicy": {"enabled": false}, "storage": {"extraVolumes": []}}

su_account(annotations) := {"type": "kubernetes:core/v1:ServiceAccount", "name": "hub-singleuser", "id": "sa", "arn": "", "props": {"metadata": {"name": "dataroom-singleuser", "annotations": annotations}}}

su_req(resources) := {"stack": {"name": "dev", "kind": "data-room"}, "resources": resources}

su_messages(resources) := {m.message | some m in singleuser_pods.violations(su_req(resources))}

test_allow_locked_down_pods if {
	su_messages([su_release(su_spawner, su_good_singleuser), su_account({})]) == set()
}

test_deny_service_account_token if {
	su_messages([su_release(object.union(su_spawner, {"automount_service_account_token": true}), su_good_singleuser)]) == {`JupyterHub release "hub-release": single-user pods would mount a Kubernetes service-account token; set hub.config.KubeSpawner.automount_service_account_token false`}
}

test_deny_iam_role_on_the_singleuser_account if {
	su_messages([su_release(su_spawner, su_good_singleuser), su_account({"eks.amazonaws.com/role-arn": "arn:aws:iam::2:role/dataroom-broker-dev"})]) == {`JupyterHub release "hub-release": single-user pods run as ServiceAccount "dataroom-singleuser", which carries IAM role arn:aws:iam::2:role/dataroom-broker-dev; notebook servers have no AWS identity`}
}

test_deny_root_privileges_capabilities if {
	ks := object.union(su_spawner, {"uid": 0, "privileged": true, "allow_privilege_escalation": true, "container_security_context": {"capabilities": {"add": ["NET_ADMIN"]}}})
	found := su_messages([su_release(ks, su_good_singleuser)])
	count(found) == 5
}

test_deny_host_paths_and_missing_limits if {
	ks := object.remove(object.union(su_spawner, {"volumes": [{"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}]}), ["mem_limit"])
	found := su_messages([su_release(ks, su_good_singleuser)])
	found == {
		`JupyterHub release "hub-release": single-user pods mount host path /var/run/docker.sock; a notebook server sees nothing of its node`,
		`JupyterHub release "hub-release": single-user pods have no mem_limit; one notebook could starve the node the broker runs on`,
	}
}

test_deny_extra_environment_and_kept_hub_environment if {
	ks := object.union(su_spawner, {"environment": {"DATAROOM_BROKER_URL": "x", "AWS_ROLE_ARN": "arn"}, "env_keep": ["AWS_SECRET_ACCESS_KEY"]})
	count(su_messages([su_release(ks, su_good_singleuser)])) == 2
}

test_deny_chart_network_policy_left_on if {
	su_messages([su_release(su_spawner, {"storage": {}})]) == {`JupyterHub release "hub-release": the chart's single-user NetworkPolicy is on (its defaults allow the internet); set singleuser.networkPolicy.enabled false, the room declares its own`}
}

test_deny_data_room_without_hub if {
	su_messages([]) == {"data-room stack deploys no JupyterHub release (chart jupyterhub)"}
}

test_deny_servers_without_the_no_download_extension if {
	ks := object.union(object.remove(su_spawner, ["args"]), {"disable_user_config": false})
	su_messages([su_release(ks, su_good_singleuser)]) == {
		`JupyterHub release "hub-release": single-user servers do not load the no-download extension (hub.config.KubeSpawner.args)`,
		`JupyterHub release "hub-release": single-user servers read config files from the user's home, which could unload the no-download extension; set disable_user_config true`,
	}
}

package dataroom.infra.pod_network_test

import data.dataroom.infra.pod_network
import rego.v1

pn_release := {"type": "kubernetes:helm.sh/v3:Release", "name": "hub-release", "id": "r", "arn": "", "props": {"chart": "jupyterhub", "values": {"hub": {"config": {"KubeSpawner": {"extra_labels": {"dataroom.io/role": "singleuser"}}}}}}}

pn_policy(egress) := {"type": "kubernetes:networking.k8s.io/v1:NetworkPolicy", "name": "room-network-singleuser", "id": "np", "arn": "", "props": {"spec": {"podSelector": {"matchLabels": {"dataroom.io/role": "singleuser"}}, "policyTypes": ["Ingress", "Egress"], "egress": egress}}}

pn_to_broker := {"to": [{"podSelector": {"matchLabels": {"dataroom.io/role": "broker"}}}], "ports": [{"port": 8765}]}

pn_req(resources) := {"stack": {"name": "dev", "kind": "data-room"}, "resources": resources}

pn_messages(resources) := {m.message | some m in pod_network.violations(pn_req(resources))}

test_allow_egress_to_pods_only if {
	pn_messages([pn_release, pn_policy([pn_to_broker])]) == set()
}

test_deny_egress_open_to_everything if {
	pn_messages([pn_release, pn_policy([pn_to_broker, {}])]) == {`NetworkPolicy "room-network-singleuser" allows egress to every destination (a rule without 'to') from single-user pods; they may reach only the hub, the proxy, the broker and DNS (no S3, internet or instance metadata)`}
}

test_deny_egress_by_address if {
	found := pn_messages([pn_release, pn_policy([{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}])])
	`NetworkPolicy "room-network-singleuser" allows egress to addresses 0.0.0.0/0 from single-user pods; they may reach only the hub, the proxy, the broker and DNS (no S3, internet or instance metadata)` in found
	`NetworkPolicy "room-network-singleuser" allows egress to 0.0.0.0/0 without excepting the instance metadata address 169.254.169.254/32` in found
}

test_deny_a_second_policy_that_opens_egress_for_every_pod if {
	every_pod := {"type": "kubernetes:networking.k8s.io/v1:NetworkPolicy", "name": "allow-all", "id": "np2", "arn": "", "props": {"spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"namespaceSelector": {}}]}]}}}
	count(pn_messages([pn_release, pn_policy([pn_to_broker]), every_pod])) == 1
}

test_deny_missing_singleuser_policy if {
	count(pn_messages([pn_release])) == 1
}

test_allow_broker_https_that_excepts_metadata if {
	broker := {"type": "kubernetes:networking.k8s.io/v1:NetworkPolicy", "name": "broker", "id": "np3", "arn": "", "props": {"spec": {"podSelector": {"matchLabels": {"dataroom.io/role": "broker"}}, "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}}]}]}}}
	pn_messages([pn_release, pn_policy([pn_to_broker]), broker]) == set()
}

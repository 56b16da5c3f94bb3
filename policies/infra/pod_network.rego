package dataroom.infra.pod_network

import data.dataroom.infra.kubernetes_lib as k
import data.dataroom.infra.lib
import rego.v1

metadata_cidr := "169.254.169.254/32"

# NetworkPolicies that govern the egress of the single-user pods of some JupyterHub release.
singleuser_policies(resources) := [p |
	some release in k.hub_releases(resources)
	some p in k.network_policies(resources)
	k.selects(p, k.singleuser_labels(release))
	k.governs_egress(p)
]

# Why an egress rule opens more than pods of the cluster ("" when it does not).
open_egress(rule) := "allows egress to every destination (a rule without 'to')" if {
	count(object.get(rule, "to", [])) == 0
}

open_egress(rule) := sprintf("allows egress to addresses %s", [peer.ipBlock.cidr]) if {
	some peer in object.get(rule, "to", [])
	peer.ipBlock
}

open_egress(rule) := "allows egress to every pod of every namespace (an empty namespaceSelector without podSelector)" if {
	some peer in object.get(rule, "to", [])
	object.get(peer, "namespaceSelector", null) == {}
	not peer.podSelector
}

singleuser_egress_violations(resources) := {lib.violation("pod_network", p, msg) |
	some p in singleuser_policies(resources)
	some rule in object.get(k.np_spec(p), "egress", [])
	reason := open_egress(rule)
	msg := sprintf("NetworkPolicy \"%s\" %s from single-user pods; they may reach only the hub, the proxy, the broker and DNS (no S3, internet or instance metadata)", [p.name, reason])
}

missing_violations(resources) := {lib.violation("pod_network", r, msg) |
	some r in k.hub_releases(resources)
	count(singleuser_policies(resources)) == 0
	msg := sprintf("JupyterHub release \"%s\": no NetworkPolicy restricts the egress of its single-user pods; they could reach S3, the internet or instance metadata", [r.name])
}

metadata_violations(resources) := {lib.violation("pod_network", p, msg) |
	some p in k.network_policies(resources)
	some rule in object.get(k.np_spec(p), "egress", [])
	some peer in object.get(rule, "to", [])
	peer.ipBlock.cidr in {"0.0.0.0/0", "169.254.0.0/16"}
	not metadata_cidr in object.get(peer.ipBlock, "except", [])
	msg := sprintf("NetworkPolicy \"%s\" allows egress to %s without excepting the instance metadata address %s", [p.name, peer.ipBlock.cidr, metadata_cidr])
}

# METADATA
# title: Single-user pods reach only the hub, the proxy and the broker
# description: >-
#   Some NetworkPolicy governs the egress of the single-user pods of each JupyterHub release, and
#   no policy selecting them allows egress by address (ipBlock), to everything (no 'to'), or to
#   every namespace; no policy opens egress to the instance metadata address.
violations(req) := (singleuser_egress_violations(req.resources) | missing_violations(req.resources)) | metadata_violations(req.resources)

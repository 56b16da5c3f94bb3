package dataroom.infra.workload_identity

import data.dataroom.infra.kubernetes_lib as k
import data.dataroom.infra.lib
import rego.v1

account_of(resources, workload) := [a |
	name := object.get(k.pod_spec(workload), "serviceAccountName", "default")
	some a in k.account_named(resources, name)
]

is_broker(workload) if k.pod_labels(workload)[k.role_label] == "broker"

broker_without_irsa(resources) := {lib.violation("workload_identity", w, msg) |
	some w in k.workloads(resources)
	is_broker(w)
	name := k.pod_spec(w).serviceAccountName
	not any_irsa(account_of(resources, w))
	msg := sprintf("broker workload \"%s\" runs as ServiceAccount \"%s\" without an IAM role (eks.amazonaws.com/role-arn): bind the broker role by IRSA", [w.name, name])
} | {lib.violation("workload_identity", w, msg) |
	some w in k.workloads(resources)
	is_broker(w)
	not k.pod_spec(w).serviceAccountName
	msg := sprintf("broker workload \"%s\" runs as the namespace's default ServiceAccount, without an IAM role: bind the broker role by IRSA", [w.name])
}

any_irsa(accounts) if {
	some a in accounts
	k.has_irsa(a)
}

non_broker_with_irsa(resources) := {lib.violation("workload_identity", w, msg) |
	some w in k.workloads(resources)
	not is_broker(w)
	some a in account_of(resources, w)
	k.has_irsa(a)
	msg := sprintf("workload \"%s\" runs as ServiceAccount \"%s\", which carries IAM role %s; only the broker's pods have AWS access", [w.name, k.metadata(a).name, k.irsa_role(a)])
}

# An annotated ServiceAccount no broker workload uses is an identity waiting for a pod.
unused_irsa(resources) := {lib.violation("workload_identity", a, msg) |
	some a in k.service_accounts(resources)
	k.has_irsa(a)
	not used_by_broker(resources, k.metadata(a).name)
	msg := sprintf("ServiceAccount \"%s\" carries IAM role %s but no broker workload runs as it; only the broker's ServiceAccount carries the broker role", [k.metadata(a).name, k.irsa_role(a)])
}

used_by_broker(resources, name) if {
	some w in k.workloads(resources)
	is_broker(w)
	object.get(k.pod_spec(w), "serviceAccountName", "default") == name
}

token_violations(resources) := {lib.violation("workload_identity", w, msg) |
	some w in k.workloads(resources)
	object.get(k.pod_spec(w), "automountServiceAccountToken", null) != false
	msg := sprintf("workload \"%s\" mounts a Kubernetes API token; the room's services never call the Kubernetes API (automountServiceAccountToken false)", [w.name])
}

# METADATA
# title: Only the broker's ServiceAccount carries an IAM role
# description: >-
#   Broker workloads run as a ServiceAccount bound to an IAM role by IRSA; no other workload's
#   ServiceAccount carries one, no annotated ServiceAccount is left unused, and no room workload
#   mounts a Kubernetes API token.
violations(req) := ((broker_without_irsa(req.resources) | non_broker_with_irsa(req.resources)) | unused_irsa(req.resources)) | token_violations(req.resources)

# METADATA
# title: Kubernetes helpers for the infra policies
# description: >-
#   Read the room's Kubernetes resources as Pulumi declares them: workloads and their pod
#   templates, ServiceAccounts and their IRSA annotation, the JupyterHub chart's KubeSpawner
#   settings, NetworkPolicies and the pods they select.
package dataroom.infra.kubernetes_lib

import data.dataroom.infra.lib
import rego.v1

irsa_annotation := "eks.amazonaws.com/role-arn"

role_label := "dataroom.io/role"

workload_types := {"kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:batch/v1:Job"}

workloads(resources) := [r | some r in resources; r.type in workload_types]

pod_spec(workload) := object.get(object.get(object.get(workload.props, "spec", {}), "template", {}), "spec", {})

pod_labels(workload) := object.get(object.get(object.get(object.get(workload.props, "spec", {}), "template", {}), "metadata", {}), "labels", {})

service_accounts(resources) := lib.of_type(resources, "kubernetes:core/v1:ServiceAccount")

metadata(r) := object.get(r.props, "metadata", {})

annotations(r) := object.get(metadata(r), "annotations", {})

# The IAM role a ServiceAccount carries ("" when none).
irsa_role(account) := object.get(annotations(account), irsa_annotation, "")

has_irsa(account) if lib.non_empty_string(irsa_role(account))

account_named(resources, name) := [a | some a in service_accounts(resources); metadata(a).name == name]

# The JupyterHub chart releases and their KubeSpawner settings.
hub_releases(resources) := [r |
	some r in lib.of_type(resources, "kubernetes:helm.sh/v3:Release")
	lib.prop(r, "chart") == "jupyterhub"
]

# The release's values; values hidden from the checks (a secret inside makes Pulumi hide them all)
# read as empty, so every single-user check fails closed.
values(release) := v if {
	v := object.get(release.props, "values", {})
	is_object(v)
}

values(release) := {} if not is_object(object.get(release.props, "values", {}))

kubespawner(release) := object.get(object.get(object.get(values(release), "hub", {}), "config", {}), "KubeSpawner", {})

singleuser_values(release) := object.get(values(release), "singleuser", {})

# Labels a single-user pod gets from KubeSpawner (extra_labels plus KubeSpawner's own).
singleuser_labels(release) := object.union(
	{"app": "jupyterhub", "component": "singleuser-server"},
	object.get(kubespawner(release), "extra_labels", {}),
)

network_policies(resources) := lib.of_type(resources, "kubernetes:networking.k8s.io/v1:NetworkPolicy")

np_spec(policy) := object.get(policy.props, "spec", {})

# Whether a NetworkPolicy's podSelector selects pods with `labels` (matchLabels only).
selects(policy, labels) if {
	selector := object.get(np_spec(policy), "podSelector", {})
	count(object.get(selector, "matchExpressions", [])) == 0
	match := object.get(selector, "matchLabels", {})
	mismatched := [key | some key in object.keys(match); object.get(labels, key, null) != match[key]]
	count(mismatched) == 0
}

governs_egress(policy) if "Egress" in object.get(np_spec(policy), "policyTypes", [])

package dataroom.infra.kubernetes_lib_test

import data.dataroom.infra.kubernetes_lib
import rego.v1

test_selects_by_match_labels if {
	policy := {"type": "kubernetes:networking.k8s.io/v1:NetworkPolicy", "name": "np", "props": {"spec": {"podSelector": {"matchLabels": {"dataroom.io/role": "singleuser"}}}}}
	kubernetes_lib.selects(policy, {"dataroom.io/role": "singleuser", "app": "jupyterhub"})
	not kubernetes_lib.selects(policy, {"dataroom.io/role": "broker"})
}

test_empty_selector_selects_every_pod if {
	policy := {"type": "kubernetes:networking.k8s.io/v1:NetworkPolicy", "name": "np", "props": {"spec": {"podSelector": {}}}}
	kubernetes_lib.selects(policy, {"anything": "x"})
}

test_irsa_role_of_a_service_account if {
	with_role := {"type": "kubernetes:core/v1:ServiceAccount", "name": "sa", "props": {"metadata": {"name": "b", "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/b"}}}}
	without := {"type": "kubernetes:core/v1:ServiceAccount", "name": "sa2", "props": {"metadata": {"name": "r"}}}
	kubernetes_lib.has_irsa(with_role)
	not kubernetes_lib.has_irsa(without)
}

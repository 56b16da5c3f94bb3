package dataroom.infra.workload_identity_test

import data.dataroom.infra.workload_identity
import rego.v1

# (Fixtures are constants: regopy 1.5.2 renders strings bound through function parameters with
# their quotes in sprintf, which would make the expected messages differ.)
wi_broker := {"type": "kubernetes:apps/v1:StatefulSet", "name": "broker", "id": "broker", "arn": "", "props": {"spec": {"template": {"metadata": {"labels": {"dataroom.io/role": "broker"}}, "spec": {"serviceAccountName": "dataroom-broker", "automountServiceAccountToken": false}}}}}

wi_review := {"type": "kubernetes:apps/v1:Deployment", "name": "review", "id": "review", "arn": "", "props": {"spec": {"template": {"metadata": {"labels": {"dataroom.io/role": "review"}}, "spec": {"serviceAccountName": "dataroom-review", "automountServiceAccountToken": false}}}}}

wi_broker_account := {"type": "kubernetes:core/v1:ServiceAccount", "name": "sa-broker", "id": "sa-broker", "arn": "", "props": {"metadata": {"name": "dataroom-broker", "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::2:role/dataroom-broker-dev"}}}}

wi_broker_account_plain := {"type": "kubernetes:core/v1:ServiceAccount", "name": "sa-broker", "id": "sa-broker", "arn": "", "props": {"metadata": {"name": "dataroom-broker"}}}

wi_review_account := {"type": "kubernetes:core/v1:ServiceAccount", "name": "sa-review", "id": "sa-review", "arn": "", "props": {"metadata": {"name": "dataroom-review"}}}

wi_review_account_with_role := {"type": "kubernetes:core/v1:ServiceAccount", "name": "sa-review", "id": "sa-review", "arn": "", "props": {"metadata": {"name": "dataroom-review", "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::2:role/dataroom-broker-dev"}}}}

wi_messages(resources) := {m.message | some m in workload_identity.violations({"stack": {"name": "dev", "kind": "data-room"}, "resources": resources})}

test_allow_broker_with_irsa_and_review_without if {
	wi_messages([wi_broker, wi_broker_account, wi_review, wi_review_account]) == set()
}

test_deny_broker_without_irsa if {
	wi_messages([wi_broker, wi_broker_account_plain]) == {`broker workload "broker" runs as ServiceAccount "dataroom-broker" without an IAM role (eks.amazonaws.com/role-arn): bind the broker role by IRSA`}
}

test_deny_review_with_the_broker_role if {
	found := wi_messages([wi_broker, wi_broker_account, wi_review, wi_review_account_with_role])
	found == {
		`workload "review" runs as ServiceAccount "dataroom-review", which carries IAM role arn:aws:iam::2:role/dataroom-broker-dev; only the broker's pods have AWS access`,
		`ServiceAccount "dataroom-review" carries IAM role arn:aws:iam::2:role/dataroom-broker-dev but no broker workload runs as it; only the broker's ServiceAccount carries the broker role`,
	}
}

test_deny_token_mount if {
	w := json.patch(wi_review, [{"op": "replace", "path": "/props/spec/template/spec/automountServiceAccountToken", "value": true}])
	wi_messages([w, wi_review_account]) == {`workload "review" mounts a Kubernetes API token; the room's services never call the Kubernetes API (automountServiceAccountToken false)`}
}

test_deny_broker_on_the_default_service_account if {
	w := json.patch(wi_broker, [{"op": "remove", "path": "/props/spec/template/spec/serviceAccountName"}])
	wi_messages([w]) == {`broker workload "broker" runs as the namespace's default ServiceAccount, without an IAM role: bind the broker role by IRSA`}
}

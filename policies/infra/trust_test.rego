package dataroom.infra.trust_test

import data.dataroom.infra.trust
import rego.v1

trust_fixture_statement := {
	"Effect": "Allow",
	"Principal": {"AWS": ["arn:aws:iam::222222222222:role/dataroom-broker-dev"]},
	"Action": "sts:AssumeRole",
	"Condition": {"StringEquals": {"sts:ExternalId": "external-id-1"}},
}

trust_fixture_role(statement, props) := {"type": "aws:iam/role:Role", "name": "grant-role", "id": "ro", "arn": "arn:aws:iam::111111111111:role/ro", "props": object.union(
	{"name": "ro", "assumeRolePolicy": json.marshal({"Version": "2012-10-17", "Statement": [statement]}), "maxSessionDuration": 3600},
	props,
)}

trust_fixture_req(role) := {"stack": {"name": "t", "kind": "production-grant"}, "resources": [role]}

trust_fixture_violation(message) := {"policy": "trust", "resource": "grant-role", "type": "aws:iam/role:Role", "message": message}

test_allow_broker_role_with_external_id if {
	trust.violations(trust_fixture_req(trust_fixture_role(trust_fixture_statement, {}))) == set()
}

test_deny_account_root_principal if {
	statement := object.union(trust_fixture_statement, {"Principal": {"AWS": "arn:aws:iam::222222222222:root"}})
	expected := trust_fixture_violation(`cross-account grant role "ro" trusts AWS principal "arn:aws:iam::222222222222:root"; trust only the data-room broker role's ARN (arn:aws:iam::<account>:role/<name>), never an account root, a user, a service or a federation`)
	trust.violations(trust_fixture_req(trust_fixture_role(statement, {}))) == {expected}
}

test_deny_service_principal_next_to_the_broker if {
	statement := object.union(trust_fixture_statement, {"Principal": {"AWS": "arn:aws:iam::222222222222:role/dataroom-broker-dev", "Service": "ec2.amazonaws.com"}})
	expected := trust_fixture_violation(`cross-account grant role "ro" trusts Service principal "ec2.amazonaws.com"; trust only the data-room broker role's ARN (arn:aws:iam::<account>:role/<name>), never an account root, a user, a service or a federation`)
	trust.violations(trust_fixture_req(trust_fixture_role(statement, {}))) == {expected}
}

test_deny_missing_external_id if {
	statement := object.remove(trust_fixture_statement, ["Condition"])
	expected := trust_fixture_violation(`cross-account grant role "ro" can be assumed without an ExternalId; add Condition StringEquals sts:ExternalId to its trust policy`)
	trust.violations(trust_fixture_req(trust_fixture_role(statement, {}))) == {expected}
}

test_deny_wildcard_external_id if {
	statement := object.union(trust_fixture_statement, {"Condition": {"StringEquals": {"sts:ExternalId": "*"}}})
	expected := trust_fixture_violation(`cross-account grant role "ro" can be assumed without an ExternalId; add Condition StringEquals sts:ExternalId to its trust policy`)
	trust.violations(trust_fixture_req(trust_fixture_role(statement, {}))) == {expected}
}

test_deny_other_trust_actions if {
	statement := object.union(trust_fixture_statement, {"Action": ["sts:AssumeRole", "sts:*"]})
	expected := trust_fixture_violation(`cross-account grant role "ro" trust policy allows "sts:*"; it may allow only sts:AssumeRole`)
	trust.violations(trust_fixture_req(trust_fixture_role(statement, {}))) == {expected}
}

test_deny_long_sessions if {
	expected := trust_fixture_violation(`cross-account grant role "ro" allows sessions of 43200 seconds; at most 3600 (one hour) is allowed`)
	trust.violations(trust_fixture_req(trust_fixture_role(trust_fixture_statement, {"maxSessionDuration": 43200}))) == {expected}
}

test_allow_star_principal_left_to_the_principals_policy if {
	statement := object.union(trust_fixture_statement, {"Principal": "*"})
	trust.violations(trust_fixture_req(trust_fixture_role(statement, {}))) == set()
}

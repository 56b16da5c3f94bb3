package dataroom.infra.trust

import data.dataroom.infra.lib
import rego.v1

max_session_seconds := 3600

role_arn_pattern := `^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$`

role_name(role) := object.get(role.props, "name", role.name)

trust_statements(role) := [s |
	some s in lib.statements(lib.document(lib.prop(role, "assumeRolePolicy")))
	s.Effect == "Allow"
]

principal_violations(resources) := {lib.violation("trust", role, msg) |
	some role in lib.grant_roles(resources)
	some statement in trust_statements(role)
	some principal in lib.principals(statement)
	principal.value != "*" # reported by the principals policy
	not trusted_principal(principal)
	msg := sprintf(
		"cross-account grant role \"%s\" trusts %s principal \"%s\"; trust only the data-room broker role's ARN (arn:aws:iam::<account>:role/<name>), never an account root, a user, a service or a federation",
		[role_name(role), principal.kind, principal.value],
	)
}

trusted_principal(principal) if {
	principal.kind == "AWS"
	regex.match(role_arn_pattern, principal.value)
}

external_id_violations(resources) := {lib.violation("trust", role, msg) |
	some role in lib.grant_roles(resources)
	some statement in trust_statements(role)
	not has_external_id(statement)
	msg := sprintf(
		"cross-account grant role \"%s\" can be assumed without an ExternalId; add Condition StringEquals sts:ExternalId to its trust policy",
		[role_name(role)],
	)
}

has_external_id(statement) if {
	value := statement.Condition.StringEquals["sts:ExternalId"]
	is_string(value)
	count(value) >= 2
	not contains(value, "*")
}

action_violations(resources) := {lib.violation("trust", role, msg) |
	some role in lib.grant_roles(resources)
	some statement in trust_statements(role)
	some action in lib.actions(statement)
	lower(action) != "sts:assumerole"
	msg := sprintf(
		"cross-account grant role \"%s\" trust policy allows \"%s\"; it may allow only sts:AssumeRole",
		[role_name(role), action],
	)
}

session_violations(resources) := {lib.violation("trust", role, msg) |
	some role in lib.grant_roles(resources)
	seconds := lib.prop(role, "maxSessionDuration")
	seconds != null
	seconds > max_session_seconds
	msg := sprintf(
		"cross-account grant role \"%s\" allows sessions of %v seconds; at most %v (one hour) is allowed",
		[role_name(role), seconds, max_session_seconds],
	)
}

# METADATA
# title: Cross-account grants trust only the broker role, with an ExternalId
# description: >-
#   A role assumable from another account trusts only specific IAM role ARNs (the data-room
#   broker), only for sts:AssumeRole, only with an sts:ExternalId condition, and its sessions
#   last at most one hour.
violations(req) := ((principal_violations(req.resources) | external_id_violations(req.resources)) | action_violations(req.resources)) | session_violations(req.resources)

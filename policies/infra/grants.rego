package dataroom.infra.grants

import data.dataroom.infra.lib
import rego.v1

read_only_actions := {"s3:getobject", "s3:listbucket", "kms:decrypt"}

# The documents that define what a grant role can do: its inline policies, the policies
# attached to it, and its permissions boundary.
grant_documents(resources, role) := array.concat(
	[{"source": "inline policy", "name": p.name, "doc": lib.document(lib.prop(p, "policy"))} |
		some p in lib.attached(resources, "aws:iam/rolePolicy:RolePolicy", "role", role)
	],
	array.concat(
		[{"source": "inline policy", "name": object.get(p, "name", "(unnamed)"), "doc": lib.document(p.policy)} |
			some p in lib.as_list(lib.prop(role, "inlinePolicies"))
		],
		[{"source": "managed policy", "name": p.name, "doc": lib.document(lib.prop(p, "policy"))} |
			some p in lib.of_type(resources, "aws:iam/policy:Policy")
			some ref in attached_policy_refs(resources, role)
			lib.refers_to(ref, p)
		],
	),
)

attached_policy_refs(resources, role) := {ref |
	some a in lib.attached(resources, "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "role", role)
	ref := lib.prop(a, "policyArn")
} | {ref | some ref in lib.as_list(lib.prop(role, "managedPolicyArns"))} | {ref |
	ref := lib.prop(role, "permissionsBoundary")
	lib.non_empty_string(ref)
}

in_stack(resources, ref) if {
	some p in lib.of_type(resources, "aws:iam/policy:Policy")
	lib.refers_to(ref, p)
}

# An ARN pattern that is broader than "objects under one prefix": "*" or a wildcard before the end.
wildcard_resource(arn) if arn == "*"

wildcard_resource(arn) if contains(trim_suffix(arn, "*"), "*")

wildcard_resource(arn) if regex.match(`^arn:aws[a-z-]*:s3:::[^/]+/\*$`, arn)

role_name(role) := object.get(role.props, "name", role.name)

action_violations(resources) := {lib.violation("grants", role, msg) |
	some role in lib.grant_roles(resources)
	some d in grant_documents(resources, role)
	some statement in lib.statements(d.doc)
	statement.Effect == "Allow"
	some action in lib.actions(statement)
	not lower(action) in read_only_actions
	msg := action_message(role, d, action)
}

action_message(role, d, action) := sprintf(
	"cross-account grant role \"%s\": %s \"%s\" allows wildcard action \"%s\"; list only s3:GetObject, s3:ListBucket or kms:Decrypt",
	[role_name(role), d.source, d.name, action],
) if contains(action, "*")

action_message(role, d, action) := sprintf(
	"cross-account grant role \"%s\": %s \"%s\" allows \"%s\", which is not read-only; a grant may allow only s3:GetObject, s3:ListBucket and kms:Decrypt",
	[role_name(role), d.source, d.name, action],
) if not contains(action, "*")

shape_violations(resources) := {lib.violation("grants", role, msg) |
	some role in lib.grant_roles(resources)
	some d in grant_documents(resources, role)
	some statement in lib.statements(d.doc)
	statement.Effect == "Allow"
	some element in ["NotAction", "NotResource"]
	object.get(statement, element, null) != null
	msg := sprintf(
		"cross-account grant role \"%s\": %s \"%s\" uses %s in an Allow statement, which grants everything not listed",
		[role_name(role), d.source, d.name, element],
	)
}

resource_violations(resources) := {lib.violation("grants", role, msg) |
	some role in lib.grant_roles(resources)
	some d in grant_documents(resources, role)
	some statement in lib.statements(d.doc)
	statement.Effect == "Allow"
	some arn in lib.resources_of(statement)
	wildcard_resource(arn)
	msg := sprintf(
		"cross-account grant role \"%s\": %s \"%s\" allows resource \"%s\"; name the production Parquet prefixes (bucket/prefix/*) instead",
		[role_name(role), d.source, d.name, arn],
	)
}

boundary_violations(resources) := {lib.violation("grants", role, msg) |
	some role in lib.grant_roles(resources)
	not lib.non_empty_string(lib.prop(role, "permissionsBoundary"))
	msg := sprintf(
		"cross-account grant role \"%s\" has no permissions boundary; set one that allows only the read-only actions",
		[role_name(role)],
	)
}

attachment_violations(resources) := {lib.violation("grants", role, msg) |
	some role in lib.grant_roles(resources)
	some ref in attached_policy_refs(resources, role)
	not in_stack(resources, ref)
	msg := sprintf(
		"cross-account grant role \"%s\" uses policy \"%s\" that is not defined in this stack, so it cannot be checked; define the read-only policy here",
		[role_name(role), ref],
	)
}

missing_violations(req) := {msg |
	req.stack.kind == "production-grant"
	count(lib.grant_roles(req.resources)) == 0
	msg := {
		"policy": "grants",
		"resource": req.stack.name,
		"type": "pulumi:pulumi:Stack",
		"message": "production-grant stack defines no cross-account grant role; it must provision the read-only role the broker assumes",
	}
}

# METADATA
# title: Cross-account grants are read-only
# description: >-
#   Every role that another AWS account can assume (a cross-account grant) may only allow
#   s3:GetObject, s3:ListBucket and kms:Decrypt, on named resources (no "*" actions or
#   resources, no NotAction/NotResource), through policies defined in this stack, and must
#   carry a permissions boundary. A production-grant stack must define such a role.
violations(req) := ((((action_violations(req.resources) | shape_violations(req.resources)) | resource_violations(req.resources)) | boundary_violations(req.resources)) | attachment_violations(req.resources)) | missing_violations(req)

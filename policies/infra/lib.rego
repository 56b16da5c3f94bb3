# METADATA
# title: Infra policy helpers
# description: >-
#   Shared helpers for the infra policies: find resources by Pulumi type, read IAM policy
#   documents (JSON strings or objects), normalise their statements, and identify the
#   cross-account grants (roles whose trust policy admits an AWS principal).
package dataroom.infra.lib

import rego.v1

# Resource properties that hold a policy document, and what kind of document it is.
document_properties := [
	["aws:iam/role:Role", "assumeRolePolicy", "trust policy"],
	["aws:iam/rolePolicy:RolePolicy", "policy", "inline policy"],
	["aws:iam/policy:Policy", "policy", "managed policy"],
	["aws:s3/bucketPolicy:BucketPolicy", "policy", "bucket policy"],
	["aws:kms/key:Key", "policy", "key policy"],
	["aws:ec2/vpcEndpoint:VpcEndpoint", "policy", "endpoint policy"],
]

of_type(resources, type) := [r | some r in resources; r.type == type]

prop(resource, key) := object.get(object.get(resource, "props", {}), key, null)

# A policy document given either as a JSON string (as Pulumi passes it) or as an object.
document(x) := json.unmarshal(x) if is_string(x)

document(x) := x if is_object(x)

as_list(x) := x if is_array(x)

as_list(x) := [x] if is_string(x)

as_list(x) := [] if x == null

statements(doc) := doc.Statement if is_array(doc.Statement)

statements(doc) := [doc.Statement] if is_object(doc.Statement)

# Every policy document in the stack: {"resource", "source", "doc"}.
documents(resources) := [{"resource": r, "source": source, "doc": document(prop(r, key))} |
	some r in resources
	some [type, key, source] in document_properties
	r.type == type
	prop(r, key) != null
]

# A configured reference: a string that is not empty (null, "" and absent are all "not set").
non_empty_string(x) if {
	is_string(x)
	x != ""
}

actions(statement) := {a | some a in as_list(object.get(statement, "Action", null))}

resources_of(statement) := {x | some x in as_list(object.get(statement, "Resource", null))}

# Principals of a statement as {"kind", "value"}: "*" is an AWS principal meaning anyone.
principals(statement) := {anyone} if {
	statement.Principal == "*"
	anyone := {"kind": "AWS", "value": "*"}
}

principals(statement) := found if {
	is_object(statement.Principal)
	found := {p |
		# (regopy misparses `some k, v in x` inside a comprehension)
		some kind
		values := statement.Principal[kind]
		some value in as_list(values)
		p := {"kind": kind, "value": value}
	}
}

principals(statement) := set() if not statement.Principal

aws_principals(statement) := {p.value | some p in principals(statement); p.kind == "AWS"}

# Cross-account grants: roles whose trust policy lets an AWS principal (another account's role,
# an account, or anyone) assume them. Service roles (EC2, ECS, CloudTrail) are not grants.
grant_roles(resources) := [role |
	some role in of_type(resources, "aws:iam/role:Role")
	some statement in statements(document(prop(role, "assumeRolePolicy")))
	statement.Effect == "Allow"
	count(aws_principals(statement)) > 0
]

# Whether a resource reference (an id, name or ARN) points at `resource`.
refers_to(ref, resource) if {
	ref != null
	ref in {resource.id, object.get(resource, "arn", null), prop(resource, "name")}
}

# Resources of `type` whose `key` property refers to `target` (e.g. a bucket's configurations).
attached(resources, type, key, target) := [r |
	some r in of_type(resources, type)
	refers_to(prop(r, key), target)
]

violation(policy, resource, message) := {
	"policy": policy,
	"resource": resource.name,
	"type": resource.type,
	"message": message,
}

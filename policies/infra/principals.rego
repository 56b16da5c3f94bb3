package dataroom.infra.principals

import data.dataroom.infra.lib
import rego.v1

star_violations(resources) := {lib.violation("principals", d.resource, msg) |
	some d in lib.documents(resources)
	some statement in lib.statements(d.doc)
	statement.Effect == "Allow"
	"*" in lib.aws_principals(statement)
	msg := sprintf(
		"%s of \"%s\" allows Principal \"*\"%s: anyone in any AWS account could use it; name the exact principal",
		[d.source, d.resource.name, sid(statement)],
	)
}

not_principal_violations(resources) := {lib.violation("principals", d.resource, msg) |
	some d in lib.documents(resources)
	some statement in lib.statements(d.doc)
	statement.Effect == "Allow"
	object.get(statement, "NotPrincipal", null) != null
	msg := sprintf(
		"%s of \"%s\" uses NotPrincipal in an Allow statement%s, which allows everyone not listed; name the exact principal",
		[d.source, d.resource.name, sid(statement)],
	)
}

sid(statement) := sprintf(" (statement \"%s\")", [statement.Sid]) if statement.Sid

sid(statement) := "" if not statement.Sid

# METADATA
# title: No policy allows Principal "*"
# description: >-
#   No IAM trust policy, bucket policy, key policy or endpoint policy in the stack allows
#   Principal "*" (or {"AWS": "*"}) or uses NotPrincipal in an Allow statement. Deny statements
#   with "*" (such as the TLS-only rule) are fine.
violations(req) := star_violations(req.resources) | not_principal_violations(req.resources)

# METADATA
# title: Tenant isolation
# description: A query touches only its project's tenants, and more than one tenant only in a multi-tenant project.
package dataroom.query.tenancy

import rego.v1

# METADATA
# title: Tenancy reasons
# description: Why the tenants a query touches are not allowed.
reasons(req) := outside_project(req) | cross_tenant(req)

# not is_null rather than `!= null`, which regopy pays for by comparing the whole object (see tables.rego).
outside_project(req) := {r |
	project := req.project
	not is_null(project)
	some tenant in req.facts.tenants
	not tenant in project.tenants
	r := {"code": "tenant_not_in_project", "message": sprintf("tenant %s is not part of project %s", [tenant, req.project.id])}
}

cross_tenant(req) := {r |
	count(req.facts.tenants) > 1
	not req.project.multi_tenant
	r := {"code": "cross_tenant", "message": concat("", ["this query mixes tenants ", concat(", ", req.facts.tenants), "; only a multi_tenant project may do that"])}
}

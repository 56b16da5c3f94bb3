# METADATA
# title: Quarantined tenants
# description: |
#   A model monitoring alert (dataroom/registry/models_registry.py) quarantines a tenant for the
#   model's projects until someone other than the model's author acknowledges it. While it lasts,
#   every query of such a project that touches the tenant is denied, whatever its dates: the
#   quarantine starts at the window where the drift or the drop began, and all of the tenant's
#   rows from then on are in doubt, so the simple sound rule is to withhold the tenant entirely
#   (a date-range check on detected_at would need the query's predicates, which the analysis does
#   not extract). Input: req.quarantines, the project's active quarantines [{tenant, since, model}],
#   read by the pipeline with one indexed registry read.
package dataroom.query.quarantine

import rego.v1

# METADATA
# title: Quarantine reasons
# description: One reason per quarantined tenant the query touches.
reasons(req) := {r |
	some q in req.quarantines
	q.tenant in req.facts.tenants
	r := {"code": "tenant_quarantined", "message": concat("", [
		"tenant ", q.tenant, " is quarantined in project ", req.project.id, " since ", q.since,
		" (monitoring alert on model ", q.model, "): its data no longer matches what the model was built on; ",
		"queries over it are denied until someone other than the model's author acknowledges the alert ",
		"(review UI, Monitoring, or `dataroom monitor acknowledge`)",
	])}
}

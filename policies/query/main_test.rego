package dataroom.query_test

import rego.v1

import data.dataroom.query

base := {
	"user": {"name": "alice", "groups": ["data-scientists"]},
	"today": "2026-11-22",
	"project_id": "remediation-acme",
	"project": {
		"id": "remediation-acme", "members": ["alice", "bob"], "status": "approved", "expires": "2027-11-22",
		"tenants": ["acme"], "tables": ["acme.findings", "reference.cve"], "multi_tenant": false,
		"visible_classes": ["public", "internal", "quasi_identifier"],
	},
	"facts": {
		"statement_kinds": ["SELECT"], "parse_error": null, "parameters": 0,
		"tables": ["acme.findings"], "unknown_tables": [], "file_reads": [], "table_functions": [],
		"columns": [{"table": "acme.findings", "column": "cvss", "classification": "public", "tenant": "acme", "clause": "select"}],
		"unresolved_columns": [], "tenants": ["acme"],
	},
}

test_allow_plain_aggregate if {
	query.decision(base) == {"allow": true, "reasons": set()}
}

test_deny_pii_in_where if {
	facts := object.union(base.facts, {"columns": [{"table": "acme.findings", "column": "analyst_email", "classification": "pii", "tenant": "acme", "clause": "where"}]})
	query.decision(object.union(base, {"facts": facts})) == {"allow": false, "reasons": {{"code": "pii_column", "message": "column acme.findings.analyst_email is PII (referenced in where): leave it out of the query"}}}
}

test_deny_non_member_gets_only_project_not_available if {
	# the other reasons would tell a non-member what the project holds
	facts := object.union(base.facts, {"tables": ["globex.findings"], "tenants": ["globex"]})
	d := query.decision(object.union(base, {"user": {"name": "mallory", "groups": []}, "facts": facts}))
	d.allow == false
	{r.code | some r in d.reasons} == {"project_not_available"}
}

test_deny_unknown_project_same_as_non_member if {
	unknown := query.decision(object.union(base, {"project_id": "nope", "project": null}))
	stranger := query.decision(object.union(base, {"project_id": "nope", "user": {"name": "mallory", "groups": []}}))
	unknown == stranger
}

# The decision enters the output policy only when the pipeline planned the statement under one
# (input.output), and the quarantine rule only when there are quarantines: both still speak
# through the whole decision when they apply.
constrained_project := object.union(base.project, {"output_policy": {"min_rows": 10, "min_tenants": 1}})

test_output_policy_reasons_reach_the_decision if {
	plan := {"policy": {"min_rows": 10, "min_tenants": 1}, "problem": null, "aggregates": ["max"], "counting": "rows"}
	d := query.decision(object.union(base, {"project": constrained_project, "output": plan}))
	d.allow == false
	{r.code | some r in d.reasons} == {"output_disclosive_aggregate"}
}

test_no_output_plan_no_output_reasons if {
	query.decision(object.union(base, {"project": constrained_project, "output": null})) == {"allow": true, "reasons": set()}
}

test_quarantine_reasons_reach_the_decision if {
	quarantined := [{"tenant": "acme", "since": "2026-11-01", "model": "m"}]
	d := query.decision(object.union(base, {"quarantines": quarantined}))
	{r.code | some r in d.reasons} == {"tenant_quarantined"}
}

test_output_plan_without_output_policy_allows if {
	plan := {"policy": {"min_rows": 10, "min_tenants": 1}, "problem": "never checked", "aggregates": ["max"], "counting": "rows"}
	query.decision(object.union(base, {"output": plan})) == {"allow": true, "reasons": set()}
}

test_expired_and_revoked_project_gives_both_reasons_to_a_member if {
	p := object.union(base.project, {"status": "revoked", "expires": "2026-01-01"})
	{r.code | some r in query.decision(object.union(base, {"project": p})).reasons} == {"project_not_approved", "project_expired"}
}

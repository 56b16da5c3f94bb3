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

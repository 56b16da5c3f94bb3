package dataroom.query.quarantine_test

import rego.v1

import data.dataroom.query
import data.dataroom.query.quarantine

req(tenants, quarantines) := {
	"user": {"name": "alice", "groups": ["data-scientists"]},
	"today": "2026-11-22",
	"project_id": "remediation-benchmark",
	"project": {
		"id": "remediation-benchmark", "members": ["alice"], "status": "approved", "expires": "2027-11-22",
		"tenants": ["acme", "globex", "initech"], "tables": ["acme.findings", "globex.findings", "initech.findings"], "multi_tenant": true,
		"visible_classes": ["public", "internal"],
	},
	"quarantines": quarantines,
	"facts": {
		"statement_kinds": ["SELECT"], "parse_error": null, "parameters": 0,
		"tables": [concat("", [t, ".findings"]) | some t in tenants], "unknown_tables": [], "file_reads": [], "table_functions": [],
		"columns": [], "unresolved_columns": [], "tenants": tenants,
	},
}

initech_quarantined := [{"tenant": "initech", "since": "2024-09-09", "model": "remediation-days-linear"}]

test_deny_quarantined_tenant if {
	quarantine.reasons(req(["initech"], initech_quarantined)) == {{
		"code": "tenant_quarantined",
		"message": "tenant initech is quarantined in project remediation-benchmark since 2024-09-09 (monitoring alert on model remediation-days-linear): its data no longer matches what the model was built on; queries over it are denied until someone other than the model's author acknowledges the alert (review UI, Monitoring, or `dataroom monitor acknowledge`)",
	}}
}

test_deny_quarantined_tenant_among_others_in_the_whole_decision if {
	d := query.decision(req(["acme", "initech"], initech_quarantined))
	d.allow == false
	{r.code | some r in d.reasons} == {"tenant_quarantined"}
}

test_allow_other_tenants_of_the_project if {
	query.decision(req(["acme", "globex"], initech_quarantined)) == {"allow": true, "reasons": set()}
}

test_allow_without_quarantines if {
	query.decision(req(["initech"], [])) == {"allow": true, "reasons": set()}
}

test_allow_when_input_has_no_quarantines_field if {
	quarantine.reasons(object.remove(req(["initech"], []), ["quarantines"])) == set()
}

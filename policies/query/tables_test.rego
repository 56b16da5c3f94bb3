package dataroom.query.tables_test

import rego.v1

import data.dataroom.query.tables

tables_req(facts) := {
	"project": {"id": "p1", "tables": ["acme.findings", "reference.cve"]},
	"facts": object.union({"tables": [], "unknown_tables": [], "file_reads": [], "table_functions": []}, facts),
}

test_allow_project_tables if {
	tables.reasons(tables_req({"tables": ["acme.findings", "reference.cve"]})) == set()
}

test_deny_other_tenant_table if {
	tables.reasons(tables_req({"tables": ["globex.findings"]})) == {{"code": "table_not_in_project", "message": "table globex.findings is not part of project p1"}}
}

test_deny_file_read if {
	{r.code | some r in tables.reasons(tables_req({"file_reads": ["/etc/passwd"]}))} == {"file_read"}
}

test_deny_unknown_table if {
	{r.code | some r in tables.reasons(tables_req({"unknown_tables": ["information_schema.columns"]}))} == {"unknown_table"}
}

test_deny_every_table_of_a_project_without_tables if {
	reasons := tables.reasons({"project": {"id": "p1"}, "facts": {"tables": ["acme.findings"], "unknown_tables": [], "file_reads": []}})
	{r.code | some r in reasons} == {"table_not_in_project"}
}

test_no_project_no_table_reasons if {
	# the project module answers for a missing project
	tables.reasons({"project": null, "facts": {"tables": ["acme.findings"], "unknown_tables": [], "file_reads": []}}) == set()
}

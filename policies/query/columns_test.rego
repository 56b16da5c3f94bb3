package dataroom.query.columns_test

import rego.v1

import data.dataroom.query.columns

# Fixtures are rules, not literals passed straight into a function call: regopy 1.5.2 quotes such
# literals when a policy formats them into a message.
cvss := {"table": "acme.findings", "column": "cvss", "classification": "public", "tenant": "acme", "clause": "select"}

days := {"table": "acme.findings", "column": "remediation_days", "classification": "internal", "tenant": "acme", "clause": "select"}

email := {"table": "acme.findings", "column": "analyst_email", "classification": "pii", "tenant": "acme", "clause": "select"}

ip := {"table": "acme.findings", "column": "asset_ip", "classification": "quasi_identifier", "tenant": "acme", "clause": "select"}

columns_req(cols, classes) := {
	"project": {"id": "p1", "visible_classes": classes},
	"facts": {"columns": cols, "unresolved_columns": []},
}

test_allow_public_and_internal if {
	columns.reasons(columns_req([cvss, days], ["public", "internal"])) == set()
}

test_deny_pii if {
	columns.reasons(columns_req([email], ["public", "internal", "quasi_identifier"])) == {{"code": "pii_column", "message": "column acme.findings.analyst_email is PII (referenced in select): leave it out of the query"}}
}

test_deny_quasi_identifier_when_not_visible if {
	reasons := columns.reasons(columns_req([ip], ["public", "internal"]))
	reasons == {{"code": "column_class_not_allowed", "message": "column acme.findings.asset_ip is quasi_identifier, which project p1 may not see (referenced in select)"}}
}

test_deny_unresolved if {
	reasons := columns.reasons({"project": null, "facts": {"columns": [], "unresolved_columns": ["secret"]}})
	{r.code | some r in reasons} == {"unresolved_column"}
}

test_deny_pii_even_when_the_project_lists_pii if {
	{r.code | some r in columns.reasons(columns_req([email, cvss], ["public", "pii"]))} == {"pii_column"}
}

test_deny_one_hidden_class_among_visible_ones if {
	reasons := columns.reasons(columns_req([cvss, days, ip], ["public", "internal"]))
	[r.code | some r in reasons] == ["column_class_not_allowed"]
}

test_deny_every_class_of_a_project_without_visible_classes if {
	count(columns.reasons({"project": {"id": "p1"}, "facts": {"columns": [cvss, days], "unresolved_columns": []}})) == 2
}

test_no_project_no_class_reasons if {
	# the project module answers for a missing project
	columns.reasons({"project": null, "facts": {"columns": [cvss], "unresolved_columns": []}}) == set()
}

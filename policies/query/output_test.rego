package dataroom.query.output_test

import rego.v1

import data.dataroom.query.output

project := {
	"id": "bench", "tenants": ["acme", "globex"], "multi_tenant": true,
	"tables": ["acme.findings", "globex.findings", "reference.cve"],
	"output_policy": {"min_rows": 10, "min_tenants": 2},
}

plan(aggregates) := {"policy": {"min_rows": 10, "min_tenants": 2}, "problem": null, "aggregates": aggregates, "counting": "rows"}

both := {"tables": ["acme.findings", "globex.findings"], "tenants": ["acme", "globex"]}

test_allow_summarising_aggregate_over_all_tenants if {
	output.reasons({"project": project, "facts": both, "output": plan(["count_star", "avg"])}) == set()
}

test_reference_tables_need_no_tenants if {
	facts := {"tables": ["acme.findings", "globex.findings", "reference.cve"], "tenants": ["acme", "globex"]}
	output.reasons({"project": project, "facts": facts, "output": plan(["count_star"])}) == set()
}

test_deny_problem_with_its_advice if {
	req := {"project": project, "facts": both, "output": {"policy": {}, "problem": "aggregate them", "aggregates": [], "counting": "rows"}}
	output.reasons(req) == {{"code": "output_not_checkable", "message": "aggregate them"}}
}

test_deny_max_and_list if {
	codes := {r.code | some r in output.reasons({"project": project, "facts": both, "output": plan(["max", "list", "count_star"])})}
	codes == {"output_disclosive_aggregate"}
	count(output.reasons({"project": project, "facts": both, "output": plan(["max", "list"])})) == 2
}

test_deny_one_tenant_of_two if {
	facts := {"tables": ["acme.findings"], "tenants": ["acme"]}
	reasons := output.reasons({"project": project, "facts": facts, "output": plan(["count_star"])})
	[r.code | some r in reasons] == ["output_partial_tenants"]
	some r in reasons
	contains(r.message, "globex.findings")
}

test_single_tenant_minimum_allows_one_tenant if {
	p := object.union(project, {"output_policy": {"min_rows": 10, "min_tenants": 1}})
	output.reasons({"project": p, "facts": {"tables": ["acme.findings"], "tenants": ["acme"]}, "output": plan(["count_star"])}) == set()
}

test_no_output_policy_no_reasons if {
	p := object.union(project, {"output_policy": null})
	output.reasons({"project": p, "facts": {"tables": ["acme.findings"], "tenants": ["acme"]}, "output": null}) == set()
}

test_typos_are_answered_first if {
	facts := {"tables": ["acme.findings"], "tenants": ["acme"], "unresolved_columns": ["asset_hostnam"]}
	output.reasons({"project": project, "facts": facts, "output": plan(["count_star"])}) == set()
}

test_every_summarising_aggregate_is_recognised if {
	every name in ["count", "count_star", "sum", "avg", "stddev_samp", "regr_r2", "kurtosis_pop", "bool_or"] {
		output.summarising(name)
	}
}

test_parts_and_pairs_of_summarising_names_are_not if {
	not output.summarising("coun")
	not output.summarising("count sum")
	not output.summarising("")
	not output.summarising("min")
}

three := object.union(project, {"tenants": ["acme", "globex", "initech"], "tables": ["acme.findings", "globex.findings", "initech.findings"]})

test_deny_partial_tenants_names_every_missing_table if {
	reasons := output.reasons({"project": three, "facts": {"tables": ["acme.findings"], "tenants": ["acme"]}, "output": plan(["count_star"])})
	[r.message | some r in reasons] == ["under the project's output policy a query reads every tenant's findings together, so that no result can be traced to a subset of tenants: add globex.findings, initech.findings (… UNION ALL …)"]
}

test_no_plan_no_reasons if {
	output.reasons({"project": project, "facts": {"tables": ["acme.findings"], "tenants": ["acme"]}, "output": null}) == set()
}

test_no_project_no_reasons if {
	output.reasons({"project": null, "facts": {"tables": ["acme.findings"], "tenants": ["acme"]}, "output": plan(["max"])}) == set()
}

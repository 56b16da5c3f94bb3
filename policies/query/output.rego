# METADATA
# title: Safe outputs (aggregation constraints)
# description: |
#   A project with an output policy (input.project.output_policy: min_rows, min_tenants; on by
#   default for multi-tenant projects) releases only aggregates whose every row is backed by
#   enough rows and tenants. The pipeline rewrites the statement so that each group carries its
#   support (dataroom/outputs/aggregation.py) and tells this policy how (input.output): a
#   statement it cannot rewrite soundly comes with a problem that says what to write instead.
#   This policy also decides which aggregate functions may be released (those that summarise,
#   not those that return one row's value) and that a query reads every tenant of the project
#   together, so that no result can be traced back to a subset of tenants by differencing.
package dataroom.query.output

import rego.v1

import data.dataroom.query.functions

# Aggregates that summarise their group. min, max, first, any_value, list, string_agg, median,
# quantiles, mode, arg_min/arg_max and histogram return (or pin down) single rows' values.
summarising_names := concat("", [
	" count count_star sum avg mean favg fsum sumkahan kahan_sum sum_no_overflow stddev stddev_pop ",
	" stddev_samp variance var_pop var_samp corr covar_pop covar_samp regr_avgx regr_avgy regr_count ",
	" regr_intercept regr_r2 regr_slope regr_sxx regr_sxy regr_syy skewness kurtosis kurtosis_pop ",
	" grouping grouping_id approx_count_distinct count_if countif bool_and bool_or ",
])

# One string searched for " name ", not a set literal: regopy 1.5.2 builds a module's set
# literals on every evaluation that touches the module (this one cost ~0.15 ms of each decision,
# constrained or not); see functions.rego.
summarising(name) if functions.listed(name, summarising_names)

# METADATA
# title: Output reasons
# description: Why the result of this query cannot be released under the project's output policy.
reasons(req) := (not_checkable(req) | disclosive_aggregates(req)) | partial_tenants(req) if {
	constrained(req) # once, not in each of the three (regopy does not memoise function results)
} else := set()

# A statement naming something that does not exist is bad input first (a typo answered with a
# suggestion); the output policy speaks once every name resolves. `x := ...; not is_null(x)`
# means `x != null`, which regopy pays for by comparing the whole object with null (~17 µs).
constrained(req) if {
	project := req.project
	not is_null(project)
	output_policy := project.output_policy
	not is_null(output_policy)
	output := req.output
	not is_null(output)
	count(object.get(req.facts, "unresolved_columns", [])) == 0
	count(object.get(req.facts, "unknown_tables", [])) == 0
}

# The three below speak only under constrained(req), which reasons(req) checks.
not_checkable(req) := {r |
	req.output.problem != null
	r := {"code": "output_not_checkable", "message": req.output.problem}
}

disclosive_aggregates(req) := {r |
	some name in req.output.aggregates
	not summarising(name)
	r := {"code": "output_disclosive_aggregate", "message": concat("", [
		name, "() returns values of single rows, which the project's output policy does not release: ",
		"use count, sum, avg, stddev, variance or corr (each group must be backed by at least ",
		format_int(req.project.output_policy.min_rows, 10), " rows)",
	])}
}

# A tenant table read for some of the project's tenants but not all of them.
# (The missing tenants come from a function: a comprehension nested in a comprehension's body
# costs regopy ten times more.)
partial_tenants(req) := {r |
	req.project.output_policy.min_tenants > 1
	some family in families_read(req)
	missing := missing_tenants(req, family)
	count(missing) > 0
	r := {"code": "output_partial_tenants", "message": concat("", [
		"under the project's output policy a query reads every tenant's ", family, " together, so that no result ",
		"can be traced to a subset of tenants: add ", concat(", ", [concat(".", [t, family]) | some t in missing]),
		" (… UNION ALL …)",
	])}
}

# The project's tenants whose table of this family the query does not read.
missing_tenants(req, family) := [t |
	some t in req.project.tenants
	table := concat(".", [t, family])
	table in req.project.tables
	not table in req.facts.tables
]

families_read(req) := {parts[1] |
	some table in req.facts.tables
	parts := split(table, ".")
	parts[0] in req.project.tenants
}

# METADATA
# title: Query decision
# description: |
#   The one decision every query gets. Input: {user, project, facts, today}; facts come from
#   dataroom/analysis.py. Output: {allow, reasons}; each reason has a code and a message that
#   tells the user what to change.
package dataroom.query

import rego.v1

import data.dataroom.query.columns
import data.dataroom.query.functions
import data.dataroom.query.output
import data.dataroom.query.project
import data.dataroom.query.quarantine
import data.dataroom.query.statements
import data.dataroom.query.tables
import data.dataroom.query.tenancy

# When the project is not available to the user, that is the only reason: the others would
# describe a project the user may not know about. project.unavailable is computed once (regopy
# does not memoise function results), and a module whose input part is empty is not entered:
# each comprehension costs regopy ~20 µs, and these guards were a fifth of every decision. An
# empty unavailable set means the user is a member, so the project's standing is asked without
# testing membership again.
reasons_within(req, unavailable) := unavailable if {
	count(unavailable) > 0
} else := (((((((statements.reasons(req) | project.standing(req)) | tables.reasons(req)) | functions.reasons(req)) | columns.reasons(req)) | tenancy.reasons(req)) | quarantine_reasons(req)) | output_reasons(req))

reasons(req) := reasons_within(req, project.unavailable(req))

# Tenants a model alert withholds: none in most decisions.
quarantine_reasons(req) := quarantine.reasons(req) if {
	count(req.quarantines) > 0
} else := set()

# The output policy speaks only when the pipeline planned the statement under one (input.output).
# (No local variable in this body: with one, regopy evaluates output.reasons(req) even when the
# body fails. An undefined req.output enters, and output.reasons gives no reason for it.)
output_reasons(req) := output.reasons(req) if {
	not is_null(req.output) # `req.output != null`, without regopy comparing the whole plan with null
} else := set()

# METADATA
# title: Decision
# description: Allow only when no rule gives a reason to deny.
decision(req) := {"allow": count(denials) == 0, "reasons": denials} if {
	denials := reasons(req) # computed once: function results are not memoised
}

main := decision(input)

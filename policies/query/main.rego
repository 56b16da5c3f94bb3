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
# describe a project the user may not know about.
reasons(req) := scope if {
	scope := project.unavailable(req)
	count(scope) > 0
}

reasons(req) := found if {
	count(project.unavailable(req)) == 0
	found := ((((((statements.reasons(req) | project.reasons(req)) | tables.reasons(req)) | functions.reasons(req)) | columns.reasons(req)) | tenancy.reasons(req)) | quarantine.reasons(req)) | output.reasons(req)
}

# METADATA
# title: Decision
# description: Allow only when no rule gives a reason to deny.
decision(req) := {"allow": count(denials) == 0, "reasons": denials} if {
	denials := reasons(req) # computed once: function results are not memoised
}

main := decision(input)

# METADATA
# title: No PII, only the project's column classes
# description: No PII column is referenced anywhere in a query; other columns only in classes the project allows; every column resolves.
package dataroom.query.columns

import rego.v1

# METADATA
# title: Column reasons
# description: Why the columns a query references are not allowed.
reasons(req) := pii(req) | outside_classes(req) | unresolved(req)

pii(req) := {r |
	some c in req.facts.columns
	c.classification == "pii"
	r := {"code": "pii_column", "message": sprintf("column %s.%s is PII (referenced in %s): leave it out of the query", [c.table, c.column, c.clause])}
}

# When every column's class is visible there is no reason: regopy counts positive `in` tests
# far more cheaply than it runs `not ... in` per column (~60 µs for nine columns). (A nested
# comprehension inside a comprehension's body costs regopy ~1 ms: keep it in a rule body.)
# not is_null rather than `!= null`, which regopy pays for by comparing the whole object (see
# tables.rego).
outside_classes(req) := set() if {
	visible := req.project.visible_classes
	count([1 | some c in req.facts.columns; c.classification in visible]) == count(req.facts.columns)
} else := {r |
	project := req.project
	not is_null(project)
	some c in req.facts.columns
	not c.classification in project.visible_classes
	c.classification != "pii"
	r := {"code": "column_class_not_allowed", "message": sprintf("column %s.%s is %s, which project %s may not see (referenced in %s)", [c.table, c.column, c.classification, req.project.id, c.clause])}
}

unresolved(req) := {r |
	some name in req.facts.unresolved_columns
	r := {"code": "unresolved_column", "message": sprintf("cannot resolve column %s to a catalog column the query may read", [name])}
}

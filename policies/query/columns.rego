# METADATA
# title: No PII, only the project's column classes
# description: No PII column is referenced anywhere in a query; other columns only in classes the project allows; every column resolves.
package dataroom.query.columns

import rego.v1

# METADATA
# title: Column reasons
# description: Why the columns a query references are not allowed.
reasons(req) := class_reasons(req) | unresolved(req)

# The class rules, pii and outside_classes (a new rule goes into reasons above, not here). The
# common case first: the project shows no PII and every column's class, so neither can speak.
# regopy counts positive `in` tests far more cheaply than it runs the two rules (`not ... in`
# per column): ~50 µs for nine columns. (A comprehension nested in a comprehension's body would
# cost regopy ~1 ms: keep it in a rule body, as here.)
class_reasons(req) := set() if {
	visible := req.project.visible_classes
	not "pii" in visible
	count([1 | some c in req.facts.columns; c.classification in visible]) == count(req.facts.columns)
} else := pii(req) | outside_classes(req)

pii(req) := {r |
	some c in req.facts.columns
	c.classification == "pii"
	r := {"code": "pii_column", "message": sprintf("column %s.%s is PII (referenced in %s): leave it out of the query", [c.table, c.column, c.clause])}
}

# not is_null rather than `!= null`, which regopy pays for by comparing the whole object (see
# tables.rego).
outside_classes(req) := {r |
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

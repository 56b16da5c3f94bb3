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

# The visibility test first: it rules out most columns with one test. is_object rather than
# `!= null`, which regopy pays for by comparing the whole object (see tables.rego).
outside_classes(req) := {r |
	is_object(req.project)
	visible := object.get(req.project, "visible_classes", [])
	some c in req.facts.columns
	not c.classification in visible
	c.classification != "pii"
	r := {"code": "column_class_not_allowed", "message": sprintf("column %s.%s is %s, which project %s may not see (referenced in %s)", [c.table, c.column, c.classification, req.project.id, c.clause])}
}

unresolved(req) := {r |
	some name in req.facts.unresolved_columns
	r := {"code": "unresolved_column", "message": sprintf("cannot resolve column %s to a catalog column the query may read", [name])}
}

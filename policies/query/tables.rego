# METADATA
# title: Catalog tables of the project only
# description: A query reads only catalog tables its project includes; no files or URLs (table functions are denied in functions.rego).
package dataroom.query.tables

import rego.v1

# METADATA
# title: Table reasons
# description: Why the relations a query reads are not allowed.
reasons(req) := unknown(req) | files(req) | outside_project(req)

unknown(req) := {r |
	some name in req.facts.unknown_tables
	r := {"code": "unknown_table", "message": sprintf("%s is not a catalog table: name tables as <schema>.<table>, e.g. acme.findings (see `dataroom tables`)", [name])}
}

files(req) := {r |
	some name in req.facts.file_reads
	r := {"code": "file_read", "message": sprintf("reading files or URLs directly (%s) is not allowed: query catalog tables", [name])}
}

# is_object, not `!= null`: regopy compares the whole project object with null (~17 µs). A
# project without tables includes none (object.get), as before.
outside_project(req) := {r |
	is_object(req.project)
	included := object.get(req.project, "tables", [])
	some name in req.facts.tables
	not name in included
	r := {"code": "table_not_in_project", "message": sprintf("table %s is not part of project %s", [name, req.project.id])}
}

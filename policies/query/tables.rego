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

# `project := ...; not is_null(project)` means `req.project != null`, which regopy pays for by
# comparing the whole project object with null (~17 µs a test).
outside_project(req) := {r |
	project := req.project
	not is_null(project)
	some name in req.facts.tables
	not name in project.tables
	r := {"code": "table_not_in_project", "message": sprintf("table %s is not part of project %s", [name, req.project.id])}
}

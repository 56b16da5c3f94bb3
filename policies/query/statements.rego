# METADATA
# title: Read statements only
# description: A query is exactly one SELECT statement that DuckDB can parse and that needs no parameters.
package dataroom.query.statements

import rego.v1

# METADATA
# title: Statement reasons
# description: Why the statement kind(s) of a query are not allowed.
reasons(req) := form(req)

# The statement's form: it parses, is one SELECT and takes no parameters (a new rule goes into
# reasons above, not here). The common case in three comparisons, each rule below would say nothing.
form(req) := set() if {
	req.facts.parse_error == null
	req.facts.statement_kinds == ["SELECT"]
	req.facts.parameters == 0
} else := (parse_errors(req) | kinds(req)) | parameters(req)

parse_errors(req) := {r |
	req.facts.parse_error != null
	r := {"code": "parse_error", "message": sprintf("the SQL cannot be parsed: %s", [req.facts.parse_error])}
}

kinds(req) := set() if {
	req.facts.statement_kinds == ["SELECT"] # the common case, in one comparison
} else := {r |
	count(req.facts.statement_kinds) > 1
	# concat, not sprintf("%s", [concat(...)]): regopy 1.5.2 quotes a nested concat inside sprintf
	r := {"code": "multiple_statements", "message": concat("", ["one statement per query: this text holds ", format_int(count(req.facts.statement_kinds), 10), " (", concat(", ", req.facts.statement_kinds), ")"])}
} | {r |
	some kind in req.facts.statement_kinds
	kind != "SELECT"
	r := {"code": "not_read_only", "message": sprintf("only read (SELECT) statements are allowed, not %s", [kind])}
}

parameters(req) := {r |
	req.facts.parameters > 0
	r := {"code": "parameters", "message": "prepared-statement parameters ($1, ?) are not supported: write the values into the query"}
}

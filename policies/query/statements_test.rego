package dataroom.query.statements_test

import rego.v1

import data.dataroom.query.statements

facts(overrides) := object.union({"statement_kinds": ["SELECT"], "parse_error": null, "parameters": 0}, overrides)

test_allow_single_select if {
	statements.reasons({"facts": facts({})}) == set()
}

test_deny_parse_error if {
	reasons := statements.reasons({"facts": facts({"parse_error": "syntax error", "statement_kinds": []})})
	reasons == {{"code": "parse_error", "message": "the SQL cannot be parsed: syntax error"}}
}

two_selects := {"facts": {"statement_kinds": ["SELECT", "SELECT"], "parse_error": null, "parameters": 0}}

test_deny_two_statements if {
	reasons := statements.reasons(two_selects)
	reasons == {{"code": "multiple_statements", "message": "one statement per query: this text holds 2 (SELECT, SELECT)"}}
}

test_deny_copy if {
	reasons := statements.reasons({"facts": facts({"statement_kinds": ["COPY"]})})
	reasons == {{"code": "not_read_only", "message": "only read (SELECT) statements are allowed, not COPY"}}
}

test_deny_select_then_attach if {
	codes := {r.code | some r in statements.reasons({"facts": facts({"statement_kinds": ["SELECT", "ATTACH"]})})}
	codes == {"multiple_statements", "not_read_only"}
}

test_deny_parameters if {
	codes := {r.code | some r in statements.reasons({"facts": facts({"parameters": 1})})}
	codes == {"parameters"}
}

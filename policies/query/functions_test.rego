package dataroom.query.functions_test

import rego.v1

import data.dataroom.query.functions

# Fixtures are rules, not literals passed straight into a function call: regopy 1.5.2 quotes such
# literals when a policy formats them into a message.
fns(names) := {"facts": {"functions": names, "table_functions": []}}

table_fns(names) := {"facts": {"functions": names, "table_functions": names}}

codes(req) := {r.code | some r in functions.reasons(req)}

# What the README, the example notebook and model monitoring run (see tests/core/test_function_allowlist.py).
statistics := [
	"count_star", "count", "avg", "sum", "min", "max", "median", "quantile_cont", "quantile_disc",
	"stddev_samp", "corr", "regr_slope", "regr_intercept", "regr_r2", "regr_count", "date_trunc",
	"date_part", "round", "ln", "abs", "greatest", "nullif",
]

test_allow_statistics_of_the_readme_notebook_and_monitoring if {
	codes(fns(statistics)) == set()
}

# What the parser writes for syntax: [x * 2 FOR x IN l], {'a': 1}, a || b, a LIKE 'x%',
# EXTRACT(year FROM d), d + INTERVAL 1 DAY, x SIMILAR TO 'y', COLUMNS(lambda c: ...).
syntax := [
	"list_value", "struct_pack", "list_apply", "list_filter", "struct_extract", "*", "+", "-", "/",
	"||", "~~", "!~~", "~~*", "~~~", "like_escape", "date_part", "to_days", "trunc",
	"regexp_full_match", "->>", "nullif", "if", "map", "row",
]

test_allow_functions_the_parser_writes_for_syntax if {
	codes(fns(syntax)) == set()
}

windows := ["row_number", "rank", "dense_rank", "ntile", "lag", "lead", "first_value", "last_value", "percent_rank", "cume_dist"]

test_allow_window_functions if {
	codes(fns(windows)) == set()
}

test_allow_clock_functions if {
	codes(fns(["current_date", "get_current_timestamp", "now", "today"])) == set()
}

plan := ["json_serialize_plan"]

test_deny_sql_in_string_names_the_function if {
	functions.reasons(fns(plan)) == {{"code": "sql_in_string", "message": "function json_serialize_plan() takes SQL text (a query, plan, table or function name) in a string: SQL inside a string is not analysed, write the query directly"}}
}

qualified_plan := ["system.main.json_serialize_plan"]

test_deny_qualified_sql_in_string_keeps_its_class if {
	reasons := functions.reasons(fns(qualified_plan))
	{r.code | some r in reasons} == {"sql_in_string"}
	every r in reasons {
		startswith(r.message, "function system.main.json_serialize_plan() takes SQL text")
	}
}

sql_text := ["json_serialize_sql", "json_deserialize_sql", "json_execute_serialized_sql", "main.query", "list_aggregate", "aggregate", "to_aggregate_state"]

test_deny_every_sql_text_function if {
	count(functions.reasons(fns(sql_text))) == count(sql_text)
	codes(fns(sql_text)) == {"sql_in_string"}
}

dynamic_tables := ["query", "query_table"]

test_deny_dynamic_sql_table_functions_as_sql_in_string if {
	codes(table_fns(dynamic_tables)) == {"sql_in_string"}
}

setting := ["current_setting"]

test_deny_session_state_names_the_function if {
	functions.reasons(fns(setting)) == {{"code": "session_state_function", "message": "function current_setting() reads the session's settings, state or catalog metadata, which the data room does not expose: query catalog tables (see `dataroom tables`)"}}
}

session := ["getvariable", "main.current_setting", "current_schema", "current_database", "version", "user", "nextval", "stats", "pg_catalog.pg_get_viewdef"]

test_deny_session_state_functions if {
	count(functions.reasons(fns(session))) == count(session)
	codes(fns(session)) == {"session_state_function"}
}

metadata_tables := ["duckdb_settings", "duckdb_views", "pragma_version", "pragma_table_info"]

test_deny_metadata_table_functions_as_session_state if {
	codes(table_fns(metadata_tables)) == {"session_state_function"}
}

reader := ["read_parquet"]

test_deny_file_reader_names_the_function if {
	functions.reasons(table_fns(reader)) == {{"code": "file_function", "message": "function read_parquet() reads files, URLs or their metadata: the data room reads only catalog tables (see `dataroom tables`)"}}
}

files := ["read_csv_auto", "read_json", "read_text", "read_blob", "parquet_metadata", "parquet_schema", "parquet_kv_metadata", "glob", "sniff_csv", "system.main.read_parquet"]

test_deny_file_functions_as_table_or_scalar if {
	codes(table_fns(files)) == {"file_function"}
	codes(fns(files)) == {"file_function"}
}

hashes := ["md5"]

test_deny_function_off_the_list_names_it if {
	functions.reasons(fns(hashes)) == {{"code": "function_not_allowed", "message": "function md5() is not allowed in the data room: it is not on the allow-list (policies/query/functions.rego); ask the security team to review it"}}
}

not_listed := ["sha256", "hash", "uuid", "error", "sleep_ms", "finalize", "vector_type", "__internal_compress_string_ubigint"]

test_deny_functions_off_the_list if {
	count(functions.reasons(fns(not_listed))) == count(not_listed)
	codes(fns(not_listed)) == {"function_not_allowed"}
}

qualified_lower := ["main.lower"]

test_deny_qualified_call_of_an_allowed_function if {
	functions.reasons(fns(qualified_lower)) == {{"code": "function_not_allowed", "message": "function main.lower() is not allowed in the data room: call functions without a schema or catalog, e.g. lower()"}}
}

scalar_as_table := ["unnest"]

test_deny_table_function_allowed_as_scalar if {
	functions.reasons(table_fns(scalar_as_table)) == {{"code": "table_function", "message": "table function unnest() is not allowed: query catalog tables"}}
}

test_deny_table_function_outside_the_sensitive_classes if {
	codes(table_fns(["range", "generate_series", "test_all_types", "summary"])) == {"table_function"}
}

test_deny_names_that_only_look_listed if {
	codes(fns(["abs sign", "", "lower ", "LOWER", "low", "ower", "abs\tsign"])) == {"function_not_allowed"}
}

mixed := ["avg", "json_serialize_plan", "current_setting", "read_parquet", "md5", "lower"]

test_deny_one_reason_per_function if {
	reasons := functions.reasons(fns(mixed))
	count(reasons) == 4
	{r.code | some r in reasons} == {"sql_in_string", "session_state_function", "file_function", "function_not_allowed"}
}

# Comprehensions, not `every ... { not ... }`: regopy 1.5.2 evaluates that form to true regardless.
test_allow_list_holds_no_sensitive_function if {
	count(functions.allowed_functions) > 400
	sql_text := {n | some n in functions.allowed_functions; functions.listed(n, functions.spaced(functions.sql_text_functions))}
	file := {n | some n in functions.allowed_functions; functions.file_function(n)}
	session := {n | some n in functions.allowed_functions; functions.session_state_function(n)}
	qualified := {n | some n in functions.allowed_functions; contains(n, ".")}
	(((sql_text | file) | session) | qualified) == set()
}

# METADATA
# title: Allow-listed functions only
# description: |
#   A query calls only functions on the data room's allow-list: what statistics over catalog
#   tables need (operators, math, strings, dates, aggregates, window functions, lists, structs,
#   JSON values). Everything else is denied by default, and the sensitive classes say why: SQL
#   inside a string (sql_in_string), session, settings or catalog state (session_state_function),
#   files, URLs and their metadata (file_function). Functions come from facts.functions, which
#   dataroom/analysis.py fills from DuckDB's parse tree; a schema- or catalog-qualified call
#   (main.lower) is never on the list.
package dataroom.query.functions

import rego.v1

# METADATA
# title: Function reasons
# description: |
#   Why the functions a query calls are not allowed: one reason per function, naming it. A
#   sensitive class gives its own code; a table function outside those classes keeps the code
#   table_function (no table function is allowed, even one allowed as a scalar, like unnest);
#   any other function off the allow-list is function_not_allowed.
reasons(req) := {r |
	some name in req.facts.functions
	not allowed(name) # an allowed scalar gives no reason; called as a table function, it is in the set below
	r := reason(function_class(name), name, req.facts.table_functions)
} | {r |
	some name in req.facts.table_functions
	r := reason(function_class(name), name, req.facts.table_functions)
}

# The reason for one function of a class; undefined when it is allowed.
reason(kind, name, table_functions) := {"code": kind, "message": message(kind, name)} if {
	listed(kind, sensitive_classes)
} else := {"code": "table_function", "message": sprintf("table function %s() is not allowed: query catalog tables", [name])} if {
	name in table_functions
} else := {"code": kind, "message": message(kind, name)} if {
	kind == "function_not_allowed"
}

# METADATA
# title: Function class
# description: |
#   allowed when the name as written is on the allow-list; otherwise sql_in_string,
#   file_function or session_state_function when the name without its schema is in that
#   sensitive class; function_not_allowed for everything else.
function_class(name) := "allowed" if {
	allowed(name) # first: the common case, and no allowed name is in a sensitive class (tested)
} else := "sql_in_string" if {
	listed(base_name(name), spaced(sql_text_functions))
} else := "file_function" if {
	file_function(base_name(name))
} else := "session_state_function" if {
	session_state_function(base_name(name))
} else := "function_not_allowed"

message(kind, name) := concat("", ["function ", name, "() takes SQL text (a query, plan, table or function name) in a string: SQL inside a string is not analysed, write the query directly"]) if {
	kind == "sql_in_string"
} else := concat("", ["function ", name, "() reads files, URLs or their metadata: the data room reads only catalog tables (see `dataroom tables`)"]) if {
	kind == "file_function"
} else := concat("", ["function ", name, "() reads the session's settings, state or catalog metadata, which the data room does not expose: query catalog tables (see `dataroom tables`)"]) if {
	kind == "session_state_function"
} else := concat("", ["function ", name, "() is not allowed in the data room: call functions without a schema or catalog, e.g. ", base_name(name), "()"]) if {
	contains(name, ".")
	allowed(base_name(name))
} else := concat("", ["function ", name, "() is not allowed in the data room: it is not on the allow-list (policies/query/functions.rego); ask the security team to review it"])

# A string searched by listed(), not a set literal, which regopy rebuilds on every evaluation.
sensitive_classes := " sql_in_string file_function session_state_function "

# The name without its schema or catalog: system.main.query -> query. Operators hold no dot.
base_name(name) := parts[count(parts) - 1] if {
	parts := split(name, ".")
}

# The lists below are whitespace-separated names in one string each, not set literals: regopy
# 1.5.2 builds a set literal of a few hundred strings on every evaluation (~100 ms), while a
# substring test over one string costs microseconds. A name holding whitespace is never listed.
listed(name, names) if {
	name != ""
	not contains(name, " ") # "a b" must not match two adjacent names; spaced() leaves no tab or newline
	contains(names, concat("", [" ", name, " "]))
}

# A list as written below, with every name between two spaces.
spaced(names) := concat("", [" ", strings.replace_n({"\n": " ", "\t": " "}, names), " "])

file_function(name) if listed(name, spaced(file_functions))

file_function(name) if regex.match(`^(read_|parquet_|iceberg_|delta_|sqlite_|postgres_|mysql_|odbc_|ducklake_|st_read|load_)`, name)

session_state_function(name) if listed(name, spaced(session_state_functions))

session_state_function(name) if regex.match(`^(duckdb_|pragma_|enable_|disable_)|^pg_.*_is_visible$|^has_.*_privilege$`, name)

# Functions that take SQL (or a table or function name) as text: what is inside the string is
# bound and run by DuckDB without ever reaching the analysis (json_serialize_plan with optimize
# folds Parquet statistics into constants: real values of withheld columns).
sql_text_functions := `
	json_serialize_sql json_serialize_plan json_deserialize_sql json_execute_serialized_sql query
	query_table sql_auto_complete check_peg_parser aggregate list_aggregate list_aggr
	array_aggregate array_aggr to_aggregate_state index_key duckdb_table_sample
`

# File, URL and file-metadata readers, as table or scalar functions, of any loaded extension.
file_functions := `
	glob sniff_csv parquet_scan arrow_scan arrow_scan_dumb pandas_scan python_arrow_scan
	python_map_function seq_scan delta_scan iceberg_scan sqlite_scan postgres_scan mysql_scan
`

# Settings, variables, sequences, catalog and session metadata, logs, secrets, statistics.
session_state_functions := `
	current_setting getvariable getenv current_schema current_schemas current_database current_catalog
	current_query current_user current_role session_user user version platform user_agent
	extension_versions in_search_path get_block_size current_connection_id current_query_id
	current_transaction_id txid_current nextval currval setval setseed stats which_secret checkpoint
	force_checkpoint write_log parse_duckdb_log_message col_description obj_description
	shobj_description format_type format_pg_type map_to_pg_oid inet_client_addr inet_client_port
	inet_server_addr inet_server_port database_size database_list show show_databases show_tables
	show_tables_expanded table_info storage_info metadata_info collations functions add_parquet_key
	copy_database import_database truncate_duckdb_logs create_external_resource
	register_external_resource register_external_resource_type deregister_external_resource
	destroy_external_resource verify_parallelism pg_get_viewdef pg_get_expr pg_get_constraintdef pg_has_role
	pg_is_other_temp_schema pg_my_temp_schema pg_conf_load_time pg_postmaster_start_time
`

# METADATA
# title: Allowed functions
# description: |
#   What the data room offers, reviewed one by one: operators, math, text, dates, aggregates
#   (regressions and quantiles included), window functions, lists, structs, maps and JSON values.
#   Not on the list on purpose: hashes (md5, sha1, sha256, hash: a stable pseudonymous key links
#   records across projects and tenants), encodings (hex, base64, url_encode: a value in disguise
#   slips past output checks), random identifiers (uuid), error() and sleep functions (an error
#   message or a delay carries a value past the output checks), type introspection, aggregate
#   states, geometry and VARIANT functions, and everything in a sensitive class above.
allowed(name) if listed(name, allowed_names)

allowed_names := spaced(allowed_list)

# Every allowed name, as a set (for tests and docs; decisions use allowed(name), which is cheaper).
allowed_functions := {name |
	some name in regex.split(`\s+`, trim_space(allowed_names))
}

# One string, not one per group joined per decision: regopy would rebuild the join on every
# evaluation (~25 µs of each decision). One paragraph per group, in this order:
# - operators the parser writes as function calls (LIKE is ~~, GLOB ~~~, SIMILAR TO and ~ regexp
#   matches, ->> JSON extraction, && list overlap, ^@ starts_with, ! factorial);
# - math; text;
# - date and time parts, arithmetic and formatting (the parser writes EXTRACT as date_part and
#   INTERVAL n DAY as to_days(...); the clock functions, now and current_date, are harmless);
# - aggregates; window functions;
# - lists, structs and maps (the parser writes [1, 2] as list_value, {'a': 1} as struct_pack,
#   list comprehensions as list_apply/list_filter and COLUMNS(lambda ...) as list_filter);
# - JSON values; conditionals.
allowed_list := `
	+ - * / // % ** ^ @ & | ~ << >> || ~~ !~~ ~~* !~~* ~~~ like_escape not_like_escape ilike_escape
	not_ilike_escape ->> @> <@ && ^@ <-> <=> !__postfix add subtract multiply divide xor

	abs sign signbit round round_even roundbankers floor ceil ceiling trunc even ln log log10 log2
	exp sqrt cbrt pow power mod fmod fdiv factorial gamma lgamma gcd lcm greatest_common_divisor
	least_common_multiple pi degrees radians sin cos tan cot asin acos atan atan2 sinh cosh tanh
	asinh acosh atanh isnan isinf isfinite nextafter bit_count binom random equi_width_bins bar

	lower lcase upper ucase length len char_length character_length strlen octet_length bit_length
	length_grapheme substring substr substring_grapheme left right left_grapheme right_grapheme trim
	ltrim rtrim lpad rpad concat concat_ws replace translate reverse repeat starts_with prefix
	ends_with suffix contains position strpos instr split_part string_split str_split
	string_to_array split string_split_regex str_split_regex regexp_split_to_array regexp_matches
	regexp_full_match regexp_replace regexp_extract regexp_extract_all regexp_escape format printf
	ascii chr unicode ord strip_accents nfc_normalize overlay array_to_string levenshtein
	damerau_levenshtein hamming mismatches jaccard jaro_similarity jaro_winkler_similarity
	format_bytes formatreadablesize formatreadabledecimalsize

	date_trunc datetrunc date_part datepart date_diff datediff date_sub datesub date_add age
	time_bucket strftime strptime try_strptime make_date make_time make_timestamp make_timestamptz
	make_timestamp_ms make_timestamp_ns to_timestamp epoch epoch_ms epoch_us epoch_ns year isoyear
	yearweek quarter month monthname week weekofyear day dayofmonth dayofweek dayofyear dayname
	weekday isodow hour minute second millisecond microsecond nanosecond era decade century
	millennium julian last_day days_in_month timezone timezone_hour timezone_minute
	normalized_interval to_years to_months to_quarters to_weeks to_days to_hours to_minutes
	to_seconds to_milliseconds to_microseconds to_decades to_centuries to_millennia now today
	current_date get_current_timestamp get_current_time current_localtime current_localtimestamp
	transaction_timestamp ago

	count count_star count_if countif sum fsum kahan_sum sumkahan product avg mean favg min max
	median mode quantile quantile_cont quantile_disc approx_quantile reservoir_quantile
	approx_count_distinct approx_top_k mad stddev stddev_samp stddev_pop variance var_samp var_pop
	sem skewness kurtosis kurtosis_pop entropy corr covar_samp covar_pop regr_slope regr_intercept
	regr_r2 regr_count regr_avgx regr_avgy regr_sxx regr_syy regr_sxy geomean geometric_mean
	weighted_avg wavg bool_and bool_or bit_and bit_or bit_xor first last any_value arbitrary arg_min
	arg_max argmin argmax min_by max_by list array_agg string_agg group_concat listagg histogram
	histogram_exact arg_min_null arg_max_null arg_min_nulls_last arg_max_nulls_last json_group_array
	json_group_object

	row_number rank dense_rank rank_dense percent_rank cume_dist ntile lag lead first_value
	last_value nth_value fill

	list_value array_value list_pack unnest range generate_series list_extract list_element
	array_extract element_at list_slice array_slice array_length cardinality list_contains list_has
	array_contains array_has list_has_any list_has_all array_has_any array_has_all list_position
	list_indexof array_position array_indexof list_concat list_cat array_concat array_cat
	list_append array_append array_push_back list_prepend array_prepend array_push_front
	list_distinct array_distinct list_unique array_unique list_sort array_sort list_reverse_sort
	array_reverse_sort list_reverse array_reverse list_transform array_transform list_apply
	array_apply apply list_filter array_filter filter list_reduce array_reduce reduce list_zip
	array_zip list_select array_select list_where array_where list_grade_up array_grade_up grade_up
	flatten list_resize array_resize list_intersect array_intersect list_sum list_avg list_min
	list_max list_count list_median list_mode list_first list_last list_any_value list_product
	list_stddev_samp list_stddev_pop list_var_samp list_var_pop list_sem list_mad list_skewness
	list_kurtosis list_kurtosis_pop list_entropy list_histogram list_bool_and list_bool_or
	list_approx_count_distinct list_string_agg list_cosine_similarity list_cosine_distance
	list_distance list_inner_product list_dot_product struct_pack row struct_extract
	struct_extract_at struct_insert struct_concat struct_keys struct_values struct_has struct_update
	map map_from_entries map_keys map_values map_entries map_extract map_extract_value map_contains
	map_concat map_contains_entry map_contains_value struct_contains struct_position struct_indexof
	array_pop_back array_pop_front generate_subscripts list_bit_and list_bit_or list_bit_xor
	array_cosine_distance array_cosine_similarity array_distance array_dot_product array_inner_product
	array_cross_product

	to_json json json_object json_array json_extract json_extract_string json_extract_path
	json_extract_path_text json_value json_exists json_keys json_type json_valid json_array_length
	json_contains json_quote json_structure json_transform json_merge_patch json_pretty row_to_json
	array_to_json from_json

	if nullif greatest least typeof
`

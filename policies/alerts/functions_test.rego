package dataroom.alerts.functions_test

import rego.v1

import data.dataroom.alerts
import data.dataroom.alerts.functions

config := {"denied_functions": {"repeat_count": 2, "window_s": 3600, "reason_codes": ["sql_in_string", "session_state_function", "file_function"]}}

plan_reason := {"code": "sql_in_string", "message": "function json_serialize_plan takes SQL text: not allowed"}

other_reason := {"code": "function_not_allowed", "message": "function levenshtein is not on the allow-list"}

file_reason := {"code": "file_function", "message": "function read_parquet reads files: not allowed"}

decision := {"kind": "decision", "decision_id": "d1", "user": "mallory", "project_id": "p1", "outcome": "denied", "columns": [], "reasons": ["sql_in_string"], "reason_details": [plan_reason]}

first := {"user_denied_function_attempts_in_window": 1, "user_denied_function_codes": ["sql_in_string"], "user_denied_function_decisions": ["d1"]}

again := {"user_denied_function_attempts_in_window": 2, "user_denied_function_codes": ["file_function", "sql_in_string"], "user_denied_function_decisions": ["d0", "d1"]}

one_attempt := {"event": decision, "context": object.union({"user_denied_in_window": 1}, first), "config": config}

test_alert_one_attempt_is_medium if {
	alerts.alerts(one_attempt) == {{
		"rule": "denied_function_class",
		"severity": "medium",
		"title": "Attempt to call a denied function class",
		"key": "denied_function_class:mallory",
		"message": "mallory tried a denied function class in project p1 (decision d1, query denied): sql_in_string: function json_serialize_plan takes SQL text: not allowed",
	}}
}

repeated_attempt := {"event": decision, "context": object.union({"user_denied_in_window": 2}, again), "config": config}

test_alert_repeated_attempts_are_high if {
	alerts.alerts(repeated_attempt) == {{
		"rule": "denied_function_class",
		"severity": "high",
		"title": "Repeated attempts to call denied function classes",
		"key": "denied_function_class_repeated:mallory",
		"message": "mallory made 2 attempts to call denied function classes (file_function, sql_in_string) within 3600 s (threshold 2); latest in project p1: sql_in_string: function json_serialize_plan takes SQL text: not allowed; decisions d0, d1",
	}}
}

ordinary := {"event": object.union(decision, {"reasons": ["function_not_allowed"], "reason_details": [other_reason]}), "context": object.union({"user_denied_in_window": 1}, object.union(first, {"user_denied_function_attempts_in_window": 0})), "config": config}

test_no_alert_function_not_on_allow_list if {
	alerts.alerts(ordinary) == set()
}

mixed := {"event": object.union(decision, {"reasons": ["function_not_allowed", "file_function"], "reason_details": [other_reason, file_reason]}), "context": object.union({"user_denied_in_window": 1}, first), "config": config}

test_alert_only_denied_class_reasons_are_named if {
	[a.message | some a in functions.alerts(mixed)] == ["mallory tried a denied function class in project p1 (decision d1, query denied): file_function: function read_parquet reads files: not allowed"]
}

no_reasons := {"event": object.union(decision, {"reasons": [], "reason_details": [], "outcome": "allowed"}), "context": object.union({"user_denied_in_window": 0}, again), "config": config}

test_no_alert_allowed_query_after_attempts if {
	alerts.alerts(no_reasons) == set()
}

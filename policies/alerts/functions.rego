# METADATA
# title: Attempts to call denied function classes
# description: |
#   Decisions denied for calling a function from a class that is never allowed (a reason code in
#   config.denied_functions.reason_codes: SQL text or plans in a string, session state, file
#   reads). These are ways around the column checks, not typos: one attempt is a medium alert,
#   repeated attempts by the same user within config.denied_functions.window_s are high. An
#   ordinary function missing from the allow-list (function_not_allowed) is not an alert.
package dataroom.alerts.functions

import rego.v1

# METADATA
# title: Denied function class alerts
# description: Every denied-function-class alert one decision raises.
alerts(req) := attempt(req) | repeated(req)

hits(req) := [concat(": ", [r.code, r.message]) |
	some r in req.event.reason_details
	r.code in req.config.denied_functions.reason_codes
]

# METADATA
# title: Attempt to call a denied function class
# description: A user's first attempt within the window (fewer than config.denied_functions.repeat_count).
attempt(req) := {a |
	req.event.kind == "decision"
	found := hits(req)
	count(found) > 0
	req.context.user_denied_function_attempts_in_window < req.config.denied_functions.repeat_count
	a := {
		"rule": "denied_function_class",
		"severity": "medium",
		"title": "Attempt to call a denied function class",
		"key": concat(":", ["denied_function_class", req.event.user]),
		# concat, not sprintf, around computed strings: regopy 1.5.2 quotes them inside sprintf
		"message": concat("", [
			sprintf("%s tried a denied function class in project %s (decision %s, query %s): ", [req.event.user, req.event.project_id, req.event.decision_id, req.event.outcome]),
			concat("; ", found),
		]),
	}
}

# METADATA
# title: Repeated attempts to call denied function classes
# description: A user reached config.denied_functions.repeat_count attempts within config.denied_functions.window_s seconds.
repeated(req) := {a |
	req.event.kind == "decision"
	count(hits(req)) > 0
	n := req.context.user_denied_function_attempts_in_window
	n >= req.config.denied_functions.repeat_count
	a := {
		"rule": "denied_function_class",
		"severity": "high",
		"title": "Repeated attempts to call denied function classes",
		"key": concat(":", ["denied_function_class_repeated", req.event.user]),
		"message": concat("", [
			sprintf("%s made %v attempts to call denied function classes (", [req.event.user, n]),
			concat(", ", req.context.user_denied_function_codes),
			sprintf(") within %v s (threshold %v); latest in project %s: ", [req.config.denied_functions.window_s, req.config.denied_functions.repeat_count, req.event.project_id]),
			concat("; ", hits(req)), "; decisions ", concat(", ", req.context.user_denied_function_decisions),
		]),
	}
}

# METADATA
# title: How allowed queries ended
# description: |
#   Alerts about execution: an engine crash (the supervised worker died: native abort, killed), bursts
#   of resource-limit refusals by one user, and allowed queries whose completion record did not
#   arrive within the grace period. Events: `completion` (one completion record, with the user and
#   project of its decision) and `pending` (an allowed query still without a completion, offered by
#   every scan until it completes or this rule fires).
package dataroom.alerts.execution

import rego.v1

# METADATA
# title: Execution alerts
# description: Every execution alert one audit event (or one still-pending query) raises.
alerts(req) := (engine_crash(req) | limit_refusals(req)) | never_completed(req)

# METADATA
# title: Query crashed the execution engine
# description: |
#   A completion refused with reason_code engine_crash: the execution worker died (native abort,
#   out-of-memory kill, signal). One is enough: a crash may be an exploit attempt on the engine.
engine_crash(req) := {a |
	req.event.kind == "completion"
	req.event.status == "refused"
	req.event.reason_code == "engine_crash"
	a := {
		"rule": "engine_crash",
		"severity": "high",
		"title": "Query crashed the execution engine",
		"key": concat(":", ["engine_crash", req.event.decision_id]),
		"message": sprintf("%s's query in %s (decision %s) crashed the execution worker (%s: %s); a crash may be an exploit attempt: read the query's SQL and the broker log around %s", [req.event.user, req.event.project_id, req.event.decision_id, req.event.error_type, req.event.error, req.event.timestamp]),
	}
}

# METADATA
# title: Burst of resource-limit refusals
# description: |
#   One user had at least config.limit_refusals.count queries refused for a resource limit (a
#   reason_code in config.limit_refusals.reason_codes: memory, time, rows) within
#   config.limit_refusals.window_s seconds: probing the limits, or starving the shared engine.
limit_refusals(req) := {a |
	req.event.kind == "completion"
	req.event.status == "refused"
	req.event.reason_code in req.config.limit_refusals.reason_codes
	n := req.context.user_limit_refusals_in_window
	n >= req.config.limit_refusals.count
	codes := sort([s |
		some code # (regopy 1.5.2 cannot parse `some k, v in` inside a comprehension)
		k := req.context.user_limit_refusal_codes[code]
		s := sprintf("%s x%v", [code, k])
	])
	a := {
		"rule": "limit_refusals",
		"severity": "medium",
		"title": "Burst of resource-limit refusals",
		"key": concat(":", ["limit_refusals", req.event.user]),
		# concat, not sprintf, around computed strings: regopy 1.5.2 quotes them inside sprintf
		"message": concat("", [
			sprintf("%s had %v queries refused for resource limits within %v s (threshold %v): ", [req.event.user, n, req.config.limit_refusals.window_s, req.config.limit_refusals.count]),
			concat(", ", codes), "; latest in project ", req.event.project_id,
			"; decisions ", concat(", ", req.context.user_limit_refusal_decisions),
		]),
	}
}

# METADATA
# title: Query never completed
# description: |
#   An allowed query had no completion record config.never_completed.grace_s seconds after its
#   decision (default: the query time limit plus 60 s): the worker or the broker died without
#   recording how the query ended. A completion that arrives after the grace period raises the
#   same alert (medium: the time limit did not stop the query) unless it was already raised.
never_completed(req) := unfinished(req) | late(req)

unfinished(req) := {a |
	req.event.kind == "pending"
	req.event.waited_s > req.config.never_completed.grace_s
	a := {
		"rule": "never_completed",
		"severity": "high",
		"title": "Query never completed",
		"key": concat(":", ["never_completed", req.event.decision_id]),
		"message": sprintf("%s's query in %s (decision %s), allowed at %s, has no completion record %v s later (grace %v s): the execution worker or the broker died without recording how it ended; check the broker log", [req.event.user, req.event.project_id, req.event.decision_id, req.event.timestamp, round(req.event.waited_s), req.config.never_completed.grace_s]),
	}
}

late(req) := {a |
	req.event.kind == "completion"
	req.context.completed_after_s > req.config.never_completed.grace_s
	not req.context.never_completed_alerted
	a := {
		"rule": "never_completed",
		"severity": "medium",
		"title": "Query completed only after the grace period",
		"key": concat(":", ["never_completed", req.event.decision_id]),
		"message": sprintf("%s's query in %s (decision %s) completed (%s) only %v s after it was allowed (grace %v s): the time limit did not stop it", [req.event.user, req.event.project_id, req.event.decision_id, req.event.status, round(req.context.completed_after_s), req.config.never_completed.grace_s]),
	}
}

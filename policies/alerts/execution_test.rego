package dataroom.alerts.execution_test

import rego.v1

import data.dataroom.alerts
import data.dataroom.alerts.execution

config := {
	"limit_refusals": {"count": 3, "window_s": 600, "reason_codes": ["memory_limit", "time_limit", "row_limit"]},
	"never_completed": {"grace_s": 120},
}

completion := {
	"kind": "completion",
	"decision_id": "d1",
	"user": "mallory",
	"project_id": "p1",
	"timestamp": "2026-03-01T10:00:05+00:00",
	"status": "refused",
	"reason_code": "engine_crash",
	"error": "the execution worker died (signal 6)",
	"error_type": "EngineCrashed",
	"rows": 0,
	"bytes": 0,
}

quiet := {"volume_baseline": {"count": 0, "mean": 0, "stddev": 0}, "completed_after_s": 5, "never_completed_alerted": false, "user_limit_refusals_in_window": 0, "user_limit_refusal_codes": {}, "user_limit_refusal_decisions": []}

crash := {"event": completion, "context": quiet, "config": config}

test_alert_engine_crash if {
	alerts.alerts(crash) == {{
		"rule": "engine_crash",
		"severity": "high",
		"title": "Query crashed the execution engine",
		"key": "engine_crash:d1",
		"message": "mallory's query in p1 (decision d1) crashed the execution worker (EngineCrashed: the execution worker died (signal 6)); a crash may be an exploit attempt: read the query's SQL and the broker log around 2026-03-01T10:00:05+00:00",
	}}
}

guard := {"event": object.union(completion, {"reason_code": "engine_guard"}), "context": quiet, "config": config}

cancelled := {"event": object.union(completion, {"reason_code": "cancelled"}), "context": quiet, "config": config}

failed := {"event": object.union(completion, {"status": "failed", "reason_code": null}), "context": quiet, "config": config}

test_no_alert_engine_guard_refusal if {
	alerts.alerts(guard) == set()
}

test_no_alert_cancelled_query if {
	alerts.alerts(cancelled) == set()
}

test_no_alert_failed_query_is_not_a_crash if {
	alerts.alerts(failed) == set()
}

memory := object.union(completion, {"decision_id": "d3", "user": "bob", "reason_code": "memory_limit"})

three_limits := {"user_limit_refusals_in_window": 3, "user_limit_refusal_codes": {"time_limit": 1, "memory_limit": 2}, "user_limit_refusal_decisions": ["d1", "d2", "d3"]}

two_limits := {"user_limit_refusals_in_window": 2, "user_limit_refusal_codes": {"memory_limit": 2}, "user_limit_refusal_decisions": ["d2", "d3"]}

limit_burst := {"event": memory, "context": object.union(quiet, three_limits), "config": config}

below_limit_burst := {"event": memory, "context": object.union(quiet, two_limits), "config": config}

test_alert_limit_refusals_at_threshold if {
	alerts.alerts(limit_burst) == {{
		"rule": "limit_refusals",
		"severity": "medium",
		"title": "Burst of resource-limit refusals",
		"key": "limit_refusals:bob",
		"message": "bob had 3 queries refused for resource limits within 600 s (threshold 3): memory_limit x2, time_limit x1; latest in project p1; decisions d1, d2, d3",
	}}
}

test_no_alert_limit_refusals_below_threshold if {
	alerts.alerts(below_limit_burst) == set()
}

guard_in_burst := {"event": object.union(memory, {"reason_code": "engine_guard"}), "context": object.union(quiet, three_limits), "config": config}

test_no_alert_limit_burst_on_other_refusal if {
	execution.limit_refusals(guard_in_burst) == set()
}

executed_in_burst := {"event": object.union(memory, {"status": "executed", "reason_code": null, "rows": 10}), "context": object.union(quiet, three_limits), "config": config}

test_no_alert_limit_burst_on_executed_query if {
	execution.limit_refusals(executed_in_burst) == set()
}

pending := {"kind": "pending", "decision_id": "d9", "user": "carol", "project_id": "p2", "timestamp": "2026-03-01T10:00:00+00:00", "waited_s": 121.4}

overdue := {"event": pending, "context": {}, "config": config}

in_flight := {"event": object.union(pending, {"waited_s": 119}), "context": {}, "config": config}

at_grace := {"event": object.union(pending, {"waited_s": 120}), "context": {}, "config": config}

test_alert_never_completed if {
	alerts.alerts(overdue) == {{
		"rule": "never_completed",
		"severity": "high",
		"title": "Query never completed",
		"key": "never_completed:d9",
		"message": "carol's query in p2 (decision d9), allowed at 2026-03-01T10:00:00+00:00, has no completion record 121 s later (grace 120 s): the execution worker or the broker died without recording how it ended; check the broker log",
	}}
}

test_no_alert_query_still_within_grace if {
	alerts.alerts(in_flight) == set()
}

test_no_alert_pending_exactly_at_grace if {
	alerts.alerts(at_grace) == set()
}

executed := object.union(completion, {"decision_id": "d9", "user": "carol", "project_id": "p2", "status": "executed", "reason_code": null, "rows": 10})

late := {"event": executed, "context": object.union(quiet, {"completed_after_s": 300}), "config": config}

late_after_alert := {"event": executed, "context": object.union(quiet, {"completed_after_s": 300, "never_completed_alerted": true}), "config": config}

in_time := {"event": executed, "context": object.union(quiet, {"completed_after_s": 119}), "config": config}

test_alert_completed_after_grace if {
	alerts.alerts(late) == {{
		"rule": "never_completed",
		"severity": "medium",
		"title": "Query completed only after the grace period",
		"key": "never_completed:d9",
		"message": "carol's query in p2 (decision d9) completed (executed) only 300 s after it was allowed (grace 120 s): the time limit did not stop it",
	}}
}

test_no_alert_late_completion_after_never_completed_alert if {
	alerts.alerts(late_after_alert) == set()
}

test_no_alert_completion_in_time if {
	alerts.alerts(in_time) == set()
}

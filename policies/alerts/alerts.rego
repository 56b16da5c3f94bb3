# METADATA
# title: Audit stream alerts
# description: |
#   Rules over the audit stream, evaluated once per audit event by `dataroom alerts scan` (and by the
#   review service), never on the query path. Input: {event, context, config}. `event` is one decision
#   or completion record, flattened; `context` is what the scanner remembers from earlier events
#   (denials in the window, the row-volume baseline, each column's previous classification);
#   `config` holds the thresholds from $DATAROOM_HOME/alerts.toml. Output: a set of alerts, each
#   {rule, severity, title, key, message, count?, weight?}; the scanner suppresses a repeated key within
#   config.dedupe_s in its alert log, and hands every hit to the lifecycle (count and weight: its evidence).
#   Execution alerts (engine crashes, resource-limit bursts, queries that never completed) are in
#   execution.rego; attempts to call denied function classes in functions.rego; an audit shipper
#   falling behind in shipping.rego. How open alerts group and escalate: lifecycle.rego.
package dataroom.alerts

import rego.v1

import data.dataroom.alerts.execution
import data.dataroom.alerts.functions
import data.dataroom.alerts.shipping

# METADATA
# title: Alerts
# description: Every alert one audit event raises.
alerts(req) := (((((denied_burst(req) | unusual_volume(req)) | large_result(req)) | new_pii_column(req)) | execution.alerts(req)) | functions.alerts(req)) | shipping.alerts(req)

main := alerts(input)

# METADATA
# title: Burst of denied queries
# description: One user had at least config.denied_burst.count denied queries within config.denied_burst.window_s seconds (a coalesced record counts as the requests it stands for).
denied_burst(req) := {a |
	req.event.kind == "decision"
	req.event.outcome == "denied"
	n := req.context.user_denied_in_window
	n >= req.config.denied_burst.count
	a := {
		"rule": "denied_burst",
		"severity": "medium",
		"title": "Burst of denied queries",
		"key": concat(":", ["denied_burst", req.event.user]),
		"message": sprintf("%s had %v denied queries within %v s (threshold %v); latest in project %s", [req.event.user, n, req.config.denied_burst.window_s, req.config.denied_burst.count, req.event.project_id]),
		# evidence for the alert's lifecycle (lifecycle.rego): an alert opens with the window's count, each later hit adds its requests
		"count": n,
		"weight": object.get(req.event, "attempts", 1),
	}
}

# METADATA
# title: Unusual row volume
# description: An executed query returned more rows than the user's baseline in the project (mean + sigma * stddev over at least min_history earlier queries, and at least min_rows).
unusual_volume(req) := {a |
	req.event.kind == "completion"
	req.event.status == "executed"
	b := req.context.volume_baseline
	b.count >= req.config.volume.min_history
	limit := max([b.mean + (req.config.volume.sigma * b.stddev), req.config.volume.min_rows])
	req.event.rows > limit
	a := {
		"rule": "unusual_volume",
		"severity": "medium",
		"title": "Unusual row volume",
		"key": concat(":", ["unusual_volume", req.event.user, req.event.project_id]),
		"message": sprintf("%s's query in %s returned %v rows; their usual is about %v (limit %v over %v earlier queries)", [req.event.user, req.event.project_id, req.event.rows, round(b.mean), round(limit), b.count]),
	}
}

# METADATA
# title: Large result
# description: An executed query returned at least config.volume.max_rows rows, whatever the user's history.
large_result(req) := {a |
	req.event.kind == "completion"
	req.event.status == "executed"
	req.event.rows >= req.config.volume.max_rows
	a := {
		"rule": "large_result",
		"severity": "high",
		"title": "Large result",
		"key": concat(":", ["large_result", req.event.decision_id]),
		"message": sprintf("%s's query in %s returned %v rows (alert threshold %v)", [req.event.user, req.event.project_id, req.event.rows, req.config.volume.max_rows]),
	}
}

# METADATA
# title: Query touched a newly classified PII column
# description: |
#   A query references a column that is PII now but was classified otherwise when the data room last
#   saw it (in an earlier audit record or in the catalog at an earlier scan), and the change is at most
#   config.new_pii.days old. Such a column may have been read before it became PII.
new_pii_column(req) := {a |
	req.event.kind == "decision"
	some c in req.event.columns
	c.classification == "pii"
	c.previous_classification != null
	c.previous_classification != "pii"
	c.days_since_reclassified <= req.config.new_pii.days
	a := {
		"rule": "new_pii_column",
		"severity": "high",
		"title": "Query touched a newly classified PII column",
		"key": concat(":", ["new_pii_column", req.event.user, c.table, c.column]),
		"message": concat("", [req.event.user, " referenced ", c.table, ".", c.column, ", reclassified from ", c.previous_classification, " to pii ", sprintf("%v", [round(c.days_since_reclassified)]), " day(s) ago (query ", req.event.outcome, " in project ", req.event.project_id, ")"]),
	}
}

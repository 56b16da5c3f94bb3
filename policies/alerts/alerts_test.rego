package dataroom.alerts_test

import rego.v1

import data.dataroom.alerts

config := {
	"denied_burst": {"count": 3, "window_s": 600},
	"volume": {"sigma": 3, "min_history": 5, "min_rows": 100, "max_rows": 100000},
	"new_pii": {"days": 30},
}

denied := {"kind": "decision", "decision_id": "d1", "user": "alice", "project_id": "p1", "outcome": "denied", "columns": []}

allowed := {"kind": "decision", "decision_id": "d2", "user": "alice", "project_id": "p1", "outcome": "allowed", "columns": []}

burst := {"event": denied, "context": {"user_denied_in_window": 3}, "config": config}

below_burst := {"event": denied, "context": {"user_denied_in_window": 2}, "config": config}

allowed_after_denials := {"event": allowed, "context": {"user_denied_in_window": 7}, "config": config}

test_alert_burst_at_threshold if {
	alerts.alerts(burst) == {{
		"rule": "denied_burst",
		"severity": "medium",
		"title": "Burst of denied queries",
		"key": "denied_burst:alice",
		"message": "alice had 3 denied queries within 600 s (threshold 3); latest in project p1",
		"count": 3,
		"weight": 1,
	}}
}

test_alert_burst_weighs_a_coalesced_record if {
	some a in alerts.alerts({"event": object.union(denied, {"attempts": 40}), "context": {"user_denied_in_window": 43}, "config": config})
	a.count == 43
	a.weight == 40
}

test_no_alert_burst_below_threshold if {
	alerts.alerts(below_burst) == set()
}

test_no_alert_burst_on_allowed_query if {
	alerts.alerts(allowed_after_denials) == set()
}

big := {"kind": "completion", "decision_id": "d3", "user": "bob", "project_id": "p1", "status": "executed", "rows": 5000}

baseline := {"count": 10, "mean": 100, "stddev": 20}

volume_spike := {"event": big, "context": {"volume_baseline": baseline}, "config": config}

short_history := {"event": big, "context": {"volume_baseline": {"count": 4, "mean": 100, "stddev": 20}}, "config": config}

usual := {"kind": "completion", "decision_id": "d4", "user": "bob", "project_id": "p1", "status": "executed", "rows": 150}

usual_volume := {"event": usual, "context": {"volume_baseline": baseline}, "config": config}

failed := {"kind": "completion", "decision_id": "d5", "user": "bob", "project_id": "p1", "status": "failed", "rows": 0}

huge := {"kind": "completion", "decision_id": "d6", "user": "bob", "project_id": "p1", "status": "executed", "rows": 200000}

huge_first_query := {"event": huge, "context": {"volume_baseline": {"count": 0, "mean": 0, "stddev": 0}}, "config": config}

test_alert_unusual_volume if {
	alerts.alerts(volume_spike) == {{
		"rule": "unusual_volume",
		"severity": "medium",
		"title": "Unusual row volume",
		"key": "unusual_volume:bob:p1",
		"message": "bob's query in p1 returned 5000 rows; their usual is about 100 (limit 160 over 10 earlier queries)",
	}}
}

test_no_alert_volume_without_enough_history if {
	alerts.alerts(short_history) == set()
}

test_no_alert_usual_volume if {
	alerts.alerts(usual_volume) == set()
}

failed_query := {"event": failed, "context": {"volume_baseline": baseline}, "config": config}

test_no_alert_failed_query if {
	alerts.alerts(failed_query) == set()
}

test_alert_large_result_without_history if {
	alerts.alerts(huge_first_query) == {{
		"rule": "large_result",
		"severity": "high",
		"title": "Large result",
		"key": "large_result:d6",
		"message": "bob's query in p1 returned 200000 rows (alert threshold 100000)",
	}}
}

reclassified := {"table": "acme.findings", "column": "asset_ip", "classification": "pii", "previous_classification": "quasi_identifier", "days_since_reclassified": 2.4}

long_pii := {"table": "acme.findings", "column": "analyst_email", "classification": "pii", "previous_classification": null, "days_since_reclassified": null}

old_change := {"table": "acme.findings", "column": "asset_ip", "classification": "pii", "previous_classification": "internal", "days_since_reclassified": 45}

touch_reclassified := {"event": object.union(denied, {"columns": [reclassified]}), "context": {"user_denied_in_window": 1}, "config": config}

touch_long_standing := {"event": object.union(denied, {"columns": [long_pii]}), "context": {"user_denied_in_window": 1}, "config": config}

touch_old_change := {"event": object.union(denied, {"columns": [old_change]}), "context": {"user_denied_in_window": 1}, "config": config}

test_alert_new_pii_column if {
	alerts.alerts(touch_reclassified) == {{
		"rule": "new_pii_column",
		"severity": "high",
		"title": "Query touched a newly classified PII column",
		"key": "new_pii_column:alice:acme.findings:asset_ip",
		"message": "alice referenced acme.findings.asset_ip, reclassified from quasi_identifier to pii 2 day(s) ago (query denied in project p1)",
	}}
}

test_no_alert_long_standing_pii_column if {
	alerts.alerts(touch_long_standing) == set()
}

test_no_alert_pii_reclassified_long_ago if {
	alerts.alerts(touch_old_change) == set()
}

package dataroom.alerts.shipping_test

import rego.v1

import data.dataroom.alerts

config := {"audit_shipping": {"max_lag_s": 900}}

status(backlog, lag, error) := {"kind": "shipping", "stream": "audit.jsonl", "backlog": backlog, "lag_s": lag, "oldest_unshipped": "2026-01-01T00:00:00+00:00", "error": error}

test_alert_shipping_behind if {
	alerts.alerts({"event": status(3, 1200.4, null), "context": {}, "config": config}) == {{
		"rule": "audit_shipping_lag",
		"severity": "high",
		"title": "Audit shipping is behind",
		"key": "audit_shipping_lag:audit.jsonl",
		"message": "3 checkpoint(s) of audit.jsonl are not anchored in the audit bucket; the oldest is 1200 s old (limit 900 s)",
	}}
}

test_alert_shipping_behind_names_the_last_error if {
	some a in alerts.alerts({"event": status(1, 901, "cannot upload: connection refused"), "context": {}, "config": config})
	endswith(a.message, "; last error: cannot upload: connection refused")
}

test_no_alert_shipping_within_the_limit if {
	alerts.alerts({"event": status(3, 899, null), "context": {}, "config": config}) == set()
}

test_no_alert_shipping_without_backlog if {
	alerts.alerts({"event": status(0, 5000, null), "context": {}, "config": config}) == set()
}

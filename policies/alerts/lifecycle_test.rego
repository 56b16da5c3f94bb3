package dataroom.alerts.lifecycle_test

import rego.v1

import data.dataroom.alerts.lifecycle

burst(n) := {"rule": "denied_burst", "severity": "medium", "count": n}

test_alert_burst_medium_at_its_threshold if {
	lifecycle.severity(burst(5)) == "medium"
	lifecycle.severity(burst(99)) == "medium"
}

test_alert_burst_high_from_100 if {
	lifecycle.severity(burst(100)) == "high"
	lifecycle.severity(burst(300)) == "high"
}

test_alert_burst_critical_from_1000 if {
	lifecycle.severity(burst(1000)) == "critical"
	lifecycle.severity(burst(1500)) == "critical"
}

test_alert_never_below_the_rule_severity if {
	lifecycle.severity({"rule": "engine_crash", "severity": "high", "count": 1}) == "high"
	lifecycle.severity({"rule": "engine_crash", "severity": "high", "count": 100}) == "critical"
}

test_alert_default_ladder if {
	lifecycle.severity({"rule": "unusual_volume", "severity": "medium", "count": 9}) == "medium"
	lifecycle.severity({"rule": "unusual_volume", "severity": "medium", "count": 10}) == "high"
}

test_alert_unknown_severity_counts_as_medium if {
	lifecycle.severity({"rule": "something_new", "severity": "weird", "count": 1}) == "medium"
}

test_alert_group_key_is_rule_and_user if {
	lifecycle.group_key({"rule": "large_result", "key": "large_result:d1", "user": "bob"}) == "large_result:bob"
	lifecycle.group_key({"rule": "large_result", "key": "large_result:d2", "user": "bob"}) == "large_result:bob"
}

test_alert_group_key_without_user_is_the_rule_key if {
	lifecycle.group_key({"rule": "audit_log_shrank", "key": "audit_log_shrank:41", "user": null}) == "audit_log_shrank:41"
	lifecycle.group_key({"rule": "audit_shipping_lag", "key": "audit_shipping_lag:audit.jsonl"}) == "audit_shipping_lag:audit.jsonl"
}

test_no_alert_two_users_share_a_group if {
	lifecycle.group_key({"rule": "denied_burst", "key": "x", "user": "alice"}) != lifecycle.group_key({"rule": "denied_burst", "key": "x", "user": "mallory"})
}

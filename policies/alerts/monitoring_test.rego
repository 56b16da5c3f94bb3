package dataroom.alerts.monitoring_test

import rego.v1

import data.dataroom.alerts.monitoring

config := {"min_n": 20, "r2_min": 0.3, "rmse_ratio_max": 2.0, "drift_p_value": 0.001, "drift_min_statistic": 0.2}

quiet := {"ks": 0.05, "ks_p": 0.9, "psi": 0.1, "wasserstein": 0.2}

req(window) := {
	"model": {"name": "m", "version": 1},
	"window": object.union({"segment": "acme", "window_start": "2024-09-09", "n": 40, "r2": 0.9, "rmse": 6.0, "mae": 5.0, "drift": {"cvss": quiet}}, window),
	"reference": {"rmse": 6.5, "n": 800},
	"config": config,
}

test_no_alert_healthy_window if {
	monitoring.alerts(req({})) == set()
}

test_alert_r2_below_threshold if {
	monitoring.alerts(req({"r2": -0.25})) == {{
		"rule": "model_performance", "kind": "performance", "severity": "high", "title": "Model performance drop",
		"key": "model_performance:m:acme",
		"message": "model m on acme, week of 2024-09-09 (n=40): R² -0.250 below 0.3",
	}}
}

test_alert_rmse_above_ratio if {
	a := monitoring.alerts(req({"rmse": 14.0}))
	[x.message | some x in a] == ["model m on acme, week of 2024-09-09 (n=40): RMSE 14.00 above 13.00 (2× the reference 6.50)"]
}

test_no_alert_small_window_whatever_its_scores if {
	monitoring.alerts(req({"n": 5, "r2": -3, "drift": {"cvss": {"ks": 0.9, "ks_p": 0.00001, "psi": 4, "wasserstein": 3}}})) == set()
}

test_alert_drift_significant_and_large if {
	a := monitoring.alerts(req({"drift": {"cvss": {"ks": 0.45, "ks_p": 0.00002, "psi": 1.2, "wasserstein": 2.5}, "remediation_days": quiet}}))
	{[x.rule, x.key] | some x in a} == {["model_drift", "model_drift:m:acme"]}
	[x.message | some x in a] == ["model m on acme, week of 2024-09-09 (n=40): drift in cvss (KS 0.450, p=2.0e-05, PSI 1.20, Wasserstein 2.50)"]
}

test_no_alert_significant_but_tiny_drift if {
	monitoring.alerts(req({"drift": {"cvss": {"ks": 0.01, "ks_p": 0.0000001, "psi": 0.001, "wasserstein": 0.01}}})) == set()
}

test_no_alert_missing_scores if {
	monitoring.alerts(req({"r2": null, "rmse": null, "drift": {"cvss": {"ks": null, "ks_p": null, "psi": null, "wasserstein": null}}})) == set()
}

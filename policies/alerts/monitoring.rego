# METADATA
# title: Model monitoring alerts
# description: |
#   Thresholds on a registered model's per-segment, per-window scores, evaluated by
#   `dataroom monitor run` (dataroom/monitoring/runner.py) once per scored window, never on the
#   query path. Input: {model, window, reference, config}. `window` holds the segment, window_start,
#   n, r2, rmse, mae and drift (per column: ks, ks_p, psi, wasserstein); `reference` the segment's
#   reference-period rmse and n; `config` is the [monitoring] table of $DATAROOM_HOME/alerts.toml.
#   Output: a set of alerts {rule, kind, severity, title, key, message}. An alert moves the model's
#   hypothesis back to Data Exploration and quarantines the segment for the model's projects.
#   Windows with fewer than config.min_n rows raise nothing (too few to judge).
package dataroom.alerts.monitoring

import rego.v1

# METADATA
# title: Monitoring alerts
# description: Every alert one scored window raises.
alerts(req) := performance_drop(req) | drift(req)

main := alerts(input)

judged(req) if req.window.n >= req.config.min_n

# METADATA
# title: Model performance drop
# description: R² below config.r2_min, or RMSE above config.rmse_ratio_max times the segment's reference RMSE.
performance_drop(req) := {a |
	judged(req)
	why := performance_reasons(req)
	count(why) > 0
	a := {
		"rule": "model_performance",
		"kind": "performance",
		"severity": "high",
		"title": "Model performance drop",
		"key": concat(":", ["model_performance", req.model.name, req.window.segment]),
		"message": concat("", [
			"model ", req.model.name, " on ", req.window.segment, ", week of ", req.window.window_start, " (n=",
			sprintf("%v", [req.window.n]), "): ", concat("; ", sort([r | some r in why])),
		]),
	}
}

performance_reasons(req) := {r |
	req.window.r2 != null
	req.window.r2 < req.config.r2_min
	r := concat("", ["R² ", sprintf("%.3f", [req.window.r2]), " below ", sprintf("%v", [req.config.r2_min])])
} | {r |
	req.window.rmse != null
	req.reference.rmse != null
	limit := req.config.rmse_ratio_max * req.reference.rmse
	req.window.rmse > limit
	r := concat("", ["RMSE ", sprintf("%.2f", [req.window.rmse]), " above ", sprintf("%.2f", [limit]), " (", sprintf("%v", [req.config.rmse_ratio_max]), "× the reference ", sprintf("%.2f", [req.reference.rmse]), ")"])
}

# METADATA
# title: Distribution drift
# description: |
#   A feature's or the target's distribution moved away from the reference period: a
#   two-sample KS p-value below config.drift_p_value with a KS statistic of at least
#   config.drift_min_statistic (with large windows a tiny difference is significant: the
#   statistic says it matters).
drift(req) := {a |
	judged(req)
	drifted := sort(drifted_columns(req))
	count(drifted) > 0
	a := {
		"rule": "model_drift",
		"kind": "drift",
		"severity": "high",
		"title": "Distribution drift",
		"key": concat(":", ["model_drift", req.model.name, req.window.segment]),
		"message": concat("", [
			"model ", req.model.name, " on ", req.window.segment, ", week of ", req.window.window_start, " (n=",
			sprintf("%v", [req.window.n]), "): drift in ", concat("; ", [describe(c, req.window.drift[c]) | some c in drifted]),
		]),
	}
}

drifted_columns(req) := {c |
	some c # (regopy 1.5.2 cannot parse `some k, v in` inside a comprehension)
	d := req.window.drift[c]
	drifted_column(d, req.config)
}

drifted_column(d, config) if {
	d.ks_p != null
	d.ks_p < config.drift_p_value
	d.ks >= config.drift_min_statistic
}

describe(c, d) := concat("", [c, " (KS ", sprintf("%.3f", [d.ks]), ", p=", sprintf("%.1e", [d.ks_p]), ", PSI ", sprintf("%.2f", [d.psi]), ", Wasserstein ", sprintf("%.2f", [d.wasserstein]), ")"])

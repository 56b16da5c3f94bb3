# METADATA
# title: Audit shipping
# description: |
#   The shipper anchors signed checkpoints in the Object Lock bucket. Until they are anchored, an
#   attacker with the machine can still rewrite what they cover, so a shipper that falls behind is
#   itself an alert. Event `shipping` (offered by every evaluation of the running room while
#   DATAROOM_AUDIT_BUCKET is set): {stream, backlog, lag_s, oldest_unshipped, error}.
package dataroom.alerts.shipping

import rego.v1

# METADATA
# title: Audit shipping alerts
# description: Every shipping alert one status report raises.
alerts(req) := lagging(req)

# METADATA
# title: Audit shipping is behind
# description: The oldest checkpoint not yet anchored is older than config.audit_shipping.max_lag_s seconds (DATAROOM_AUDIT_SHIP_MAX_LAG_S).
lagging(req) := {a |
	req.event.kind == "shipping"
	req.event.backlog > 0
	req.event.lag_s > req.config.audit_shipping.max_lag_s
	reason := object.get(req.event, "error", null)
	a := {
		"rule": "audit_shipping_lag",
		"severity": "high",
		"title": "Audit shipping is behind",
		"key": concat(":", ["audit_shipping_lag", req.event.stream]),
		"message": concat("", [
			sprintf("%v checkpoint(s) of %s are not anchored in the audit bucket; the oldest is %v s old (limit %v s)", [req.event.backlog, req.event.stream, round(req.event.lag_s), req.config.audit_shipping.max_lag_s]),
			last_error(reason),
		]),
	}
}

last_error(reason) := "" if reason == null

last_error(reason) := concat("", ["; last error: ", reason]) if reason != null

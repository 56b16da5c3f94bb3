# METADATA
# title: Alert lifecycle: grouping and escalation
# description: |
#   While an alert is open (or acknowledged), every new hit of the same rule about the same subject
#   joins it instead of raising another: `keys` names the group a raised alert belongs to (the rule
#   and the user it is about; the rule's own key when it is about no user). The alert's count is the
#   evidence behind it (denied requests for a burst, hits otherwise), and `severities` grows its
#   severity with that count along the rule's ladder, never below the rule's own severity.
#   Evaluated by dataroom.alerts.lifecycle once per scan, never on the query path.
package dataroom.alerts.lifecycle

import rego.v1

# METADATA
# title: Severity ladders
# description: |
#   Per rule, the count at which an open alert reaches a severity. A burst of denied queries is
#   medium from its threshold (config.denied_burst.count, 5 by default), high from 100 denied
#   requests, critical from 1000. Rules without their own ladder: high from 10 hits, critical from 100.
ladders := {
	"denied_burst": [{"count": 100, "severity": "high"}, {"count": 1000, "severity": "critical"}],
	"limit_refusals": [{"count": 20, "severity": "high"}, {"count": 200, "severity": "critical"}],
	"denied_function_class": [{"count": 5, "severity": "high"}, {"count": 25, "severity": "critical"}],
	"audit_shipping_lag": [{"count": 4, "severity": "critical"}],
}

default_ladder := [{"count": 10, "severity": "high"}, {"count": 100, "severity": "critical"}]

severity_names := ["low", "medium", "high", "critical"]

rank := {"low": 0, "medium": 1, "high": 2, "critical": 3}

ladder(rule) := object.get(ladders, rule, default_ladder)

# METADATA
# title: Severity of an open alert
# description: The highest of the rule's own severity and every ladder step the count has reached.
severity(a) := severity_names[max(array.concat([object.get(rank, a.severity, 1)], [rank[s.severity] | some s in ladder(a.rule); a.count >= s.count]))]

# METADATA
# title: Group key
# description: The rule and the user an alert is about; the rule's own key for alerts about no user.
group_key(a) := concat(":", [a.rule, a.user]) if {
	is_string(a.user)
	a.user != ""
}

group_key(a) := a.key if {
	not user_named(a)
}

user_named(a) if {
	is_string(a.user)
	a.user != ""
}

# METADATA
# title: Group keys
# description: "input.alerts: raised alerts [{rule, key, user}]; one group key each, in order."
keys := [group_key(a) | some a in input.alerts]

# METADATA
# title: Severities
# description: "input.alerts: open alerts [{rule, severity, count}]; the severity each has reached, in order."
severities := [severity(a) | some a in input.alerts]

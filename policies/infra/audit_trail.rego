package dataroom.infra.audit_trail

import data.dataroom.infra.lib
import rego.v1

trails(resources) := lib.of_type(resources, "aws:cloudtrail/trail:Trail")

records_data_events(trail) if {
	some selector in lib.as_list(lib.prop(trail, "advancedEventSelectors"))
	some field in selector.fieldSelectors
	field.field == "eventCategory"
	"Data" in field.equals
}

validation_violations(resources) := {lib.violation("audit_trail", trail, msg) |
	some trail in trails(resources)
	lib.prop(trail, "enableLogFileValidation") != true
	msg := sprintf("CloudTrail trail \"%s\" does not validate its log files; set enableLogFileValidation so tampering is detectable", [trail.name])
}

selector_violations(resources) := {lib.violation("audit_trail", trail, msg) |
	some trail in trails(resources)
	not records_data_events(trail)
	msg := sprintf("CloudTrail trail \"%s\" records no data events; add an advanced event selector with eventCategory Data for the granted prefixes", [trail.name])
}

missing_violations(req) := {msg |
	req.stack.kind == "production-grant"
	count(trails(req.resources)) == 0
	msg := {
		"policy": "audit_trail",
		"resource": req.stack.name,
		"type": "pulumi:pulumi:Stack",
		"message": "production-grant stack defines no CloudTrail trail; object reads through the grant must be recorded",
	}
}

# METADATA
# title: Reads through the grant are recorded by CloudTrail
# description: >-
#   A production-grant stack has a CloudTrail trail that records S3 data events (advanced event
#   selector with eventCategory Data) and validates its log files.
violations(req) := (validation_violations(req.resources) | selector_violations(req.resources)) | missing_violations(req)

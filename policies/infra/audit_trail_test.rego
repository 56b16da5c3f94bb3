package dataroom.infra.audit_trail_test

import data.dataroom.infra.audit_trail
import rego.v1

audit_trail_fixture_selectors := [{"name": "parquet", "fieldSelectors": [
	{"field": "eventCategory", "equals": ["Data"]},
	{"field": "resources.type", "equals": ["AWS::S3::Object"]},
	{"field": "resources.ARN", "startsWiths": ["arn:aws:s3:::prod/parquet/findings/"]},
]}]

audit_trail_fixture_trail(props) := {"type": "aws:cloudtrail/trail:Trail", "name": "data-events-trail", "id": "t", "arn": "", "props": object.union(
	{"enableLogFileValidation": true, "advancedEventSelectors": audit_trail_fixture_selectors},
	props,
)}

audit_trail_fixture_req(resources) := {"stack": {"name": "dev-grant", "kind": "production-grant"}, "resources": resources}

test_allow_validated_data_event_trail if {
	audit_trail.violations(audit_trail_fixture_req([audit_trail_fixture_trail({})])) == set()
}

test_deny_trail_without_log_file_validation if {
	expected := {"policy": "audit_trail", "resource": "data-events-trail", "type": "aws:cloudtrail/trail:Trail", "message": `CloudTrail trail "data-events-trail" does not validate its log files; set enableLogFileValidation so tampering is detectable`}
	audit_trail.violations(audit_trail_fixture_req([audit_trail_fixture_trail({"enableLogFileValidation": false})])) == {expected}
}

test_deny_trail_without_data_events if {
	management_only := [{"name": "management", "fieldSelectors": [{"field": "eventCategory", "equals": ["Management"]}]}]
	expected := {"policy": "audit_trail", "resource": "data-events-trail", "type": "aws:cloudtrail/trail:Trail", "message": `CloudTrail trail "data-events-trail" records no data events; add an advanced event selector with eventCategory Data for the granted prefixes`}
	audit_trail.violations(audit_trail_fixture_req([audit_trail_fixture_trail({"advancedEventSelectors": management_only})])) == {expected}
}

test_deny_production_grant_stack_without_trail if {
	expected := {"policy": "audit_trail", "resource": "dev-grant", "type": "pulumi:pulumi:Stack", "message": "production-grant stack defines no CloudTrail trail; object reads through the grant must be recorded"}
	audit_trail.violations(audit_trail_fixture_req([])) == {expected}
}

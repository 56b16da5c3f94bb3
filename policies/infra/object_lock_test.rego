package dataroom.infra.object_lock_test

import data.dataroom.infra.object_lock
import rego.v1

object_lock_fixture_bucket(enabled) := {"type": "aws:s3/bucket:Bucket", "name": "audit-bucket", "id": "audit", "arn": "arn:aws:s3:::audit", "props": {"bucket": "audit", "objectLockEnabled": enabled}}

object_lock_fixture_lock(mode) := {"type": "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", "name": "audit-object-lock", "id": "l", "arn": "", "props": {
	"bucket": "audit",
	"objectLockEnabled": "Enabled",
	"rule": {"defaultRetention": {"mode": mode, "days": 365}},
}}

object_lock_fixture_versioning(status) := {"type": "aws:s3/bucketVersioning:BucketVersioning", "name": "audit-versioning", "id": "v", "arn": "", "props": {"bucket": "audit", "versioningConfiguration": {"status": status}}}

object_lock_fixture_req(kind, resources) := {"stack": {"name": "dev", "kind": kind}, "resources": resources}

object_lock_fixture_violation(message) := {"policy": "object_lock", "resource": "audit-bucket", "type": "aws:s3/bucket:Bucket", "message": message}

test_allow_compliance_locked_versioned_bucket if {
	resources := [object_lock_fixture_bucket(true), object_lock_fixture_lock("COMPLIANCE"), object_lock_fixture_versioning("Enabled")]
	object_lock.violations(object_lock_fixture_req("data-room", resources)) == set()
}

test_deny_bucket_without_object_lock if {
	resources := [object_lock_fixture_bucket(false), object_lock_fixture_lock("COMPLIANCE"), object_lock_fixture_versioning("Enabled")]
	expected := object_lock_fixture_violation(`audit bucket "audit" is created without Object Lock; set objectLockEnabled (it cannot be turned on for existing objects later)`)
	object_lock.violations(object_lock_fixture_req("data-room", resources)) == {expected}
}

test_deny_governance_mode if {
	resources := [object_lock_fixture_bucket(true), object_lock_fixture_lock("GOVERNANCE"), object_lock_fixture_versioning("Enabled")]
	expected := object_lock_fixture_violation(`audit bucket "audit" has no default Object Lock retention in COMPLIANCE mode; add a BucketObjectLockConfiguration with mode COMPLIANCE and a retention period`)
	object_lock.violations(object_lock_fixture_req("data-room", resources)) == {expected}
}

test_deny_suspended_versioning if {
	resources := [object_lock_fixture_bucket(true), object_lock_fixture_lock("COMPLIANCE"), object_lock_fixture_versioning("Suspended")]
	expected := object_lock_fixture_violation(`audit bucket "audit" is not versioned; add a BucketVersioning with status Enabled`)
	object_lock.violations(object_lock_fixture_req("data-room", resources)) == {expected}
}

test_deny_data_room_stack_without_audit_bucket if {
	expected := {"policy": "object_lock", "resource": "dev", "type": "pulumi:pulumi:Stack", "message": "data-room stack provisions no audit bucket; the audit log must ship to an Object-Locked bucket"}
	object_lock.violations(object_lock_fixture_req("data-room", [])) == {expected}
}

test_allow_production_grant_stack_without_buckets if {
	object_lock.violations(object_lock_fixture_req("production-grant", [])) == set()
}

package dataroom.infra.object_lock

import data.dataroom.infra.lib
import rego.v1

bucket_name(bucket) := object.get(bucket.props, "bucket", bucket.name)

buckets(resources) := lib.of_type(resources, "aws:s3/bucket:Bucket")

compliance_retention(resources, bucket) if {
	some config in lib.attached(resources, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", "bucket", bucket)
	retention := config.props.rule.defaultRetention
	retention.mode == "COMPLIANCE"
	object.get(retention, "days", 0) + object.get(retention, "years", 0) > 0
}

versioned(resources, bucket) if {
	some config in lib.attached(resources, "aws:s3/bucketVersioning:BucketVersioning", "bucket", bucket)
	config.props.versioningConfiguration.status == "Enabled"
}

lock_violations(resources) := {lib.violation("object_lock", bucket, msg) |
	some bucket in buckets(resources)
	lib.prop(bucket, "objectLockEnabled") != true
	msg := sprintf(
		"audit bucket \"%s\" is created without Object Lock; set objectLockEnabled (it cannot be turned on for existing objects later)",
		[bucket_name(bucket)],
	)
}

retention_violations(resources) := {lib.violation("object_lock", bucket, msg) |
	some bucket in buckets(resources)
	not compliance_retention(resources, bucket)
	msg := sprintf(
		"audit bucket \"%s\" has no default Object Lock retention in COMPLIANCE mode; add a BucketObjectLockConfiguration with mode COMPLIANCE and a retention period",
		[bucket_name(bucket)],
	)
}

versioning_violations(resources) := {lib.violation("object_lock", bucket, msg) |
	some bucket in buckets(resources)
	not versioned(resources, bucket)
	msg := sprintf("audit bucket \"%s\" is not versioned; add a BucketVersioning with status Enabled", [bucket_name(bucket)])
}

missing_violations(req) := {msg |
	req.stack.kind == "data-room"
	count(buckets(req.resources)) == 0
	msg := {
		"policy": "object_lock",
		"resource": req.stack.name,
		"type": "pulumi:pulumi:Stack",
		"message": "data-room stack provisions no audit bucket; the audit log must ship to an Object-Locked bucket",
	}
}

# METADATA
# title: Audit buckets are Object-Locked in compliance mode
# description: >-
#   Every bucket the data-room program creates holds audit records, so each is created with
#   Object Lock, has a default COMPLIANCE-mode retention and versioning on; a data-room stack
#   must provision at least one such bucket.
violations(req) := ((lock_violations(req.resources) | retention_violations(req.resources)) | versioning_violations(req.resources)) | missing_violations(req)

package dataroom.infra.bucket_access

import data.dataroom.infra.lib
import rego.v1

bucket_name(bucket) := object.get(bucket.props, "bucket", bucket.name)

public_access_flags := ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"]

public_access_blocked(resources, bucket) if {
	some block in lib.attached(resources, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "bucket", bucket)
	every flag in public_access_flags {
		lib.prop(block, flag) == true
	}
}

# A Deny for every principal and every S3 action whenever the request is not over TLS.
tls_only(resources, bucket) if {
	some policy in lib.attached(resources, "aws:s3/bucketPolicy:BucketPolicy", "bucket", bucket)
	some statement in lib.statements(lib.document(lib.prop(policy, "policy")))
	statement.Effect == "Deny"
	"*" in lib.aws_principals(statement)
	some action in lib.actions(statement)
	action in {"s3:*", "*"}
	lower(sprintf("%v", [statement.Condition.Bool["aws:SecureTransport"]])) == "false"
}

public_violations(resources) := {lib.violation("bucket_access", bucket, msg) |
	some bucket in lib.of_type(resources, "aws:s3/bucket:Bucket")
	not public_access_blocked(resources, bucket)
	msg := sprintf(
		"bucket \"%s\" does not block public access; add a BucketPublicAccessBlock with all four settings true",
		[bucket_name(bucket)],
	)
}

tls_violations(resources) := {lib.violation("bucket_access", bucket, msg) |
	some bucket in lib.of_type(resources, "aws:s3/bucket:Bucket")
	not tls_only(resources, bucket)
	msg := sprintf(
		"bucket \"%s\" accepts requests without TLS; its bucket policy must Deny s3:* for Principal \"*\" when aws:SecureTransport is false",
		[bucket_name(bucket)],
	)
}

# METADATA
# title: Buckets are private and TLS-only
# description: >-
#   Every S3 bucket blocks all public access (all four public access block settings) and its
#   bucket policy denies any request not made over TLS.
violations(req) := public_violations(req.resources) | tls_violations(req.resources)

package dataroom.infra.encryption

import data.dataroom.infra.lib
import rego.v1

kms_algorithms := {"aws:kms", "aws:kms:dsse"}

bucket_name(bucket) := object.get(bucket.props, "bucket", bucket.name)

# Default encryption rules of a bucket: from BucketServerSideEncryptionConfiguration resources
# and from the (deprecated) inline serverSideEncryptionConfiguration property.
sse_rules(resources, bucket) := array.concat(
	[rule |
		some config in lib.attached(resources, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "bucket", bucket)
		some rule in lib.as_list(lib.prop(config, "rules"))
	],
	[rule | some rule in lib.as_list(object.get(object.get(bucket.props, "serverSideEncryptionConfiguration", {}), "rule", null))],
)

kms_encrypted(resources, bucket) if {
	some rule in sse_rules(resources, bucket)
	by_default := rule.applyServerSideEncryptionByDefault
	by_default.sseAlgorithm in kms_algorithms
	lib.non_empty_string(object.get(by_default, "kmsMasterKeyId", null))
}

bucket_violations(resources) := {lib.violation("encryption", bucket, msg) |
	some bucket in lib.of_type(resources, "aws:s3/bucket:Bucket")
	not kms_encrypted(resources, bucket)
	msg := sprintf(
		"bucket \"%s\" has no default SSE-KMS encryption with a customer key; add a BucketServerSideEncryptionConfiguration with sseAlgorithm aws:kms and kmsMasterKeyId",
		[bucket_name(bucket)],
	)
}

key_violations(resources) := {lib.violation("encryption", key, msg) |
	some key in lib.of_type(resources, "aws:kms/key:Key")
	object.get(key.props, "keyUsage", "ENCRYPT_DECRYPT") == "ENCRYPT_DECRYPT" # KMS rotates only symmetric keys
	lib.prop(key, "enableKeyRotation") != true
	msg := sprintf("KMS key \"%s\" does not rotate; set enableKeyRotation", [key.name])
}

trail_violations(resources) := {lib.violation("encryption", trail, msg) |
	some trail in lib.of_type(resources, "aws:cloudtrail/trail:Trail")
	not lib.non_empty_string(lib.prop(trail, "kmsKeyId"))
	msg := sprintf("CloudTrail trail \"%s\" does not encrypt its log files with KMS; set kmsKeyId", [trail.name])
}

# METADATA
# title: Data at rest is encrypted with KMS
# description: >-
#   Every S3 bucket has default SSE-KMS encryption with a customer-managed key, every symmetric
#   KMS key rotates (KMS cannot rotate asymmetric signing keys), and every CloudTrail trail encrypts its log files with KMS.
violations(req) := (bucket_violations(req.resources) | key_violations(req.resources)) | trail_violations(req.resources)

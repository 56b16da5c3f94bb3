package dataroom.infra.bucket_access_test

import data.dataroom.infra.bucket_access
import rego.v1

bucket_access_fixture_bucket := {"type": "aws:s3/bucket:Bucket", "name": "audit-bucket", "id": "audit", "arn": "arn:aws:s3:::audit", "props": {"bucket": "audit"}}

bucket_access_fixture_block(flags) := {"type": "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "name": "audit-public-access", "id": "b", "arn": "", "props": object.union(
	{"bucket": "audit", "blockPublicAcls": true, "blockPublicPolicy": true, "ignorePublicAcls": true, "restrictPublicBuckets": true},
	flags,
)}

bucket_access_fixture_policy(secure_transport) := {"type": "aws:s3/bucketPolicy:BucketPolicy", "name": "audit-policy", "id": "p", "arn": "", "props": {"bucket": "audit", "policy": json.marshal({"Statement": [{
	"Effect": "Deny",
	"Principal": "*",
	"Action": "s3:*",
	"Resource": ["arn:aws:s3:::audit", "arn:aws:s3:::audit/*"],
	"Condition": {"Bool": {"aws:SecureTransport": secure_transport}},
}]})}}

bucket_access_fixture_req(resources) := {"stack": {"name": "t", "kind": "data-room"}, "resources": resources}

test_allow_private_tls_only_bucket if {
	resources := [bucket_access_fixture_bucket, bucket_access_fixture_block({}), bucket_access_fixture_policy("false")]
	bucket_access.violations(bucket_access_fixture_req(resources)) == set()
}

test_deny_partial_public_access_block if {
	resources := [bucket_access_fixture_bucket, bucket_access_fixture_block({"restrictPublicBuckets": false}), bucket_access_fixture_policy("false")]
	expected := {"policy": "bucket_access", "resource": "audit-bucket", "type": "aws:s3/bucket:Bucket", "message": `bucket "audit" does not block public access; add a BucketPublicAccessBlock with all four settings true`}
	bucket_access.violations(bucket_access_fixture_req(resources)) == {expected}
}

test_deny_bucket_policy_without_tls_rule if {
	resources := [bucket_access_fixture_bucket, bucket_access_fixture_block({}), bucket_access_fixture_policy("true")]
	expected := {"policy": "bucket_access", "resource": "audit-bucket", "type": "aws:s3/bucket:Bucket", "message": `bucket "audit" accepts requests without TLS; its bucket policy must Deny s3:* for Principal "*" when aws:SecureTransport is false`}
	bucket_access.violations(bucket_access_fixture_req(resources)) == {expected}
}

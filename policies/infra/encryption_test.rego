package dataroom.infra.encryption_test

import data.dataroom.infra.encryption
import rego.v1

encryption_fixture_bucket := {"type": "aws:s3/bucket:Bucket", "name": "audit-bucket", "id": "audit", "arn": "arn:aws:s3:::audit", "props": {"bucket": "audit"}}

encryption_fixture_sse(algorithm, key) := {"type": "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "name": "audit-encryption", "id": "e", "arn": "", "props": {
	"bucket": "audit",
	"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": algorithm, "kmsMasterKeyId": key}, "bucketKeyEnabled": true}],
}}

encryption_fixture_key(rotation) := {"type": "aws:kms/key:Key", "name": "audit-key", "id": "k", "arn": "arn:aws:kms:eu-west-1:222222222222:key/k", "props": {"enableKeyRotation": rotation}}

encryption_fixture_trail(props) := {"type": "aws:cloudtrail/trail:Trail", "name": "data-events-trail", "id": "t", "arn": "", "props": props}

encryption_fixture_req(resources) := {"stack": {"name": "t", "kind": "data-room"}, "resources": resources}

test_allow_kms_encrypted_bucket_rotating_key_and_encrypted_trail if {
	resources := [
		encryption_fixture_bucket,
		encryption_fixture_sse("aws:kms", "arn:aws:kms:eu-west-1:222222222222:key/k"),
		encryption_fixture_key(true),
		encryption_fixture_trail({"kmsKeyId": "arn:aws:kms:eu-west-1:222222222222:key/k"}),
	]
	encryption.violations(encryption_fixture_req(resources)) == set()
}

test_deny_s3_managed_keys if {
	expected := {"policy": "encryption", "resource": "audit-bucket", "type": "aws:s3/bucket:Bucket", "message": `bucket "audit" has no default SSE-KMS encryption with a customer key; add a BucketServerSideEncryptionConfiguration with sseAlgorithm aws:kms and kmsMasterKeyId`}
	encryption.violations(encryption_fixture_req([encryption_fixture_bucket, encryption_fixture_sse("AES256", null)])) == {expected}
}

test_deny_bucket_without_encryption_configuration if {
	found := encryption.violations(encryption_fixture_req([encryption_fixture_bucket]))
	[v.resource | some v in found] == ["audit-bucket"]
}

test_deny_key_without_rotation if {
	expected := {"policy": "encryption", "resource": "audit-key", "type": "aws:kms/key:Key", "message": `KMS key "audit-key" does not rotate; set enableKeyRotation`}
	encryption.violations(encryption_fixture_req([encryption_fixture_key(false)])) == {expected}
}

test_deny_unencrypted_trail if {
	expected := {"policy": "encryption", "resource": "data-events-trail", "type": "aws:cloudtrail/trail:Trail", "message": `CloudTrail trail "data-events-trail" does not encrypt its log files with KMS; set kmsKeyId`}
	encryption.violations(encryption_fixture_req([encryption_fixture_trail({})])) == {expected}
}

test_allow_asymmetric_signing_key_without_rotation if {
	key := {"type": "aws:kms/key:Key", "name": "audit-signing-key", "id": "sk", "arn": "arn:aws:kms:eu-west-1:2:key/sk", "props": {"keyUsage": "SIGN_VERIFY", "customerMasterKeySpec": "ECC_NIST_P256"}}
	count([v | some v in encryption.violations({"stack": {"name": "dev", "kind": "data-room"}, "resources": [key]})]) == 0
}

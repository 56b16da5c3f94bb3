package dataroom.infra.lib_test

import data.dataroom.infra.lib
import rego.v1

lib_fixture_role(name, trust_doc) := {"type": "aws:iam/role:Role", "name": name, "id": name, "arn": "", "props": {"name": name, "assumeRolePolicy": json.marshal(trust_doc)}}

lib_fixture_broker_trust := {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:role/broker"}, "Action": "sts:AssumeRole"}]}

lib_fixture_service_trust := {"Statement": {"Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com"]}, "Action": "sts:AssumeRole"}}

test_document_reads_json_strings_and_objects if {
	lib.document("{\"a\": 1}") == {"a": 1}
	lib.document({"a": 1}) == {"a": 1}
}

test_statements_normalises_a_single_statement if {
	lib.statements(lib_fixture_service_trust) == [lib_fixture_service_trust.Statement]
	count(lib.statements(lib_fixture_broker_trust)) == 1
}

test_principals_star_and_objects if {
	anyone := {"kind": "AWS", "value": "*"}
	ec2 := {"kind": "Service", "value": "ec2.amazonaws.com"}
	lib.principals({"Principal": "*"}) == {anyone}
	lib.principals(lib_fixture_service_trust.Statement) == {ec2}
	lib.principals({"Effect": "Allow"}) == set()
}

test_grant_roles_are_roles_trusting_aws_principals if {
	resources := [lib_fixture_role("grant", lib_fixture_broker_trust), lib_fixture_role("service", lib_fixture_service_trust)]
	[r.name | some r in lib.grant_roles(resources)] == ["grant"]
}

test_attached_follows_id_name_or_arn if {
	bucket := {"type": "aws:s3/bucket:Bucket", "name": "b", "id": "bucket-1", "arn": "arn:aws:s3:::bucket-1", "props": {}}
	by_id := {"type": "aws:s3/bucketPolicy:BucketPolicy", "name": "p1", "props": {"bucket": "bucket-1"}}
	other := {"type": "aws:s3/bucketPolicy:BucketPolicy", "name": "p2", "props": {"bucket": "elsewhere"}}
	[r.name | some r in lib.attached([bucket, by_id, other], "aws:s3/bucketPolicy:BucketPolicy", "bucket", bucket)] == ["p1"]
}

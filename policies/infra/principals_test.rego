package dataroom.infra.principals_test

import data.dataroom.infra.principals
import rego.v1

principals_fixture_bucket_policy(statements) := {"type": "aws:s3/bucketPolicy:BucketPolicy", "name": "audit-policy", "id": "p", "arn": "", "props": {"bucket": "audit", "policy": json.marshal({"Version": "2012-10-17", "Statement": statements})}}

principals_fixture_tls_only := {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": ["arn:aws:s3:::audit", "arn:aws:s3:::audit/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}

principals_fixture_req(resources) := {"stack": {"name": "t", "kind": "data-room"}, "resources": resources}

principals_fixture_violation(message) := {"policy": "principals", "resource": "audit-policy", "type": "aws:s3/bucketPolicy:BucketPolicy", "message": message}

test_allow_deny_statements_for_everyone if {
	principals.violations(principals_fixture_req([principals_fixture_bucket_policy([principals_fixture_tls_only])])) == set()
}

test_deny_allow_for_everyone if {
	open := {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::audit/*"}
	expected := principals_fixture_violation(`bucket policy of "audit-policy" allows Principal "*" (statement "PublicRead"): anyone in any AWS account could use it; name the exact principal`)
	principals.violations(principals_fixture_req([principals_fixture_bucket_policy([principals_fixture_tls_only, open])])) == {expected}
}

test_deny_aws_star_in_a_trust_policy if {
	role := {"type": "aws:iam/role:Role", "name": "grant-role", "id": "ro", "arn": "", "props": {"assumeRolePolicy": json.marshal({"Statement": [{"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::222222222222:role/b", "*"]}, "Action": "sts:AssumeRole"}]})}}
	expected := {"policy": "principals", "resource": "grant-role", "type": "aws:iam/role:Role", "message": `trust policy of "grant-role" allows Principal "*": anyone in any AWS account could use it; name the exact principal`}
	principals.violations(principals_fixture_req([role])) == {expected}
}

test_deny_not_principal if {
	statement := {"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::222222222222:root"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::audit/*"}
	expected := principals_fixture_violation(`bucket policy of "audit-policy" uses NotPrincipal in an Allow statement, which allows everyone not listed; name the exact principal`)
	principals.violations(principals_fixture_req([principals_fixture_bucket_policy([statement])])) == {expected}
}

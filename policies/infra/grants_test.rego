package dataroom.infra.grants_test

import data.dataroom.infra.grants
import rego.v1

grants_fixture_trust := {"Version": "2012-10-17", "Statement": [{
	"Effect": "Allow",
	"Principal": {"AWS": ["arn:aws:iam::222222222222:role/broker"]},
	"Action": "sts:AssumeRole",
	"Condition": {"StringEquals": {"sts:ExternalId": "external-id-1"}},
}]}

grants_fixture_read_only := {"Version": "2012-10-17", "Statement": [
	{"Effect": "Allow", "Action": "s3:GetObject", "Resource": ["arn:aws:s3:::prod/parquet/findings/*"]},
	{
		"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::prod",
		"Condition": {"StringLike": {"s3:prefix": ["parquet/findings/*"]}},
	},
	{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": ["arn:aws:kms:eu-west-1:111111111111:key/k1"]},
]}

grants_fixture_boundary_arn := "arn:aws:iam::111111111111:policy/ro-boundary"

grants_fixture_boundary(doc) := {"type": "aws:iam/policy:Policy", "name": "boundary", "id": grants_fixture_boundary_arn, "arn": grants_fixture_boundary_arn, "props": {"name": "ro-boundary", "policy": json.marshal(doc)}}

grants_fixture_role(props) := {"type": "aws:iam/role:Role", "name": "grant-role", "id": "ro", "arn": "arn:aws:iam::111111111111:role/ro", "props": object.union(
	{"name": "ro", "assumeRolePolicy": json.marshal(grants_fixture_trust), "permissionsBoundary": grants_fixture_boundary_arn, "maxSessionDuration": 3600},
	props,
)}

grants_fixture_inline(doc) := {"type": "aws:iam/rolePolicy:RolePolicy", "name": "grant-permissions", "id": "grant-permissions", "arn": "", "props": {"role": "ro", "policy": json.marshal(doc)}}

grants_fixture_with_statement(doc, statement) := object.union(doc, {"Statement": array.concat(doc.Statement, [statement])})

grants_fixture_req(resources) := {"stack": {"name": "t", "kind": "production-grant"}, "resources": resources}

grants_fixture_grant_violation(message) := {"policy": "grants", "resource": "grant-role", "type": "aws:iam/role:Role", "message": message}

test_allow_read_only_grant if {
	grants.violations(grants_fixture_req([grants_fixture_boundary(grants_fixture_read_only), grants_fixture_role({}), grants_fixture_inline(grants_fixture_read_only)])) == set()
}

test_allow_service_role_that_writes_is_not_a_grant if {
	service_doc := {"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
	writer := grants_fixture_role({"assumeRolePolicy": json.marshal(service_doc), "permissionsBoundary": null})
	doc := grants_fixture_with_statement(grants_fixture_read_only, {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::audit/*"})
	grants.violations({"stack": {"name": "t", "kind": "data-room"}, "resources": [writer, grants_fixture_inline(doc)]}) == set()
}

test_deny_write_action if {
	doc := grants_fixture_with_statement(grants_fixture_read_only, {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": "arn:aws:s3:::prod/parquet/findings/*"})
	expected := grants_fixture_grant_violation(`cross-account grant role "ro": inline policy "grant-permissions" allows "s3:PutObject", which is not read-only; a grant may allow only s3:GetObject, s3:ListBucket and kms:Decrypt`)
	grants.violations(grants_fixture_req([grants_fixture_boundary(grants_fixture_read_only), grants_fixture_role({}), grants_fixture_inline(doc)])) == {expected}
}

test_deny_write_action_in_boundary if {
	doc := grants_fixture_with_statement(grants_fixture_read_only, {"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::prod/parquet/findings/*"})
	expected := grants_fixture_grant_violation(`cross-account grant role "ro": managed policy "boundary" allows "s3:DeleteObject", which is not read-only; a grant may allow only s3:GetObject, s3:ListBucket and kms:Decrypt`)
	grants.violations(grants_fixture_req([grants_fixture_boundary(doc), grants_fixture_role({}), grants_fixture_inline(grants_fixture_read_only)])) == {expected}
}

test_deny_wildcard_action if {
	doc := grants_fixture_with_statement(grants_fixture_read_only, {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::prod/parquet/findings/*"})
	expected := grants_fixture_grant_violation(`cross-account grant role "ro": inline policy "grant-permissions" allows wildcard action "s3:Get*"; list only s3:GetObject, s3:ListBucket or kms:Decrypt`)
	grants.violations(grants_fixture_req([grants_fixture_boundary(grants_fixture_read_only), grants_fixture_role({}), grants_fixture_inline(doc)])) == {expected}
}

test_deny_wildcard_and_whole_bucket_resources if {
	doc := grants_fixture_with_statement(grants_fixture_read_only, {"Effect": "Allow", "Action": "s3:GetObject", "Resource": ["*", "arn:aws:s3:::prod/*"]})
	found := grants.violations(grants_fixture_req([grants_fixture_boundary(grants_fixture_read_only), grants_fixture_role({}), grants_fixture_inline(doc)]))
	found == {
		grants_fixture_grant_violation(`cross-account grant role "ro": inline policy "grant-permissions" allows resource "*"; name the production Parquet prefixes (bucket/prefix/*) instead`),
		grants_fixture_grant_violation(`cross-account grant role "ro": inline policy "grant-permissions" allows resource "arn:aws:s3:::prod/*"; name the production Parquet prefixes (bucket/prefix/*) instead`),
	}
}

test_deny_not_action if {
	doc := grants_fixture_with_statement(grants_fixture_read_only, {"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::prod/parquet/findings/*"})
	expected := grants_fixture_grant_violation(`cross-account grant role "ro": inline policy "grant-permissions" uses NotAction in an Allow statement, which grants everything not listed`)
	grants.violations(grants_fixture_req([grants_fixture_boundary(grants_fixture_read_only), grants_fixture_role({}), grants_fixture_inline(doc)])) == {expected}
}

test_deny_missing_boundary if {
	expected := grants_fixture_grant_violation(`cross-account grant role "ro" has no permissions boundary; set one that allows only the read-only actions`)
	grants.violations(grants_fixture_req([grants_fixture_role({"permissionsBoundary": null}), grants_fixture_inline(grants_fixture_read_only)])) == {expected}
}

test_deny_managed_policy_outside_the_stack if {
	attachment := {"type": "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "name": "attach", "id": "a", "arn": "", "props": {"role": "ro", "policyArn": "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"}}
	expected := grants_fixture_grant_violation(`cross-account grant role "ro" uses policy "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess" that is not defined in this stack, so it cannot be checked; define the read-only policy here`)
	grants.violations(grants_fixture_req([grants_fixture_boundary(grants_fixture_read_only), grants_fixture_role({}), grants_fixture_inline(grants_fixture_read_only), attachment])) == {expected}
}

test_deny_production_grant_stack_without_a_grant if {
	expected := {"policy": "grants", "resource": "t", "type": "pulumi:pulumi:Stack", "message": "production-grant stack defines no cross-account grant role; it must provision the read-only role the broker assumes"}
	grants.violations(grants_fixture_req([])) == {expected}
}

package dataroom.infra.signing_key_test

import data.dataroom.infra.signing_key
import rego.v1

sk_key := {"type": "aws:kms/key:Key", "name": "audit-signing-key", "id": "k1", "arn": "arn:aws:kms:eu-west-1:2:key/k1", "props": {"keyUsage": "SIGN_VERIFY", "customerMasterKeySpec": "ECC_NIST_P256"}}

sk_policy(statements) := {"type": "aws:iam/rolePolicy:RolePolicy", "name": "broker-permissions", "id": "p", "arn": "", "props": {"policy": json.marshal({"Version": "2012-10-17", "Statement": statements})}}

sk_req(resources) := {"stack": {"name": "dev", "kind": "data-room"}, "resources": resources}

sk_messages(resources) := {v.message | some v in signing_key.violations(sk_req(resources))}

test_allow_sign_and_public_key_only if {
	sk_messages([sk_key, sk_policy([{"Effect": "Allow", "Action": ["kms:Sign", "kms:GetPublicKey"], "Resource": sk_key.arn}])]) == set()
}

test_deny_more_than_sign if {
	sk_messages([sk_key, sk_policy([{"Effect": "Allow", "Action": ["kms:Sign", "kms:ScheduleKeyDeletion"], "Resource": sk_key.arn}])]) == {`inline policy "broker-permissions" allows KMS actions other than kms:Sign and kms:GetPublicKey on the audit signing key "audit-signing-key"; the broker may only sign with it`}
}

test_deny_wildcards_that_cover_the_key if {
	count(sk_messages([sk_key, sk_policy([{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}])])) == 1
	count(sk_messages([sk_key, sk_policy([{"Effect": "Allow", "Action": "*", "Resource": "arn:aws:kms:eu-west-1:2:key/*"}])])) == 1
	count(sk_messages([sk_key, sk_policy([{"Effect": "Allow", "Action": "KMS:Sign*", "Resource": sk_key.arn}])])) == 1
}

test_allow_other_keys_and_services if {
	sk_messages([sk_key, sk_policy([
		{"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": "arn:aws:kms:eu-west-1:2:key/other"},
		{"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": "*"},
	])]) == set()
}

test_deny_wrong_spec_and_missing_key if {
	sk_messages([json.patch(sk_key, [{"op": "replace", "path": "/props/customerMasterKeySpec", "value": "RSA_2048"}])]) == {`audit signing key "audit-signing-key" must be an ECC_NIST_P256 key (what dataroom's KMS signer verifies)`}
	sk_messages([]) == {"data-room stack has no audit signing key (KMS, SIGN_VERIFY, ECC_NIST_P256) for the broker's checkpoints"}
}

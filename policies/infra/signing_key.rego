package dataroom.infra.signing_key

import data.dataroom.infra.lib
import rego.v1

sign_actions := {"kms:sign", "kms:getpublickey"}

signing_keys(resources) := [k |
	some k in lib.of_type(resources, "aws:kms/key:Key")
	lib.prop(k, "keyUsage") == "SIGN_VERIFY"
]

# A statement's actions that touch KMS beyond signing (wildcards included), lower-cased.
extra_kms_actions(statement) := {a |
	some action in lib.actions(statement)
	a := lower(action)
	kms_action(a)
	not a in sign_actions
}

kms_action(a) if a == "*"

kms_action(a) if startswith(a, "kms:")

covers(statement, key) if {
	some resource in lib.resources_of(statement)
	resource in {"*", key.arn, key.id}
}

covers(statement, key) if {
	some resource in lib.resources_of(statement)
	endswith(resource, "*")
	startswith(key.arn, trim_suffix(resource, "*"))
}

overreach_violations(resources) := {lib.violation("signing_key", policy, msg) |
	some key in signing_keys(resources)
	some policy in lib.of_type(resources, "aws:iam/rolePolicy:RolePolicy")
	some statement in lib.statements(lib.document(lib.prop(policy, "policy")))
	statement.Effect == "Allow"
	covers(statement, key)
	count(extra_kms_actions(statement)) > 0
	msg := sprintf("inline policy \"%s\" allows KMS actions other than kms:Sign and kms:GetPublicKey on the audit signing key \"%s\"; the broker may only sign with it", [policy.name, key.name])
}

spec_violations(resources) := {lib.violation("signing_key", key, msg) |
	some key in signing_keys(resources)
	lib.prop(key, "customerMasterKeySpec") != "ECC_NIST_P256"
	msg := sprintf("audit signing key \"%s\" must be an ECC_NIST_P256 key (what dataroom's KMS signer verifies)", [key.name])
}

missing_violations(req) := {msg |
	req.stack.kind == "data-room"
	count(signing_keys(req.resources)) == 0
	msg := {
		"policy": "signing_key",
		"resource": req.stack.name,
		"type": "pulumi:pulumi:Stack",
		"message": "data-room stack has no audit signing key (KMS, SIGN_VERIFY, ECC_NIST_P256) for the broker's checkpoints",
	}
}

# METADATA
# title: The broker may only sign with the audit signing key
# description: >-
#   A data-room stack has an asymmetric KMS key (ECC_NIST_P256, SIGN_VERIFY) for the audit
#   checkpoints, and no inline role policy allows any KMS action on it (wildcards included)
#   other than kms:Sign and kms:GetPublicKey.
violations(req) := (overreach_violations(req.resources) | spec_violations(req.resources)) | missing_violations(req)

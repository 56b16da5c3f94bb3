package dataroom.infra

import data.dataroom.infra.audit_trail
import data.dataroom.infra.bucket_access
import data.dataroom.infra.eks_cluster
import data.dataroom.infra.encryption
import data.dataroom.infra.grants
import data.dataroom.infra.images
import data.dataroom.infra.network
import data.dataroom.infra.object_lock
import data.dataroom.infra.pod_network
import data.dataroom.infra.principals
import data.dataroom.infra.signing_key
import data.dataroom.infra.singleuser_pods
import data.dataroom.infra.trust
import data.dataroom.infra.workload_identity
import rego.v1

# Every violation of every infra policy for one stack.
violations(req) := (((((((((((((grants.violations(req) | trust.violations(req)) | principals.violations(req)) | encryption.violations(req)) | object_lock.violations(req)) | bucket_access.violations(req)) | network.violations(req)) | audit_trail.violations(req)) | eks_cluster.violations(req)) | singleuser_pods.violations(req)) | pod_network.violations(req)) | workload_identity.violations(req)) | images.violations(req)) | signing_key.violations(req))

# METADATA
# title: Infra policy decision for one stack
# description: >-
#   Evaluates every infra policy over a stack's resources ({"stack": {"name", "kind"},
#   "resources": [{"type", "name", "id", "arn", "props"}]}) as collected under Pulumi's mocks.
#   The stack passes only when there is no violation; each violation names its policy, the
#   resource and what to change.
decision(req) := {
	"allow": count(found) == 0,
	"violations": found,
	"resources": count(req.resources),
} if {
	found := violations(req)
}

main := decision(input)

package dataroom.infra.eks_cluster

import data.dataroom.infra.lib
import rego.v1

clusters(resources) := lib.of_type(resources, "aws:eks/cluster:Cluster")

vpc_config(r) := object.get(r.props, "vpcConfig", {})

public_violations(resources) := {lib.violation("eks_cluster", r, msg) |
	some r in clusters(resources)
	object.get(vpc_config(r), "endpointPublicAccess", true) != false
	msg := sprintf("EKS cluster \"%s\" has a public API endpoint; set endpointPublicAccess false: the room's cluster is reached from inside its VPC only", [r.name])
}

private_violations(resources) := {lib.violation("eks_cluster", r, msg) |
	some r in clusters(resources)
	object.get(vpc_config(r), "endpointPrivateAccess", false) != true
	msg := sprintf("EKS cluster \"%s\" has no private API endpoint (endpointPrivateAccess); its nodes could not reach it without the internet", [r.name])
}

encrypts_secrets(r) if {
	config := object.get(r.props, "encryptionConfig", {})
	"secrets" in object.get(config, "resources", [])
	lib.non_empty_string(object.get(object.get(config, "provider", {}), "keyArn", null))
}

encryption_violations(resources) := {lib.violation("eks_cluster", r, msg) |
	some r in clusters(resources)
	not encrypts_secrets(r)
	msg := sprintf("EKS cluster \"%s\" does not encrypt Kubernetes secrets with a KMS key (encryptionConfig resources [\"secrets\"])", [r.name])
}

missing_violations(req) := {msg |
	req.stack.kind == "data-room"
	count(clusters(req.resources)) == 0
	msg := {
		"policy": "eks_cluster",
		"resource": req.stack.name,
		"type": "pulumi:pulumi:Stack",
		"message": "data-room stack provisions no EKS cluster; the room (JupyterHub, brokers, review) runs on it",
	}
}

# METADATA
# title: The room's cluster API is private and its secrets are encrypted
# description: >-
#   Every EKS cluster has a private endpoint and no public one, and envelope-encrypts Kubernetes
#   secrets with a KMS key; a data-room stack must provision the cluster.
violations(req) := ((public_violations(req.resources) | private_violations(req.resources)) | encryption_violations(req.resources)) | missing_violations(req)

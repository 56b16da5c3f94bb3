package dataroom.infra.eks_cluster_test

import data.dataroom.infra.eks_cluster
import rego.v1

eks_fixture(vpc, encryption) := {"type": "aws:eks/cluster:Cluster", "name": "room-eks", "id": "c", "arn": "", "props": {"vpcConfig": vpc, "encryptionConfig": encryption}}

eks_good_encryption := {"resources": ["secrets"], "provider": {"keyArn": "arn:aws:kms:eu-west-1:2:key/k"}}

eks_req(resources) := {"stack": {"name": "dev", "kind": "data-room"}, "resources": resources}

test_allow_private_encrypted_cluster if {
	eks_cluster.violations(eks_req([eks_fixture({"endpointPublicAccess": false, "endpointPrivateAccess": true}, eks_good_encryption)])) == set()
}

test_deny_public_endpoint if {
	found := eks_cluster.violations(eks_req([eks_fixture({"endpointPublicAccess": true, "endpointPrivateAccess": true}, eks_good_encryption)]))
	found == {{"policy": "eks_cluster", "resource": "room-eks", "type": "aws:eks/cluster:Cluster", "message": `EKS cluster "room-eks" has a public API endpoint; set endpointPublicAccess false: the room's cluster is reached from inside its VPC only`}}
}

test_deny_default_endpoint_flags_and_no_encryption if {
	found := eks_cluster.violations(eks_req([eks_fixture({}, {})]))
	count(found) == 3
}

test_deny_data_room_stack_without_cluster if {
	[v] := [v | some v in eks_cluster.violations(eks_req([]))]
	v.message == "data-room stack provisions no EKS cluster; the room (JupyterHub, brokers, review) runs on it"
}

test_allow_grant_stack_without_cluster if {
	eks_cluster.violations({"stack": {"name": "g", "kind": "production-grant"}, "resources": []}) == set()
}

package dataroom.infra_test

import data.dataroom.infra
import rego.v1

main_fixture_vpc := {"type": "aws:ec2/vpc:Vpc", "name": "network-vpc", "id": "vpc-1", "arn": "", "props": {"cidrBlock": "10.42.0.0/16"}}

main_fixture_bucket := {"type": "aws:s3/bucket:Bucket", "name": "audit-bucket", "id": "audit", "arn": "arn:aws:s3:::audit", "props": {"bucket": "audit", "objectLockEnabled": true}}

main_fixture_bucket_settings := [
	{"type": "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", "name": "lock", "id": "l", "arn": "", "props": {"bucket": "audit", "rule": {"defaultRetention": {"mode": "COMPLIANCE", "days": 1}}}},
	{"type": "aws:s3/bucketVersioning:BucketVersioning", "name": "versioning", "id": "v", "arn": "", "props": {"bucket": "audit", "versioningConfiguration": {"status": "Enabled"}}},
	{"type": "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "name": "sse", "id": "e", "arn": "", "props": {"bucket": "audit", "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": "arn:aws:kms:eu-west-1:222222222222:key/k"}}]}},
	{"type": "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "name": "pab", "id": "b", "arn": "", "props": {"bucket": "audit", "blockPublicAcls": true, "blockPublicPolicy": true, "ignorePublicAcls": true, "restrictPublicBuckets": true}},
	{"type": "aws:s3/bucketPolicy:BucketPolicy", "name": "policy", "id": "p", "arn": "", "props": {"bucket": "audit", "policy": json.marshal({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::audit/*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})}},
]

# The room on EKS as the other policies require it (each has its own tests).
main_fixture_room := [
	{"type": "aws:eks/cluster:Cluster", "name": "room-eks", "id": "c", "arn": "", "props": {"vpcConfig": {"endpointPublicAccess": false, "endpointPrivateAccess": true}, "encryptionConfig": {"resources": ["secrets"], "provider": {"keyArn": "arn:aws:kms:eu-west-1:222222222222:key/s"}}}},
	{"type": "aws:kms/key:Key", "name": "audit-signing-key", "id": "sk", "arn": "arn:aws:kms:eu-west-1:222222222222:key/sk", "props": {"keyUsage": "SIGN_VERIFY", "customerMasterKeySpec": "ECC_NIST_P256"}},
	{"type": "kubernetes:helm.sh/v3:Release", "name": "hub-release", "id": "r", "arn": "", "props": {"chart": "jupyterhub", "values": {
		"hub": {"image": {"name": "ecr/k8s-hub", "tag": "4.3.1"}, "config": {"KubeSpawner": {"image": "ecr/dataroom:0.1.0", "automount_service_account_token": false, "service_account": "su", "uid": 1000, "privileged": false, "allow_privilege_escalation": false, "container_security_context": {"capabilities": {"drop": ["ALL"]}}, "cpu_limit": 1, "mem_limit": "1G", "env_keep": [], "environment": {}, "extra_labels": {"dataroom.io/role": "singleuser"}, "args": ["--ServerApp.jpserver_extensions=dataroom.hub.no_download=True"], "disable_user_config": true}}},
		"proxy": {"chp": {"image": {"name": "ecr/chp", "tag": "4.6.3"}}},
		"singleuser": {"image": {"name": "ecr/dataroom", "tag": "0.1.0"}, "networkPolicy": {"enabled": false}},
	}}},
	{"type": "kubernetes:networking.k8s.io/v1:NetworkPolicy", "name": "singleuser", "id": "np", "arn": "", "props": {"spec": {"podSelector": {"matchLabels": {"dataroom.io/role": "singleuser"}}, "policyTypes": ["Egress"], "egress": [{"to": [{"podSelector": {"matchLabels": {"dataroom.io/role": "broker"}}}]}]}}},
]

main_fixture_req(resources) := {"stack": {"name": "dev", "kind": "data-room"}, "resources": resources}

test_allow_minimal_data_room_stack if {
	resources := array.concat(array.concat([main_fixture_vpc, main_fixture_bucket], main_fixture_bucket_settings), main_fixture_room)
	infra.decision(main_fixture_req(resources)) == {"allow": true, "violations": set(), "resources": 11}
}

test_deny_data_room_stack_with_internet_gateway if {
	igw := {"type": "aws:ec2/internetGateway:InternetGateway", "name": "igw", "id": "igw-1", "arn": "", "props": {"vpcId": "vpc-1"}}
	resources := array.concat(array.concat([main_fixture_vpc, main_fixture_bucket, igw], main_fixture_bucket_settings), main_fixture_room)
	expected := {"policy": "network", "resource": "igw", "type": "aws:ec2/internetGateway:InternetGateway", "message": `internet gateway "igw" gives the data room a path to the internet; the data-room VPC reaches AWS only through VPC endpoints`}
	infra.decision(main_fixture_req(resources)) == {"allow": false, "violations": {expected}, "resources": 12}
}

test_deny_empty_data_room_stack if {
	decision := infra.decision(main_fixture_req([]))
	decision.allow == false
	{v.policy | some v in decision.violations} == {"network", "object_lock", "eks_cluster", "singleuser_pods", "signing_key"}
}

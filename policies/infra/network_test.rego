package dataroom.infra.network_test

import data.dataroom.infra.network
import rego.v1

network_fixture_vpc := {"type": "aws:ec2/vpc:Vpc", "name": "network-vpc", "id": "vpc-1", "arn": "", "props": {"cidrBlock": "10.42.0.0/16"}}

network_fixture_subnet(public) := {"type": "aws:ec2/subnet:Subnet", "name": "network-private-a", "id": "subnet-1", "arn": "", "props": {"vpcId": "vpc-1", "mapPublicIpOnLaunch": public}}

network_fixture_req(kind, resources) := {"stack": {"name": "dev", "kind": kind}, "resources": resources}

test_allow_private_vpc if {
	table := {"type": "aws:ec2/routeTable:RouteTable", "name": "network-private", "id": "rtb-1", "arn": "", "props": {"vpcId": "vpc-1"}}
	network.violations(network_fixture_req("data-room", [network_fixture_vpc, network_fixture_subnet(false), table])) == set()
}

test_deny_internet_and_nat_gateways if {
	igw := {"type": "aws:ec2/internetGateway:InternetGateway", "name": "igw", "id": "igw-1", "arn": "", "props": {"vpcId": "vpc-1"}}
	nat := {"type": "aws:ec2/natGateway:NatGateway", "name": "nat", "id": "nat-1", "arn": "", "props": {"subnetId": "subnet-1"}}
	found := network.violations(network_fixture_req("data-room", [network_fixture_vpc, igw, nat]))
	found == {
		{"policy": "network", "resource": "igw", "type": "aws:ec2/internetGateway:InternetGateway", "message": `internet gateway "igw" gives the data room a path to the internet; the data-room VPC reaches AWS only through VPC endpoints`},
		{"policy": "network", "resource": "nat", "type": "aws:ec2/natGateway:NatGateway", "message": `NAT gateway "nat" gives the data room a path to the internet; the data-room VPC reaches AWS only through VPC endpoints`},
	}
}

test_deny_default_routes if {
	route := {"type": "aws:ec2/route:Route", "name": "to-world", "id": "r-1", "arn": "", "props": {"routeTableId": "rtb-1", "destinationCidrBlock": "0.0.0.0/0", "gatewayId": "igw-1"}}
	table := {"type": "aws:ec2/routeTable:RouteTable", "name": "inline", "id": "rtb-2", "arn": "", "props": {"routes": [{"ipv6CidrBlock": "::/0", "egressOnlyGatewayId": "eigw-1"}]}}
	found := network.violations(network_fixture_req("data-room", [network_fixture_vpc, route, table]))
	found == {
		{"policy": "network", "resource": "to-world", "type": "aws:ec2/route:Route", "message": `"to-world" routes 0.0.0.0/0 off the VPC; the data-room VPC has no default route`},
		{"policy": "network", "resource": "inline", "type": "aws:ec2/routeTable:RouteTable", "message": `"inline" routes ::/0 off the VPC; the data-room VPC has no default route`},
	}
}

test_deny_public_subnet if {
	expected := {"policy": "network", "resource": "network-private-a", "type": "aws:ec2/subnet:Subnet", "message": `subnet "network-private-a" assigns public IP addresses; data-room subnets are private`}
	network.violations(network_fixture_req("data-room", [network_fixture_vpc, network_fixture_subnet(true)])) == {expected}
}

test_deny_data_room_stack_without_vpc if {
	expected := {"policy": "network", "resource": "dev", "type": "pulumi:pulumi:Stack", "message": "data-room stack provisions no VPC; the broker must run in the isolated data-room VPC"}
	network.violations(network_fixture_req("data-room", [])) == {expected}
}

test_allow_production_grant_stack_without_vpc if {
	network.violations(network_fixture_req("production-grant", [])) == set()
}

package dataroom.infra.network

import data.dataroom.infra.lib
import rego.v1

internet_gateway_types := {
	"aws:ec2/internetGateway:InternetGateway": "internet gateway",
	"aws:ec2/internetGatewayAttachment:InternetGatewayAttachment": "internet gateway attachment",
	"aws:ec2/egressOnlyInternetGateway:EgressOnlyInternetGateway": "egress-only internet gateway",
	"aws:ec2/natGateway:NatGateway": "NAT gateway",
}

default_routes := {"0.0.0.0/0", "::/0"}

gateway_violations(resources) := {lib.violation("network", r, msg) |
	some r in resources
	label := internet_gateway_types[r.type]
	msg := sprintf("%s \"%s\" gives the data room a path to the internet; the data-room VPC reaches AWS only through VPC endpoints", [label, r.name])
}

route_destinations(r) := {d |
	r.type == "aws:ec2/route:Route"
	some key in ["destinationCidrBlock", "destinationIpv6CidrBlock"]
	d := lib.prop(r, key)
} | {d |
	r.type == "aws:ec2/routeTable:RouteTable"
	some route in lib.as_list(lib.prop(r, "routes"))
	some key in ["cidrBlock", "ipv6CidrBlock"]
	d := object.get(route, key, null)
}

route_violations(resources) := {lib.violation("network", r, msg) |
	some r in resources
	some destination in route_destinations(r)
	destination in default_routes
	msg := sprintf("\"%s\" routes %s off the VPC; the data-room VPC has no default route", [r.name, destination])
}

public_ip_violations(resources) := {lib.violation("network", r, msg) |
	some r in lib.of_type(resources, "aws:ec2/subnet:Subnet")
	lib.prop(r, "mapPublicIpOnLaunch") == true
	msg := sprintf("subnet \"%s\" assigns public IP addresses; data-room subnets are private", [r.name])
}

missing_violations(req) := {msg |
	req.stack.kind == "data-room"
	count(lib.of_type(req.resources, "aws:ec2/vpc:Vpc")) == 0
	msg := {
		"policy": "network",
		"resource": req.stack.name,
		"type": "pulumi:pulumi:Stack",
		"message": "data-room stack provisions no VPC; the broker must run in the isolated data-room VPC",
	}
}

# METADATA
# title: The data-room network has no path to the internet
# description: >-
#   No internet, egress-only or NAT gateway, no default route (0.0.0.0/0 or ::/0), no subnet
#   that assigns public IPs; a data-room stack must provision its own VPC.
violations(req) := ((gateway_violations(req.resources) | route_violations(req.resources)) | public_ip_violations(req.resources)) | missing_violations(req)

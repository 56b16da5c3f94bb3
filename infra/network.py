"""The data-room VPC: private subnets only, AWS APIs through VPC endpoints, no path to the internet."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

INTERFACE_ENDPOINT_SERVICES = ("sts", "kms", "logs", "ecr.api", "ecr.dkr", "ec2")
"""AWS APIs reached from inside besides S3: the broker's (assume the production role, sign and
decrypt, ship logs; STS also for IRSA web identities) and the EKS nodes' (pull images from ECR,
whose layers come through the S3 gateway; EC2 for the node bootstrap and the VPC CNI)."""


@dataclass(frozen=True)
class IsolatedNetworkArgs:
    """A VPC CIDR (at most /24) and the availability zones to spread private subnets over."""

    region: str
    cidr_block: str
    availability_zones: Sequence[str]

    def __post_init__(self) -> None:
        network = ipaddress.ip_network(self.cidr_block)
        if network.prefixlen > 24:
            raise ValueError(f"vpcCidr {self.cidr_block} is too small; use /24 or larger")
        if not self.availability_zones:
            raise ValueError("at least one availability zone is needed")


def private_subnet_cidrs(cidr_block: str, count: int) -> list[str]:
    """Carve ``count`` equal subnets (a sixteenth of the VPC each) from the start of the VPC range."""
    network = ipaddress.ip_network(cidr_block)
    subnets = network.subnets(new_prefix=network.prefixlen + 4)
    return [str(next(subnets)) for _ in range(count)]


class IsolatedNetwork(pulumi.ComponentResource):
    """VPC without internet or NAT gateway; S3 via a gateway endpoint, STS/KMS/Logs via interface endpoints.

    Nothing in the VPC has a route off the VPC except the S3 gateway endpoint's prefix list, so a
    compromised broker or notebook host cannot send data anywhere but AWS APIs.
    """

    vpc: aws.ec2.Vpc
    subnets: list[aws.ec2.Subnet]
    private_subnet_ids: pulumi.Output[list[str]]
    route_table: aws.ec2.RouteTable
    s3_gateway_endpoint: aws.ec2.VpcEndpoint
    interface_endpoints: dict[str, aws.ec2.VpcEndpoint]
    broker_security_group: aws.ec2.SecurityGroup

    def __init__(self, name: str, args: IsolatedNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataroom:infra:IsolatedNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr_block,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={"Name": f"{name}-vpc"},
            opts=child,
        )
        # The default security group allows all traffic between its members; empty it.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=self.vpc.id, ingress=[], egress=[], opts=child)
        self.route_table = aws.ec2.RouteTable(
            f"{name}-private", vpc_id=self.vpc.id, tags={"Name": f"{name}-private"}, opts=child
        )
        subnets = []
        for zone, cidr in zip(
            args.availability_zones, private_subnet_cidrs(args.cidr_block, len(args.availability_zones)), strict=True
        ):
            subnet = aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=self.vpc.id,
                cidr_block=cidr,
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-private-{zone}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}", subnet_id=subnet.id, route_table_id=self.route_table.id, opts=child
            )
            subnets.append(subnet)
        self.subnets = subnets
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in subnets])
        self.s3_gateway_endpoint = aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[self.route_table.id],
            opts=child,
        )
        endpoint_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints",
            vpc_id=self.vpc.id,
            description="HTTPS from inside the data-room VPC to the AWS API endpoints",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=443, to_port=443, cidr_blocks=[args.cidr_block]
                )
            ],
            egress=[],
            opts=child,
        )
        self.interface_endpoints = {
            service: aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}",
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{args.region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[s.id for s in subnets],
                security_group_ids=[endpoint_sg.id],
                opts=child,
            )
            for service in INTERFACE_ENDPOINT_SERVICES
        }
        self.broker_security_group = aws.ec2.SecurityGroup(
            f"{name}-broker",
            vpc_id=self.vpc.id,
            description="Data-room broker: HTTPS to the VPC endpoints and the S3 gateway only",
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="tcp", from_port=443, to_port=443, cidr_blocks=[args.cidr_block]
                ),
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="tcp",
                    from_port=443,
                    to_port=443,
                    prefix_list_ids=[self.s3_gateway_endpoint.prefix_list_id],
                ),
            ],
            opts=child,
        )
        self.register_outputs(
            {
                "vpc_id": self.vpc.id,
                "private_subnet_ids": self.private_subnet_ids,
                "s3_gateway_endpoint_id": self.s3_gateway_endpoint.id,
                "broker_security_group_id": self.broker_security_group.id,
            }
        )

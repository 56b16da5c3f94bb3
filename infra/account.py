"""The isolated data-room account: a new Organizations member account, or an existing one."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config import AccountConfig


@dataclass(frozen=True)
class DataRoomAccountArgs:
    """``account`` says where the account comes from; every data-room resource is created in it."""

    account: AccountConfig
    region: str
    environment: str


class DataRoomAccount(pulumi.ComponentResource):
    """Creates (or adopts) the data-room account and a provider that can only deploy into it.

    The provider's ``allowed_account_ids`` guard makes a mis-set credential fail the deployment
    instead of creating the data room in the wrong account.
    """

    account_id: pulumi.Output[str]
    provider: aws.Provider

    def __init__(self, name: str, args: DataRoomAccountArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataroom:infra:DataRoomAccount", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = {"dataroom:environment": args.environment, "dataroom:purpose": "data-room"}
        deploy_role_arn: pulumi.Input[str] | None = args.account.deploy_role_arn
        if args.account.create:
            member = aws.organizations.Account(
                f"{name}-member",
                name=args.account.name,
                email=args.account.email,
                parent_id=args.account.parent_id,
                role_name=args.account.access_role_name,
                iam_user_access_to_billing="DENY",
                close_on_deletion=False,
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self, protect=True),
            )
            self.account_id = member.id
            if deploy_role_arn is None:
                deploy_role_arn = pulumi.Output.concat(
                    "arn:aws:iam::", member.id, ":role/", args.account.access_role_name
                )
        else:
            self.account_id = pulumi.Output.from_input(str(args.account.id))
        self.provider = aws.Provider(
            f"{name}-provider",
            region=args.region,
            allowed_account_ids=self.account_id.apply(lambda account_id: [account_id]),
            assume_roles=(
                [aws.ProviderAssumeRoleArgs(role_arn=deploy_role_arn, session_name=f"dataroom-{args.environment}")]
                if deploy_role_arn is not None
                else None
            ),
            default_tags=aws.ProviderDefaultTagsArgs(tags=tags),
            opts=child,
        )
        self.register_outputs({"account_id": self.account_id})

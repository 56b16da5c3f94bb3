"""Run a stack program offline under Pulumi's mocks and record every resource it declares.

No Pulumi CLI or AWS account is needed: Pulumi's own mock monitor (``pulumi.runtime.set_mocks``)
stands in for the engine, and :class:`RecordingMocks` answers each registration the way AWS
would name things (ids, ARNs), so that documents built from outputs look like the real ones.
Used by the tests and by ``dataroom infra check``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks

MOCK_ACCOUNT_ID = "123456789012"
"""Account id used when no provider in the program pins one (``allowed_account_ids``)."""

MOCK_MEMBER_ACCOUNT_ID = "210987654321"
"""Id the mocks give a newly created Organizations member account."""

MOCK_EKS_ID = "0123456789ABCDEF0123456789ABCDEF"
"""The id in the mocked EKS endpoint and OIDC issuer URLs."""

MOCK_SECRET_PASSWORD = "mock-rds-managed-password"
"""What the mocked Secrets Manager returns as the RDS-managed password (never a real one)."""


@dataclass(frozen=True)
class RecordedResource:
    """One resource registration: its Pulumi type, logical name, mocked id/ARN, inputs and provider reference."""

    type: str
    name: str
    id: str
    arn: str
    custom: bool
    props: dict[str, Any]
    provider: str = ""

    def to_policy_input(self) -> dict[str, Any]:
        """The JSON shape the infra policies read (``policies/infra``)."""
        return {"type": self.type, "name": self.name, "id": self.id, "arn": self.arn, "props": self.props}


@dataclass
class MockRun:
    """What a program declared: its resources in registration order and its resolved outputs."""

    resources: list[RecordedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)

    def of_type(self, type_token: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str) -> RecordedResource:
        """The single resource of a type (a test helper that fails loudly when there are more)."""
        found = self.of_type(type_token)
        if len(found) != 1:
            raise LookupError(f"expected one {type_token}, found {[r.name for r in found]}")
        return found[0]

    def named(self, name: str) -> RecordedResource:
        for resource in self.resources:
            if resource.name == name:
                return resource
        raise LookupError(f"no resource named {name!r}; have {[r.name for r in self.resources]}")

    def policy_input(self) -> list[dict[str, Any]]:
        return [r.to_policy_input() for r in self.resources if r.custom]


SECRET_SIG = "4dabf18193072939515e22adb298388d"
"""Pulumi's marker of a secret value in serialised properties."""

REDACTED = "[secret]"


def _plain(value: Any) -> Any:
    """JSON-ready copy of mock inputs (Pulumi hands numbers over as floats); secrets are redacted."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping) and SECRET_SIG in value:
        return REDACTED
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return [value]
    return [str(v) for v in value or []]


class RecordingMocks(Mocks):
    """Pulumi mocks that record every registration and synthesise AWS-like ids and ARNs."""

    def __init__(self) -> None:
        self.resources: list[RecordedResource] = []
        self._provider_scope: dict[str, tuple[str, str]] = {}

    def _scope(self, provider_ref: str | None) -> tuple[str, str]:
        """Account and region of the provider a resource uses (a reference is ``<urn>::<id>``)."""
        parts = (provider_ref or "").split("::")
        name = parts[-2] if len(parts) >= 2 else ""
        return self._provider_scope.get(name, (MOCK_ACCOUNT_ID, "us-east-1"))

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict]:
        props = _plain(args.inputs)
        if args.typ.startswith("pulumi:providers:"):
            accounts = _as_list(props.get("allowedAccountIds"))
            self._provider_scope[args.name] = (
                accounts[0] if accounts else MOCK_ACCOUNT_ID,
                str(props.get("region") or "us-east-1"),
            )
        resource_id, arn = self._identity(args, props)
        state = {**props, "arn": arn}
        state.setdefault("name", str(props.get("name") or args.name))
        if args.typ == "aws:s3/bucket:Bucket":
            state["bucket"] = resource_id
        if args.typ == "aws:ec2/vpcEndpoint:VpcEndpoint":
            state["prefixListId"] = f"pl-{args.name}"
        state.update(self._outputs(args, props, resource_id))
        self.resources.append(
            RecordedResource(
                type=args.typ,
                name=args.name,
                id=resource_id,
                arn=arn,
                custom=bool(args.custom),
                props=props,
                provider=args.provider or "",
            )
        )
        return resource_id, state

    def _outputs(self, args: MockResourceArgs, props: dict[str, Any], resource_id: str) -> dict[str, Any]:
        """Output-only attributes AWS computes that the programs read (EKS endpoint and OIDC issuer, RDS address)."""
        _, region = self._scope(args.provider)
        if args.typ == "aws:eks/cluster:Cluster":
            return {
                "endpoint": f"https://{MOCK_EKS_ID}.gr7.{region}.eks.amazonaws.com",
                "certificateAuthority": {"data": "bW9jay1jYQ=="},
                "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{MOCK_EKS_ID}"}]}],
                "vpcConfig": {**props.get("vpcConfig", {}), "clusterSecurityGroupId": f"sg-{args.name}-cluster"},
            }
        if args.typ == "aws:ec2/launchTemplate:LaunchTemplate":
            return {"latestVersion": 1}
        if args.typ == "aws:rds/instance:Instance":
            return {
                "address": f"{props.get('identifier', args.name)}.mock.{region}.rds.amazonaws.com",
                "port": 5432,
                "masterUserSecrets": [{"secretArn": f"arn:aws:secretsmanager:{region}:{MOCK_ACCOUNT_ID}:secret:rds!db-mock"}],
            }
        return {}

    def _identity(self, args: MockResourceArgs, props: dict[str, Any]) -> tuple[str, str]:
        """The id and ARN AWS would give the resource (ids are what other resources reference)."""
        account, region = self._scope(args.provider)
        name = str(props.get("name") or args.name)
        service, _, kind = args.typ.partition(":")[2].partition("/")
        kind = kind.split(":")[-1]
        if not args.custom or args.typ.startswith("pulumi:providers:"):
            return f"{args.name}-id", ""
        if args.typ == "aws:organizations/account:Account":
            return MOCK_MEMBER_ACCOUNT_ID, f"arn:aws:organizations::{account}:account/o-mock/{MOCK_MEMBER_ACCOUNT_ID}"
        if args.typ == "aws:s3/bucket:Bucket":
            bucket = str(props.get("bucket") or args.name)
            return bucket, f"arn:aws:s3:::{bucket}"
        if args.typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            issuer = str(props.get("url", "")).removeprefix("https://")
            arn = f"arn:aws:iam::{account}:oidc-provider/{issuer}"
            return arn, arn
        if service == "iam":
            path = {"Role": "role", "Policy": "policy", "InstanceProfile": "instance-profile"}.get(kind)
            arn = f"arn:aws:iam::{account}:{path}/{name}" if path else ""
            return (arn if kind == "Policy" else name), arn
        if args.typ == "aws:kms/key:Key":
            key_id = f"{args.name}-0000-mock"
            return key_id, f"arn:aws:kms:{region}:{account}:key/{key_id}"
        if args.typ == "aws:cloudtrail/trail:Trail":
            return name, f"arn:aws:cloudtrail:{region}:{account}:trail/{name}"
        resource_id = f"{args.name}-id"
        kebab = re.sub(r"(?<!^)(?=[A-Z])", "-", kind).lower()
        return resource_id, f"arn:aws:{service}:{region}:{account}:{kebab}/{resource_id}"

    def call(self, args: MockCallArgs) -> tuple[dict, list[tuple[str, str]]]:
        """The one provider call (the RDS-managed registry password) gets a stand-in secret; others nothing."""
        if args.token == "aws:secretsmanager/getSecretVersion:getSecretVersion":
            return {"secretString": json.dumps({"username": "dataroom", "password": MOCK_SECRET_PASSWORD})}, []
        return {}, []


def run_under_mocks(
    program: Callable[[], Mapping[str, Any] | None],
    *,
    project: str = "dataroom",
    stack: str = "test",
    config: Mapping[str, str] | None = None,
    secret_keys: Sequence[str] = (),
) -> MockRun:
    """Run ``program`` (which declares resources and may return outputs) under recording mocks.

    ``config`` is Pulumi's flat config map (``{"aws:region": "eu-west-1", "dataroom:kind": ...}``,
    objects as JSON strings). Exceptions raised by the program propagate.
    """
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False)
    pulumi.runtime.set_all_config(dict(config or {}), list(secret_keys))
    run = MockRun(resources=mocks.resources)

    def collect(values: list[Any], keys: list[str]) -> None:
        half = len(keys)
        run.outputs.update(zip(keys, values[:half], strict=True))
        run.secret_outputs.update(k for k, secret in zip(keys, values[half:], strict=True) if secret)

    @pulumi.runtime.test
    def body() -> pulumi.Output[Any]:
        outputs = dict(program() or {})
        keys = list(outputs)
        wrapped = [pulumi.Output.from_input(outputs[k]) for k in keys]
        secrets = [pulumi.Output.from_input(o.is_secret()) for o in wrapped]
        # unsecret() so the collected values are plain; secretness is recorded separately.
        return pulumi.Output.all(*[pulumi.Output.unsecret(o) for o in wrapped], *secrets).apply(
            lambda values: collect(values, keys)
        )

    body()
    return run

"""The generated IAM documents, enforced by a real IAM evaluator (a moto server on loopback).

The very documents the Pulumi components attach (``infra.policy_documents``) are loaded into
moto with IAM enforcement switched on; the read-only role is assumed with the ExternalId, a
production Parquet object is read, and every write or out-of-prefix read is refused.

Where moto 5.2.5 falls short of AWS, the test adapts and says so:

* moto evaluates a role's trust policy only for callers in the role's own account and only
  recognises IAM users as principals, so the broker is stood in for by an IAM user in the
  production account, and the trust policy is generated for that user's ARN. (The
  cross-account shape, a role ARN from the data-room account, is covered by the Rego trust
  policy and the mock tests.) The stand-in carries the broker's generated permissions policy.
* moto treats a ``StringEquals`` condition whose key is absent from the request as satisfied;
  AWS treats it as not matching. ``aws_condition_semantics`` restores AWS's rule, in-process,
  for the one case it matters: AssumeRole without an ExternalId.
* moto ignores ``StringLike`` conditions, so the ``s3:prefix`` limit on ListBucket is not
  exercised here; listing another bucket is.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.iam.policy_conditions import TrustCondition
from moto.server import ThreadedMotoServer

from infra.config import ParquetPrefix
from infra.policy_documents import (
    broker_permissions_policy,
    read_only_permissions_policy,
    read_only_trust_policy,
)

REGION = "eu-west-1"
PRODUCTION_ACCOUNT = "111111111111"
EXTERNAL_ID = "ext-" + uuid.uuid4().hex
RUN = uuid.uuid4().hex[:8]
DATA_BUCKET = f"prod-security-findings-{RUN}"
OTHER_BUCKET = f"prod-hr-{RUN}"
GRANTED = ParquetPrefix(DATA_BUCKET, "parquet/findings/")
FINDINGS_KEY = "parquet/findings/tenant=acme/part-0.parquet"


@dataclass(frozen=True)
class Moto:
    endpoint: str

    def client(self, service: str, creds: dict[str, str] | None = None):
        keys = creds or {"aws_access_key_id": "bootstrap", "aws_secret_access_key": "bootstrap"}
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
            **keys,
        )

    def set_auth(self, initial_no_auth_action_count: str) -> str:
        """Switch moto's IAM enforcement (``0``: from the next request; ``inf``: off); returns the previous value."""
        response = requests.post(f"{self.endpoint}/moto-api/reset-auth", data=initial_no_auth_action_count, timeout=10)
        response.raise_for_status()
        return response.json()["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]


@dataclass(frozen=True)
class World:
    moto: Moto
    role_arn: str
    broker: dict[str, str]
    analyst: dict[str, str]
    findings: bytes


def _keys(iam, user: str) -> dict[str, str]:
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


def _parquet(rows: dict[str, list]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table(rows), sink)
    return sink.getvalue()


@pytest.fixture(scope="module")
def aws_condition_semantics() -> Iterator[None]:
    """Named test adjustment of moto (see module docstring): an absent key fails StringEquals."""
    original = TrustCondition.verify_condition

    def verify(self: TrustCondition, actual_values: list[str]) -> bool:
        if self._condition == "StringEquals" and len(actual_values) < len(self.context_keys):
            return False
        return original(self, actual_values)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TrustCondition, "verify_condition", verify)
        yield


@pytest.fixture(scope="module")
def world(aws_condition_semantics: None) -> Iterator[World]:
    """One moto server for the module: production data, the grant, the broker and an analyst."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    moto = Moto(f"http://{host}:{port}")
    previous = moto.set_auth("inf")
    try:
        # Bootstrap (auth off): become an admin session inside the production account.
        creds = moto.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{PRODUCTION_ACCOUNT}:role/bootstrap-{RUN}", RoleSessionName="bootstrap"
        )["Credentials"]
        admin = {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        }
        iam, s3 = moto.client("iam", admin), moto.client("s3", admin)
        location = {"LocationConstraint": REGION}
        for bucket in (DATA_BUCKET, OTHER_BUCKET):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration=location)
        findings = _parquet({"tenant": ["acme", "acme"], "cvss": [9.8, 5.0], "days_to_fix": [3, 40]})
        s3.put_object(Bucket=DATA_BUCKET, Key=FINDINGS_KEY, Body=findings)
        s3.put_object(Bucket=DATA_BUCKET, Key="parquet/findings-secret/part-0.parquet", Body=findings)
        s3.put_object(Bucket=DATA_BUCKET, Key="raw/export.csv", Body=b"a,b\n")
        s3.put_object(Bucket=OTHER_BUCKET, Key="parquet/salaries/part-0.parquet", Body=findings)

        broker_user = iam.create_user(UserName=f"dataroom-broker-{RUN}")["User"]
        role_name = f"dataroom-read-only-{RUN}"
        role_arn = f"arn:aws:iam::{PRODUCTION_ACCOUNT}:role/{role_name}"
        permissions = json.dumps(read_only_permissions_policy([GRANTED], REGION))
        boundary = iam.create_policy(PolicyName=f"{role_name}-boundary", PolicyDocument=permissions)["Policy"]
        iam.create_role(
            RoleName=role_name,
            AssumeRolePolicyDocument=json.dumps(read_only_trust_policy([broker_user["Arn"]], EXTERNAL_ID)),
            PermissionsBoundary=boundary["Arn"],
            MaxSessionDuration=3600,
        )
        iam.put_role_policy(RoleName=role_name, PolicyName="read-only", PolicyDocument=permissions)
        broker_policy = broker_permissions_policy(
            [role_arn], f"arn:aws:s3:::dataroom-audit-{RUN}", f"arn:aws:kms:{REGION}:{PRODUCTION_ACCOUNT}:key/k"
        )
        iam.put_user_policy(UserName=broker_user["UserName"], PolicyName="broker", PolicyDocument=json.dumps(broker_policy))

        # Another principal that is allowed to *call* AssumeRole: only the trust policy stops it.
        analyst = iam.create_user(UserName=f"analyst-{RUN}")["User"]
        may_assume = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}]}
        iam.put_user_policy(UserName=analyst["UserName"], PolicyName="assume", PolicyDocument=json.dumps(may_assume))

        world = World(moto, role_arn, _keys(iam, broker_user["UserName"]), _keys(iam, analyst["UserName"]), findings)
        moto.set_auth("0")
        yield world
    finally:
        moto.set_auth(previous)
        server.stop()


def _assume(world: World, creds: dict[str, str], **extra: str) -> dict[str, str]:
    response = world.moto.client("sts", creds).assume_role(
        RoleArn=world.role_arn, RoleSessionName="dataroom-broker", DurationSeconds=900, **extra
    )
    c = response["Credentials"]
    return {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"], "aws_session_token": c["SessionToken"]}


def _denied(call, *args, **kwargs) -> str:
    with pytest.raises(ClientError) as raised:
        call(*args, **kwargs)
    return raised.value.response["Error"]["Code"]


def test_read_only_role_reads_the_granted_prefix_and_nothing_else(world: World) -> None:
    session = _assume(world, world.broker, ExternalId=EXTERNAL_ID)
    s3 = world.moto.client("s3", session)

    body = s3.get_object(Bucket=DATA_BUCKET, Key=FINDINGS_KEY)["Body"].read()
    assert body == world.findings
    table = pq.read_table(io.BytesIO(body))
    assert table.column("cvss").to_pylist() == [9.8, 5.0]
    listed = s3.list_objects_v2(Bucket=DATA_BUCKET, Prefix=GRANTED.prefix)
    assert [o["Key"] for o in listed["Contents"]] == [FINDINGS_KEY]

    assert _denied(s3.put_object, Bucket=DATA_BUCKET, Key="parquet/findings/injected.parquet", Body=b"x") == "AccessDenied"
    assert _denied(s3.delete_object, Bucket=DATA_BUCKET, Key=FINDINGS_KEY) == "AccessDenied"
    assert _denied(s3.get_object, Bucket=DATA_BUCKET, Key="parquet/findings-secret/part-0.parquet") == "AccessDenied"
    assert _denied(s3.get_object, Bucket=DATA_BUCKET, Key="raw/export.csv") == "AccessDenied"
    assert _denied(s3.get_object, Bucket=OTHER_BUCKET, Key="parquet/salaries/part-0.parquet") == "AccessDenied"
    assert _denied(s3.list_objects_v2, Bucket=OTHER_BUCKET) == "AccessDenied"
    # The refused delete changed nothing.
    assert s3.get_object(Bucket=DATA_BUCKET, Key=FINDINGS_KEY)["Body"].read() == world.findings


def test_role_session_cannot_change_iam(world: World) -> None:
    session = _assume(world, world.broker, ExternalId=EXTERNAL_ID)
    iam = world.moto.client("iam", session)
    assert _denied(iam.create_user, UserName="backdoor") == "AccessDenied"


def test_assuming_without_or_with_a_wrong_external_id_fails(world: World) -> None:
    assert _denied(_assume, world, world.broker) == "AccessDenied"
    assert _denied(_assume, world, world.broker, ExternalId="guessed-external-id") == "AccessDenied"


def test_another_principal_cannot_assume_even_with_the_external_id(world: World) -> None:
    assert _denied(_assume, world, world.analyst, ExternalId=EXTERNAL_ID) == "AccessDenied"

"""Stack configuration: the example stack files load, and mistakes fail naming the key to fix."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from infra.config import (
    DataRoomStackConfig,
    InfraConfigError,
    ParquetPrefix,
    ProductionGrantStackConfig,
    load_stack_config,
)
from infra.mock_run import run_under_mocks
from infra.stack_files import SECRET_PLACEHOLDER, StackFileError, load_stack_file, stack_names


def _load(config: dict[str, str], stack: str = "dev") -> Any:
    box: dict[str, Any] = {}
    run_under_mocks(lambda: box.update(config=load_stack_config()), stack=stack, config=config)
    return box["config"]


def _with(stack: str, **changes: Any) -> dict[str, str]:
    config = dict(load_stack_file(stack).config)
    for key, value in changes.items():
        full = f"dataroom:{key}"
        if value is None:
            config.pop(full, None)
        else:
            config[full] = value if isinstance(value, str) else json.dumps(value)
    return config


def test_example_stack_files_exist_for_both_kinds() -> None:
    assert stack_names() == ["dev", "dev-grant"]
    assert {load_stack_file(s).kind for s in stack_names()} == {"data-room", "production-grant"}


def test_data_room_example_loads_with_derived_names() -> None:
    cfg = _load(load_stack_file("dev").config)
    assert isinstance(cfg, DataRoomStackConfig)
    assert cfg.account.id == "222222222222" and not cfg.account.create
    assert cfg.availability_zones == ("eu-west-1a", "eu-west-1b")
    assert cfg.audit_retention_days == 365
    assert cfg.read_only_role_arn == "arn:aws:iam::111111111111:role/dataroom-read-only-dev"
    assert cfg.trail_arn == "arn:aws:cloudtrail:eu-west-1:111111111111:trail/dataroom-production-data-events-dev"
    assert cfg.broker_role_name == "dataroom-broker-dev"


def test_grant_example_loads_prefixes_and_the_secret_placeholder() -> None:
    stack_file = load_stack_file("dev-grant")
    assert stack_file.secret_keys == ("dataroom:externalId",)
    cfg = _load(stack_file.config, stack="dev-grant")
    assert isinstance(cfg, ProductionGrantStackConfig)
    assert cfg.external_id == SECRET_PLACEHOLDER
    assert cfg.parquet_prefixes == (
        ParquetPrefix("prod-security-findings", "parquet/findings/"),
        ParquetPrefix("prod-security-findings", "parquet/assets/"),
    )
    assert cfg.source_vpc_endpoint_ids == ("vpce-0123456789abcdef0",)


@pytest.mark.parametrize(
    ("stack", "changes", "message"),
    [
        ("dev", {"kind": "both"}, "dataroom:kind must be one of data-room, production-grant"),
        ("dev", {"productionAccountId": "1111"}, "productionAccountId: '1111' is not a 12-digit AWS account id"),
        ("dev", {"account": {"create": True, "name": "dr"}}, "needs 'name' and 'email'"),
        ("dev", {"account": {"id": "222222222222", "root": True}}, "account: unknown keys ['root']"),
        ("dev", {"auditRetentionDays": "0"}, "auditRetentionDays must be at least 1"),
        ("dev-grant", {"brokerRoleArn": "*"}, "brokerRoleArn: '*' is not an IAM ARN"),
        ("dev-grant", {"parquetPrefixes": []}, "parquetPrefixes: list at least one"),
        ("dev-grant", {"parquetPrefixes": [{"bucket": "prod", "prefix": ""}]}, "granting a whole bucket"),
        ("dev-grant", {"parquetPrefixes": [{"bucket": "prod", "prefix": "a/", "x": 1}]}, "exactly the keys"),
        ("dev-grant", {"externalId": "x"}, "externalId must be 2-1224 characters"),
        ("dev-grant", {"dataKmsKeyArns": ["alias/data"]}, "is not a KMS key ARN"),
        ("dev-grant", {"sourceVpcEndpointIds": ["vpc-123"]}, "is not a VPC endpoint id"),
    ],
)
def test_invalid_config_names_the_key(stack: str, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InfraConfigError) as raised:
        _load(_with(stack, **changes), stack=stack)
    assert message in str(raised.value)


def test_missing_required_key_is_pulumis_own_error() -> None:
    with pytest.raises(pulumi.ConfigMissingError, match="dataroom:brokerRoleArn"):
        _load(_with("dev-grant", brokerRoleArn=None), stack="dev-grant")


def test_stack_file_errors_name_the_file(tmp_path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: dataroom\n")
    (tmp_path / "Pulumi.bad.yaml").write_text("config:\n  kind: data-room\n")
    with pytest.raises(StackFileError, match="needs a namespace"):
        load_stack_file("bad", tmp_path)
    with pytest.raises(StackFileError, match=r"stacks found: bad"):
        load_stack_file("missing", tmp_path)

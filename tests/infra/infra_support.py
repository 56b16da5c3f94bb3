"""Helpers for the infra tests: example configs, building them under Pulumi's mocks, targeted breakage."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from infra.config import AccountConfig, DataRoomStackConfig, ParquetPrefix, ProductionGrantStackConfig
from infra.mock_run import MockRun, run_under_mocks
from infra.program import build_stack

BROKER_ROLE_ARN = "arn:aws:iam::222222222222:role/dataroom-broker-dev"
AUDIT_KEY_ARN = "arn:aws:kms:eu-west-1:222222222222:key/00000000-1111-2222-3333-444444444444"
TRAIL_ARN = "arn:aws:cloudtrail:eu-west-1:111111111111:trail/dataroom-production-data-events-dev"
DATA_KEY_ARN = "arn:aws:kms:eu-west-1:111111111111:key/55555555-6666-7777-8888-999999999999"
PREFIXES = (
    ParquetPrefix("prod-security-findings", "parquet/findings/"),
    ParquetPrefix("prod-security-findings", "parquet/assets/"),
    ParquetPrefix("prod-inventory", "parquet/hosts/"),
)


def data_room_config(**overrides: Any) -> DataRoomStackConfig:
    values: dict[str, Any] = dict(
        environment="dev",
        region="eu-west-1",
        account=AccountConfig(id="222222222222"),
        production_account_id="111111111111",
        audit_retention_days=400,
    )
    values.update(overrides)
    return DataRoomStackConfig(**values)


def grant_config(**overrides: Any) -> ProductionGrantStackConfig:
    values: dict[str, Any] = dict(
        environment="dev",
        region="eu-west-1",
        production_account_id="111111111111",
        broker_role_arn=BROKER_ROLE_ARN,
        external_id="ext-id-for-tests-0123456789",
        parquet_prefixes=PREFIXES,
        audit_bucket_name="dataroom-audit-dev-222222222222",
        audit_kms_key_arn=AUDIT_KEY_ARN,
        data_kms_key_arns=(DATA_KEY_ARN,),
    )
    values.update(overrides)
    return ProductionGrantStackConfig(**values)


def build(config: DataRoomStackConfig | ProductionGrantStackConfig, stack: str = "dev") -> MockRun:
    """The real stack program for ``config``, under Pulumi's mocks."""
    return run_under_mocks(lambda: build_stack(config), stack=stack)


def mutated(resources: list[dict[str, Any]], name: str, change: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    """A deep copy of a stack's policy input with ``change`` applied to the props of resource ``name``."""
    copied = copy.deepcopy(resources)
    matches = [r for r in copied if r["name"] == name]
    assert len(matches) == 1, f"no single resource named {name}"
    change(matches[0]["props"])
    return copied

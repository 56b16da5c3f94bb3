"""Fixtures for the infra tests: the example stacks, built once per session under Pulumi's mocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.mock_run import MockRun
from tests.infra.infra_support import build, data_room_config, grant_config


@pytest.fixture(scope="session")
def data_room_run() -> MockRun:
    return build(data_room_config())


@pytest.fixture(scope="session")
def grant_run() -> MockRun:
    return build(grant_config(), stack="dev-grant")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """pulumi_aws warns about its own deprecated aliases (BucketV2, ...) while Pulumi resolves
    output types; that is not actionable here, so keep it out of the infra tests' summary."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.filterwarnings(r"ignore::DeprecationWarning:pulumi_aws\."))

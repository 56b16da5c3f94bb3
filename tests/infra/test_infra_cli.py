"""``dataroom infra check``: exit 0 when the stacks pass, 3 with the violations, 1 when a stack cannot be built."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dataroom.cli.infra import EXIT_VIOLATIONS, infra
from infra.stack_files import INFRA_DIR


@pytest.fixture
def infra_dir(tmp_path: Path) -> Path:
    """A copy of the project's Pulumi.yaml and stack files, to edit one config key at a time."""
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.dev-grant.yaml"):
        shutil.copy(INFRA_DIR / name, tmp_path / name)
    return tmp_path


def _set(infra_dir: Path, stack: str, key: str, value: object) -> None:
    path = infra_dir / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"][f"dataroom:{key}"] = value
    path.write_text(yaml.safe_dump(document))


def test_check_all_example_stacks_passes() -> None:
    result = CliRunner().invoke(infra, ["check"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "PASS stack dev (data-room): 63 resources, 0 violation(s)",
        "PASS stack dev-grant (production-grant): 5 resources, 0 violation(s)",
    ]


def test_check_one_stack_as_json() -> None:
    result = CliRunner().invoke(infra, ["check", "--stack", "dev-grant", "--json"])
    assert result.exit_code == 0, result.output
    (verdict,) = json.loads(result.output)
    assert verdict["stack"] == "dev-grant"
    assert verdict["kind"] == "production-grant"
    assert verdict["allow"] is True and verdict["violations"] == []


def test_account_wide_trust_exits_3_with_the_reason(infra_dir: Path) -> None:
    _set(infra_dir, "dev-grant", "brokerRoleArn", "arn:aws:iam::222222222222:root")
    result = CliRunner().invoke(infra, ["check", "--infra-dir", str(infra_dir)])
    assert result.exit_code == EXIT_VIOLATIONS == 3
    lines = result.output.splitlines()
    assert lines[0] == "PASS stack dev (data-room): 63 resources, 0 violation(s)"
    assert lines[1] == "FAIL stack dev-grant (production-grant): 5 resources, 1 violation(s)"
    assert lines[2].startswith(
        "  - [Cross-account grants trust only the broker role, with an ExternalId] read-only-role: "
        'cross-account grant role "dataroom-read-only-dev" trusts AWS principal "arn:aws:iam::222222222222:root"'
    )


def test_bad_config_exits_1_naming_the_key(infra_dir: Path) -> None:
    _set(infra_dir, "dev", "productionAccountId", "12345")
    result = CliRunner().invoke(infra, ["check", "--infra-dir", str(infra_dir), "--stack", "dev"])
    assert result.exit_code == 1
    assert "stack dev: productionAccountId: '12345' is not a 12-digit AWS account id" in result.output


def test_unknown_stack_exits_1_listing_the_known_ones() -> None:
    result = CliRunner().invoke(infra, ["check", "--stack", "prod"])
    assert result.exit_code == 1
    assert "no stack file" in result.output and "stacks found: dev, dev-grant" in result.output


def test_unpinned_room_image_exits_1_naming_the_key(infra_dir: Path) -> None:
    room = {"image": "222222222222.dkr.ecr.eu-west-1.amazonaws.com/dataroom:latest"}
    _set(infra_dir, "dev", "room", room)
    result = CliRunner().invoke(infra, ["check", "--infra-dir", str(infra_dir), "--stack", "dev"])
    assert result.exit_code == 1
    assert "stack dev: room.image: '222222222222.dkr.ecr.eu-west-1.amazonaws.com/dataroom:latest' must be pinned" in result.output

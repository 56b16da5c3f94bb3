"""Read ``Pulumi.<stack>.yaml`` files into Pulumi's flat config map, for offline runs.

The Pulumi CLI normally does this (and decrypts secrets). Offline, in tests and in
``dataroom infra check``, secrets cannot be decrypted, so each ``secure:`` value is replaced
by a placeholder that still passes validation: the checks are about the resources' shape,
not the secret's value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

INFRA_DIR = Path(__file__).resolve().parent
SECRET_PLACEHOLDER = "offline-placeholder-for-a-pulumi-secret"


class StackFileError(ValueError):
    """A stack file is missing or malformed; the message names the file."""


@dataclass(frozen=True)
class StackFile:
    """A stack's name, project, flat config map and the keys whose values were secrets."""

    stack: str
    project: str
    config: dict[str, str]
    secret_keys: tuple[str, ...]

    @property
    def kind(self) -> str:
        return self.config.get("dataroom:kind", "")


def stack_names(infra_dir: Path = INFRA_DIR) -> list[str]:
    """Every stack with a ``Pulumi.<stack>.yaml`` file in ``infra_dir``, sorted."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in infra_dir.glob("Pulumi.*.yaml"))


def project_name(infra_dir: Path = INFRA_DIR) -> str:
    project_file = infra_dir / "Pulumi.yaml"
    try:
        return str(yaml.safe_load(project_file.read_text())["name"])
    except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise StackFileError(f"{project_file}: cannot read the project name ({exc})") from exc


def _config_value(value: Any) -> tuple[str, bool]:
    """Pulumi's config map holds strings; objects and lists are JSON, ``secure:`` values are secret."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return SECRET_PLACEHOLDER, True
    if isinstance(value, str):
        return value, False
    if isinstance(value, bool):
        return ("true" if value else "false"), False
    if isinstance(value, (int, float)):
        return str(value), False
    return json.dumps(value), False


def load_stack_file(stack: str, infra_dir: Path = INFRA_DIR) -> StackFile:
    """Load ``Pulumi.<stack>.yaml`` from ``infra_dir``."""
    path = infra_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = ", ".join(stack_names(infra_dir)) or "none"
        raise StackFileError(f"no stack file {path} (stacks found: {known})")
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise StackFileError(f"{path} is not valid YAML: {exc}") from exc
    raw = document.get("config") or {}
    if not isinstance(raw, dict):
        raise StackFileError(f"{path}: 'config' must be a mapping of keys to values")
    config: dict[str, str] = {}
    secrets: list[str] = []
    for key, value in raw.items():
        if ":" not in key:
            raise StackFileError(f"{path}: config key {key!r} needs a namespace, e.g. dataroom:{key}")
        config[key], secret = _config_value(value)
        if secret:
            secrets.append(key)
    return StackFile(stack=stack, project=project_name(infra_dir), config=config, secret_keys=tuple(secrets))

"""Infra policy as code: build a stack offline under Pulumi's mocks, then judge it with Rego.

The stack program (``infra.program``) runs exactly as ``pulumi up`` would run it, except that
Pulumi's mock monitor records each resource instead of creating it. The recorded resource
types and properties are evaluated by the infra policies in ``policies/infra`` through the
shared Rego engine, so a grant that could write, trust ``*`` or an audit bucket without Object
Lock is refused before anyone runs ``pulumi up``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml

from dataroom.rego import PACKAGE_RE, POLICY_ROOT, PolicyBundle, PolicyError
from infra.mock_run import run_under_mocks
from infra.program import build_from_pulumi_config
from infra.stack_files import INFRA_DIR, StackFileError, load_stack_file

POLICY_DIR = POLICY_ROOT / "infra"
ENTRYPOINT = "dataroom.infra.main"

_METADATA_RE = re.compile(r"^# METADATA\n((?:#.*\n)+?)(?!#)(\w+)", re.MULTILINE)


class InfraCheckError(RuntimeError):
    """A stack could not be built or judged (bad stack file or config); the message says what to fix."""


@dataclass(frozen=True)
class Violation:
    """One broken rule: which policy, which resource, and what to change."""

    policy: str
    resource: str
    type: str
    message: str
    title: str = ""


@dataclass(frozen=True)
class InfraCheckResult:
    """The infra policies' verdict on one stack."""

    stack: str
    kind: str
    allow: bool
    violations: tuple[Violation, ...]
    resource_count: int
    policy_revision: str

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "kind": self.kind,
            "allow": self.allow,
            "resources": self.resource_count,
            "policy_revision": self.policy_revision,
            "violations": [v.__dict__ for v in self.violations],
        }


@functools.cache
def policy_bundle(policy_dir: Path = POLICY_DIR) -> PolicyBundle:
    """The compiled infra policies (compiled once per process)."""
    return PolicyBundle(policy_dir, [ENTRYPOINT])


@functools.cache
def policy_titles(policy_dir: Path = POLICY_DIR) -> dict[str, str]:
    """``{policy id: title}`` from each file's ``violations`` METADATA, so output reads like the policy."""
    titles: dict[str, str] = {}
    for path in sorted(policy_dir.glob("*.rego")):
        text = path.read_text()
        package = PACKAGE_RE.search(text)
        for block, rule in _METADATA_RE.findall(text):
            if package and rule == "violations":
                meta = yaml.safe_load("\n".join(line[2:] for line in block.splitlines())) or {}
                titles[package.group(1).rsplit(".", 1)[-1]] = str(meta.get("title", ""))
    return titles


def evaluate_resources(
    resources: Sequence[Mapping[str, Any]], *, stack: str, kind: str, policy_dir: Path = POLICY_DIR
) -> InfraCheckResult:
    """Judge a stack's recorded resources (``RecordedResource.to_policy_input`` dicts)."""
    bundle = policy_bundle(policy_dir)
    decision = bundle.evaluate(
        ENTRYPOINT, {"stack": {"name": stack, "kind": kind}, "resources": [dict(r) for r in resources]}
    )
    if not isinstance(decision, dict) or "allow" not in decision:
        raise PolicyError(f"infra policies returned no decision for stack {stack}: {decision!r}")
    titles = policy_titles(policy_dir)
    violations = tuple(
        Violation(
            policy=v["policy"],
            resource=v["resource"],
            type=v["type"],
            message=v["message"],
            title=titles.get(v["policy"], ""),
        )
        for v in decision["violations"]
    )
    return InfraCheckResult(
        stack=stack,
        kind=kind,
        allow=bool(decision["allow"]) and not violations,
        violations=violations,
        resource_count=int(decision["resources"]),
        policy_revision=bundle.revision,
    )


def collect_stack_resources(stack: str, infra_dir: Path = INFRA_DIR) -> tuple[str, list[dict[str, Any]]]:
    """Build ``stack`` from its ``Pulumi.<stack>.yaml`` under mocks; returns (kind, resources)."""
    try:
        stack_file = load_stack_file(stack, infra_dir)
        run = run_under_mocks(
            build_from_pulumi_config,
            project=stack_file.project,
            stack=stack,
            config=stack_file.config,
            secret_keys=stack_file.secret_keys,
        )
    except (StackFileError, ValueError, pulumi.ConfigMissingError, pulumi.ConfigTypeError) as exc:
        # InfraConfigError and component argument errors are ValueErrors naming the key to fix.
        raise InfraCheckError(f"stack {stack}: {exc}") from exc
    return stack_file.kind, run.policy_input()


def check_stack(stack: str, infra_dir: Path = INFRA_DIR, policy_dir: Path = POLICY_DIR) -> InfraCheckResult:
    """Run the infra policies over one stack's resources."""
    kind, resources = collect_stack_resources(stack, infra_dir)
    return evaluate_resources(resources, stack=stack, kind=kind, policy_dir=policy_dir)

"""A project's output policy: how many rows and tenants must stand behind each row of a result.

Approved with the project's scope (the registry stores it explicitly) and applied by
:mod:`dataroom.outputs.aggregation` (the rewrite) and :mod:`dataroom.outputs.finish` (the
suppression in the engine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dataroom.catalog import Project

DEFAULT_MIN_ROWS = 10
DEFAULT_MIN_TENANTS = 2


@dataclass(frozen=True)
class OutputPolicy:
    """Per-project aggregation constraint; ``min_tenants`` 1 for a single-tenant project."""

    min_rows: int = DEFAULT_MIN_ROWS
    min_tenants: int = DEFAULT_MIN_TENANTS

    @classmethod
    def for_project(cls, project: Project) -> "OutputPolicy | None":
        """The project's policy: its own if set, else the default (on for multi-tenant projects)."""
        configured = project.output_policy
        if configured is not None:
            return None if not configured.get("enabled", True) else cls(int(configured.get("min_rows", DEFAULT_MIN_ROWS)), int(configured.get("min_tenants", 1)))
        return cls() if project.multi_tenant else None

    def to_dict(self) -> dict[str, int]:
        return {"min_rows": self.min_rows, "min_tenants": self.min_tenants}

    def describe(self) -> str:
        tenants = f" and {self.min_tenants} tenants" if self.min_tenants > 1 else ""
        return f"each result row must be backed by at least {self.min_rows} rows{tenants} (the project's output policy)"


def normalise_output_policy(value: dict[str, Any] | None, multi_tenant: bool, tenants: int) -> dict[str, Any]:
    """The output policy a project is approved with, stored explicitly; raises ValueError naming the problem.

    ``None`` means the default: on (10 rows, 2 tenants) for a multi-tenant project, off otherwise.
    """
    if value is None:
        return {"min_rows": DEFAULT_MIN_ROWS, "min_tenants": DEFAULT_MIN_TENANTS} if multi_tenant else {"enabled": False}
    if not value.get("enabled", True):
        return {"enabled": False}
    unknown = set(value) - {"enabled", "min_rows", "min_tenants"}
    if unknown:
        raise ValueError(f"unknown output policy setting(s) {', '.join(sorted(unknown))} (use min_rows, min_tenants, enabled)")
    min_rows = int(value.get("min_rows", DEFAULT_MIN_ROWS))
    min_tenants = int(value.get("min_tenants", DEFAULT_MIN_TENANTS if multi_tenant else 1))
    if min_rows < 1:
        raise ValueError("output policy min_rows must be at least 1")
    if not 1 <= min_tenants <= max(tenants, 1):
        raise ValueError(f"output policy min_tenants must be between 1 and the project's {tenants} tenant(s)")
    return {"min_rows": min_rows, "min_tenants": min_tenants}

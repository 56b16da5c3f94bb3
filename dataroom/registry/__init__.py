"""Project and hypothesis registry: who may explore what, until when, and what came of it.

See :mod:`dataroom.registry.service` for the rules and :mod:`dataroom.registry.phases` for the
five phases of hypothesis-driven development.

The names below load on first use (PEP 562): importing a light submodule such as
:mod:`dataroom.registry.policy_row` (``dataroom tables``) does not import SQLAlchemy and Alembic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dataroom.registry.phases import Phase, allowed_targets
    from dataroom.registry.service import (
        SECURITY_GROUP,
        SEED_ACTOR,
        Actor,
        Conflict,
        HypothesisInfo,
        NotFound,
        PermissionDenied,
        ProjectInfo,
        Registry,
        RegistryError,
        TransitionInfo,
        dispose_engines,
        hypothesis_key,
        parse_hypothesis_id,
    )

__all__ = [
    "SECURITY_GROUP",
    "SEED_ACTOR",
    "Actor",
    "Conflict",
    "HypothesisInfo",
    "NotFound",
    "PermissionDenied",
    "Phase",
    "ProjectInfo",
    "Registry",
    "RegistryError",
    "TransitionInfo",
    "allowed_targets",
    "dispose_engines",
    "hypothesis_key",
    "parse_hypothesis_id",
]

_HOME = {name: "dataroom.registry.service" for name in __all__} | {
    "Phase": "dataroom.registry.phases",
    "allowed_targets": "dataroom.registry.phases",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""Project and hypothesis registry: who may explore what, until when, and what came of it.

See :mod:`dataroom.registry.service` for the rules and :mod:`dataroom.registry.phases` for the
five phases of hypothesis-driven development.
"""

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

"""The five phases of hypothesis-driven development (shared/context/001: "MLOps change management").

1 Project Definition, 2 Data Exploration, 3 Functional Implementation, 4 Pre-Production Testing,
5 Production Deploy & Feedback in two sub-phases: 5A feature-flagged (internal feedback only) and
5B general (end-user facing). A hypothesis is registered at the end of Data Exploration (its
project's approval was the Project Definition); it then moves forward one phase at a time, or
back to an earlier working phase (a disproven hypothesis returns to Data Exploration). Entering a
production sub-phase needs an approver who is neither the author nor the person asking.
"""

from __future__ import annotations

from enum import Enum


class Phase(str, Enum):
    PROJECT_DEFINITION = "project_definition"
    DATA_EXPLORATION = "data_exploration"
    FUNCTIONAL_IMPLEMENTATION = "functional_implementation"
    PRE_PRODUCTION_TESTING = "pre_production_testing"
    PRODUCTION_FEATURE_FLAGGED = "production_feature_flagged"
    PRODUCTION_GENERAL = "production_general"

    @property
    def number(self) -> str:
        return _NUMBERS[self]

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def is_production(self) -> bool:
        return self in (Phase.PRODUCTION_FEATURE_FLAGGED, Phase.PRODUCTION_GENERAL)

    def display(self) -> str:
        return f"{self.number} {self.label}"

    @classmethod
    def parse(cls, text: str) -> "Phase":
        """Accept the value (``functional_implementation``), the number (``3``, ``5A``) or an alias (``5a``)."""
        key = text.strip().lower().replace("-", "_").replace(" ", "_")
        for phase in cls:
            if key in (phase.value, phase.number.lower()):
                return phase
        aliases = {"production_a": cls.PRODUCTION_FEATURE_FLAGGED, "production_b": cls.PRODUCTION_GENERAL}
        if key in aliases:
            return aliases[key]
        raise ValueError(f"unknown phase {text!r}: use one of {', '.join(p.value + ' (' + p.number + ')' for p in cls)}")


_NUMBERS = {
    Phase.PROJECT_DEFINITION: "1",
    Phase.DATA_EXPLORATION: "2",
    Phase.FUNCTIONAL_IMPLEMENTATION: "3",
    Phase.PRE_PRODUCTION_TESTING: "4",
    Phase.PRODUCTION_FEATURE_FLAGGED: "5A",
    Phase.PRODUCTION_GENERAL: "5B",
}
_LABELS = {
    Phase.PROJECT_DEFINITION: "Project Definition",
    Phase.DATA_EXPLORATION: "Data Exploration",
    Phase.FUNCTIONAL_IMPLEMENTATION: "Functional Implementation",
    Phase.PRE_PRODUCTION_TESTING: "Pre-Production Testing",
    Phase.PRODUCTION_FEATURE_FLAGGED: "Production Deploy & Feedback (A: feature-flagged)",
    Phase.PRODUCTION_GENERAL: "Production Deploy & Feedback (B: general)",
}
_ORDER = list(Phase)
_WORKING = (Phase.DATA_EXPLORATION, Phase.FUNCTIONAL_IMPLEMENTATION, Phase.PRE_PRODUCTION_TESTING)


def allowed_targets(current: Phase) -> list[Phase]:
    """Where a hypothesis in ``current`` may go: the next phase, or back to an earlier working phase."""
    index = _ORDER.index(current)
    targets = [p for p in _WORKING if _ORDER.index(p) < index]
    if index + 1 < len(_ORDER):
        targets.append(_ORDER[index + 1])
    return targets

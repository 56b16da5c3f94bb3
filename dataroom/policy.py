"""Policy decisions for queries: one interface, two engines over the same Rego files.

* :class:`EmbeddedPolicyEngine` (default) evaluates ``policies/query`` in-process with regopy.
* :class:`OpaServerPolicyEngine` asks an OPA server (``opa run --server`` loaded with the same
  policies) over its REST API through opa-python-client.

Both return the same :class:`Decision`. Any failure to decide is an error, never an allow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlparse

from dataroom.rego import POLICY_ROOT, PolicyBundle, PolicyError, bundle_hash, policy_files

QUERY_POLICY_DIR = POLICY_ROOT / "query"
QUERY_ENTRYPOINT = "dataroom.query.main"


@dataclass(frozen=True)
class Reason:
    code: str
    message: str


@dataclass(frozen=True)
class Decision:
    """A policy decision with the reasons that explain a denial and the bundle that made it."""

    allow: bool
    reasons: list[Reason] = field(default_factory=list)
    revision: str = ""
    engine: str = ""
    eval_ms: float = 0.0

    def as_result(self) -> dict[str, Any]:
        """The decision as the ``result`` of an OPA-style decision-log record."""
        return {"allow": self.allow, "reasons": [r.__dict__ for r in self.reasons]}


def decision_from_result(result: Any, revision: str, engine: str, eval_ms: float) -> Decision:
    """Validate a raw policy result; anything malformed is a :class:`PolicyError` (fail closed)."""
    if not isinstance(result, dict) or not isinstance(result.get("allow"), bool):
        raise PolicyError(f"policy returned no decision: {result!r}")
    reasons = [Reason(str(r.get("code", "")), str(r.get("message", ""))) for r in result.get("reasons") or []]
    allow = result["allow"] and not reasons
    return Decision(allow, sorted(reasons, key=lambda r: (r.code, r.message)), revision, engine, eval_ms)


class PolicyEngine(Protocol):
    revision: str

    def decide(self, policy_input: dict[str, Any]) -> Decision: ...


class EmbeddedPolicyEngine:
    """regopy over a bundle compiled once at start-up (~0.4 ms per decision)."""

    name = "regopy"

    def __init__(self) -> None:
        self._bundle = PolicyBundle(QUERY_POLICY_DIR, [QUERY_ENTRYPOINT])
        self.revision = self._bundle.revision

    def decide(self, policy_input: dict[str, Any]) -> Decision:
        started = time.perf_counter()
        result = self._bundle.evaluate(QUERY_ENTRYPOINT, policy_input)
        return decision_from_result(result, self.revision, self.name, (time.perf_counter() - started) * 1000)


class OpaServerPolicyEngine:
    """An OPA server reached over HTTP with opa-python-client; same Rego files, same decision shape."""

    name = "opa"

    def __init__(self, url: str, timeout: float = 2.0) -> None:
        from opa_client.opa import OpaClient

        parsed = urlparse(url)
        self._client = OpaClient(
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or 8181,
            ssl=parsed.scheme == "https",
            timeout=timeout,
        )
        # The revision stamped on audit records is that of the policies this checkout ships;
        # deployments load the same files into OPA (see README, "Policy engine").
        self.revision = bundle_hash(policy_files(QUERY_POLICY_DIR), QUERY_POLICY_DIR)

    def decide(self, policy_input: dict[str, Any]) -> Decision:
        started = time.perf_counter()
        try:
            response = self._client.query_rule(policy_input, "dataroom.query", "main")
        except Exception as exc:
            raise PolicyError(f"OPA server did not decide: {exc}") from exc
        return decision_from_result(response.get("result"), self.revision, self.name, (time.perf_counter() - started) * 1000)


def make_policy_engine(engine: str, opa_url: str) -> PolicyEngine:
    if engine == "opa":
        return OpaServerPolicyEngine(opa_url)
    return EmbeddedPolicyEngine()

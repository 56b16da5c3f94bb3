"""Policy decisions for queries: one interface, two engines over the same Rego files.

* :class:`EmbeddedPolicyEngine` (default) evaluates ``policies/query`` in-process with regopy.
* :class:`OpaServerPolicyEngine` asks an OPA server (``opa run --server`` loaded with the same
  policies) over its REST API through opa-python-client.

Both return the same :class:`Decision`. Any failure to decide is an error, never an allow.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import urlparse

from dataroom.memo import BoundedCache
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
    cached: bool = False  # answered from MemoizedPolicyEngine (the same input and revision decided before)

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
    """regopy over a bundle compiled once at start-up: ~0.5 ms per decision on the 2-core machine
    (~0.1 ms handing the input over, dataroom/rego_input.py; the rest evaluating the Rego)."""

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


class MemoizedPolicyEngine:
    """Remembers decisions by a digest of the complete policy input and the policy revision.

    The query policies are pure functions of their input (no time, network or random builtins:
    ``tests/core/test_policy_memo.py`` checks the files), and the input holds everything a
    decision depends on — user and groups, the project's current registry state (status, expiry,
    members, tables, output policy), quarantines, the facts, the date. So a changed project,
    policy or date is a different key and never meets a stale entry. A hit costs the digest.
    """

    def __init__(self, inner: PolicyEngine, size: int = 4096) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", "policy")
        self._decisions: BoundedCache[str, Decision] = BoundedCache(size)

    @property
    def revision(self) -> str:
        return self.inner.revision

    def decide(self, policy_input: dict[str, Any]) -> Decision:
        started = time.perf_counter()
        key = hashlib.sha256(f"{self.inner.revision}\n{json.dumps(policy_input, sort_keys=True, default=str)}".encode()).hexdigest()
        cached = self._decisions.get(key)
        if cached is not None:
            return replace(cached, eval_ms=(time.perf_counter() - started) * 1000, cached=True)
        decision = self.inner.decide(policy_input)
        self._decisions.put(key, decision)
        return decision


def make_policy_engine(engine: str, opa_url: str, memo_size: int = 4096) -> PolicyEngine:
    inner: PolicyEngine = OpaServerPolicyEngine(opa_url) if engine == "opa" else EmbeddedPolicyEngine()
    return MemoizedPolicyEngine(inner, memo_size) if memo_size > 0 else inner

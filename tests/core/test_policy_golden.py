"""The query policy decides a fixed corpus of inputs exactly as it did before its speed-ups.

``data/query_policy_golden.json.gz`` holds ~600 policy inputs — the pipeline's own inputs for
the bypass corpus, the benchmark queries and more, as alice, bob and mallory, in each demo
project, an unknown one and none, plus synthetic variations (revoked, pending and expired
projects, quarantines, output-policy problems, partial tenants, parameters, several statements,
every reason at once, quotes in names) — with the decision the policy gave each when the corpus
was recorded (``about`` names the commit). A rewrite of the Rego for speed must leave every
decision, reason code and message as it was.

An intended change of a decision: rerun with ``DATAROOM_REGENERATE_POLICY_GOLDEN=1`` to record the
new decisions, and review the diff of the decoded file before committing it.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path

import pytest

from dataroom.policy import QUERY_ENTRYPOINT, QUERY_POLICY_DIR, EmbeddedPolicyEngine
from dataroom.rego import PolicyBundle, policy_files

GOLDEN = Path(__file__).parent / "data" / "query_policy_golden.json.gz"


def _load() -> dict:
    with gzip.open(GOLDEN, "rt") as f:
        return json.load(f)


def _normalised(decision: dict) -> dict:
    return {"allow": decision["allow"], "reasons": sorted(decision["reasons"], key=lambda r: (r["code"], r["message"]))}


def test_every_recorded_decision_is_unchanged() -> None:
    golden = _load()
    bundle = PolicyBundle(QUERY_POLICY_DIR, [QUERY_ENTRYPOINT])
    actual = {name: _normalised(bundle.evaluate(QUERY_ENTRYPOINT, case["input"])) for name, case in golden["cases"].items()}
    if os.environ.get("DATAROOM_REGENERATE_POLICY_GOLDEN") == "1":
        for name, case in golden["cases"].items():
            case["decision"] = actual[name]
        with gzip.open(GOLDEN, "wt", compresslevel=9) as f:
            json.dump(golden, f, sort_keys=True, separators=(",", ":"))
        pytest.skip("golden decisions rewritten from the current policy: review the diff")
    changed = {name: (case["decision"], actual[name]) for name, case in golden["cases"].items() if actual[name] != case["decision"]}
    assert not changed, f"{len(changed)} decisions changed, e.g. {next(iter(changed.items()))}"


def test_the_embedded_engine_gives_the_same_decisions() -> None:
    """Through the engine the pipeline uses (its input hand-over and result check included)."""
    engine = EmbeddedPolicyEngine()
    for name, case in _load()["cases"].items():
        decision = engine.decide(case["input"])
        expected = case["decision"]
        assert decision.allow == expected["allow"], name
        assert [(r.code, r.message) for r in decision.reasons] == [(r["code"], r["message"]) for r in expected["reasons"]], name


def test_the_corpus_speaks_every_reason_code() -> None:
    """Every code a query rule can give is in some recorded decision, and so are allowed queries
    of every kind of project: a rewrite cannot change an untested branch unnoticed."""
    codes_in_policy = set()
    for f in policy_files(QUERY_POLICY_DIR):
        codes_in_policy |= set(re.findall(r'"code":\s*"(\w+)"', f.read_text()))
    codes_in_policy.add("table_function")  # the function classes are codes too (functions.rego gives {"code": kind})
    codes_in_policy |= {"sql_in_string", "file_function", "session_state_function", "function_not_allowed"}
    cases = _load()["cases"]
    spoken = {r["code"] for case in cases.values() for r in case["decision"]["reasons"]}
    assert codes_in_policy <= spoken, f"no recorded case for {codes_in_policy - spoken}"
    allowed_projects = {name.split("/")[0] for name, case in cases.items() if case["decision"]["allow"]}
    assert {"remediation-acme", "remediation-benchmark", "remediation-by-tenant", "model-monitoring"} <= allowed_projects
    multi_reason = [c for c in cases.values() if len({r["code"] for r in c["decision"]["reasons"]}) >= 5]
    assert multi_reason, "no case with many reasons at once"

"""Policy-change replay: what a candidate query policy would have decided on the recorded decisions.

Every decision record holds the full policy input (user, project as the registry had it,
quarantines, the analysed query facts, and the day it was decided), so a candidate policy
directory can be compiled once and evaluated on each of them. The report counts allow→deny and
deny→allow flips per reason code, with examples (decision id, user, project, time, SQL), so that a
security engineer sees the impact of an edit to ``policies/query`` before merging it.

Only decisions the query policy made are replayed (``path`` ``dataroom/query/main`` with a policy
engine label): bad input, unknown users and refusals at the broker never reached the policy.
The candidate gets the input the recorded policy got (the SQL text and client the pipeline adds to
the record are left out). The policy is a pure function of its input, so identical inputs (the
same query facts by the same user in the same project on the same day) are evaluated once;
distinct inputs are spread over worker processes when there are many.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataroom.policy import QUERY_ENTRYPOINT, decision_from_result
from dataroom.rego import PolicyBundle, PolicyError

if TYPE_CHECKING:
    from dataroom.settings import Settings

QUERY_PATH = "dataroom/query/main"
# What the pipeline adds to the policy input when it records it (QueryService.run: the SQL text and
# the project id as stored, their length and hash when escaped, the client); the policy never saw them.
AUDIT_ONLY_KEYS = frozenset({"sql", "sql_length", "sql_sha256", "project_id_length", "project_id_sha256", "client"})
PARALLEL_FROM = 4000  # distinct inputs below this are evaluated in this process (start-up costs more)


@dataclass
class Flip:
    """How many decisions changed one way under one reason code, and a few of them."""

    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ReplayReport:
    candidate: str
    candidate_revision: str
    since: str | None
    decisions: int = 0  # replayed
    distinct_inputs: int = 0
    skipped: int = 0  # decision records the query policy did not make
    unchanged: int = 0
    allow_to_deny: dict[str, Flip] = field(default_factory=dict)  # by the candidate's reason codes
    deny_to_allow: dict[str, Flip] = field(default_factory=dict)  # by the recorded reason codes
    reasons_changed: dict[str, Flip] = field(default_factory=dict)  # still denied: "+code" added, "-code" dropped
    changed_ids: dict[str, list[str]] = field(default_factory=lambda: {"allow_to_deny": [], "deny_to_allow": [], "reasons_changed": []})
    candidate_errors: int = 0  # inputs the candidate could not decide (it would fail closed: deny)
    recorded_revisions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.decisions / self.seconds if self.seconds else 0.0

    def totals(self) -> dict[str, int]:
        return {kind: len(ids) for kind, ids in self.changed_ids.items()}

    def to_json(self) -> dict[str, Any]:
        flips = lambda d: {code: {"count": f.count, "examples": f.examples} for code, f in sorted(d.items())}  # noqa: E731
        return {
            "candidate": self.candidate,
            "candidate_revision": self.candidate_revision,
            "since": self.since,
            "decisions": self.decisions,
            "distinct_inputs": self.distinct_inputs,
            "skipped": self.skipped,
            "unchanged": self.unchanged,
            "totals": self.totals(),
            "candidate_errors": self.candidate_errors,
            "allow_to_deny": flips(self.allow_to_deny),
            "deny_to_allow": flips(self.deny_to_allow),
            "reasons_changed": flips(self.reasons_changed),
            "changed_decision_ids": self.changed_ids,
            "recorded_revisions": self.recorded_revisions,
            "seconds": round(self.seconds, 3),
            "decisions_per_second": round(self.rate),
        }


def replayable(records: Iterable[dict[str, Any]], since: str | None = None) -> Iterator[dict[str, Any] | None]:
    """Decision records the query policy made (None for each decision record it did not)."""
    for record in records:
        if record.get("type") != "decision":
            continue
        if since and (record.get("timestamp") or "") < since:
            continue
        decided_by_policy = (
            record.get("path") == QUERY_PATH
            and (record.get("labels") or {}).get("engine") not in (None, "broker")
            and isinstance((record.get("result") or {}).get("allow"), bool)
            and isinstance(record.get("input"), dict)
        )
        yield record if decided_by_policy else None


_bundle: PolicyBundle | None = None


def _compile(candidate: str) -> None:
    global _bundle
    _bundle = PolicyBundle(Path(candidate), [QUERY_ENTRYPOINT])


def _decide(inputs: list[dict[str, Any]]) -> list[tuple[bool, list[str]] | None]:
    """(allow, reason codes) per input with the compiled candidate; None when it cannot decide."""
    assert _bundle is not None
    out: list[tuple[bool, list[str]] | None] = []
    for doc in inputs:
        try:
            decision = decision_from_result(_bundle.evaluate(QUERY_ENTRYPOINT, doc), "", "", 0.0)
        except PolicyError:
            out.append(None)
            continue
        out.append((decision.allow, sorted({r.code for r in decision.reasons})))
    return out


def _evaluate_all(candidate: Path, inputs: list[dict[str, Any]], jobs: int) -> list[tuple[bool, list[str]] | None]:
    if jobs <= 1 or len(inputs) < PARALLEL_FROM:
        _compile(str(candidate))
        return _decide(inputs)
    size = max(500, len(inputs) // (jobs * 4))
    chunks = [inputs[i : i + size] for i in range(0, len(inputs), size)]
    with ProcessPoolExecutor(max_workers=jobs, initializer=_compile, initargs=(str(candidate),)) as pool:
        return [result for chunk in pool.map(_decide, chunks) for result in chunk]


def _example(record: dict[str, Any], candidate_codes: list[str]) -> dict[str, Any]:
    inp = record.get("input") or {}
    return {
        "decision_id": record.get("decision_id"),
        "timestamp": record.get("timestamp"),
        "user": (inp.get("user") or {}).get("name"),
        "project_id": inp.get("project_id"),
        "sql": (inp.get("sql") or "")[:200],
        "recorded_reasons": sorted({r.get("code") for r in (record.get("result") or {}).get("reasons") or []}),
        "candidate_reasons": candidate_codes,
    }


def _count(flips: dict[str, Flip], code: str, example: dict[str, Any], examples: int) -> None:
    flip = flips.setdefault(code, Flip())
    flip.count += 1
    if len(flip.examples) < examples:
        flip.examples.append(example)


def replay(
    records: Iterable[dict[str, Any]], candidate: Path, since: str | None = None, examples: int = 3, jobs: int | None = None
) -> ReplayReport:
    """Evaluate ``candidate`` (a policy directory) on the recorded decisions; see the module docstring."""
    started = time.perf_counter()
    bundle = PolicyBundle(candidate, [QUERY_ENTRYPOINT])  # compile errors surface here, once
    report = ReplayReport(str(candidate), bundle.revision, since)
    chosen: list[dict[str, Any]] = []
    keys: list[str] = []
    distinct: dict[str, int] = {}
    inputs: list[dict[str, Any]] = []
    for record in replayable(records, since):
        if record is None:
            report.skipped += 1
            continue
        policy_input = {k: v for k, v in record["input"].items() if k not in AUDIT_ONLY_KEYS}
        key = json.dumps(policy_input)  # the default encoder is the fast one; key order is the log's (canonical)
        if key not in distinct:
            distinct[key] = len(inputs)
            inputs.append(policy_input)
        chosen.append(record)
        keys.append(key)
    decided = _evaluate_all(candidate, inputs, jobs if jobs is not None else (os.cpu_count() or 1))
    report.distinct_inputs = len(inputs)
    for record, key in zip(chosen, keys):
        report.decisions += 1
        revision = ((record.get("bundles") or {}).get("dataroom/query") or {}).get("revision") or "?"
        report.recorded_revisions[revision] = report.recorded_revisions.get(revision, 0) + 1
        was_allowed = record["result"]["allow"]
        was_codes = sorted({r.get("code") for r in record["result"].get("reasons") or []})
        now = decided[distinct[key]]
        if now is None:
            report.candidate_errors += 1
            now = (False, ["candidate_policy_error"])
        allow, codes = now
        example = _example(record, codes)
        if was_allowed and not allow:
            report.changed_ids["allow_to_deny"].append(record["decision_id"])
            for code in codes or ["(no reason)"]:
                _count(report.allow_to_deny, code, example, examples)
        elif allow and not was_allowed:
            report.changed_ids["deny_to_allow"].append(record["decision_id"])
            for code in was_codes or ["(no reason)"]:
                _count(report.deny_to_allow, code, example, examples)
        elif not allow and codes != was_codes:
            report.changed_ids["reasons_changed"].append(record["decision_id"])
            for code in sorted(set(codes) - set(was_codes)):
                _count(report.reasons_changed, f"+{code}", example, examples)
            for code in sorted(set(was_codes) - set(codes)):
                _count(report.reasons_changed, f"-{code}", example, examples)
        else:
            report.unchanged += 1
    report.seconds = time.perf_counter() - started
    return report


def records_of(source: "Path | Settings") -> Iterator[dict[str, Any]]:
    """Decision records of one audit file, or of every stream of a room (its settings), skipping a torn last line (replay reads; ``audit verify`` judges)."""
    from dataroom.audit.reader import AuditView

    view = AuditView(path=source) if isinstance(source, Path) else AuditView(source)
    return view.records(types=("decision",))

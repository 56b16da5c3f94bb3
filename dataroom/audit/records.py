"""The audit log's record shapes: canonical JSON and hashes, the decision record, attempts.

What a record *is* (:func:`decision_record`, :func:`record_hash` over its canonical JSON) is
shared by the writer (:mod:`dataroom.audit.log`), the verifier and every reader; how records are
appended, chained and made durable is the writer's concern.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from typing import Any, Iterator


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 of the record without its own ``hash`` field."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def new_decision_id() -> str:
    return str(uuid.uuid4())


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


def decision_record(
    *,
    path: str,
    input_doc: dict[str, Any],
    allow: bool,
    reasons: list[dict[str, str]],
    outcome: str,
    revision: str,
    labels: dict[str, Any],
    metrics: dict[str, Any],
    error: str | None = None,
    decision_id: str | None = None,
) -> dict[str, Any]:
    """One query attempt's ``decision`` record in OPA's decision-log shape.

    The pipeline writes one for every query it sees; the broker for requests it refuses before
    the pipeline (no token, wrong scope, bad body). Both go through here, so the shape is one.
    """
    return {
        "type": "decision",
        "decision_id": decision_id or new_decision_id(),
        "timestamp": utc_now(),
        "path": path,
        "input": input_doc,
        "result": {"allow": allow, "reasons": reasons},
        "outcome": outcome,
        "error": error,
        "bundles": {"dataroom/query": {"revision": revision}},
        "labels": {"app": "dataroom", **labels},
        "metrics": metrics,
    }


def fold_attempt(by_id: dict[str, dict[str, Any]], record: dict[str, Any]) -> None:
    """Add one record to ``by_id``: a decision starts an attempt, its completion is attached to it."""
    if record.get("type") == "decision":
        by_id[record["decision_id"]] = {**record, "completion": None}
    elif record.get("type") == "completion" and record.get("decision_id") in by_id:
        by_id[record["decision_id"]]["completion"] = record


def attempts(records: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold decision and completion records into one row per query attempt, in order."""
    by_id: dict[str, dict[str, Any]] = {}
    for record in records:
        fold_attempt(by_id, record)
    return list(by_id.values())

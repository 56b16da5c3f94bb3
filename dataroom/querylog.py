"""The query log as reviewers see it: one row per attempt, filters, and per-user/project summaries.

Shared by the review UI, ``dataroom audit search`` and the evidence export, so that a filter
means the same everywhere. :class:`QueryLog` reads the audit file incrementally (it remembers the
byte offset it reached), so a long-running review service does not re-read the whole log.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable

from dataroom.audit import fold_attempt

OUTCOMES = ("allowed", "denied", "invalid", "error")
UNAUTHENTICATED = "(unauthenticated)"  # a broker refusal before the Hub named the caller
NO_PROJECT = "(none)"  # a refusal before a project was named


def parse_time(text: str | None, *, end_of_day: bool = False) -> str | None:
    """``2026-01-31`` or an ISO timestamp → a UTC ISO string comparable with audit timestamps.

    A bare date with ``end_of_day`` means the start of the next day (an exclusive upper bound).
    """
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text) + (dt.timedelta(days=1) if end_of_day else dt.timedelta())
            value = dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)
        else:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if value.tzinfo is None:
                value = value.replace(tzinfo=dt.timezone.utc)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or ISO timestamp") from exc
    return value.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def attempt_row(record: dict[str, Any]) -> dict[str, Any]:
    """A decision record (with its folded ``completion``) flattened for lists and exports."""
    inp = record.get("input") or {}
    facts = inp.get("facts") or {}
    completion = record.get("completion") or {}
    outcome = record.get("outcome")
    if outcome == "allowed" and completion.get("status") == "failed":
        outcome = "error"
    return {
        "seq": record.get("seq"),
        "decision_id": record.get("decision_id"),
        "timestamp": record.get("timestamp"),
        "user": (inp.get("user") or {}).get("name") or UNAUTHENTICATED,
        "groups": list((inp.get("user") or {}).get("groups") or []),
        "project_id": inp.get("project_id") or NO_PROJECT,
        "tenants": list(facts.get("tenants") or []),
        "tables": list(facts.get("tables") or []),
        "columns": sorted({f"{c['table']}.{c['column']}" for c in facts.get("columns") or []}),
        "outcome": outcome,
        "reasons": [r.get("code") for r in (record.get("result") or {}).get("reasons") or []],
        "messages": [r.get("message") for r in (record.get("result") or {}).get("reasons") or []],
        "sql": inp.get("sql") or "",
        "client": inp.get("client"),
        "rows": completion.get("rows"),
        "bytes": completion.get("bytes"),
        "duration_ms": completion.get("duration_ms"),
        "result_digest": completion.get("result_digest"),
        "completion_status": completion.get("status"),
        "policy_revision": ((record.get("bundles") or {}).get("dataroom/query") or {}).get("revision"),
        "hash": record.get("hash"),
    }


@dataclass
class QueryFilter:
    """Criteria for query attempts; empty fields match everything."""

    user: str | None = None
    project: str | None = None
    tenant: str | None = None
    decision: str | None = None  # allowed | denied | invalid | error
    since: str | None = None  # inclusive, ISO
    until: str | None = None  # exclusive, ISO
    text: str | None = None  # substring of the SQL (case-insensitive)
    table: str | None = None
    reason: str | None = None  # a reason code, e.g. pii_column
    decision_id: str | None = None

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> "QueryFilter":
        """From request/CLI arguments; blank values are ignored, times are normalised."""
        values = {f.name: (str(args.get(f.name)).strip() or None) if args.get(f.name) is not None else None for f in fields(cls)}
        values["since"] = parse_time(values["since"])
        values["until"] = parse_time(values["until"], end_of_day=True)
        if values["decision"] and values["decision"] not in OUTCOMES:
            raise ValueError(f"decision must be one of {', '.join(OUTCOMES)}")
        return cls(**values)

    def matches(self, row: dict[str, Any]) -> bool:
        if self.user and row["user"] != self.user:
            return False
        if self.project and row["project_id"] != self.project:
            return False
        if self.tenant and self.tenant not in row["tenants"]:
            return False
        if self.decision and row["outcome"] != self.decision:
            return False
        if self.since and (row["timestamp"] or "") < self.since:
            return False
        if self.until and (row["timestamp"] or "") >= self.until:
            return False
        if self.text and self.text.lower() not in (row["sql"] or "").lower():
            return False
        if self.table and self.table.lower() not in row["tables"]:
            return False
        if self.reason and self.reason not in row["reasons"]:
            return False
        return not self.decision_id or row["decision_id"] == self.decision_id

    def apply(self, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in rows if self.matches(r)]

    def active(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}


class QueryLog:
    """Attempts folded from the audit file, refreshed incrementally from the last byte read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._offset = 0
        self._inode: int | None = None
        self._records: dict[str, dict[str, Any]] = {}  # decision_id -> decision record (+ completion)
        self._rows: list[dict[str, Any]] | None = None

    def refresh(self) -> None:
        with self._lock:
            if not self.path.exists():
                self._reset()
                return
            stat = self.path.stat()
            if stat.st_ino != self._inode or stat.st_size < self._offset:
                self._reset()
                self._inode = stat.st_ino
            if stat.st_size == self._offset:
                return
            with self.path.open("rb") as fh:
                fh.seek(self._offset)
                for line in fh:
                    if not line.endswith(b"\n"):
                        break
                    self._offset += len(line)
                    if not line.strip():
                        continue
                    fold_attempt(self._records, json.loads(line))
            self._rows = None

    def _reset(self) -> None:
        self._offset, self._inode, self._records, self._rows = 0, None, {}, None

    def rows(self) -> list[dict[str, Any]]:
        """Every attempt, oldest first, flattened by :func:`attempt_row`."""
        self.refresh()
        with self._lock:
            if self._rows is None:
                self._rows = [attempt_row(r) for r in self._records.values()]
            return self._rows

    def record(self, decision_id: str) -> dict[str, Any] | None:
        """The full decision record with its completion, as written."""
        self.refresh()
        with self._lock:
            return self._records.get(decision_id)


def summarise(rows: Iterable[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Per ``key`` (``user`` or ``project_id``): attempts by outcome, rows and bytes returned."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        name = row.get(key) or "-"
        s = out.setdefault(name, {key: name, "total": 0, **{o: 0 for o in OUTCOMES}, "rows": 0, "bytes": 0})
        s["total"] += 1
        if row["outcome"] in OUTCOMES:
            s[row["outcome"]] += 1
        s["rows"] += row.get("rows") or 0
        s["bytes"] += row.get("bytes") or 0
    return sorted(out.values(), key=lambda s: (-s["denied"], -s["total"], s[key]))

"""The query log as reviewers see it: one row per attempt, filters, and per-user/project summaries.

Shared by the review UI, ``dataroom audit show/search`` and the evidence export, so that a filter
means the same everywhere. :class:`QueryLog` serves them from the audit index (Parquet segments
per stream plus the open tail, :mod:`dataroom.audit.index`), so no request re-reads the whole log.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from dataroom.settings import Settings

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
    """Query attempts of every audit stream, served by the incrementally maintained index (:mod:`dataroom.audit.index`).

    ``source`` is the room's settings (all streams) or one audit file (a single-file log).
    """

    def __init__(self, source: "Settings | Path | None" = None) -> None:
        from dataroom.audit.index import AuditIndex
        from dataroom.audit.reader import AuditView

        if isinstance(source, Path):
            self.view, segment = AuditView(path=source), 4096
        else:
            self.view = AuditView(source)
            segment = self.view.settings.audit_index_segment if self.view.settings else 4096
        self.index = AuditIndex(self.view, segment)

    def refresh(self, rebuild: Iterable[str] = ()) -> None:
        self.index.refresh(rebuild)

    def rows(self, flt: QueryFilter | None = None) -> list[dict[str, Any]]:
        """Every (matching) attempt, oldest first, flattened like :func:`attempt_row` (plus ``stream`` and ``completion_seq``)."""
        self.refresh()
        return self.index.rows(flt)

    def page(self, flt: QueryFilter | None = None, *, limit: int = 50, offset: int = 0, newest_first: bool = True, events: bool = False) -> tuple[list[dict[str, Any]], int]:
        """One page of matching attempts (newest first by default) and the number matching."""
        self.refresh()
        return self.index.page(flt, limit=limit, offset=offset, newest_first=newest_first, events=events)

    def summary(self, flt: QueryFilter | None, key: str) -> list[dict[str, Any]]:
        self.refresh()
        return self.index.summary(flt, key)

    def record(self, decision_id: str) -> dict[str, Any] | None:
        """The full decision record with its completion, as written."""
        self.refresh()
        return self.index.record(decision_id)


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

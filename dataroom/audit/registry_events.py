"""Registry writes are evidence too: every row written to the registry is mirrored to its own audit stream.

Approvals, revocations, membership changes, hypotheses and their phase moves, models, alerts and
quarantines live in SQL rows an operator could edit. Each commit through the registry's sessions
appends one ``registry_event`` record per inserted, updated or deleted row to the stream
``registry.jsonl`` beside the audit log (its own hash chain and signed checkpoints, signed with
the same key; a checkpoint after every commit, since registry writes are rare), so the query
stream and everything that reads it keep their shapes::

    {"type": "registry_event", "timestamp": "...", "table": "projects", "op": "update",
     "key": {"id": "remediation-acme"}, "row": {...every column...}, "row_sha256": "<hex>"}

:func:`verify_registry` replays the stream to the state it says each row is in and compares the
database with it: a row edited, deleted or inserted behind the registry's back is named.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from dataroom.audit.log import AuditLog, canonical_json, utc_now

if TYPE_CHECKING:
    from sqlalchemy import Engine, MetaData

    from dataroom.audit.verify import VerifyResult

log = logging.getLogger(__name__)

TRACKED = ("projects", "project_events", "hypotheses", "hypothesis_queries", "phase_transitions", "models", "model_alerts", "quarantines",
           "release_requests", "release_events")
"""The tables whose rows are evidence (``registry_meta`` and the monitor's measurements are not)."""
STREAM_NAME = "registry.jsonl"


def registry_stream(audit: AuditLog) -> AuditLog:
    """The registry's stream beside ``audit``, signed with the same key (and checked with its published key)."""
    stream = AuditLog(
        audit.path.with_name(STREAM_NAME),
        checkpoint_every=audit.checkpoint_every,
        checkpoint_interval_s=audit.checkpoint_interval_s,
        key_path=audit.key_path,
        public_key=audit.pinned_public_key,
        signer=audit._make_signer,
    )
    stream.public_key_path = audit.public_key_path
    return stream


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def row_digest(row: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(row).encode()).hexdigest()


def _describe(obj: Any) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
    mapper = inspect(obj).mapper
    table = mapper.local_table.name
    if table not in TRACKED:
        return None
    row = {attr.columns[0].name: _plain(getattr(obj, attr.key)) for attr in mapper.column_attrs}
    key = {c.name: row[c.name] for c in mapper.local_table.primary_key.columns}
    return table, key, row


def record_registry_writes(sessions: sessionmaker, audit: AuditLog) -> None:
    """Mirror every committed registry write made through ``sessions`` to the registry stream of ``audit``."""
    stream = registry_stream(audit)

    def after_flush(session: Session, _context: Any) -> None:
        pending = session.info.setdefault("dataroom_registry_events", [])
        for op, objects in (("insert", session.new), ("update", session.dirty), ("delete", session.deleted)):
            for obj in objects:
                if op == "update" and not session.is_modified(obj, include_collections=False):
                    continue
                described = _describe(obj)
                if described is not None:
                    table, key, row = described
                    pending.append((table, op, key, None if op == "delete" else row))

    def after_commit(session: Session) -> None:
        pending = session.info.pop("dataroom_registry_events", [])
        if not pending:
            return
        try:
            for table, op, key, row in pending:
                stream.append(
                    {"type": "registry_event", "timestamp": utc_now(), "table": table, "op": op, "key": key, "row": row,
                     "row_sha256": row_digest(row) if row is not None else None}
                )
            stream.checkpoint("commit")
        except Exception:  # the rows are committed; verify will name them as written without a trace
            log.exception("audit: registry events could not be recorded")

    def after_rollback(session: Session) -> None:
        session.info.pop("dataroom_registry_events", None)

    event.listen(sessions, "after_flush", after_flush)
    event.listen(sessions, "after_commit", after_commit)
    event.listen(sessions, "after_rollback", after_rollback)


@dataclass
class RegistryCheck:
    ok: bool
    rows: int = 0
    events: int = 0
    adopted: int = 0  # rows recorded by `dataroom audit adopt`, not as they were written
    stream: "VerifyResult | None" = None
    problems: list[str] = field(default_factory=list)

    def describe(self) -> str:
        head = f"registry {'OK' if self.ok else 'TAMPERED'}: {self.rows} row(s) checked against {self.events} recorded event(s)"
        if self.adopted:
            head += f" ({self.adopted} row(s) adopted, not recorded as written)"
        stream = f"registry stream: {self.stream.describe()}" if self.stream else ""
        more = [f"  ... and {len(self.problems) - 20} more"] if len(self.problems) > 20 else []
        return "\n".join([head, *(f"  {p}" for p in self.problems[:20]), *more, stream])


def _rows(engine: "Engine", metadata: "MetaData") -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(table, key, row) of every tracked row, as plain JSON values."""
    out = []
    with engine.connect() as conn:
        for name in TRACKED:
            table = metadata.tables.get(name)
            if table is None:
                continue
            for row in conn.execute(select(table)).mappings():
                plain = {k: _plain(v) for k, v in row.items()}
                out.append((name, {c.name: plain[c.name] for c in table.primary_key.columns}, plain))
    return out


def adopt_registry(audit: AuditLog, engine: "Engine", metadata: "MetaData", actor: str) -> int:
    """Record the rows the stream has never seen (a registry older than its stream); returns how many.

    Explicit and recorded (op ``adopt``, with the actor), like adopting a log: an edited row stays named.
    """
    stream = registry_stream(audit)
    seen = {(r["table"], canonical_json(r["key"])) for r in stream.records() if r.get("type") == "registry_event"}
    adopted = 0
    for name, key, row in _rows(engine, metadata):
        if (name, canonical_json(key)) not in seen:
            stream.append({"type": "registry_event", "timestamp": utc_now(), "table": name, "op": "adopt", "actor": actor, "key": key, "row": row,
                           "row_sha256": row_digest(row)})
            adopted += 1
    stream.checkpoint("adopt-registry", force=True)
    stream.close()
    return adopted


def verify_registry(audit: AuditLog, engine: "Engine", metadata: "MetaData", writers: "list[AuditLog] | tuple[AuditLog, ...]" = ()) -> RegistryCheck:
    """The registry stream(s) verify, and every tracked row is what its last recorded event says.

    ``writers``: the audit streams of other writers (:mod:`dataroom.audit.streams`), each of which
    records the registry writes it made in its own ``registry.jsonl``; their events are replayed
    together, in timestamp order (then stream, then seq).
    """
    import heapq

    streams = [registry_stream(audit)] + [registry_stream(w) for w in writers if w.path.with_name(STREAM_NAME).exists()]
    results = [s.verify() for s in streams]
    failed = [(s, r) for s, r in zip(streams, results) if not r.ok]
    result = RegistryCheck(ok=True, stream=failed[0][1] if failed else results[0])
    if failed and len(streams) > 1:
        result.problems.append(f"registry stream {failed[0][0].path.parent.name}/{STREAM_NAME} does not verify")

    def events(index: int, stream: AuditLog) -> Any:
        for record in stream.records():
            if record.get("type") == "registry_event":
                yield (str(record.get("timestamp") or ""), index, int(record.get("seq") or 0)), record

    expected: dict[tuple[str, str], dict[str, Any]] = {}
    for _, record in heapq.merge(*(events(i, s) for i, s in enumerate(streams)), key=lambda item: item[0]):
        result.events += 1
        ident = (record["table"], canonical_json(record["key"]))
        if record["op"] == "delete":
            expected.pop(ident, None)
        else:
            expected[ident] = record
            result.adopted += record["op"] == "adopt"
    for name, key, plain in _rows(engine, metadata):
        ident = (name, canonical_json(key))
        result.rows += 1
        recorded = expected.pop(ident, None)
        where = f"{name} {canonical_json(key)}"
        if recorded is None:
            result.problems.append(f"{where}: in the database but never recorded (inserted behind the registry's back)")
        elif row_digest(plain) != recorded["row_sha256"]:
            changed = sorted(k for k in plain if plain.get(k) != (recorded["row"] or {}).get(k))
            result.problems.append(f"{where}: edited in the database since seq {recorded['seq']} recorded it (column(s) {', '.join(changed)})")
    for (name, key), recorded in sorted(expected.items()):
        result.problems.append(f"{name} {key}: recorded (seq {recorded['seq']}) but no longer in the database (deleted behind the registry's back)")
    result.ok = not result.problems and result.stream.ok
    return result

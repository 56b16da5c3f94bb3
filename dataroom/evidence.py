"""The auditor's evidence export: a SOC 2 CC8 "population of changes" for a time window.

One call gathers, for ``[since, until)``:

* ``projects``: every project active or changed in the window, with requester and approver;
* ``approvals``: every approval, rejection or seeding decision on a project, with a segregation-of-duties check;
* ``project_events``: every recorded project change (proposal, approval, revocation, expiry, membership);
* ``hypotheses``: every hypothesis registered or moved in the window;
* ``phase_transitions``: every phase transition in the window, with approver and segregation check;
* ``linked_queries``: the audit record behind each ``decision_id`` linked to those hypotheses;
* ``query_summary``: query attempts in the window by project and outcome;
* ``chain``: the audit log's verification result at export time (chain, head, signed checkpoints);
* ``audit_keys``: the public key(s) the checkpoints are signed with (PEM), for the auditor to pin;
* ``inclusion_proofs``: for every linked query, an inclusion proof of its decision (and completion)
  record against a signed checkpoint (``proof``: the JSON document ``dataroom audit check-proof``
  checks with the public key alone).

and writes them as JSON (one document), CSV (one file per section) and Parquet (one file per
section), plus ``manifest.json`` with each file's SHA-256.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from dataroom.audit import AuditLog, utc_now
from dataroom.registry import SEED_ACTOR, Phase, Registry
from dataroom.audit.reader import AuditView, StreamResult
from dataroom.querylog import QueryFilter, QueryLog, parse_time

if TYPE_CHECKING:
    from dataroom.settings import Settings

FORMATS = ("json", "csv", "parquet")

SECTIONS: dict[str, list[str]] = {
    "projects": [
        "project_id", "status", "effective_status", "requester", "members", "tenants", "tables", "column_classes",
        "multi_tenant", "expires", "justification", "proposed_at", "decided_by", "decided_at", "decision_note",
        "revoked_by", "revoked_at", "revoke_reason", "queries_in_window",
    ],
    "approvals": ["event_id", "project_id", "decision", "at", "requester", "approver", "justification", "segregation_ok", "approved_scope"],
    "project_events": ["event_id", "project_id", "at", "actor", "kind", "subject", "note", "details"],
    "hypotheses": ["hypothesis", "project_id", "statement", "author", "created_at", "phase", "phase_label", "pending_phase", "linked_queries"],
    "phase_transitions": [
        "transition_id", "hypothesis", "project_id", "from_phase", "to_phase", "outcome", "actor", "requested_at",
        "approver", "at", "production", "segregation_ok", "note",
    ],
    "linked_queries": [
        "hypothesis", "decision_id", "found", "seq", "timestamp", "user", "project_id", "outcome", "reasons", "sql",
        "rows", "result_digest", "policy_revision", "hash",
    ],
    "query_summary": ["project_id", "outcome", "attempts"],
    "chain": [
        "audit_file", "verified_at", "ok", "records", "first_bad_seq", "first_bad_line", "problem", "kind", "checkpoints",
        "signed_records", "key_ids", "key_source",
    ],
    "audit_keys": ["key_id", "algorithm", "public_key_pem", "published_at"],
    "inclusion_proofs": ["hypothesis", "decision_id", "proved", "records", "tree_size", "checkpoint_timestamp", "key_id", "root", "problem", "proof"],
}


@dataclass
class Evidence:
    since: str
    until: str
    generated_at: str
    sections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"window": {"since": self.since, "until": self.until}, "generated_at": self.generated_at, **self.sections}


def collect(registry: Registry, audit: AuditLog, since: str, until: str, settings: "Settings | None" = None) -> Evidence:
    """Gather the evidence for ``[since, until)`` (ISO timestamps or dates).

    With ``settings``, every audit stream of the room (one chain row each, queries from all of
    them); without, the one log ``audit``.
    """
    start, end = parse_time(since), parse_time(until, end_of_day=True)
    if not start or not end or start >= end:
        raise ValueError("the export window needs --since before --until")
    view = AuditView(settings) if settings is not None else AuditView(path=audit.path, public_key=audit.pinned_public_key)
    streams = view.verify() or [StreamResult(audit.stream, audit.path, audit.verify())]
    chain = [
        {
            "audit_file": str(stream.path),
            "verified_at": utc_now(),
            "ok": verified.ok,
            "records": verified.records,
            "first_bad_seq": verified.first_bad_seq,
            "first_bad_line": verified.first_bad_line,
            "problem": verified.problem,
            "kind": verified.kind,
            "checkpoints": verified.checkpoints,
            "signed_records": verified.signed_records,
            "key_ids": list(verified.key_ids),
            "key_source": verified.key_source,
        }
        for stream in streams
        for verified in [stream.result]
    ]
    log = QueryLog(settings if settings is not None else audit.path)
    in_window = log.rows(QueryFilter(since=start, until=end))

    events = registry.project_events(since=start, until=end)
    all_projects = registry.projects()
    touched = {e["project_id"] for e in events} | {r["project_id"] for r in in_window}
    projects = [p for p in all_projects if p.id in touched or _active_during(p, start, end)]
    queries_per_project: dict[str, int] = {}
    for r in in_window:
        queries_per_project[r["project_id"]] = queries_per_project.get(r["project_id"], 0) + 1

    project_rows = [
        {
            "project_id": p.id,
            "status": p.status,
            "effective_status": p.effective_status,
            "requester": p.requester,
            "members": p.members,
            "tenants": p.tenants,
            "tables": p.tables,
            "column_classes": p.column_classes,
            "multi_tenant": p.multi_tenant,
            "expires": p.expires.isoformat(),
            "justification": p.justification,
            "proposed_at": p.proposed_at,
            "decided_by": p.decided_by,
            "decided_at": p.decided_at,
            "decision_note": p.decision_note,
            "revoked_by": p.revoked_by,
            "revoked_at": p.revoked_at,
            "revoke_reason": p.revoke_reason,
            "queries_in_window": queries_per_project.get(p.id, 0),
        }
        for p in projects
    ]
    requesters = {p.id: p.requester for p in all_projects}
    approvals = [
        {
            "event_id": e["id"],
            "project_id": e["project_id"],
            "decision": e["kind"],
            "at": e["at"],
            "requester": requesters.get(e["project_id"]),
            "approver": e["actor"],
            "justification": e["note"],
            # a seeded project had no reviewer in the registry: it is flagged, not passed
            "segregation_ok": e["kind"] != "seeded" and e["actor"] != requesters.get(e["project_id"]) and e["actor"] != SEED_ACTOR,
            "approved_scope": e["details"].get("approved_scope") or e["details"].get("scope"),
        }
        for e in events
        if e["kind"] in ("approved", "rejected", "seeded")
    ]
    event_rows = [
        {"event_id": e["id"], "project_id": e["project_id"], "at": e["at"], "actor": e["actor"], "kind": e["kind"], "subject": e["subject"], "note": e["note"], "details": e["details"]}
        for e in events
    ]

    transitions = registry.transitions(since=start, until=end)
    moved = {t.hypothesis_id for t in transitions}
    hypotheses = [h for h in registry.hypotheses() if h.id in moved or start <= h.created_at < end]
    by_id = {h.id: h for h in registry.hypotheses()}
    hypothesis_rows = [
        {
            "hypothesis": h.key,
            "project_id": h.project_id,
            "statement": h.statement,
            "author": h.author,
            "created_at": h.created_at,
            "phase": h.phase,
            "phase_label": Phase(h.phase).display(),
            "pending_phase": h.pending_phase,
            "linked_queries": h.decision_ids,
        }
        for h in hypotheses
    ]
    transition_rows = []
    for t in transitions:
        h = by_id[t.hypothesis_id]
        production = Phase(t.to_phase).is_production
        transition_rows.append(
            {
                "transition_id": t.id,
                "hypothesis": h.key,
                "project_id": h.project_id,
                "from_phase": t.from_phase,
                "to_phase": t.to_phase,
                "outcome": t.outcome,
                "actor": t.actor,
                "requested_at": t.requested_at,
                "approver": t.approver,
                "at": t.at,
                "production": production,
                "segregation_ok": (not production) or (t.approver is not None and t.approver not in (h.author, t.actor)),
                "note": t.note,
            }
        )
    wanted = {d for h in hypotheses for d in h.decision_ids}
    by_decision = {r["decision_id"]: r for r in in_window if r["decision_id"] in wanted}
    for decision_id in wanted - set(by_decision):
        found, _ = log.page(QueryFilter(decision_id=decision_id), limit=1)
        if found:
            by_decision[decision_id] = found[0]
    linked = []
    for h in hypotheses:
        for decision_id in h.decision_ids:
            r = by_decision.get(decision_id)
            linked.append(
                {
                    "hypothesis": h.key,
                    "decision_id": decision_id,
                    "found": r is not None,
                    **{k: (r or {}).get(k) for k in ("seq", "timestamp", "user", "project_id", "outcome", "reasons", "sql", "rows", "result_digest", "policy_revision", "hash")},
                }
            )
    summary: dict[tuple[str, str], int] = {}
    for r in in_window:
        summary[(r["project_id"], r["outcome"])] = summary.get((r["project_id"], r["outcome"]), 0) + 1
    summary_rows = [{"project_id": p, "outcome": o, "attempts": n} for (p, o), n in sorted(summary.items())]

    return Evidence(
        since=start,
        until=end,
        generated_at=utc_now(),
        sections={
            "projects": project_rows,
            "approvals": approvals,
            "project_events": event_rows,
            "hypotheses": hypothesis_rows,
            "phase_transitions": transition_rows,
            "linked_queries": linked,
            "query_summary": summary_rows,
            "chain": chain,
            "audit_keys": [k for stream in _logs(view, audit) for k in _audit_keys(stream)],
            "inclusion_proofs": _inclusion_proofs(_logs(view, audit), hypotheses),
        },
    )


def _audit_keys(audit: AuditLog) -> list[dict[str, Any]]:
    """The published checkpoint key(s), so the export carries what its proofs are checked with."""
    from dataroom.audit.keys import PublicKey, algorithm_of, load_public_keys, public_pem

    try:
        keys: dict[str, PublicKey] = load_public_keys(audit.public_key_path)
    except (FileNotFoundError, ValueError):
        return []
    return [
        {"key_id": kid, "algorithm": algorithm_of(key), "public_key_pem": public_pem(key).decode(), "published_at": str(audit.public_key_path)}
        for kid, key in keys.items()
    ]


def _logs(view: AuditView, audit: AuditLog) -> list[AuditLog]:
    """The log of every stream (the writer's own log object for its stream, so it can sign)."""
    logs = [audit if path == audit.path else view.log(stream) for stream, path in view.paths().items()]
    return logs or [audit]


def _inclusion_proofs(logs: list[AuditLog], hypotheses: list[Any]) -> list[dict[str, Any]]:
    """One row per linked query: its proof against the newest checkpoint of its stream, or why there is none."""
    from dataroom.audit.proofs import ProofError, build_proofs

    wanted = [(h.key, d) for h in hypotheses for d in h.decision_ids]
    if not wanted:
        return []
    proofs: dict[str, Any] = {}
    for log in logs:
        missing = {d for _, d in wanted if not isinstance(proofs.get(d), dict)}
        if not missing:
            break
        try:
            found = build_proofs(log, missing, sign_if_needed=True)
        except ProofError as exc:
            found = {d: str(exc) for d in missing}
        for d, proof in found.items():
            if isinstance(proof, dict) or d not in proofs:
                proofs[d] = proof
    rows = []
    for key, decision_id in wanted:
        proof = proofs.get(decision_id, "not found")
        cp = proof["checkpoint"] if isinstance(proof, dict) else {}
        rows.append(
            {
                "hypothesis": key,
                "decision_id": decision_id,
                "proved": isinstance(proof, dict),
                "records": len(proof["entries"]) if isinstance(proof, dict) else 0,
                "tree_size": cp.get("size"),
                "checkpoint_timestamp": cp.get("timestamp"),
                "key_id": cp.get("key_id"),
                "root": cp.get("root"),
                "problem": None if isinstance(proof, dict) else proof,
                "proof": json.dumps(proof, sort_keys=True, ensure_ascii=False) if isinstance(proof, dict) else None,
            }
        )
    return rows


def _active_during(p: Any, start: str, end: str) -> bool:
    """Approved (or later revoked) and overlapping the window."""
    if p.status not in ("approved", "revoked") or not p.decided_at or p.decided_at >= end:
        return False
    if p.revoked_at and p.revoked_at < start:
        return False
    return p.expires.isoformat() >= start[:10]


def _flat(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _arrow(section: str, rows: list[dict[str, Any]]) -> pa.Table:
    columns = SECTIONS[section]
    arrays = {}
    for c in columns:
        values = [_flat(r.get(c)) for r in rows]
        if all(v is None for v in values):
            arrays[c] = pa.array(values, pa.string())
        else:
            arrays[c] = pa.array(values)
    return pa.table(arrays)


def write(evidence: Evidence, out_dir: Path, formats: tuple[str, ...] = FORMATS) -> dict[str, str]:
    """Write the chosen formats under ``out_dir``; returns {file name: sha256} (also in manifest.json)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    if "json" in formats:
        path = out_dir / "evidence.json"
        path.write_text(json.dumps(evidence.to_json(), indent=2, sort_keys=False, default=str))
        files.append(path)
    for section, rows in evidence.sections.items():
        table = _arrow(section, rows)
        if "csv" in formats:
            path = out_dir / f"{section}.csv"
            pacsv.write_csv(table, path)
            files.append(path)
        if "parquet" in formats:
            path = out_dir / f"{section}.parquet"
            pq.write_table(table, path)
            files.append(path)
    digests = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    manifest = {
        "window": {"since": evidence.since, "until": evidence.until},
        "generated_at": evidence.generated_at,
        "counts": {s: len(r) for s, r in evidence.sections.items()},
        "chain_ok": all(row["ok"] for row in evidence.sections["chain"]),
        "files": digests,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return digests

"""Inclusion proofs: "this decision record is in the log a signed checkpoint commits to", checkable offline.

A proof file (``dataroom audit prove DECISION_ID``; one per linked query in the evidence export)::

    {"format": "dataroom-audit-inclusion-proof/v1", "decision_id": "...",
     "checkpoint": {... the signed checkpoint, as written ...},
     "entries": [{"record": {... the decision record ...}, "leaf_index": 41, "audit_path": ["<hex>", ...]},
                 {"record": {... its completion record ...}, ...}],
     "public_key": {"key_id": "...", "pem": "..."}}

:func:`check_proof` needs nothing but the proof and a public key the auditor trusts: it recomputes
each record's hash from its canonical JSON (sorted keys, no spaces, UTF-8, ``hash`` left out), the
leaf ``SHA-256(0x00 || hash)``, the root through the RFC 6962 audit path, and checks the signature
(Ed25519, or ECDSA P-256 for a KMS key) over the checkpoint. The ``public_key`` inside the proof is a convenience, never trusted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataroom.audit.checkpoints import read_checkpoints, record_leaf, signed_message
from dataroom.audit.keys import algorithm_of, load_public_keys, public_pem, signature_ok
from dataroom.audit.log import record_hash
from dataroom.audit.merkle import Tree, verify_inclusion

if TYPE_CHECKING:
    from dataroom.audit.keys import PublicKey
    from dataroom.audit.log import AuditLog

FORMAT = "dataroom-audit-inclusion-proof/v1"


class ProofError(ValueError):
    """No proof can be made (unknown decision, not yet signed, log does not match its checkpoint)."""


def _newest_checkpoint(log: "AuditLog") -> dict[str, Any] | None:
    cp_file = read_checkpoints(log.checkpoint_path)
    if not cp_file or not cp_file.checkpoints:
        return None
    return max((cp for _, cp in cp_file.checkpoints if isinstance(cp.get("size"), int)), key=lambda cp: cp["size"], default=None)


def build_proofs(log: "AuditLog", decision_ids: Iterable[str], sign_if_needed: bool = False) -> dict[str, dict[str, Any] | str]:
    """A proof per decision id against the newest checkpoint, or the reason there is none.

    ``sign_if_needed`` signs a fresh checkpoint first when a wanted record is newer than the last
    one (only a process that may read the writer's key can).
    """
    wanted = set(decision_ids)
    found: dict[str, list[dict[str, Any]]] = {d: [] for d in wanted}
    leaves: list[bytes] = []
    checkpoint = _newest_checkpoint(log)
    if log.path.exists():
        with log.path.open("rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    break
                record = json.loads(line)
                leaves.append(record_leaf(record["hash"]))
                if record.get("decision_id") in wanted and record.get("type") in ("decision", "completion"):
                    found[record["decision_id"]].append(record)
    newest_seq = max((r["seq"] for rs in found.values() for r in rs), default=-1)
    if sign_if_needed and (checkpoint is None or newest_seq >= checkpoint["size"]):
        from dataroom.audit.log import AuditLog

        signer = AuditLog(log.path, key_path=log.key_path, signer=log._make_signer, stream=log.stream if log.tagged else None)  # its own instance: never closes a live writer's
        try:
            if log._make_signer != log._default_signer or log.key_path.exists():  # never mint a key to make a proof
                checkpoint = signer.checkpoint("proof") or _newest_checkpoint(log)
        except PermissionError:  # not the writer's account: prove against what is signed
            pass
        finally:
            signer.close()
    if checkpoint is None:
        return {d: "no signed checkpoint yet" for d in wanted}
    size = checkpoint["size"]
    if size > len(leaves):
        raise ProofError(f"the newest checkpoint covers {size} records but the log holds {len(leaves)}: run `dataroom audit verify`")
    tree = Tree(leaves[:size])
    if tree.root().hex() != checkpoint["root"]:
        raise ProofError("the log does not match its newest signed checkpoint: run `dataroom audit verify`")
    public = _published_key(log, checkpoint.get("key_id"))
    out: dict[str, dict[str, Any] | str] = {}
    for decision_id in sorted(wanted):
        records = found[decision_id]
        if not any(r.get("type") == "decision" for r in records):
            out[decision_id] = "no decision record with this id in the log"
            continue
        covered = [r for r in records if r["seq"] < size]
        if not any(r.get("type") == "decision" for r in covered):
            out[decision_id] = f"the decision (seq {records[0]['seq']}) is newer than the last signed checkpoint ({size} records): retry after the next one"
            continue
        out[decision_id] = {
            "format": FORMAT,
            "decision_id": decision_id,
            "checkpoint": checkpoint,
            "entries": [{"record": r, "leaf_index": r["seq"], "audit_path": [p.hex() for p in tree.inclusion_path(r["seq"])]} for r in covered],
            "not_yet_signed": [r["seq"] for r in records if r["seq"] >= size],
            "public_key": public,
        }
    return out


def _published_key(log: "AuditLog", kid: str | None) -> dict[str, str] | None:
    try:
        keys = load_public_keys(log.public_key_path)
    except (FileNotFoundError, ValueError):
        return None
    key = keys.get(kid or "")
    return {"key_id": kid or "", "algorithm": algorithm_of(key), "pem": public_pem(key).decode()} if key else None


@dataclass
class ProofCheck:
    ok: bool
    decision_id: str
    problems: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)

    def describe(self) -> str:
        head = f"{'OK' if self.ok else 'FAILED'}: decision {self.decision_id}"
        return "\n".join([head, *(f"  {f}" for f in self.facts), *(f"  problem: {p}" for p in self.problems)])


def check_proof(proof: dict[str, Any], keys: dict[str, "PublicKey"]) -> ProofCheck:
    """Check one proof with the trusted ``keys`` only (see the module docstring)."""
    decision_id = str(proof.get("decision_id"))
    result = ProofCheck(False, decision_id)
    if proof.get("format") != FORMAT:
        result.problems.append(f"not a {FORMAT} document")
        return result
    cp = proof.get("checkpoint") or {}
    kid = cp.get("key_id")
    if kid not in keys:
        result.problems.append(f"the checkpoint is signed by key {kid!r}, not by the trusted key(s) {', '.join(keys)}")
    elif not cp.get("sig") or not signature_ok(keys[kid], signed_message(cp), cp["sig"], cp.get("alg")):
        result.problems.append("the checkpoint's signature does not verify: the checkpoint was altered or forged")
    else:
        result.facts.append(f"checkpoint: {cp.get('size')} records of stream {cp.get('stream')!r}, root {cp.get('root')}, signed {cp.get('timestamp')} by key {kid}")
    try:
        root, size = bytes.fromhex(cp["root"]), int(cp["size"])
    except (KeyError, TypeError, ValueError):
        result.problems.append("the checkpoint has no usable root and size")
        return result
    entries = proof.get("entries") or []
    if not any((e.get("record") or {}).get("type") == "decision" for e in entries):
        result.problems.append("the proof holds no decision record")
    for entry in entries:
        record = entry.get("record") or {}
        what = f"{record.get('type')} record seq {record.get('seq')}"
        if record.get("decision_id") != decision_id:
            result.problems.append(f"{what} belongs to decision {record.get('decision_id')!r}")
            continue
        if record_hash(record) != record.get("hash"):
            result.problems.append(f"{what}: its content does not match its hash (edited)")
            continue
        index = entry.get("leaf_index")
        if index != record.get("seq"):
            result.problems.append(f"{what}: proved at leaf {index}, not at its own seq")
            continue
        try:
            path = [bytes.fromhex(p) for p in entry.get("audit_path") or []]
        except ValueError:
            result.problems.append(f"{what}: the audit path is not hex")
            continue
        if not verify_inclusion(int(index), size, record_leaf(record["hash"]), path, root):
            result.problems.append(f"{what}: the audit path does not lead to the signed root")
            continue
        result.facts.append(f"{what} ({record.get('outcome') or record.get('status')}, {record.get('timestamp')}) is leaf {index} of the signed tree")
    result.ok = not result.problems
    return result


def proofs_in(path: Path) -> list[dict[str, Any]]:
    """The proofs a file holds: one proof, an evidence.json, or the export's inclusion_proofs CSV/Parquet."""
    if path.suffix == ".json":
        doc = json.loads(path.read_text())
        if isinstance(doc, dict) and doc.get("format") == FORMAT:
            return [doc]
        rows = doc.get("inclusion_proofs") if isinstance(doc, dict) else None
        if rows is None:
            raise ValueError(f"{path} is neither a proof nor an evidence export")
        return [_row_proof(r) for r in rows if r.get("proof")]
    if path.suffix in (".csv", ".parquet"):
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        table = pacsv.read_csv(path) if path.suffix == ".csv" else pq.read_table(path)
        return [_row_proof(r) for r in table.to_pylist() if r.get("proof")]
    raise ValueError(f"{path}: expected a .json proof or evidence file, or inclusion_proofs.csv/.parquet")


def _row_proof(row: dict[str, Any]) -> dict[str, Any]:
    proof = row["proof"]
    return json.loads(proof) if isinstance(proof, str) else proof

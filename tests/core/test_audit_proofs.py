"""Inclusion proofs: made by the room, checked by an outsider with the public key alone, and refused when forged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dataroom import evidence
from dataroom.audit import AuditLog, record_hash
from dataroom.audit.keys import load_public_keys
from dataroom.audit.proofs import FORMAT, build_proofs, check_proof
from dataroom.pipeline import Outcome, QueryService


def _cli(*args: str, home: Path | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATAROOM_")}
    if home is not None:
        env["DATAROOM_HOME"] = str(home)
    else:  # the auditor's machine: no room at all
        env["DATAROOM_HOME"] = str((cwd or Path.cwd()) / "no-room-here")
    return subprocess.run([sys.executable, "-m", "dataroom.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def _queries(service: QueryService) -> tuple[str, str]:
    allowed = service.run("alice", "remediation-acme", "SELECT severity, count(*) AS n FROM acme.findings GROUP BY 1")
    denied = service.run("alice", "remediation-acme", "SELECT analyst_email FROM acme.findings")
    assert (allowed.outcome, denied.outcome) == (Outcome.ALLOWED, Outcome.DENIED)
    return allowed.decision_id, denied.decision_id


def test_prove_and_check_offline(service: QueryService, dataroom_home: Path, tmp_path: Path) -> None:
    allowed, denied = _queries(service)
    service.close()  # the broker's shutdown: everything is signed now
    proof_file = tmp_path / "proof.json"
    made = _cli("audit", "prove", allowed, "--out", str(proof_file), home=dataroom_home)
    assert made.returncode == 0, made.stderr
    proof = json.loads(proof_file.read_text())
    assert proof["format"] == FORMAT and [e["record"]["type"] for e in proof["entries"]] == ["decision", "completion"]
    key = tmp_path / "room.pub"
    key.write_bytes((dataroom_home / "audit" / "audit.jsonl.pub").read_bytes())

    auditor = tmp_path / "auditor"
    auditor.mkdir()
    checked = _cli("audit", "check-proof", str(proof_file), "--public-key", str(key), cwd=auditor)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"OK: decision {allowed}" in checked.stdout and "1 of 1 proof(s) verified" in checked.stdout
    assert not (auditor / "no-room-here").exists()  # nothing of a room was needed or made

    # every way of bending the proof fails
    keys = load_public_keys(key)
    edited = json.loads(proof_file.read_text())
    edited["entries"][0]["record"]["input"]["sql"] = "SELECT 1"
    assert "edited" in " ".join(check_proof(edited, keys).problems)
    rehashed = json.loads(json.dumps(edited))
    rehashed["entries"][0]["record"]["hash"] = record_hash(rehashed["entries"][0]["record"])
    assert "does not lead to the signed root" in " ".join(check_proof(rehashed, keys).problems)
    moved = json.loads(proof_file.read_text())
    moved["entries"][0]["leaf_index"] += 1
    assert not check_proof(moved, keys).ok
    resized = json.loads(proof_file.read_text())
    resized["checkpoint"]["size"] += 1
    assert "signature does not verify" in " ".join(check_proof(resized, keys).problems)
    other_room = AuditLog(tmp_path / "other" / "audit.jsonl")
    other_room.append({"type": "decision", "decision_id": "x", "input": {}})
    other_room.close()
    assert "not by the trusted key" in " ".join(check_proof(proof, load_public_keys(other_room.public_key_path)).problems)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(edited))
    refused = _cli("audit", "check-proof", str(forged), "--public-key", str(key), cwd=auditor)
    assert refused.returncode == 1 and "FAILED" in refused.stdout


def test_a_record_newer_than_the_last_checkpoint_is_signed_on_demand(service: QueryService) -> None:
    allowed, _ = _queries(service)
    assert "newer than the last signed checkpoint" in str(build_proofs(service.audit, [allowed])[allowed])
    proof = build_proofs(service.audit, [allowed], sign_if_needed=True)[allowed]
    assert isinstance(proof, dict) and proof["checkpoint"]["reason"] == "proof"
    assert check_proof(proof, load_public_keys(service.audit.public_key_path)).ok
    assert build_proofs(service.audit, ["no-such-id"])["no-such-id"] == "no decision record with this id in the log"
    assert service.run("alice", "remediation-acme", "SELECT 1").outcome is Outcome.ALLOWED  # the live writer still writes
    assert service.audit.verify().ok


def test_evidence_export_carries_proofs_for_linked_queries(service: QueryService, dataroom_home: Path, tmp_path: Path) -> None:
    allowed, denied = _queries(service)
    hypothesis = service.registry.register_hypothesis("alice", "remediation-acme", "Severity mix is stable", [allowed, denied])
    collected = evidence.collect(service.registry, service.audit, "2000-01-01", "2100-01-01")
    rows = collected.sections["inclusion_proofs"]
    assert [(r["hypothesis"], r["decision_id"], r["proved"]) for r in rows] == [(hypothesis.key, allowed, True), (hypothesis.key, denied, True)]
    assert [r["records"] for r in rows] == [2, 1]  # decision + completion; a denial has no completion
    (key_row,) = collected.sections["audit_keys"]
    assert key_row["key_id"] == rows[0]["key_id"]
    out = tmp_path / "evidence"
    evidence.write(collected, out)
    pem = tmp_path / "from-export.pub"
    pem.write_text(key_row["public_key_pem"])
    for name in ("evidence.json", "inclusion_proofs.csv", "inclusion_proofs.parquet"):
        checked = _cli("audit", "check-proof", str(out / name), "--public-key", str(pem), cwd=tmp_path)
        assert checked.returncode == 0 and "2 of 2 proof(s) verified" in checked.stdout, (name, checked.stdout, checked.stderr)

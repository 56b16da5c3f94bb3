"""Tamper suite: every way of rewriting the log, its head or its checkpoints is detected and named.

The attacker here can read and write the log directory but not the writer's private key: the
careful attack (cut the log back, delete the head, recompute every hash, re-sign with a key of
their own) is what signed checkpoints exist for.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dataroom.audit import GENESIS_HASH, AuditLog, canonical_json, record_hash
from dataroom.audit.checkpoints import make_checkpoint, read_checkpoints, record_leaf
from dataroom.audit.keys import SigningKey, key_id, public_pem
from dataroom.audit.merkle import Frontier


def _log(tmp_path: Path, n: int = 10) -> AuditLog:
    """n records, checkpoints at 0 (genesis), 4 and n (shutdown)."""
    log = AuditLog(tmp_path / "audit.jsonl", checkpoint_every=10**6, checkpoint_interval_s=0)
    for i in range(n):
        log.append({"type": "decision", "decision_id": f"d{i}", "input": {"sql": f"SELECT {i}"}})
        if i == 3:
            log.checkpoint()
    log.close()
    return log


def _lines(log: AuditLog) -> list[dict]:
    return [json.loads(line) for line in log.path.read_text().splitlines()]


def _write(log: AuditLog, records: list[dict]) -> None:
    log.path.write_text("".join(canonical_json(r) + "\n" for r in records))


def _rechain(records: list[dict]) -> list[dict]:
    """What a careful attacker does: renumber and recompute every hash from the first record."""
    prev, out = GENESIS_HASH, []
    for seq, record in enumerate(records):
        record = {k: v for k, v in record.items() if k != "hash"} | {"seq": seq, "prev_hash": prev}
        record["hash"] = record_hash(record)
        prev = record["hash"]
        out.append(record)
    return out


def _forge_head(log: AuditLog, records: list[dict]) -> None:
    last = records[-1] if records else {"seq": -1, "hash": GENESIS_HASH}
    log.head_path.write_text(json.dumps({"seq": last["seq"], "hash": last["hash"]}).ljust(128))


def _forge_checkpoints(log: AuditLog, records: list[dict], sizes: list[int], replace_public_key: bool = False) -> None:
    """Checkpoints over the rewritten log, signed with a key the attacker made (not the writer's)."""
    private = Ed25519PrivateKey.generate()
    key = SigningKey(private, key_id(private.public_key()))
    lines = []
    for size in sizes:
        frontier = Frontier()
        for r in records[:size]:
            frontier.push(record_leaf(r["hash"]))
        last = records[size - 1]["hash"] if size else GENESIS_HASH
        cp = make_checkpoint(stream=log.stream, frontier=frontier, last_hash=last, offset=0, timestamp="2026-01-01T00:00:00+00:00", reason="genesis" if not size else "count", key=key)
        lines.append(canonical_json(cp))
    log.checkpoint_path.write_text("".join(line + "\n" for line in lines))
    if replace_public_key:
        log.public_key_path.write_bytes(public_pem(private.public_key()))


def _edit_checkpoint(log: AuditLog, index: int, change: Callable[[dict], None]) -> None:
    cps = [cp for _, cp in read_checkpoints(log.checkpoint_path).checkpoints]
    change(cps[index])
    log.checkpoint_path.write_text("".join(canonical_json(cp) + "\n" for cp in cps))


def test_untouched_log_verifies_with_its_checkpoints(tmp_path: Path) -> None:
    log = _log(tmp_path)
    result = log.verify()
    assert result.ok, result.describe()
    assert result.records == 10 and result.checkpoints == 3 and result.signed_records == 10
    assert "not pinned" in result.key_source
    assert log.verify(public_key=log.public_key_path).ok  # pinned to the same key


def test_red_team_cut_back_and_head_deleted(tmp_path: Path) -> None:
    """The issue's attack: cut audit.jsonl back to its first four lines and delete the head."""
    log = _log(tmp_path, 10)
    log.path.write_text("".join(line + "\n" for line in log.path.read_text().splitlines()[:4]))
    log.head_path.unlink()
    result = log.verify()
    assert not result.ok and result.kind == "truncated" and "cut off" in result.problem
    assert result.first_bad_seq == 4 and "covers 10 records but the log holds 4" in result.problem


def _cut(n: int) -> Callable[[AuditLog], None]:
    def attack(log: AuditLog) -> None:
        records = _lines(log)[:n]
        _write(log, records)

    return attack


def _edit(log: AuditLog) -> None:
    records = _lines(log)
    records[3]["input"]["sql"] = "SELECT 'innocent'"
    _write(log, records)


def _delete(log: AuditLog) -> None:
    records = _lines(log)
    del records[2]
    _write(log, records)


def _reorder(log: AuditLog) -> None:
    records = _lines(log)
    records[1], records[4] = records[4], records[1]
    _write(log, records)


def _edit_and_recompute_everything(log: AuditLog) -> None:
    records = _lines(log)
    records[6]["input"]["sql"] = "SELECT 'innocent'"
    records = _rechain(records)
    _write(log, records)
    _forge_head(log, records)


def _delete_and_recompute_everything(log: AuditLog) -> None:
    records = _rechain([r for r in _lines(log) if r["decision_id"] != "d2"])
    _write(log, records)
    _forge_head(log, records)


def _insert_and_recompute_everything(log: AuditLog) -> None:
    records = _lines(log)
    records.insert(8, {"type": "decision", "decision_id": "planted", "input": {"sql": "SELECT 'alibi'"}})
    records = _rechain(records)
    _write(log, records)
    _forge_head(log, records)


def _cut_head_deleted(log: AuditLog) -> None:
    _cut(4)(log)
    log.head_path.unlink()


def _cut_head_forged(log: AuditLog) -> None:
    _cut(4)(log)
    _forge_head(log, _lines(log))


def _cut_head_and_checkpoints_deleted(log: AuditLog) -> None:
    _cut_head_deleted(log)
    log.checkpoint_path.unlink()


def _cut_head_forged_checkpoints_deleted(log: AuditLog) -> None:
    _cut_head_forged(log)
    log.checkpoint_path.unlink()


def _cut_everything_forged_without_the_key(log: AuditLog) -> None:
    _cut_head_forged(log)
    _forge_checkpoints(log, _lines(log), [0, 4])


def _recompute_and_resign_without_the_key(log: AuditLog) -> None:
    _edit_and_recompute_everything(log)
    _forge_checkpoints(log, _lines(log), [0, 4, 10])


def _checkpoint_root_edited(log: AuditLog) -> None:
    _edit_checkpoint(log, 1, lambda cp: cp.update(size=3))


def _checkpoint_unsigned(log: AuditLog) -> None:
    _edit_checkpoint(log, 2, lambda cp: cp.pop("sig"))


def _checkpoint_line_garbled(log: AuditLog) -> None:
    text = log.checkpoint_path.read_text().splitlines()
    text[1] = text[1][:40]
    log.checkpoint_path.write_text("\n".join(text) + "\n")


def _checkpoint_history_cut_at_the_start(log: AuditLog) -> None:
    lines = log.checkpoint_path.read_text().splitlines()
    log.checkpoint_path.write_text("\n".join(lines[1:]) + "\n")


def _checkpoints_reordered(log: AuditLog) -> None:
    lines = log.checkpoint_path.read_text().splitlines()
    log.checkpoint_path.write_text("\n".join([lines[0], lines[2], lines[1]]) + "\n")


def _public_key_deleted(log: AuditLog) -> None:
    log.public_key_path.unlink()


def _head_deleted(log: AuditLog) -> None:
    log.head_path.unlink()


ATTACKS: dict[str, tuple[Callable[[AuditLog], None], str, int | None]] = {
    # name: (attack, the failure it is named as, the first bad seq named)
    "edit": (_edit, "edited", 3),
    "delete": (_delete, "deleted", 2),
    "reorder": (_reorder, "reordered", 1),
    "truncate": (_cut(4), "truncated", 4),
    "truncate, head deleted": (_cut_head_deleted, "truncated", 4),
    "truncate, head forged": (_cut_head_forged, "truncated", 4),
    "truncate, head and checkpoints deleted": (_cut_head_and_checkpoints_deleted, "head_missing", 3),
    "truncate, head forged, checkpoints deleted": (_cut_head_forged_checkpoints_deleted, "checkpoints_missing", 0),
    "truncate, head and checkpoints forged without the key": (_cut_everything_forged_without_the_key, "checkpoint_unknown_key", None),
    "edit, whole chain and head recomputed": (_edit_and_recompute_everything, "checkpoint_inconsistent", 4),
    "delete, whole chain and head recomputed": (_delete_and_recompute_everything, "checkpoint_inconsistent", 0),
    "insert, whole chain and head recomputed": (_insert_and_recompute_everything, "checkpoint_inconsistent", 4),
    "recompute everything and re-sign without the key": (_recompute_and_resign_without_the_key, "checkpoint_unknown_key", None),
    "checkpoint edited": (_checkpoint_root_edited, "checkpoint_bad_signature", None),
    "checkpoint signature stripped": (_checkpoint_unsigned, "checkpoint_unsigned", None),
    "checkpoint line garbled": (_checkpoint_line_garbled, "checkpoint_unreadable", None),
    "checkpoint history cut at the start": (_checkpoint_history_cut_at_the_start, "checkpoints_missing", 0),
    "checkpoints reordered": (_checkpoints_reordered, "checkpoint_inconsistent", None),
    "published public key deleted": (_public_key_deleted, "no_public_key", None),
    "head deleted": (_head_deleted, "head_missing", 9),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_tampering_is_detected_and_named(tmp_path: Path, name: str) -> None:
    attack, kind, seq = ATTACKS[name]
    log = _log(tmp_path)
    attack(log)
    result = log.verify()
    assert not result.ok, f"{name}: {result.describe()}"
    assert result.kind == kind, f"{name}: {result.describe()}"
    assert result.first_bad_seq == seq, f"{name}: {result.describe()}"
    assert "BROKEN" in result.describe() and f"[{kind}]" in result.describe()


def test_forgery_with_the_published_key_replaced_is_caught_by_a_pinned_key(tmp_path: Path) -> None:
    """Replacing the published key too fools only a verifier that trusts this machine: pin the key."""
    log = _log(tmp_path)
    pinned = tmp_path / "pinned.pub"
    pinned.write_bytes(log.public_key_path.read_bytes())
    _cut_head_forged(log)
    _forge_checkpoints(log, _lines(log), [0, 4], replace_public_key=True)
    unpinned = log.verify()
    assert unpinned.ok and "not pinned" in unpinned.describe()  # the documented limit of trusting the machine
    result = log.verify(public_key=pinned)
    assert not result.ok and result.kind == "checkpoint_unknown_key"
    assert not AuditLog(log.path, public_key=pinned).verify().ok  # DATAROOM_AUDIT_PUBLIC_KEY pins it the same way


def test_a_writer_never_launders_a_deleted_checkpoint_history(tmp_path: Path) -> None:
    """Deleting the checkpoints and restarting the writer does not make the log verify again."""
    log = _log(tmp_path)
    log.checkpoint_path.unlink()
    log.append({"type": "decision", "decision_id": "after", "input": {}})
    log.close()
    result = log.verify()
    assert not result.ok and result.kind == "checkpoints_missing"
    log.adopt("admin")  # an explicit, recorded act: verify passes and keeps naming what was adopted
    log.close()
    adopted = log.verify()
    assert adopted.ok and "adopted by `dataroom audit adopt`" in adopted.describe()
    assert _lines(log)[-1]["type"] == "audit_adopted" and _lines(log)[-1]["actor"] == "admin"


def test_key_is_private_to_the_writer_and_the_public_key_is_published(tmp_path: Path) -> None:
    log = _log(tmp_path)
    mode = log.key_path.stat()
    assert stat.S_IMODE(mode.st_mode) == 0o600 and mode.st_uid == os.geteuid()
    assert b"PRIVATE KEY" in log.key_path.read_bytes()
    assert b"BEGIN PUBLIC KEY" in log.public_key_path.read_bytes() and b"PRIVATE" not in log.public_key_path.read_bytes()
    reader = AuditLog(tmp_path / "other" / "audit.jsonl")
    assert reader.verify().ok and not reader.key_path.exists()  # readers create nothing


def _checkpoint_sizes(log: AuditLog) -> list[tuple[int, str]]:
    cp = read_checkpoints(log.checkpoint_path)
    return [(c["size"], c["reason"]) for _, c in cp.checkpoints] if cp else []


def test_cadence_every_n_records_every_t_seconds_and_at_shutdown(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl", checkpoint_every=5, checkpoint_interval_s=0.3)
    assert _checkpoint_sizes(log) == []
    for i in range(5):
        log.append({"type": "decision", "decision_id": f"d{i}", "input": {}})
    deadline = time.monotonic() + 5
    while (5, "count") not in _checkpoint_sizes(log) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _checkpoint_sizes(log) == [(0, "genesis"), (5, "count")]  # signed by the writer's thread, not the append
    log.append({"type": "decision", "decision_id": "d5", "input": {}})
    time.sleep(0.8)
    assert _checkpoint_sizes(log)[-1] == (6, "interval")
    time.sleep(0.5)
    assert len(_checkpoint_sizes(log)) == 3  # nothing new: nothing signed
    log.append({"type": "decision", "decision_id": "d6", "input": {}})
    log.close()
    assert _checkpoint_sizes(log)[-1] == (7, "shutdown")
    assert log.verify().ok


def test_settings_reach_the_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataroom.settings import Settings

    monkeypatch.setenv("DATAROOM_AUDIT_CHECKPOINT_EVERY", "7")
    monkeypatch.setenv("DATAROOM_AUDIT_CHECKPOINT_INTERVAL_S", "12.5")
    monkeypatch.setenv("DATAROOM_AUDIT_PUBLIC_KEY", str(tmp_path / "pinned.pub"))
    log = AuditLog.from_settings(Settings(home=tmp_path))
    assert (log.checkpoint_every, log.checkpoint_interval_s, log.pinned_public_key) == (7, 12.5, tmp_path / "pinned.pub")


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATAROOM_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "dataroom.cli", *args], capture_output=True, text=True, env=env, timeout=120)


def test_red_team_attack_through_the_cli(dataroom_home: Path) -> None:
    """Five queries, cut audit.jsonl back to its first four lines, delete the head: verify says BROKEN."""
    for i in range(5):
        assert _cli(dataroom_home, "query", "-u", "alice", "-p", "remediation-acme", f"SELECT {i}").returncode == 0
    ok = _cli(dataroom_home, "audit", "verify")
    assert ok.returncode == 0 and "10 records verified" in ok.stdout and "covering 10 record(s)" in ok.stdout, ok.stdout
    log = dataroom_home / "audit" / "audit.jsonl"
    log.write_text("".join(line + "\n" for line in log.read_text().splitlines()[:4]))
    (dataroom_home / "audit" / "audit.jsonl.head").unlink()
    broken = _cli(dataroom_home, "audit", "verify")
    assert broken.returncode == 1 and "[truncated]" in broken.stdout and "covers 10 records but the log holds 4" in broken.stdout, broken.stdout


def test_a_lost_key_is_rotated_in_the_open(tmp_path: Path) -> None:
    """The key file gone: the next writer signs with a new key, published beside the old one; a pinned verifier notices."""
    log = _log(tmp_path)
    pinned = tmp_path / "pinned.pub"
    pinned.write_bytes(log.public_key_path.read_bytes())
    log.key_path.unlink()
    restarted = AuditLog(log.path)
    restarted.append({"type": "decision", "decision_id": "after", "input": {}})
    restarted.close()
    result = log.verify()
    assert result.ok and len(result.key_ids) == 2, result.describe()
    assert log.public_key_path.read_text().count("BEGIN PUBLIC KEY") == 2
    assert log.verify(public_key=pinned).kind == "checkpoint_unknown_key"


def test_making_a_proof_never_mints_a_key(tmp_path: Path) -> None:
    from dataroom.audit.proofs import build_proofs

    log = _log(tmp_path)
    log.append({"type": "decision", "decision_id": "late", "input": {}})  # newer than the last checkpoint
    log.key_path.unlink()
    reader = AuditLog(log.path)
    assert "newer than the last signed checkpoint" in str(build_proofs(reader, ["late"], sign_if_needed=True)["late"])
    assert not log.key_path.exists()


def test_files_root_creates_belong_to_the_owner_of_the_audit_directory(tmp_path: Path) -> None:
    """An administrator's CLI (root, as the suite runs) writing first must not lock the broker's account out of its own files."""
    directory = tmp_path / "audit"
    directory.mkdir()
    os.chown(directory, 65534, 65534)
    log = AuditLog(directory / "audit.jsonl")
    log.append({"type": "decision", "decision_id": "d", "input": {}})
    log.close()
    made = sorted(p.name for p in directory.iterdir())
    assert made == ["audit.jsonl", "audit.jsonl.checkpoints", "audit.jsonl.head", "audit.jsonl.key", "audit.jsonl.pub"]
    assert {(p.name, p.stat().st_uid) for p in directory.iterdir()} == {(name, 65534) for name in made}
    assert stat.S_IMODE((directory / "audit.jsonl.key").stat().st_mode) == 0o600

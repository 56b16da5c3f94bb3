"""The audit log is hash-chained and the verifier names the first bad record after tampering."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from dataroom.audit import AuditLog, attempts


def _log(tmp_path: Path, n: int = 6) -> AuditLog:
    log = AuditLog(tmp_path / "audit.jsonl")
    for i in range(n):
        log.append({"type": "decision", "decision_id": f"d{i}", "input": {"sql": f"SELECT {i}"}})
    log.close()
    return log


def _lines(log: AuditLog) -> list[str]:
    return log.path.read_text().splitlines()


def _write(log: AuditLog, lines: list[str]) -> None:
    log.path.write_text("".join(line + "\n" for line in lines))


def test_intact_chain_verifies(tmp_path: Path) -> None:
    result = _log(tmp_path).verify()
    assert result.ok and result.records == 6


def test_records_chain_to_their_predecessor(tmp_path: Path) -> None:
    records = list(_log(tmp_path).records())
    assert [r["seq"] for r in records] == list(range(6))
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(records, records[1:]))


def test_edit_is_named(tmp_path: Path) -> None:
    log = _log(tmp_path)
    lines = _lines(log)
    record = json.loads(lines[3])
    record["input"]["sql"] = "SELECT 'innocent'"
    lines[3] = json.dumps(record)
    _write(log, lines)
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 3 and "edited" in result.problem


def test_deletion_is_named(tmp_path: Path) -> None:
    log = _log(tmp_path)
    lines = _lines(log)
    del lines[2]
    _write(log, lines)
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 2 and result.first_bad_line == 3


def test_reorder_is_named(tmp_path: Path) -> None:
    log = _log(tmp_path)
    lines = _lines(log)
    lines[1], lines[4] = lines[4], lines[1]
    _write(log, lines)
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 1


def test_truncation_is_named(tmp_path: Path) -> None:
    log = _log(tmp_path)
    _write(log, _lines(log)[:4])
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 4 and "cut off" in result.problem


def test_partial_last_line_is_named(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.path.write_text(log.path.read_text()[:-20])
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 5


def test_rehashed_forgery_of_last_record_is_caught_by_head(tmp_path: Path) -> None:
    """Editing the last record and recomputing its hash still disagrees with the head file."""
    from dataroom.audit import record_hash

    log = _log(tmp_path)
    lines = _lines(log)
    record = json.loads(lines[-1])
    record["input"]["sql"] = "SELECT 'forged'"
    record["hash"] = record_hash(record)
    lines[-1] = json.dumps(record)
    _write(log, lines)
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 5


def _append_many(path: str, worker: int) -> None:
    log = AuditLog(Path(path))
    for i in range(25):
        log.append({"type": "decision", "decision_id": f"w{worker}-{i}", "input": {}})


def test_concurrent_writers_in_several_processes_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    result = AuditLog(path).verify()
    assert result.ok and result.records == 100


def test_attempts_fold_completion_into_decision(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl")
    log.append({"type": "decision", "decision_id": "x", "input": {}})
    log.append({"type": "completion", "decision_id": "x", "rows": 3})
    rows = attempts(log.records())
    assert len(rows) == 1 and rows[0]["completion"]["rows"] == 3


@pytest.mark.parametrize("n", [0, 1])
def test_small_logs_verify(tmp_path: Path, n: int) -> None:
    assert _log(tmp_path, n).verify().ok

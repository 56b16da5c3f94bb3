"""The reviewer's view (issue 10 item 8, issue 17 item 5): the index, incremental verification, `audit show`.

The index must answer exactly what folding the whole log answers; verification resumed from a
cached checkpoint must still catch any edit before it; `audit show` must warn on a tampered log
and print sequence numbers without unexplained gaps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dataroom.audit import AuditLog, attempts, decision_record, record_hash
from dataroom.audit.reader import AuditView
from dataroom.audit.vcache import verify_cached
from dataroom.querylog import QueryFilter, QueryLog, attempt_row

DATAROOM = [sys.executable, "-m", "dataroom.cli"]
USERS = ["alice", "bob", "carol"]


def _fill(path: Path, n: int, every: int = 50) -> AuditLog:
    """``n`` attempts: allowed ones completed (some failed, some completed several records later), denials without."""
    log = AuditLog(path, checkpoint_every=every, checkpoint_interval_s=0)
    late: list[dict] = []
    for i in range(n):
        allowed = i % 3 != 0
        record = decision_record(
            path="dataroom/query/main", input_doc={"user": {"name": USERS[i % 3], "groups": ["analysts"]}, "project_id": f"p{i % 2}", "sql": f"SELECT {i} FROM t{i % 4}",
                                                  "facts": {"tables": [f"acme.t{i % 4}"], "tenants": ["acme" if i % 2 else "globex"]}},
            allow=allowed, reasons=[] if allowed else [{"code": "pii_column" if i % 2 else "cross_tenant", "message": "no"}],
            outcome="allowed" if allowed else "denied", revision="r1", labels={}, metrics={},
        )  # fmt: skip
        log.append(record)
        if allowed:
            late.append({"type": "completion", "decision_id": record["decision_id"], "timestamp": record["timestamp"], "rows": i, "bytes": 8 * i, "status": "failed" if i % 7 == 0 else "ok"})
        if len(late) > (i % 5):  # completions arrive a few records after their decisions
            log.append(late.pop(0))
        if i % 97 == 0:
            log.append({"type": "audit_adopted", "timestamp": record["timestamp"], "actor": "sam", "records": 0})  # another record type
    for completion in late:
        log.append(completion)
    log.close()
    return log


def _naive(path: Path, flt: QueryFilter) -> list[dict]:
    return flt.apply([attempt_row(a) for a in attempts(AuditLog(path).records())])


FILTERS = [{}, {"user": "bob"}, {"decision": "error"}, {"decision": "denied", "reason": "pii_column"}, {"tenant": "globex", "table": "ACME.T1"},
           {"text": "select 1"}, {"project": "p1", "decision": "allowed"}]  # fmt: skip


@pytest.mark.parametrize("segment", [100, 4096])
def test_the_index_answers_what_folding_the_whole_log_answers(tmp_path: Path, segment: int) -> None:
    path = tmp_path / "audit.jsonl"
    _fill(path, 1800)
    querylog = QueryLog(path)
    querylog.index.segment_records = segment
    for args in FILTERS:
        flt = QueryFilter.from_args(args)
        expected = _naive(path, flt)
        got = querylog.rows(flt)
        keys = ("seq", "decision_id", "user", "outcome", "rows", "bytes", "completion_status", "reasons", "tables", "tenants", "sql")
        assert [tuple(str(r[k]) for k in keys) for r in got] == [tuple(str(r[k]) for k in keys) for r in expected], args
        page, total = querylog.page(flt, limit=7, offset=3)
        assert total == len(expected) and [r["decision_id"] for r in page] == [r["decision_id"] for r in reversed(expected)][3:10]
    state = querylog.index._states["audit"]
    if segment == 100:
        assert {s["level"] for s in state["segments"]} == {0, 1}  # 16 closed segments merged into one of the next level
        assert sum(s["records"] for s in state["segments"]) == state["records"] and len(state["segments"]) < 16
    # a second reader (another process) starts from the saved segments
    again = QueryLog(path)
    again.index.segment_records = segment
    assert [r["decision_id"] for r in again.rows(QueryFilter(user="alice"))] == [r["decision_id"] for r in _naive(path, QueryFilter(user="alice"))]
    record = again.record(got[0]["decision_id"])
    assert record is not None and record["decision_id"] == got[0]["decision_id"] and "completion" in record


def test_pages_are_exact_when_timestamps_are_out_of_order_across_segments(tmp_path: Path) -> None:
    """Segments are skipped by their time range only when they cannot hold the page: shuffled clocks, several streams."""
    import random

    rng = random.Random(5)
    home = tmp_path / "home"
    from dataroom.settings import Settings

    for stream in ("broker-a", "broker-b"):
        log = AuditLog.from_settings(Settings(home=home, audit_stream=stream, audit_checkpoint_every=100))
        for i in range(700):
            log.append({"type": "decision", "decision_id": f"{stream}-{i}", "timestamp": f"2026-01-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00+00:00",
                        "outcome": "denied" if i % 4 == 0 else "allowed", "input": {"user": {"name": USERS[i % 3]}, "sql": f"SELECT {i}"}, "result": {"reasons": []}})  # fmt: skip
        log.close()
    querylog = QueryLog(Settings(home=home))
    querylog.index.segment_records = 64
    everything = querylog.rows()
    assert len(everything) == 1400 and len(querylog.index._files()) > 10
    order = lambda r: (r["timestamp"], r["stream"], r["seq"])  # noqa: E731
    for args in ({}, {"user": "bob"}, {"decision": "denied"}):
        flt = QueryFilter.from_args(args)
        expected = sorted(querylog.rows(flt), key=order)
        for offset in (0, 37, len(expected) // 2, len(expected) - 10):
            newest, total = querylog.page(flt, limit=25, offset=offset)
            assert total == len(expected) and [r["decision_id"] for r in newest] == [r["decision_id"] for r in reversed(expected)][offset : offset + 25], (args, offset)
            oldest, _ = querylog.page(flt, limit=25, offset=offset, newest_first=False)
            assert [r["decision_id"] for r in oldest] == [r["decision_id"] for r in expected][offset : offset + 25], (args, offset)


def test_the_index_follows_appends_a_replaced_file_and_an_unwritable_directory(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _fill(path, 300)
    querylog = QueryLog(path)
    querylog.index.segment_records = 100
    before = len(querylog.rows())
    log = AuditLog(path)
    log.append(decision_record(path="x", input_doc={"user": {"name": "dave"}}, allow=False, reasons=[], outcome="invalid", revision="r", labels={}, metrics={}))
    log.close()
    assert len(querylog.rows()) == before + 1 and querylog.rows(QueryFilter(user="dave"))[0]["outcome"] == "invalid"
    replacement = tmp_path / "other.jsonl"
    _fill(replacement, 10)
    os.replace(replacement, path)  # a different file now: indexed from its bytes again
    assert len(querylog.rows()) == 10
    fresh = tmp_path / "unwritable"
    fresh.mkdir()
    (fresh / "index").write_text("not a directory")  # the index cannot be written here (holds as root too)
    _fill(fresh / "audit.jsonl", 120)
    ro = QueryLog(fresh / "audit.jsonl")
    ro.index.segment_records = 50
    assert len(ro.rows()) == 120 and ro.rows(QueryFilter(user="bob")) and ro.index._memory_only == {"audit"}  # indexed in memory


def test_incremental_verification_resumes_but_catches_any_edit_before_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = _fill(path, 400)
    cache = tmp_path / "verified.json"
    first, resumed = verify_cached(log, cache)
    assert first.ok and not resumed and first.records == log.verify().records
    again, resumed = verify_cached(log, cache)
    assert again.ok and resumed and again.records == first.records  # resumed from the cached checkpoint
    cached = json.loads(cache.read_text())["resume"]
    assert cached["count"] > 300  # the last checkpoint the records matched
    # a careful in-place edit well before the cached offset: same length, hash recomputed
    lines = path.read_bytes().split(b"\n")
    record = json.loads(lines[5])
    record["input"]["sql"] = record["input"]["sql"].replace("SELECT", "SELEKT")
    record["hash"] = record_hash(record)
    lines[5] = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    path.write_bytes(b"\n".join(lines))
    broken, resumed = verify_cached(log, cache)
    assert not broken.ok and not resumed and broken.first_bad_seq is not None and broken.first_bad_seq <= 6, broken.describe()


def test_a_rewritten_checkpoint_line_voids_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = _fill(path, 200)
    cache = tmp_path / "verified.json"
    assert verify_cached(log, cache)[0].ok
    lines = log.checkpoint_path.read_text().splitlines()
    forged = json.loads(lines[1])
    forged["timestamp"] = "2020-01-01T00:00:00+00:00"
    log.checkpoint_path.write_text("\n".join([lines[0], json.dumps(forged)] + lines[2:]) + "\n")
    result, resumed = verify_cached(log, cache)
    assert not result.ok and not resumed and result.kind == "checkpoint_bad_signature", result.describe()


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(DATAROOM + list(args), capture_output=True, text=True, env={**os.environ, "DATAROOM_HOME": str(home)}, timeout=120)


def test_audit_show_prints_both_seqs_and_no_unexplained_gaps(dataroom_home: Path) -> None:
    _cli(dataroom_home, "query", "-u", "alice", "-p", "remediation-acme", "SELECT 1 AS x")
    _cli(dataroom_home, "query", "-u", "alice", "-p", "remediation-acme", "SELECT analyst_email FROM acme.findings")
    log = AuditLog(dataroom_home / "audit" / "audit.jsonl")
    log.adopt("sam")  # another record type between attempts
    log.close()
    _cli(dataroom_home, "query", "-u", "bob", "-p", "remediation-acme", "SELECT 2 AS y")
    out = _cli(dataroom_home, "audit", "show")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[0] == "0+1" and "allowed" in lines[0]
    assert lines[1].split()[0] == "2" and "denied" in lines[1]
    assert lines[2].split()[0] == "3" and "[audit_adopted]" in lines[2]
    printed = sorted(int(s) for line in lines for s in line.split()[0].split("+"))
    assert printed == list(range(len(list(log.records()))))  # every seq shown once, none missing


def test_audit_show_warns_with_the_first_bad_record_on_a_tampered_log(dataroom_home: Path) -> None:
    for sql in ("SELECT 1 AS x", "SELECT 2 AS x", "SELECT 3 AS x"):
        _cli(dataroom_home, "query", "-u", "alice", "-p", "remediation-acme", sql)
    assert _cli(dataroom_home, "audit", "show").returncode == 0  # verified, index and cache written
    path = dataroom_home / "audit" / "audit.jsonl"
    path.write_text(path.read_text().replace("SELECT 2 AS x", "SELECT 9 AS x"))
    out = _cli(dataroom_home, "audit", "show")
    assert out.returncode == 1
    assert "WARNING: the audit log does not verify" in out.stderr and "seq=2" in out.stderr and "[edited]" in out.stderr
    assert "first bad record (line 3): seq 2 decision" in out.stderr and "sql='SELECT 9 AS x'" in out.stderr
    assert "SELECT 9 AS x" in out.stdout  # what the file holds now is what is listed (the index follows the bytes)
    filtered = _cli(dataroom_home, "audit", "search", "--user", "alice", "--json")
    assert filtered.returncode == 1 and "WARNING" in filtered.stderr


def test_index_and_cache_files_root_creates_belong_to_the_owner_of_the_audit_directory(tmp_path: Path) -> None:
    """Root's `audit show` must not lock the room's account out of the index it later maintains."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create files for another owner")
    directory = tmp_path / "audit"
    directory.mkdir()
    _fill(directory / "audit.jsonl", 150)
    os.chown(directory, 65534, 65534)
    querylog = QueryLog(directory / "audit.jsonl")
    querylog.index.segment_records = 100
    assert len(querylog.rows()) == 150
    assert querylog.view.verify(incremental=True)[0].result.ok
    made = [p for p in (directory / "index").rglob("*")]
    assert {p.name for p in made} >= {"file-audit.jsonl", "state.json", ".lock", "verified.json"} and any(p.suffix == ".parquet" for p in made)
    assert {p.stat().st_uid for p in made} | {(directory / "index").stat().st_uid} == {65534}


def test_the_review_chain_status_verifies_in_the_background_once_the_log_is_large(tmp_path: Path) -> None:
    """Pages never wait for a re-verification of a large log; the status catches up, tampering included."""
    import time

    from dataroom.review.audit_pages import ChainStatus

    path = tmp_path / "audit.jsonl"
    _fill(path, 300)
    status = ChainStatus(QueryLog(path), sync_bytes=0)  # every log is "large"
    first, _ = status.get()
    assert first.ok and first.records > 300  # the first verification is waited for
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(lines[:3] + [lines[3].replace(b"SELECT", b"SELEKT")] + lines[4:]))
    stale, _ = status.get()
    assert stale.ok and "being verified now" in stale.describe()  # the last completed result, said to be so
    deadline = time.monotonic() + 60
    while status.get()[0].ok:
        assert time.monotonic() < deadline, "the background verification never reported the edit"
        time.sleep(0.1)
    assert status.get()[0].kind == "edited" and status.get()[0].first_bad_seq == 3

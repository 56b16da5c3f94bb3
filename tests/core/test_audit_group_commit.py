"""Group commit: concurrent decision records share fsyncs, and none returns before it is on disk.

The guarantee under test is the audit log's first promise: ``append`` of a decision record
returns only after an fsync that started once the record was written (so it is durable before
its query executes). An fsync that sleeps widens the window in which a careless implementation
would let a waiting thread go early.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from dataroom.audit import AuditLog

THREADS, PER_THREAD = 16, 5


class FsyncRecorder:
    """Wraps os.fsync: for the log's descriptor, when each call started and ended and how much of the file it covered."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, log: Path, delay_s: float = 0.005, fail_first: bool = False) -> None:
        self.log, self.delay_s, self.fail_next = str(log), delay_s, fail_first
        self.calls: list[tuple[float, float, int]] = []
        self._real = os.fsync
        monkeypatch.setattr(os, "fsync", self)

    def __call__(self, fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}") != self.log:
            return self._real(fd)
        started, covers = time.monotonic(), os.fstat(fd).st_size
        if self.fail_next:
            self.fail_next = False
            raise OSError(5, "Input/output error")
        time.sleep(self.delay_s)
        self._real(fd)
        self.calls.append((started, time.monotonic(), covers))


def line_ends(path: Path) -> dict[int, int]:
    """seq -> the file offset just past its line."""
    import json

    ends, offset = {}, 0
    with path.open("rb") as fh:
        for line in fh:
            offset += len(line)
            ends[int(json.loads(line)["seq"])] = offset
    return ends


def assert_durable_on_return(recorder: FsyncRecorder, returned: list[tuple[int, float]], path: Path) -> None:
    ends = line_ends(path)
    for seq, at in returned:
        assert any(covers >= ends[seq] and ended <= at for _, ended, covers in recorder.calls), f"record {seq} returned before an fsync covered it"


def test_concurrent_appends_share_fsyncs_and_each_returns_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append({"type": "decision", "n": -1})  # genesis and key outside the measured part
    recorder = FsyncRecorder(monkeypatch, log.path)
    returned: list[tuple[int, float]] = []
    start = threading.Barrier(THREADS)

    def client(i: int) -> None:
        start.wait()
        for j in range(PER_THREAD):
            seq = log.append({"type": "decision", "n": i * PER_THREAD + j})["seq"]
            returned.append((seq, time.monotonic()))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(returned) == THREADS * PER_THREAD
    assert_durable_on_return(recorder, returned, log.path)
    assert len(recorder.calls) < THREADS * PER_THREAD / 2  # shared, not one each
    assert log.read_head()["seq"] == max(seq for seq, _ in returned)  # the head names the last record
    log.close()
    assert log.verify().ok


def test_a_lone_append_pays_one_fsync_before_it_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append({"type": "decision"})
    recorder = FsyncRecorder(monkeypatch, log.path, delay_s=0)
    returned = []
    for _ in range(5):
        returned.append((log.append({"type": "decision"})["seq"], time.monotonic()))
    log.append({"type": "completion"}, durable=False)
    assert len(recorder.calls) == 5
    assert_durable_on_return(recorder, returned, log.path)
    log.close()


def test_a_failed_fsync_fails_that_append_and_the_next_one_flushes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append({"type": "decision"})
    recorder = FsyncRecorder(monkeypatch, log.path, delay_s=0, fail_first=True)
    with pytest.raises(OSError):
        log.append({"type": "decision", "n": 1})  # the caller must not execute: its record may not be on disk
    seq = log.append({"type": "decision", "n": 2})["seq"]
    assert_durable_on_return(recorder, [(seq - 1, time.monotonic()), (seq, time.monotonic())], log.path)
    log.close()


def test_the_head_never_moves_back(tmp_path: Path) -> None:
    """Two writers (as two processes would) finish their group commits out of order."""
    first, second = AuditLog(tmp_path / "audit.jsonl"), AuditLog(tmp_path / "audit.jsonl")
    early = first.append({"type": "decision"})
    late = second.append({"type": "decision"})
    first._write_head(early["seq"], early["hash"])  # the slower writer's flush lands last
    assert first.read_head() == {"seq": late["seq"], "hash": late["hash"]}
    first.close()
    second.close()

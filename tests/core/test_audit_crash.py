"""Crash safety: writers killed -9 at random moments leave a log that verifies; a torn line is recorded, never dropped.

Real processes, real SIGKILLs. A record is one ``write``, but Linux may end a write that crosses
a page boundary early when a SIGKILL is pending (rare: it takes a kill landing inside the copy, on
a busy machine), so a killed writer can leave its last line torn, as a power loss does. That line's
append never returned: the decision it held never executed. The next writer cuts it off and
records it. The torn line of a power loss is made deterministically by a writer that writes half
a record and kills itself.
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dataroom.audit import AuditLog
from dataroom.audit.checkpoints import read_checkpoints

WRITER = """
import os, sys
from pathlib import Path
import pytest

from dataroom.audit import AuditLog
log = AuditLog(Path(sys.argv[1]), checkpoint_every=int(sys.argv[2]), checkpoint_interval_s=0.02)
i = 0
while True:
    log.append({"type": "decision", "decision_id": f"{os.getpid()}-{i}", "input": {"sql": "SELECT %d" % i, "pad": "x" * (i % 700)}})
    i += 1
"""

TORN_WRITER = """
import os, signal, sys
from pathlib import Path
import pytest

from dataroom.audit import AuditLog
log = AuditLog(Path(sys.argv[1]))
log.append({"type": "decision", "decision_id": "before-the-crash", "input": {}})
fd = os.open(sys.argv[1] if sys.argv[2] == "log" else sys.argv[1] + ".checkpoints", os.O_WRONLY | os.O_APPEND)
os.write(fd, sys.argv[3].encode())  # half a line, then the power goes
os.kill(os.getpid(), signal.SIGKILL)
"""

PIPELINE = """
from dataroom.pipeline import QueryService
svc = QueryService()
i = 0
while True:
    out = svc.run("alice", "remediation-acme", f"SELECT {i} AS n")
    print(out.decision_id, flush=True)  # the caller has its outcome (executed or not): the decision must be on disk
    i += 1
"""


def _spawn(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _kill(proc: subprocess.Popen) -> tuple[str, str]:
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err
    return out, err


def _verifies_after_kill(path: Path) -> bool:
    """Assert the log verifies after writers were killed; True if a killed writer's last line was torn.

    Only that line may be bad: named as torn (never accepted), and once the next writer has cut it
    off and recorded it, the log verifies.
    """
    result = AuditLog(path).verify()
    if result.ok:
        return False
    assert result.kind == "torn" and result.first_bad_line == sum(1 for _ in path.open("rb")), result.describe()
    recovering = AuditLog(path)
    recovering.append({"type": "decision", "decision_id": "after-the-kill", "input": {}})
    recovering.close()
    result = AuditLog(path).verify()
    assert result.ok, result.describe()
    return True


def test_concurrent_writers_killed_at_random_moments_leave_a_log_that_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    rng = random.Random(10)
    rounds = 6
    torn_rounds = 0
    for round_no in range(rounds):
        writers = [_spawn(WRITER, str(path), str(rng.choice([3, 5, 11]))) for _ in range(3)]
        time.sleep(rng.uniform(0.4, 1.2))
        for proc in writers:
            time.sleep(rng.uniform(0, 0.05))
            _kill(proc)
        torn_rounds += _verifies_after_kill(path)
    records = list(AuditLog(path).records())
    assert len(records) > 100 and [r["seq"] for r in records] == list(range(len(records)))
    checkpoints = read_checkpoints(path.with_name("audit.jsonl.checkpoints"))
    assert checkpoints is not None and len(checkpoints.checkpoints) > rounds  # signed while running, by the killed writers
    # Each torn line recorded once, none invented. A line torn by a writer killed while the round's
    # other writers still run is cut off and recorded by one of them, before the round's check: so
    # the records are at least the torn lines found at the end of a round, at most one per kill,
    # each holds a real fragment of a line (its start, without the newline that ends a whole line),
    # and no fragment is recorded twice.
    torn = [r for r in records if r["type"] == "torn_tail"]
    assert torn_rounds <= len(torn) <= rounds * 3
    assert len({(r["file"], r["offset"], r["sha256"]) for r in torn}) == len(torn)
    for record in torn:
        fragment = base64.b64decode(record["fragment_b64"])
        assert record["fragment_complete"] and record["length"] == len(fragment) and fragment.startswith(b'{"') and b"\n" not in fragment


def test_a_short_write_is_completed_not_left_torn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that returns early (a full disk, a signal) is continued: the line is whole and the chain holds."""
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append({"type": "decision", "decision_id": "first", "input": {}})
    real_write, calls = os.write, []

    def half_then_rest(fd: int, data) -> int:
        calls.append(len(data))
        return real_write(fd, data[: max(1, len(data) // 2)] if len(calls) == 1 else data)

    monkeypatch.setattr(os, "write", half_then_rest)
    log.append({"type": "decision", "decision_id": "second", "input": {"pad": "x" * 5000}})
    monkeypatch.setattr(os, "write", real_write)
    log.append({"type": "decision", "decision_id": "third", "input": {}})
    log.close()
    assert len(calls) >= 2
    assert AuditLog(log.path).verify().ok
    assert [r["decision_id"] for r in AuditLog(log.path).records() if r["type"] == "decision"] == ["first", "second", "third"]


def test_no_executed_query_lacks_its_decision_record_after_kill_9(dataroom_home: Path) -> None:
    env = {**os.environ, "DATAROOM_HOME": str(dataroom_home), "DATAROOM_AUDIT_CHECKPOINT_EVERY": "5", "DATAROOM_AUDIT_CHECKPOINT_INTERVAL_S": "0.05"}
    rng = random.Random(6)
    executed: list[str] = []
    log = AuditLog(dataroom_home / "audit" / "audit.jsonl")
    for _ in range(3):
        proc = _spawn(PIPELINE, env=env)
        deadline = time.monotonic() + 60
        while not log.path.exists() or sum(1 for _ in log.path.open()) < 10:  # start-up done, queries flowing
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else "slow start"
            time.sleep(0.05)
        time.sleep(rng.uniform(0.1, 1.0))
        out, _ = _kill(proc)
        executed += out.split()
        _verifies_after_kill(log.path)
    decisions = {r["decision_id"] for r in log.records() if r.get("type") == "decision"}
    assert len(executed) > 3 and set(executed) <= decisions


def _torn(tmp_path: Path, where: str, fragment: str) -> AuditLog:
    path = tmp_path / "audit.jsonl"
    proc = _spawn(TORN_WRITER, str(path), where, fragment)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return AuditLog(path)


def test_a_torn_last_line_is_named_then_recorded_by_the_next_writer(tmp_path: Path) -> None:
    fragment = '{"decision_id":"torn-in-half","input":{"sql":"SELECT secr'
    log = _torn(tmp_path, "log", fragment)
    before = log.verify()
    assert not before.ok and before.kind == "torn" and before.first_bad_seq == 1  # never silently accepted

    restarted = _spawn("import sys; from pathlib import Path; from dataroom.audit import AuditLog; l = AuditLog(Path(sys.argv[1])); "
                       "l.append({'type': 'decision', 'decision_id': 'after-restart', 'input': {}}); l.close()", str(log.path))
    _, err = restarted.communicate(timeout=60)
    assert restarted.returncode == 0, err
    records = list(log.records())
    assert [r.get("decision_id") or r["type"] for r in records] == ["before-the-crash", "torn_tail", "after-restart"]
    torn = records[1]
    assert base64.b64decode(torn["fragment_b64"]).decode() == fragment and torn["length"] == len(fragment)  # never silently dropped
    assert torn["file"] == "audit.jsonl" and torn["offset"] == len(log.path.read_bytes().split(b"\n")[0]) + 1
    after = log.verify()
    assert after.ok and "torn line(s) left by a crashed writer recorded in torn_tail record(s) seq 1" in after.describe()


def test_a_torn_checkpoint_line_is_recorded_too(tmp_path: Path) -> None:
    log = _torn(tmp_path, "checkpoints", '{"alg":"Ed25519","bytes":12')
    assert log.verify().ok and "incomplete line" in log.verify().describe()  # nothing it held was signed yet
    log.append({"type": "decision", "decision_id": "after-restart", "input": {}})
    log.close()
    torn = [r for r in log.records() if r["type"] == "torn_tail"]
    assert len(torn) == 1 and torn[0]["file"] == "audit.jsonl.checkpoints"
    assert base64.b64decode(torn[0]["fragment_b64"]) == b'{"alg":"Ed25519","bytes":12'
    assert log.verify().ok and log.checkpoint_path.read_bytes().endswith(b"\n")
    assert all(json.loads(line) for line in log.checkpoint_path.read_text().splitlines())


CRASH_WHILE_RECORDING = """
import os, pathlib, signal, sys
from pathlib import Path
import pytest

from dataroom.audit import AuditLog
log = AuditLog(Path(sys.argv[1]))
if sys.argv[2] == "after-cut":  # SIGKILL right after the fragment is cut off, before its record is appended
    real = os.ftruncate
    def ftruncate(fd, length):
        real(fd, length)
        os.kill(os.getpid(), signal.SIGKILL)
    os.ftruncate = ftruncate
else:  # SIGKILL after the record is appended, before the saved copy is removed
    real_unlink = pathlib.Path.unlink
    def unlink(self, *a, **k):
        if self.name.endswith(".torn"):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_unlink(self, *a, **k)
    pathlib.Path.unlink = unlink
log.append({"type": "decision", "decision_id": "finds-the-torn-line", "input": {}})
"""


def test_a_crash_while_recording_a_torn_line_loses_nothing(tmp_path: Path) -> None:
    """Writers killed -9 in the middle of recording a torn line: the next one finishes the job, once."""
    for moment in ("after-cut", "before-cleanup"):
        directory = tmp_path / moment
        directory.mkdir()
        log = _torn(directory, "log", '{"half":')
        proc = _spawn(CRASH_WHILE_RECORDING, str(log.path), moment)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL and log.torn_path.exists()
        log.append({"type": "decision", "decision_id": "next", "input": {}})
        log.close()
        records = list(log.records())
        torn = [r for r in records if r["type"] == "torn_tail"]
        assert len(torn) == 1 and base64.b64decode(torn[0]["fragment_b64"]) == b'{"half":', (moment, records)
        assert torn[0].get("recovered") is (True if moment == "after-cut" else None)
        assert not log.torn_path.exists() and log.verify().ok, log.verify().describe()


@pytest.mark.parametrize("chunk", [97, 300, 1 << 20])
def test_catching_up_in_chunks_keeps_the_tree_and_finds_a_torn_tail(tmp_path: Path, chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that starts after a crash reads the unsigned stretch in bounded chunks, lines longer than a chunk included."""
    import dataroom.audit.log as audit_log

    path = tmp_path / "audit.jsonl"
    crashed = AuditLog(path, checkpoint_every=10**6, checkpoint_interval_s=0)
    for i in range(40):
        crashed.append({"type": "decision", "decision_id": f"d{i}", "input": {"pad": "x" * (i * 13)}})
    del crashed  # never closed: only the genesis checkpoint exists
    with path.open("ab") as fh:
        fh.write(b'{"torn":')
    monkeypatch.setattr(audit_log, "CATCH_UP_CHUNK", chunk)
    restarted = AuditLog(path)
    restarted.append({"type": "decision", "decision_id": "after", "input": {}})
    restarted.close()
    records = list(restarted.records())
    assert [r["type"] for r in records[-2:]] == ["torn_tail", "decision"] and len(records) == 42
    result = restarted.verify()
    assert result.ok and result.signed_records == 42, result.describe()

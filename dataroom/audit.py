"""Tamper-evident audit log: append-only JSON lines, hash-chained, fsync'd before a query runs.

Every query attempt writes a ``decision`` record (allowed, denied or invalid) before anything
executes; an allowed query later appends a ``completion`` record with the same ``decision_id``
(rows, bytes, duration, result digest, or the error). Field names follow OPA's decision-log
shape (``decision_id``, ``timestamp``, ``path``, ``input``, ``result``, ``bundles``, ``labels``).

Each record carries ``seq``, the previous record's hash (``prev_hash``) and its own ``hash`` over
its canonical JSON. A head file beside the log remembers the last ``seq``/``hash`` so that cutting
records off the end (truncation) is detected too. Writers in several processes (the CLI, the
broker) serialise on an exclusive ``flock`` of the log file.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

GENESIS_HASH = "0" * 64
HEAD_WIDTH = 128  # the head record is padded to a fixed width so it can be overwritten in place


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 of the record without its own ``hash`` field."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def new_decision_id() -> str:
    return str(uuid.uuid4())


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


def decision_record(
    *,
    path: str,
    input_doc: dict[str, Any],
    allow: bool,
    reasons: list[dict[str, str]],
    outcome: str,
    revision: str,
    labels: dict[str, Any],
    metrics: dict[str, Any],
    error: str | None = None,
    decision_id: str | None = None,
) -> dict[str, Any]:
    """One query attempt's ``decision`` record in OPA's decision-log shape.

    The pipeline writes one for every query it sees; the broker for requests it refuses before
    the pipeline (no token, wrong scope, bad body). Both go through here, so the shape is one.
    """
    return {
        "type": "decision",
        "decision_id": decision_id or new_decision_id(),
        "timestamp": utc_now(),
        "path": path,
        "input": input_doc,
        "result": {"allow": allow, "reasons": reasons},
        "outcome": outcome,
        "error": error,
        "bundles": {"dataroom/query": {"revision": revision}},
        "labels": {"app": "dataroom", **labels},
        "metrics": metrics,
    }


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    first_bad_seq: int | None = None
    first_bad_line: int | None = None
    problem: str = ""

    def describe(self) -> str:
        if self.ok:
            return f"audit chain OK: {self.records} records verified"
        return f"audit chain BROKEN at record seq={self.first_bad_seq} (line {self.first_bad_line}): {self.problem}"


class AuditLog:
    """The append-only, hash-chained log at ``path`` (a ``.head`` file sits beside it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.head_path = path.with_name(path.name + ".head")
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._head_fd: int | None = None
        self._tail: tuple[int, int, str] | None = None  # (file size, last seq, last hash) we wrote

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
        return self._fd

    def close(self) -> None:
        for fd in (self._fd, self._head_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._head_fd = None

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Chain, write and fsync one record; returns it with ``seq``, ``prev_hash`` and ``hash``."""
        with self._lock:
            fd = self._open()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                size = os.fstat(fd).st_size
                if self._tail is not None and self._tail[0] == size:
                    last_seq, last_hash = self._tail[1], self._tail[2]
                else:  # another process wrote since our last append: read the tail
                    last_seq, last_hash = self._read_last(fd, size)
                chained = {**record, "seq": last_seq + 1, "prev_hash": last_hash}
                body = canonical_json(chained)  # what the hash covers (record_hash recomputes it on verify)
                chained["hash"] = hashlib.sha256(body.encode()).hexdigest()
                line = (body[:-1] + f',"hash":"{chained["hash"]}"}}\n').encode()
                os.write(fd, line)
                os.fsync(fd)
                self._tail = (size + len(line), chained["seq"], chained["hash"])
                self._write_head(chained["seq"], chained["hash"])
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        return chained

    def _write_head(self, seq: int, digest: str) -> None:
        """Overwrite the fixed-width head record in place (one small write, no rename)."""
        if self._head_fd is None:
            self._head_fd = os.open(self.head_path, os.O_RDWR | os.O_CREAT, 0o640)
        os.pwrite(self._head_fd, json.dumps({"seq": seq, "hash": digest}).ljust(HEAD_WIDTH).encode(), 0)

    @staticmethod
    def _read_last(fd: int, size: int) -> tuple[int, str]:
        if size == 0:
            return -1, GENESIS_HASH
        chunk = 8192
        data = b""
        offset = size
        while offset > 0:
            step = min(chunk, offset)
            offset -= step
            data = os.pread(fd, step, offset) + data
            lines = data.rstrip(b"\n").split(b"\n")
            if len(lines) > 1 or offset == 0:
                last = json.loads(lines[-1])
                return int(last["seq"]), str(last["hash"])
            chunk *= 2
        return -1, GENESIS_HASH

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record in order (raises ``ValueError`` on a line that is not JSON)."""
        if not self.path.exists():
            return
        with self.path.open("rb") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)

    def verify(self) -> VerifyResult:
        """Check the chain; names the first bad record after an edit, deletion, reorder or truncation."""
        expected_prev = GENESIS_HASH
        count = 0
        if self.path.exists():
            with self.path.open("rb") as fh:
                for line_no, line in enumerate(fh, start=1):
                    try:
                        record = json.loads(line)
                    except ValueError:
                        return VerifyResult(False, count, count, line_no, "line is not a complete JSON record (edited or cut)")
                    seq = record.get("seq")
                    if seq != count:
                        return VerifyResult(False, count, count, line_no, f"expected seq {count}, found {seq} (a record was deleted or moved)")
                    if record.get("prev_hash") != expected_prev:
                        return VerifyResult(False, count, seq, line_no, "prev_hash does not match the previous record (deleted, moved or edited)")
                    if record_hash(record) != record.get("hash"):
                        return VerifyResult(False, count, seq, line_no, "content does not match its hash (the record was edited)")
                    expected_prev = record["hash"]
                    count += 1
        head = self._read_head()
        if head is not None and head["seq"] >= count:
            return VerifyResult(False, count, count, count + 1, f"log ends at seq {count - 1} but the head records seq {head['seq']}: records were cut off the end")
        if head is not None and head["seq"] == count - 1 and head["hash"] != expected_prev:
            return VerifyResult(False, count, count - 1, count, "last record differs from the one the head file remembers")
        return VerifyResult(True, count)

    def _read_head(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.head_path.read_text())
        except (FileNotFoundError, ValueError):
            return None


def fold_attempt(by_id: dict[str, dict[str, Any]], record: dict[str, Any]) -> None:
    """Add one record to ``by_id``: a decision starts an attempt, its completion is attached to it."""
    if record.get("type") == "decision":
        by_id[record["decision_id"]] = {**record, "completion": None}
    elif record.get("type") == "completion" and record.get("decision_id") in by_id:
        by_id[record["decision_id"]]["completion"] = record


def attempts(records: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold decision and completion records into one row per query attempt, in order."""
    by_id: dict[str, dict[str, Any]] = {}
    for record in records:
        fold_attempt(by_id, record)
    return list(by_id.values())

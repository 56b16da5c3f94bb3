"""Tamper-evident audit log: append-only JSON lines, hash-chained, fsync'd before a query runs.

Every query attempt writes a ``decision`` record (allowed, denied or invalid) before anything
executes; an allowed query later appends a ``completion`` record with the same ``decision_id``
(rows, bytes, duration, result digest, or the error). Field names follow OPA's decision-log
shape (``decision_id``, ``timestamp``, ``path``, ``input``, ``result``, ``bundles``, ``labels``).

Each record carries ``seq``, the previous record's hash (``prev_hash``) and its own ``hash`` over
its canonical JSON. A head file beside the log remembers the last ``seq``/``hash`` so that cutting
records off the end (truncation) is detected too. Writers in several processes (the CLI, the
broker) serialise on an exclusive ``flock`` of the log file.

A writer also keeps the RFC 6962 Merkle tree over the records (:mod:`dataroom.audit.merkle`) and
signs a checkpoint of its root (:mod:`dataroom.audit.checkpoints`) every ``checkpoint_every``
records or ``checkpoint_interval_s`` seconds (from a background thread, never in the query's
append) and when it closes, so that rewriting the log, head included, is caught by anyone holding
the public key. A line torn by a crash is cut off by the next writer and recorded in a
``torn_tail`` record that keeps its bytes.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import logging
import os
import socket
import threading
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from dataroom.audit.checkpoints import frontier_of, last_checkpoint, make_checkpoint, record_leaf
from dataroom.audit.group_commit import GroupCommit
from dataroom.audit.keys import Signer, hand_to_directory_owner, kms_signer, load_or_create_signing_key
from dataroom.audit.merkle import Frontier
from dataroom.audit.records import attempts, canonical_json, decision_record, fold_attempt, new_decision_id, record_hash, utc_now

__all__ = ["AuditLog", "GENESIS_HASH", "attempts", "canonical_json", "decision_record", "fold_attempt", "new_decision_id", "record_hash", "utc_now"]

if TYPE_CHECKING:
    from dataroom.audit.verify import VerifyResult
    from dataroom.settings import Settings

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
HEAD_WIDTH = 128  # the head record is padded to a fixed width so it can be overwritten in place
CATCH_UP_CHUNK = 8 << 20  # a writer catching up on a long unsigned stretch reads it this much at a time
TORN_KEEP_BYTES = 65536  # a torn line's bytes kept in its torn_tail record (the rest is hashed)


@dataclass
class _Tail:
    """What a writer knows of the file: end offset, last seq and hash, and the tree so far."""

    offset: int
    seq: int
    hash: str
    frontier: Frontier


class AuditLog:
    """The append-only, hash-chained log at ``path``, with ``.head``, ``.checkpoints``, ``.pub`` and ``.key`` beside it.

    Only an instance that appends (or is asked to checkpoint) ever creates the key or signs;
    readers (``records``, ``verify``) touch nothing.
    """

    def __init__(
        self,
        path: Path,
        *,
        checkpoint_every: int = 1000,
        checkpoint_interval_s: float = 60.0,
        key_path: Path | None = None,
        public_key: Path | None = None,
        signer: Callable[[], Signer] | None = None,
        stream: str | None = None,
    ) -> None:
        self.path = path
        self.head_path = path.with_name(path.name + ".head")
        self.checkpoint_path = path.with_name(path.name + ".checkpoints")
        self.public_key_path = path.with_name(path.name + ".pub")  # published by the writer
        self.key_path = key_path or path.with_name(path.name + ".key")
        self.torn_path = path.with_name(path.name + ".torn")  # a torn line being recorded (see _record_torn)
        self.pinned_public_key = public_key  # what verify trusts instead of the published key
        self._make_signer = signer or self._default_signer
        self.stream = stream or path.name.removesuffix(".jsonl")
        self.tagged = stream is not None  # a named stream writes its id into every record (a swap between streams is named)
        self.checkpoint_every = max(1, checkpoint_every)
        self.checkpoint_interval_s = checkpoint_interval_s
        self._pid = os.getpid()
        self._reset_process_state()

    @classmethod
    def from_settings(cls, settings: "Settings", stream: str | None = None) -> "AuditLog":
        """This process's writer (its own stream when streams are on), or the log of ``stream`` to read or verify."""
        from dataroom.audit.streams import LEGACY_STREAM, stream_path, writer_stream

        stream = stream or writer_stream(settings)
        path = stream_path(settings, stream)
        own = stream == writer_stream(settings)
        signer = None
        if settings.audit_kms_key_id and own:
            kms_key, public_path = settings.audit_kms_key_id, path.with_name(path.name + ".pub")
            signer = lambda: kms_signer(kms_key, public_path, settings.aws_region, settings.aws_endpoint_url)  # noqa: E731
        return cls(
            path,
            checkpoint_every=settings.audit_checkpoint_every,
            checkpoint_interval_s=settings.audit_checkpoint_interval_s,
            key_path=settings.audit_key_path if own else None,
            public_key=settings.audit_public_key,
            signer=signer,
            stream=None if stream == LEGACY_STREAM else stream,
        )

    def _default_signer(self) -> Signer:
        return load_or_create_signing_key(self.key_path, self.public_key_path)

    def _reset_process_state(self) -> None:
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._head_fd: int | None = None
        self._state: _Tail | None = None
        self._signed_offset = -1  # file offset the last checkpoint this instance knows covers
        self._signed_tree_size = 0
        self._key: Signer | None = None
        self._timer: threading.Thread | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_timer_check = time.monotonic()
        self._commits = GroupCommit()
        self._head_lock = threading.Lock()

    def _after_fork(self) -> None:
        """In a forked child: the parent's descriptors share its flock, its lock may be held by a thread that is not here."""
        if self._pid != os.getpid():
            for fd in (self._fd, self._head_fd):
                if fd is not None:
                    os.close(fd)
            self._pid = os.getpid()
            self._reset_process_state()

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
            if created:
                hand_to_directory_owner(self.path)
        return self._fd

    def close(self) -> None:
        """Stop the checkpoint timer and sign what this writer has not signed yet (the shutdown checkpoint)."""
        if self._pid != os.getpid():
            return
        timer = self._timer
        if timer is not None:
            self._stop.set()
            self._wake.set()
            timer.join(timeout=10)
        with self._lock:
            if self._state is not None and self._fd is not None:
                try:
                    self._checkpoint_locked("shutdown")
                except Exception:  # never let a failing signature hide the close
                    log.exception("audit: shutdown checkpoint failed")
            for fd in (self._fd, self._head_fd):
                if fd is not None:
                    os.close(fd)
            self._fd = self._head_fd = None
            self._state, self._timer = None, None
            self._stop.clear()
            self._wake.clear()

    def append(self, record: dict[str, Any], durable: bool = True) -> dict[str, Any]:
        """Chain, write and fsync one record; returns it with ``seq``, ``prev_hash`` and ``hash``.

        ``durable=False`` (a query's completion record) skips the fsync and the head update: the
        next durable append, or the next checkpoint, makes it durable along with its own line. A
        crash in between can lose it (never a decision record: those are always durable before
        anything runs), and the head never names a record that might not survive. Durable appends
        of several threads at once share an fsync (:mod:`dataroom.audit.group_commit`).
        """
        with self._exclusive() as fd:
            state = self._sync(fd)
            chained = self._write_record(fd, state, record, durable=False)
            written = state.offset
            due = state.frontier.size - self._signed_tree_size >= self.checkpoint_every
            self._start_timer()
        if due:
            self._wake.set()  # the timer thread signs; this query does not wait for it
        if durable:  # outside the lock: concurrent appends share one fsync (group commit)
            self._commits.wait_durable(written, self._flush)
        return chained

    def _flush(self) -> int:
        """fsync everything this process has written (and the file holds) so far, then point the head at it."""
        with self._lock:
            fd, state = self._open(), self._state
            assert state is not None  # only called after an append
            offset, seq, digest = state.offset, state.seq, state.hash
        os.fsync(fd)
        self._write_head(seq, digest)
        return offset

    def _write_record(self, fd: int, state: _Tail, record: dict[str, Any], durable: bool = True) -> dict[str, Any]:
        chained = {**record, "seq": state.seq + 1, "prev_hash": state.hash}
        if self.tagged:
            chained["stream"] = self.stream
        body = canonical_json(chained)  # what the hash covers (record_hash recomputes it on verify)
        chained["hash"] = hashlib.sha256(body.encode()).hexdigest()
        line = (body[:-1] + f',"hash":"{chained["hash"]}"}}\n').encode()
        view = memoryview(line)
        while view:  # a short write (a full disk, a signal) is continued, or raises before the state moves
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
        state.offset += len(line)
        state.seq, state.hash = chained["seq"], chained["hash"]
        state.frontier.push(record_leaf(chained["hash"]))
        if durable:
            self._write_head(state.seq, state.hash)
        return chained

    # -- catching up with the file -------------------------------------------------------------
    def _sync(self, fd: int) -> _Tail:
        """Bring this writer's view up to the end of the file (another process may have written)."""
        size = os.fstat(fd).st_size
        state = self._state
        if state is None:
            state = self._start(fd, size)
        elif state.offset != size:
            self._catch_up(fd, state, size)
        return state

    def _start(self, fd: int, size: int) -> _Tail:
        """First use in this process: continue the tree from the last checkpoint, or start it (genesis)."""
        checkpoint = last_checkpoint(self.checkpoint_path)
        frontier = frontier_of(checkpoint) if checkpoint else None
        if checkpoint and frontier and checkpoint.get("stream") == self.stream and 0 <= int(checkpoint.get("bytes", -1)) <= size:
            state = _Tail(int(checkpoint["bytes"]), frontier.size - 1, str(checkpoint.get("last_hash") or GENESIS_HASH), frontier)
            self._signed_offset, self._signed_tree_size = state.offset, frontier.size
        else:
            state = _Tail(0, -1, GENESIS_HASH, Frontier())
        self._state = state
        if state.offset != size:
            self._catch_up(fd, state, size)
        self._finish_torn(fd, state)
        if checkpoint is None and not self.checkpoint_path.exists() and state.frontier.size == 0:
            self._write_head(-1, GENESIS_HASH)
            self._checkpoint_locked("genesis", force=True)  # before the first record: a log never lacks one
        return state

    def _catch_up(self, fd: int, state: _Tail, size: int) -> None:
        """Read the records after ``state.offset`` in bounded chunks; a torn last line is cut off and recorded."""
        while state.offset < size:
            data = os.pread(fd, min(CATCH_UP_CHUNK, size - state.offset), state.offset)
            complete = data.rfind(b"\n") + 1
            if complete == 0 and state.offset + len(data) < size:  # one line longer than a chunk
                data = os.pread(fd, size - state.offset, state.offset)
                complete = data.rfind(b"\n") + 1
            for line in data[:complete].split(b"\n")[:-1]:
                if line.strip():
                    record = json.loads(line)  # an unreadable complete line: fail closed (verify names it)
                    state.seq, state.hash = int(record["seq"]), str(record["hash"])
                    state.frontier.push(record_leaf(state.hash))
                state.offset += len(line) + 1
            if complete < len(data) and state.offset + len(data) - complete >= size:  # the file ends mid-line
                self._record_torn(fd, state, data[complete:], self.path, state.offset)
                return

    def _record_torn(self, fd: int, state: _Tail, fragment: bytes, file: Path, offset: int) -> None:
        """A writer died mid-line: cut the fragment off and append a record that keeps it (never silent).

        The record is first written (fsync'd) to ``audit.jsonl.torn``, so that a crash between the
        cut and the append still leaves it for the next writer (:meth:`_finish_torn`).
        """
        record = {
            "type": "torn_tail",
            "timestamp": utc_now(),
            "file": file.name,
            "offset": offset,
            "length": len(fragment),
            "sha256": hashlib.sha256(fragment).hexdigest(),
            "fragment_b64": base64.b64encode(fragment[:TORN_KEEP_BYTES]).decode(),
            "fragment_complete": len(fragment) <= TORN_KEEP_BYTES,
            "detected_by": {"host": socket.gethostname(), "pid": os.getpid()},
        }
        pending = os.open(self.torn_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
        try:
            os.write(pending, canonical_json(record).encode())
            os.fsync(pending)
        finally:
            os.close(pending)
        if file == self.path:
            os.ftruncate(fd, offset)
        else:
            with open(file, "r+b") as fh:
                fh.truncate(offset)
                os.fsync(fh.fileno())
        log.warning("audit: %d torn bytes at the end of %s (offset %d) recorded in a torn_tail record", len(fragment), file, offset)
        self._write_record(fd, state, record)
        self.torn_path.unlink()

    def _finish_torn(self, fd: int, state: _Tail) -> None:
        """A writer died while recording a torn line: append the record it had saved, unless it got there."""
        try:
            record = json.loads(self.torn_path.read_bytes())
        except FileNotFoundError:
            return
        except ValueError:  # died while saving it: the fragment was not cut yet and is handled as torn again
            self.torn_path.unlink()
            return
        if state.seq < 0 or not self._last_is(fd, state, record):
            self._write_record(fd, state, {**record, "recovered": True})
        self.torn_path.unlink()

    def _last_is(self, fd: int, state: _Tail, torn: dict[str, Any]) -> bool:
        """Is the last record in the file this torn_tail record?"""
        tail = os.pread(fd, min(state.offset, 1 << 20), max(0, state.offset - (1 << 20)))
        last = json.loads(tail.rstrip(b"\n").rsplit(b"\n", 1)[-1])
        return last.get("type") == "torn_tail" and (last.get("offset"), last.get("sha256")) == (torn.get("offset"), torn.get("sha256"))

    # -- checkpoints -----------------------------------------------------------------------------
    def checkpoint(self, reason: str = "forced", force: bool = False) -> dict[str, Any] | None:
        """Sign a checkpoint of everything in the log now (None when nothing is new since the last one)."""
        with self._exclusive() as fd:
            if self._state is None:
                self._start(fd, os.fstat(fd).st_size)
            return self._checkpoint_locked(reason, force=force)

    def adopt(self, actor: str) -> dict[str, Any]:
        """Sign a log that has no checkpoint history (older than checkpoints): recorded, never automatic.

        A writer never adopts by itself, or deleting the checkpoint file and restarting the broker
        would launder a rewritten log. The adoption is a record in the log and an ``adopt``
        checkpoint; ``audit verify`` keeps naming the adopted range.
        """
        with self._exclusive() as fd:
            state = self._sync(fd)
            record = self._write_record(
                fd, state, {"type": "audit_adopted", "timestamp": utc_now(), "actor": actor, "records": state.frontier.size}
            )
            checkpoint = self._checkpoint_locked("adopt", force=True)
            assert checkpoint is not None
            return {"record": record, "checkpoint": checkpoint}

    @contextmanager
    def _exclusive(self) -> Iterator[int]:
        """The log's descriptor, held by this thread (lock) and this process (flock) for the block."""
        self._after_fork()
        with self._lock:
            fd = self._open()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield fd
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _checkpoint_locked(self, reason: str, force: bool = False) -> dict[str, Any] | None:
        """With the log's flock held: catch up, then append one signed checkpoint line and fsync it."""
        fd = self._open()
        state = self._sync(fd)
        if not force and state.offset == self._signed_offset:
            return None
        os.fsync(fd)  # what the checkpoint signs is on disk first (completion records are written without fsync)
        if state.seq >= 0:
            self._write_head(state.seq, state.hash)
        if self._key is None:
            self._key = self._make_signer()
        created = not self.checkpoint_path.exists()
        cfd = os.open(self.checkpoint_path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        try:
            if created:
                hand_to_directory_owner(self.checkpoint_path)
            size = os.fstat(cfd).st_size
            if size and os.pread(cfd, 1, size - 1) != b"\n":
                tail = os.pread(cfd, min(size, 1 << 20), max(0, size - (1 << 20)))
                cut = size - len(tail) + tail.rfind(b"\n") + 1
                self._record_torn(fd, state, os.pread(cfd, size - cut, cut), self.checkpoint_path, cut)
            checkpoint = make_checkpoint(
                stream=self.stream, frontier=state.frontier, last_hash=state.hash, offset=state.offset, timestamp=utc_now(), reason=reason, key=self._key
            )
            os.write(cfd, (canonical_json(checkpoint) + "\n").encode())
            os.fsync(cfd)
        finally:
            os.close(cfd)
        self._signed_offset, self._signed_tree_size = state.offset, state.frontier.size
        return checkpoint

    def _start_timer(self) -> None:
        if self._timer is None:
            args = (weakref.ref(self), self._wake, self._stop, self.checkpoint_interval_s)
            self._timer = threading.Thread(target=_run_timer, args=args, name=f"audit-checkpoints-{self.stream}", daemon=True)
            self._timer.start()

    def _write_head(self, seq: int, digest: str) -> None:
        """Overwrite the fixed-width head record in place (one small write, no rename), never
        moving it back: group commits of several threads and processes finish in any order."""
        with self._head_lock:
            if self._head_fd is None:
                created = not self.head_path.exists()
                self._head_fd = os.open(self.head_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
                if created:
                    hand_to_directory_owner(self.head_path)
            fcntl.flock(self._head_fd, fcntl.LOCK_EX)
            try:
                current = _head_seq(os.pread(self._head_fd, HEAD_WIDTH, 0))
                if current is None or seq > current:
                    os.pwrite(self._head_fd, json.dumps({"seq": seq, "hash": digest}).ljust(HEAD_WIDTH).encode(), 0)
            finally:
                fcntl.flock(self._head_fd, fcntl.LOCK_UN)

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record in order (raises ``ValueError`` on a line that is not JSON)."""
        if not self.path.exists():
            return
        with self.path.open("rb") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)

    def verify(self, public_key: Path | None = None) -> "VerifyResult":
        """Check chain, head and signed checkpoints; names the first problem (see :mod:`dataroom.audit.verify`)."""
        from dataroom.audit.verify import verify_log

        return verify_log(self, public_key or self.pinned_public_key)

    def read_head(self) -> dict[str, Any] | None:
        try:
            value = json.loads(self.head_path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return value if isinstance(value, dict) else None


def _head_seq(data: bytes) -> int | None:
    """The seq a head file names (None: empty or unreadable, so any head may replace it)."""
    try:
        return int(json.loads(data)["seq"])
    except (ValueError, KeyError, TypeError):
        return None


def _run_timer(ref: "weakref.ref[AuditLog]", wake: threading.Event, stop: threading.Event, interval: float) -> None:
    """Sign every ``interval`` seconds, or sooner when ``append`` says enough records wait.

    Holds the log only weakly, so that a log nobody closes can still be collected (like a crash: its
    unsigned records wait for the next writer's checkpoint).
    """
    while not stop.is_set():
        woken = wake.wait(min(interval, 5.0) if interval else 5.0)
        wake.clear()
        audit = ref()
        if audit is None or stop.is_set():
            return
        now = time.monotonic()
        if woken or (interval and now - audit._last_timer_check >= interval):
            audit._last_timer_check = now
            try:
                audit.checkpoint("count" if woken else "interval")
            except Exception:
                log.exception("audit: checkpoint failed (will retry)")
        del audit

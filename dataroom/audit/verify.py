"""Verify an audit log: every record's hash, the chain, the head file and the signed checkpoints.

The chain and the head catch a clumsy edit; the checkpoints catch a careful one. Whoever rewrites
the log and recomputes every hash (head included) still cannot produce a checkpoint the trusted
public key verifies, and a checkpoint that signed more records than the log holds names a cut.
What the verifier demands of the checkpoint file:

* it exists as soon as the log has records, and its history starts at the genesis (size 0,
  written before the first record) or at an explicit ``adopt`` of a log older than checkpoints;
* every line is a checkpoint of this stream, signed (Ed25519) by a trusted key;
* sizes never decrease, and each root equals the RFC 6962 root of that many records of the log.

Records after the last checkpoint (a writer that crashed before its next one) are reported, not
failed. Rolling the log *and* the checkpoint file back together to an earlier signed state is
not detectable from this machine alone: that is what an anchor outside it is for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataroom.audit.checkpoints import read_checkpoints, record_leaf, signed_message
from dataroom.audit.keys import ALGORITHMS, load_public_keys, signature_ok
from dataroom.audit.log import GENESIS_HASH, record_hash
from dataroom.audit.merkle import Frontier

if TYPE_CHECKING:
    from dataroom.audit.log import AuditLog


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    first_bad_seq: int | None = None
    first_bad_line: int | None = None
    problem: str = ""
    kind: str = ""  # names the failure: edited, deleted, reordered, truncated, torn, head_*, checkpoint*
    checkpoints: int = 0
    signed_records: int = 0  # records covered by the newest valid checkpoint
    key_ids: tuple[str, ...] = ()
    key_source: str = ""
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        if not self.ok:
            return f"audit chain BROKEN at record seq={self.first_bad_seq} (line {self.first_bad_line}): {self.problem} [{self.kind}]"
        text = f"audit chain OK: {self.records} records verified"
        if self.checkpoints:
            text += f"; {self.checkpoints} signed checkpoint(s), the last covering {self.signed_records} record(s), key {', '.join(self.key_ids)} ({self.key_source})"
        return "\n".join([text, *(f"  note: {n}" for n in self.notes)])


def _fail(kind: str, problem: str, records: int, seq: int | None, line: int | None, **extra: Any) -> VerifyResult:
    return VerifyResult(False, records, seq, line, problem, kind, **extra)


def _fail_at(*args: Any, **extra: Any) -> tuple[VerifyResult, None]:
    return _fail(*args, **extra), None


def _trusted_keys(log: "AuditLog", public_key: Path | None) -> tuple[dict[str, Any] | None, str, str]:
    """(keys by id, where they came from, problem)."""
    path, source = (public_key, f"pinned: {public_key}") if public_key else (log.public_key_path, "published beside the log, not pinned")
    try:
        return load_public_keys(path), source, ""
    except FileNotFoundError:
        return None, source, f"no public key at {path} to check the checkpoints with"
    except ValueError as exc:
        return None, source, str(exc)


def _check_signatures(log: "AuditLog", checkpoints: list[tuple[int, dict[str, Any]]], keys: dict[str, Any], previous: int = -1) -> tuple[str, str, int] | None:
    """The first checkpoint that is not a well-formed, signed checkpoint of this stream: (kind, problem, line)."""
    for line, cp in checkpoints:
        where = f"checkpoint line {line}"
        if cp.get("type") != "checkpoint" or not isinstance(cp.get("size"), int) or not isinstance(cp.get("root"), str):
            return "checkpoint_unreadable", f"{where} is not a checkpoint", line
        if not cp.get("sig") or cp.get("alg") not in ALGORITHMS:
            return "checkpoint_unsigned", f"{where} (size {cp['size']}) carries no {' or '.join(ALGORITHMS)} signature", line
        if cp.get("key_id") not in keys:
            return "checkpoint_unknown_key", f"{where} is signed by key {cp.get('key_id')!r}, not by the trusted key(s) {', '.join(keys)}: forged", line
        if not signature_ok(keys[cp["key_id"]], signed_message(cp), cp["sig"], cp["alg"]):
            return "checkpoint_bad_signature", f"{where} (size {cp['size']}) does not verify under key {cp['key_id']}: it was altered or forged", line
        if cp.get("stream") != log.stream:
            return "checkpoint_inconsistent", f"{where} belongs to stream {cp.get('stream')!r}, not {log.stream!r}", line
        if cp["size"] < previous:
            return "checkpoint_inconsistent", f"{where} covers {cp['size']} records, fewer than the one before it ({previous}): the log was cut back and rewritten", line
        previous = cp["size"]
    return None


def _locate(path: Path, seq: int, after_line: int) -> int | None:
    """The line holding record ``seq`` after ``after_line`` (tells a move from a deletion)."""
    with path.open("rb") as fh:
        for line_no, line in enumerate(fh, start=1):
            if line_no <= after_line:
                continue
            try:
                if json.loads(line).get("seq") == seq:
                    return line_no
            except (ValueError, AttributeError):
                continue
    return None


@dataclass
class Resume:
    """Where a verification that matched a signed checkpoint stopped: the next one continues from here.

    Taken at the last checkpoint the records agreed with (so a checkpoint signed later for an
    earlier size cannot slip by); the caller (:mod:`dataroom.audit.vcache`) only hands it back
    when the bytes before ``offset`` (and the checkpoint lines before ``cp_lines``) are unchanged.
    """

    offset: int  # byte offset just past record ``count - 1``
    lines: int  # lines before ``offset``
    count: int  # records verified (= the checkpoint size matched)
    prev_hash: str
    frontier_nodes: list[str]
    cp_lines: int = 0  # checkpoint lines whose signatures were verified
    cp_last_size: int = -1  # the size of the last of them
    torn_records: list[int] | None = None
    prefix_sha256: str | None = None  # SHA-256 of the bytes before ``offset``, as read by this verification


def verify_log(log: "AuditLog", public_key: Path | None = None) -> VerifyResult:
    """Verify ``log`` (see the module docstring); ``public_key`` pins the key instead of the published one."""
    return verify_log_from(log, public_key)[0]


def verify_log_from(
    log: "AuditLog", public_key: Path | None = None, resume: Resume | None = None, digest: Any = None
) -> tuple[VerifyResult, Resume | None]:
    """Verify ``log``, continuing from ``resume`` if given; returns the result and where a next run may resume.

    ``digest`` (a hashlib object holding the bytes before the start) is fed every line verified, so
    the resume point carries the digest of exactly the bytes this verification read.
    """
    cp_file = read_checkpoints(log.checkpoint_path)
    checkpoints = cp_file.checkpoints if cp_file else []
    notes: list[str] = []
    keys, key_source, key_problem = (None, "", "")
    signature_problem = None
    if checkpoints:
        keys, key_source, key_problem = _trusted_keys(log, public_key)
        if keys is not None:
            if resume is not None:
                fresh = [(line, cp) for line, cp in checkpoints if line > resume.cp_lines]
                signature_problem = _check_signatures(log, fresh, keys, resume.cp_last_size)
            else:
                signature_problem = _check_signatures(log, checkpoints, keys)
    by_size: dict[int, list[tuple[int, dict[str, Any]]]] = {}
    for line, cp in checkpoints:
        if isinstance(cp.get("size"), int):
            by_size.setdefault(cp["size"], []).append((line, cp))

    expected_prev = resume.prev_hash if resume else GENESIS_HASH
    count = resume.count if resume else 0
    frontier = Frontier(count, [bytes.fromhex(n) for n in resume.frontier_nodes]) if resume else Frontier()
    matched_size, matched_line = (count, resume.lines) if resume else (0, 0)  # the last checkpoint the records agreed with
    torn_records: list[int] = list(resume.torn_records or []) if resume else []
    root_problem: tuple[int, int, int, dict[str, Any]] | None = None  # (from seq, record line, cp line, cp)
    offset = resume.offset if resume else 0
    at_match: Resume | None = resume

    def check_roots(line_no: int) -> bool:
        nonlocal matched_size, matched_line, root_problem, at_match
        for cp_line, cp in by_size.get(count, []):
            if cp["root"] != frontier.root().hex():
                if root_problem is None:
                    root_problem = (matched_size, matched_line + 1, cp_line, cp)
                return False
        if count in by_size:
            matched_size, matched_line = count, line_no
            if root_problem is None:
                at_match = Resume(offset, line_no, count, expected_prev, [n.hex() for n in frontier.nodes], torn_records=list(torn_records),
                                  prefix_sha256=digest.hexdigest() if digest is not None else None)  # fmt: skip
        return True

    check_roots(matched_line)
    if log.path.exists():
        with log.path.open("rb") as fh:
            fh.seek(offset)
            for line_no, line in enumerate(fh, start=matched_line + 1):
                try:
                    record = json.loads(line)
                except ValueError:
                    if not line.endswith(b"\n"):
                        return _fail("torn", "the last line is incomplete: a writer died mid-write or the file was cut (the next writer records it)", count, count, line_no), None
                    return _fail("edited", "line is not a complete JSON record (edited or cut)", count, count, line_no), None
                seq = record.get("seq") if isinstance(record, dict) else None
                owner = record.get("stream", log.stream if not log.tagged else None) if isinstance(record, dict) else log.stream
                if owner != log.stream:
                    found = f"stream {owner!r}" if owner else "the single-file log (no stream id)"
                    return _fail("stream_swapped", f"record at line {line_no} (seq {seq}) belongs to {found}, not to stream {log.stream!r}: records were moved between streams", count, count, line_no), None
                if seq != count:
                    if isinstance(seq, int) and seq < count:
                        return _fail("reordered", f"expected seq {count}, found {seq} (a record was moved)", count, count, line_no), None
                    moved_to = _locate(log.path, count, line_no)
                    if moved_to is not None:
                        return _fail("reordered", f"expected seq {count}, found {seq}: record {count} was moved to line {moved_to}", count, count, line_no), None
                    return _fail("deleted", f"expected seq {count}, found {seq} (a record was deleted or moved)", count, count, line_no), None
                if record.get("prev_hash") != expected_prev:
                    return _fail("deleted", "prev_hash does not match the previous record (deleted, moved or edited)", count, seq, line_no), None
                if record_hash(record) != record.get("hash"):
                    return _fail("edited", "content does not match its hash (the record was edited)", count, seq, line_no), None
                if record.get("type") == "torn_tail":
                    torn_records.append(seq)
                expected_prev = record["hash"]
                frontier.push(record_leaf(expected_prev))
                count += 1
                offset += len(line)
                if digest is not None:
                    digest.update(line)
                check_roots(line_no)

    head = log.read_head()
    if head is not None and head.get("seq") == count - 1 and head.get("hash") != expected_prev:
        return _fail_at("head_mismatch", "last record differs from the one the head file remembers", count, count - 1, count)
    if cp_file and cp_file.bad_line:
        return _fail_at("checkpoint_unreadable", f"checkpoint line {cp_file.bad_line} is not a checkpoint (edited)", count, None, None)
    if checkpoints and keys is None:
        return _fail_at("no_public_key", key_problem, count, None, None)
    if signature_problem is not None:
        kind, problem, _ = signature_problem
        return _fail_at(kind, problem, count, None, None)
    if root_problem is not None:
        start, line, cp_line, cp = root_problem
        return _fail_at(
            "checkpoint_inconsistent",
            f"records seq {start}..{cp['size'] - 1} differ from what checkpoint line {cp_line} (signed {cp.get('timestamp')}) "
            f"covers: a record was edited, removed or inserted and the chain recomputed",
            count,
            start,
            line,
        )
    largest_line, largest = max(checkpoints, key=lambda item: item[1]["size"]) if checkpoints else (0, {"size": 0})
    if largest["size"] > count:
        return _fail_at(
            "truncated",
            f"checkpoint line {largest_line} (signed {largest.get('timestamp')}) covers {largest['size']} records but the log holds {count}: "
            "records were cut off the end",
            count,
            count,
            count + 1,
        )
    if head is not None and head.get("seq", -1) >= count:
        return _fail_at("truncated", f"log ends at seq {count - 1} but the head records seq {head['seq']}: records were cut off the end", count, count, count + 1)
    if head is None and count and log.head_path.exists():
        return _fail_at("head_unreadable", "the head file is not readable (overwritten)", count, count - 1, count)
    if head is None and count:
        return _fail_at("head_missing", f"the head file {log.head_path.name} is missing (deleted)", count, count - 1, count)
    if not checkpoints:
        if count:
            return _fail_at("checkpoints_missing", "no signed checkpoint covers this log: the checkpoint file is missing or empty (deleted?)", count, 0, 1)
        return VerifyResult(True, 0), at_match
    starts = [cp for _, cp in checkpoints if cp["size"] == 0 or cp.get("reason") == "adopt"]
    if not starts:
        first = checkpoints[0][1]
        return _fail_at(
            "checkpoints_missing",
            f"the checkpoint history starts at record {first['size']}, not at the genesis: the checkpoint file was replaced or cut "
            f"(records 0..{first['size'] - 1} are not covered from the start)",
            count,
            0,
            1,
        )
    adopted = min(starts, key=lambda cp: cp["size"])
    if adopted["size"]:
        notes.append(
            f"records 0..{adopted['size'] - 1} were not signed from the genesis: adopted by `dataroom audit adopt` at {adopted.get('timestamp')} "
            "(a log older than checkpoints, or one whose checkpoint file was lost)"
        )
    if cp_file and cp_file.torn_tail:
        notes.append("the checkpoint file ends in an incomplete line (a writer died writing it); it was ignored")
    if torn_records:
        notes.append(f"{len(torn_records)} torn line(s) left by a crashed writer recorded in torn_tail record(s) seq {', '.join(map(str, torn_records))}")
    if count > largest["size"]:
        notes.append(f"{count - largest['size']} record(s) after the last checkpoint are not signed yet (seq {largest['size']}..{count - 1})")
    if at_match is not None:
        at_match.cp_lines, at_match.cp_last_size = checkpoints[-1][0], largest["size"]
    return VerifyResult(
        True,
        count,
        checkpoints=len(checkpoints),
        signed_records=largest["size"],
        key_ids=tuple(sorted({cp["key_id"] for _, cp in checkpoints})),
        key_source=key_source,
        notes=tuple(notes),
    ), at_match

"""Incremental verification: what was verified up to a signed checkpoint is not verified again.

The cache (one small JSON file per stream, beside the stream's index) holds where the last
verification matched a signed checkpoint: the byte offset, the chain hash and Merkle frontier
there, and the checkpoint lines checked. It is used only when the file is the same file (device,
inode), and a SHA-256 of the bytes before that offset and of the checked checkpoint lines equals
the one recorded, with the same trusted key file: an edit anywhere before the offset, however
careful, changes that digest and the log is verified from scratch. Hashing bytes costs a small
fraction of parsing and re-hashing every record, so a reader stays fast on a large log.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataroom.audit.keys import hand_to_directory_owner
from dataroom.audit.verify import Resume, VerifyResult, verify_log_from

if TYPE_CHECKING:
    from dataroom.audit.log import AuditLog

CHUNK = 4 << 20


def prefix_digest(path: Path, length: int) -> str | None:
    """SHA-256 of the first ``length`` bytes of ``path`` (None if the file is shorter or missing)."""
    digest = _hash_range(hashlib.sha256(), path, 0, length)
    return digest.hexdigest() if digest is not None else None


def _hash_range(digest: "hashlib._Hash", path: Path, start: int, end: int) -> "hashlib._Hash | None":
    """``digest`` updated with bytes ``start..end`` of ``path`` (None if the file is shorter or missing)."""
    try:
        with path.open("rb", buffering=0) as fh:
            fh.seek(start)
            remaining = end - start
            buf = bytearray(CHUNK)
            view = memoryview(buf)
            while remaining:
                n = fh.readinto(view[: min(CHUNK, remaining)])
                if not n:
                    return None
                digest.update(view[:n])
                remaining -= n
    except FileNotFoundError:
        return None
    return digest


def _checkpoint_prefix(path: Path, lines: int) -> tuple[int, str | None]:
    """(bytes, digest) of the first ``lines`` lines of the checkpoint file."""
    if lines <= 0:
        return 0, hashlib.sha256(b"").hexdigest()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0, None
    end = -1
    for _ in range(lines):
        end = data.find(b"\n", end + 1)
        if end < 0:
            return 0, None
    return end + 1, hashlib.sha256(data[: end + 1]).hexdigest()


def _key_digest(log: "AuditLog", public_key: Path | None) -> str:
    path = public_key or log.public_key_path
    try:
        return f"{path}:{hashlib.sha256(path.read_bytes()).hexdigest()}"
    except FileNotFoundError:
        return f"{path}:missing"


def _identity(path: Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return [st.st_dev, st.st_ino]


def verify_cached(log: "AuditLog", cache_file: Path | None, public_key: Path | None = None) -> tuple[VerifyResult, bool]:
    """Verify ``log`` from the cached checkpoint state when its bytes are unchanged; (result, resumed)."""
    resume, hashed = _load(log, cache_file, public_key) if cache_file else (None, None)
    result, at = verify_log_from(log, public_key, resume, hashed if resume is not None else hashlib.sha256())
    if not result.ok and resume is not None:
        result, at = verify_log_from(log, public_key)  # name the first problem as a full verification would
        resume = None
    if result.ok and at is not None and cache_file is not None and at.prefix_sha256 and not (resume is not None and at is resume):
        _save(log, cache_file, public_key, at, at.prefix_sha256)  # the digest of the very bytes verified (no second read)
    return result, resume is not None


def _load(log: "AuditLog", cache_file: Path, public_key: Path | None) -> tuple[Resume | None, "hashlib._Hash | None"]:
    """The cached state, if every byte it covers is unchanged, and the digest of those bytes (to continue)."""
    try:
        cached = json.loads(cache_file.read_text())
    except (FileNotFoundError, ValueError, OSError):
        return None, None
    try:
        resume = Resume(**cached["resume"])
        if cached["identity"] != _identity(log.path) or cached["key"] != _key_digest(log, public_key):
            return None, None
        hashed = _hash_range(hashlib.sha256(), log.path, 0, resume.offset)
        if hashed is None or hashed.hexdigest() != cached["log_sha256"]:
            return None, None
        if _checkpoint_prefix(log.checkpoint_path, resume.cp_lines)[1] != cached["cp_sha256"]:
            return None, None
    except (KeyError, TypeError):
        return None, None
    return resume, hashed


def _save(log: "AuditLog", cache_file: Path, public_key: Path | None, at: Resume, prefix: str | None = None) -> None:
    _, cp_digest = _checkpoint_prefix(log.checkpoint_path, at.cp_lines)
    value: dict[str, Any] = {
        "identity": _identity(log.path),
        "key": _key_digest(log, public_key),
        "log_sha256": prefix or prefix_digest(log.path, at.offset),
        "cp_sha256": cp_digest,
        "resume": dataclasses.asdict(at),
    }
    try:
        from dataroom.audit.index import make_owned_dirs

        make_owned_dirs(cache_file.parent)
        tmp = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(value))
        hand_to_directory_owner(tmp)
        os.replace(tmp, cache_file)
    except OSError:
        pass  # a reader without write access verifies from scratch next time

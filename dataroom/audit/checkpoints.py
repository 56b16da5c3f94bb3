"""Signed checkpoints: a writer's signed statement "the first ``size`` records of stream S have root R".

A checkpoint is one JSON line in ``audit.jsonl.checkpoints``::

    {"type": "checkpoint", "v": 1, "stream": "audit", "size": 120, "root": "<hex>",
     "last_seq": 119, "last_hash": "<hex>", "bytes": 98304, "frontier": ["<hex>", ...],
     "timestamp": "...", "reason": "count|interval|shutdown|genesis|adopt|forced",
     "writer": {"host": "...", "pid": 1234}, "alg": "Ed25519", "key_id": "<16 hex>", "sig": "<base64>"}

``root`` is the RFC 6962 tree head over the leaves ``SHA-256(0x00 || record hash)`` of records
``0 .. size-1``. ``sig`` is Ed25519 (or ECDSA P-256 with a KMS key) over :func:`signed_message`: the domain tag and the canonical
JSON of every other field, so nothing in a checkpoint can change without breaking it. ``bytes``
and ``frontier`` let the next writer continue the tree without re-reading the log.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataroom.audit.keys import Signer
from dataroom.audit.merkle import Frontier, leaf_hash

DOMAIN = b"dataroom-audit-checkpoint/v1\n"
VERSION = 1


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def record_leaf(record_hash_hex: str) -> bytes:
    """A record's leaf in the tree: its chain hash (which covers its whole content)."""
    return leaf_hash(bytes.fromhex(record_hash_hex))


def signed_message(checkpoint: dict[str, Any]) -> bytes:
    return DOMAIN + canonical({k: v for k, v in checkpoint.items() if k != "sig"}).encode()


def make_checkpoint(
    *, stream: str, frontier: Frontier, last_hash: str, offset: int, timestamp: str, reason: str, key: Signer
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "checkpoint",
        "v": VERSION,
        "stream": stream,
        "size": frontier.size,
        "root": frontier.root().hex(),
        "last_seq": frontier.size - 1,
        "last_hash": last_hash,
        "bytes": offset,
        "frontier": [n.hex() for n in frontier.nodes],
        "timestamp": timestamp,
        "reason": reason,
        "writer": {"host": socket.gethostname(), "pid": os.getpid()},
        "alg": key.alg,
        "key_id": key.key_id,
    }
    body["sig"] = key.sign(signed_message(body))
    return body


@dataclass(frozen=True)
class CheckpointFile:
    """What a checkpoint file holds: parsed checkpoints (line numbers kept) and an unreadable tail, if any."""

    checkpoints: list[tuple[int, dict[str, Any]]]
    bad_line: int | None = None  # a line that is not a checkpoint (edited), other than a torn last one
    torn_tail: bool = False  # the last line has no newline: a writer died writing it


def read_checkpoints(path: Path) -> CheckpointFile | None:
    """None when the file does not exist."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    lines = data.split(b"\n")
    torn = bool(lines[-1])
    complete = lines[:-1]
    parsed = []
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            return CheckpointFile(parsed, bad_line=number, torn_tail=torn)
        if not isinstance(value, dict):
            return CheckpointFile(parsed, bad_line=number, torn_tail=torn)
        parsed.append((number, value))
    return CheckpointFile(parsed, torn_tail=torn)


def last_checkpoint(path: Path) -> dict[str, Any] | None:
    """The newest complete checkpoint line, read from the end of the file (it can be long)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        size = os.fstat(fd).st_size
        chunk = 16384
        while True:
            start = max(0, size - chunk)
            data = os.pread(fd, size - start, start)
            lines = data.split(b"\n")[:-1]  # a torn last line (no newline) is not a checkpoint
            if len(lines) > 1 or start == 0:
                break
            chunk *= 4
        for line in reversed(lines if start == 0 else lines[1:]):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict) and value.get("type") == "checkpoint":
                return value
        return None
    finally:
        os.close(fd)


def frontier_of(checkpoint: dict[str, Any]) -> Frontier | None:
    """The tree state a checkpoint carries, if it is well-formed and matches its own root."""
    try:
        frontier = Frontier(int(checkpoint["size"]), [bytes.fromhex(n) for n in checkpoint["frontier"]])
    except (KeyError, TypeError, ValueError):
        return None
    return frontier if frontier.root().hex() == checkpoint.get("root") else None

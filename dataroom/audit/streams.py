"""Audit streams: every writer (a broker replica, the CLI on a host) appends to its own chained log.

A stream is a directory ``<audit dir>/streams/<stream id>/`` holding ``audit.jsonl`` with its own
head, checkpoints and key (so its own key id), and every record and checkpoint names the stream.
Replicas on different hosts never share a file lock; readers merge the streams into one ordered
view (:mod:`dataroom.audit.reader`). The single file of an older room (``audit/audit.jsonl``, or
``DATAROOM_AUDIT_PATH``) stays a stream of its own, ``audit``, verified like any other.

Streams are on when ``DATAROOM_AUDIT_STREAMS=1`` or ``DATAROOM_AUDIT_STREAM`` names this writer's
stream; the default id is ``<role>-<hostname>`` (``broker-web1``, ``cli-web1``). Several
processes may share one stream (they serialise on its flock), never one stream across hosts.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dataroom.settings import Settings

STREAMS_DIR = "streams"
STREAM_FILE = "audit.jsonl"
LEGACY_STREAM = "audit"  # the stream id of the single-file log (its file name without .jsonl)
RESERVED = frozenset({LEGACY_STREAM, "registry"})
STREAM_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def check_stream_id(stream: str) -> str:
    """A stream id is a directory name: lower-case letters, digits, ``.``, ``_``, ``-``."""
    if not STREAM_ID.match(stream) or stream in RESERVED or ".." in stream:
        raise ValueError(f"audit stream id {stream!r} must match {STREAM_ID.pattern} and not be one of {', '.join(sorted(RESERVED))}")
    return stream


def default_stream_id(role: str, host: str | None = None) -> str:
    """``<role>-<host>``, lower-cased, anything outside ``[a-z0-9._-]`` replaced by ``-``."""
    raw = f"{role}-{(host or socket.gethostname()).split('.')[0]}".lower()
    return check_stream_id(re.sub(r"[^a-z0-9._-]", "-", raw)[:63].strip("-._") or "writer")


def audit_dir(settings: "Settings") -> Path:
    """Where the single-file log, the streams and the index live."""
    return settings.audit_file.parent


def streams_enabled(settings: "Settings") -> bool:
    return bool(settings.audit_streams or settings.audit_stream)


def writer_stream(settings: "Settings") -> str:
    """This writer's stream id (``audit`` when streams are off)."""
    if not streams_enabled(settings):
        return LEGACY_STREAM
    return check_stream_id(settings.audit_stream) if settings.audit_stream else default_stream_id(settings.audit_role)


def stream_path(settings: "Settings", stream: str) -> Path:
    if stream == LEGACY_STREAM:
        return settings.audit_file
    return audit_dir(settings) / STREAMS_DIR / check_stream_id(stream) / STREAM_FILE


def writer_path(settings: "Settings") -> Path:
    """The file this process appends to."""
    return stream_path(settings, writer_stream(settings))


def stream_paths(settings: "Settings") -> dict[str, Path]:
    """Every stream present (the single-file log first, then the streams by id)."""
    found: dict[str, Path] = {}
    if settings.audit_file.exists():
        found[LEGACY_STREAM] = settings.audit_file
    return {**found, **siblings(audit_dir(settings))}


def siblings(directory: Path) -> dict[str, Path]:
    """The streams under ``directory/streams/``, by id."""
    found: dict[str, Path] = {}
    root = directory / STREAMS_DIR
    if root.is_dir():
        for child in sorted(root.iterdir()):
            if child.is_dir() and STREAM_ID.match(child.name) and child.name not in RESERVED and (child / STREAM_FILE).exists():
                found[child.name] = child / STREAM_FILE
    return found

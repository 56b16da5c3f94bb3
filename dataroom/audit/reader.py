"""The one way to read the audit log: every stream merged into one ordered view.

Readers (``audit show/search``, the review UI, alerts, the evidence export, policy replay) see
the single-file log and every writer's stream (:mod:`dataroom.audit.streams`) as one sequence,
ordered by timestamp, then stream id, then seq; each record carries its ``stream``. Within a
stream the order is its chain's. :meth:`AuditView.tail` continues from per-stream byte offsets
(a cursor) for incremental readers; :meth:`AuditView.verify` verifies each stream (incrementally,
from its last verified checkpoint, when asked to).
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from dataroom.audit.log import AuditLog
from dataroom.audit.streams import LEGACY_STREAM, STREAM_FILE, STREAMS_DIR, audit_dir, siblings, stream_paths
from dataroom.audit.verify import VerifyResult

if TYPE_CHECKING:
    from dataroom.settings import Settings

INDEX_DIR = "index"
Cursor = dict[str, int]  # stream id -> byte offset read up to


def order_key(record: dict[str, Any]) -> tuple[str, str, int]:
    return (str(record.get("timestamp") or ""), str(record.get("stream") or LEGACY_STREAM), int(record.get("seq") or 0))


def read_stream(path: Path, stream: str, offset: int = 0, end: int | None = None) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(offset, length, record) of every complete line from ``offset`` (a torn last line is left for its writer)."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return
    with fh:
        fh.seek(offset)
        for line in fh:
            if end is not None and offset >= end:
                return
            if not line.endswith(b"\n"):
                return
            if line.strip():
                record = json.loads(line)
                record.setdefault("stream", stream)
                yield offset, len(line), record
            offset += len(line)


@dataclass(frozen=True)
class StreamResult:
    stream: str
    path: Path
    result: VerifyResult
    resumed: bool = False

    def describe(self) -> str:
        return f"[stream {self.stream}] {self.result.describe()}"


class AuditView:
    """All audit streams of a room (``settings``), or of the directory of one single-file log (``path``), read as one."""

    def __init__(self, settings: "Settings | None" = None, *, path: Path | None = None, public_key: Path | None = None) -> None:
        if settings is None and path is None:
            from dataroom.settings import Settings

            settings = Settings()
        self.settings = settings
        if path is not None and path.name == STREAM_FILE and path.parent.parent.name == STREAMS_DIR:
            path = path.parent.parent.parent / STREAM_FILE  # one writer's stream: the view is its room's (the single file and every stream)
        self.path = path
        self.public_key = public_key if public_key is not None else (settings.audit_public_key if settings else None)

    @property
    def root(self) -> Path:
        """The audit directory (its ``index/`` holds the query-log index and verification cache)."""
        return self.path.parent if self.path is not None else audit_dir(self.settings)  # type: ignore[arg-type]

    def index_dir(self, stream: str) -> Path:
        legacy = self.path is not None and stream == LEGACY_STREAM  # several single-file logs may share a directory
        return self.root / INDEX_DIR / (f"file-{self.path.name}" if legacy else stream)  # type: ignore[union-attr]

    def paths(self) -> dict[str, Path]:
        """Stream id → file: the single-file log (if present), then every stream beside it."""
        if self.path is not None:
            found = {LEGACY_STREAM: self.path} if self.path.exists() else {}
            return {**found, **{s: p for s, p in siblings(self.path.parent).items()}}
        return stream_paths(self.settings)  # type: ignore[arg-type]

    def log(self, stream: str) -> AuditLog:
        if self.path is not None:
            if stream == LEGACY_STREAM:
                return AuditLog(self.path, public_key=self.public_key)
            return AuditLog(self.paths()[stream], public_key=self.public_key, stream=stream)
        return AuditLog.from_settings(self.settings, stream)  # type: ignore[arg-type]

    # -- records -------------------------------------------------------------------------------
    def records(self, since: str | None = None, types: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
        """Every complete record of every stream, merged in order (``since``: timestamps ≥ it; ``types``: only these)."""
        wanted = set(types) if types else None

        def one(stream: str, path: Path) -> Iterator[dict[str, Any]]:
            for _, _, record in read_stream(path, stream):
                if (wanted is None or record.get("type") in wanted) and (since is None or str(record.get("timestamp") or "") >= since):
                    yield record

        return heapq.merge(*(one(s, p) for s, p in self.paths().items()), key=order_key)

    def tail(self, cursor: Cursor) -> Iterator[tuple[Cursor, dict[str, Any]]]:
        """Records after ``cursor`` (stream → byte offset), merged in order, each with the cursor just past it.

        A stream whose file shrank below its offset (replaced or cut) starts again from 0; callers
        that care compare :meth:`sizes` with their cursor first.
        """
        position = dict(cursor)
        sizes = self.sizes()

        def one(stream: str, path: Path) -> Iterator[tuple[str, int, dict[str, Any]]]:
            start = cursor.get(stream, 0)
            start = 0 if start > sizes.get(stream, 0) else start
            for offset, length, record in read_stream(path, stream, start):
                yield stream, offset + length, record

        merged = heapq.merge(*(one(s, p) for s, p in self.paths().items()), key=lambda item: order_key(item[2]))
        for stream, end, record in merged:
            position[stream] = end
            yield dict(position), record

    def sizes(self) -> Cursor:
        out: Cursor = {}
        for stream, path in self.paths().items():
            try:
                out[stream] = os.stat(path).st_size
            except FileNotFoundError:
                continue
        return out

    def record_at(self, stream: str, offset: int, length: int) -> dict[str, Any] | None:
        """The record stored at ``offset`` of ``stream`` (what the index points at)."""
        path = self.paths().get(stream)
        if path is None:
            return None
        with path.open("rb") as fh:
            fh.seek(offset)
            line = fh.read(length)
        try:
            record = json.loads(line)
        except ValueError:
            return None
        record.setdefault("stream", stream)
        return record

    def fingerprint(self) -> tuple[Any, ...]:
        """Changes whenever a stream file, its head or its checkpoints change (size or mtime)."""
        out: list[Any] = []
        for stream, path in self.paths().items():
            for p in (path, path.with_name(path.name + ".head"), path.with_name(path.name + ".checkpoints")):
                try:
                    st = os.stat(p)
                    out.append((stream, p.name, st.st_size, st.st_mtime_ns, st.st_ino))
                except FileNotFoundError:
                    out.append((stream, p.name, None))
        return tuple(out)

    # -- verification --------------------------------------------------------------------------
    def verify(self, *, incremental: bool = False, public_key: Path | None = None) -> list[StreamResult]:
        """Verify every stream (chain, head, signed checkpoints); ``incremental`` resumes from each stream's last verified checkpoint."""
        from dataroom.audit.vcache import verify_cached

        out = []
        for stream, path in self.paths().items():
            log = self.log(stream)
            key = public_key or self.public_key
            if incremental:
                result, resumed = verify_cached(log, self.index_dir(stream) / "verified.json", key)
            else:
                result, resumed = log.verify(key), False
            out.append(StreamResult(stream, path, result, resumed))
        return out


def combine(results: list[StreamResult]) -> VerifyResult:
    """One result for the whole view: the first stream that fails (named), else the sum of all streams."""
    for r in results:
        if not r.result.ok:
            return dataclasses.replace(r.result, problem=f"stream {r.stream}: {r.result.problem}") if len(results) > 1 else r.result
    if len(results) == 1:
        return results[0].result
    return VerifyResult(
        True,
        sum(r.result.records for r in results),
        checkpoints=sum(r.result.checkpoints for r in results),
        signed_records=sum(r.result.signed_records for r in results),
        key_ids=tuple(sorted({k for r in results for k in r.result.key_ids})),
        key_source=", ".join(sorted({r.result.key_source for r in results if r.result.key_source})),
        notes=tuple([f"{len(results)} streams: {', '.join(f'{r.stream} ({r.result.records})' for r in results)}"] + [f"{r.stream}: {n}" for r in results for n in r.result.notes]),
    )


def records(settings: "Settings | None" = None, since: str | None = None, types: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
    """Every audit record of the room, all streams merged in order (see :class:`AuditView`)."""
    return AuditView(settings).records(since=since, types=types)

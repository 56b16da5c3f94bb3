"""The query-log index: Parquet segments per stream plus the open tail, queried with DuckDB.

``audit show/search``, the review UI, and the evidence export ask for pages of query attempts
(a decision with its completion folded in) under filters. Folding the whole log per request does
not scale (6.4 s for 100k records), so each stream is indexed incrementally under
``<audit dir>/index/<stream>/``:

* ``seg-<level>-<start offset>.parquet``: closed segments, one row per query attempt (its
  decision and, when it came in the same segment, its completion) or other event, with the
  byte offset and length of each record in the stream file; a completion that arrives in a later
  segment than its decision is a ``completion`` row, joined at query time. Level-0 segments close
  every ``audit_index_segment`` records; 16 segments of one level are merged into one of the next
  (so a 10M-record log is a few dozen files);
* ``state.json``: the stream file's identity (device, inode), the offset indexed up to, and the
  segments;
* the records after the last closed segment (fewer than one segment) are read from the stream
  on each refresh (a long-lived reader keeps them and reads only what was appended).

The index is derived: a stream file that was replaced, cut or rewritten (its identity, size or
verification changes) is indexed again from its bytes; ``audit verify`` never reads the index.
A reader that may not write the index directory indexes in memory.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import duckdb

from dataroom.audit.keys import hand_to_directory_owner
from dataroom.audit.reader import AuditView, read_stream

if TYPE_CHECKING:
    from dataroom.querylog import QueryFilter

FANOUT = 16  # segments of one level merged into one of the next
SCHEMA: list[tuple[str, str]] = [
    ("kind", "VARCHAR"),  # attempt | completion (late) | event
    ("type", "VARCHAR"),
    ("stream", "VARCHAR"),
    ("seq", "BIGINT"),
    ("completion_seq", "BIGINT"),
    ("decision_id", "VARCHAR"),
    ("timestamp", "VARCHAR"),
    ("user", "VARCHAR"),
    ("groups", "VARCHAR[]"),
    ("project_id", "VARCHAR"),
    ("tenants", "VARCHAR[]"),
    ("tables", "VARCHAR[]"),
    ("columns", "VARCHAR[]"),
    ("decision_outcome", "VARCHAR"),
    ("reasons", "VARCHAR[]"),
    ("messages", "VARCHAR[]"),
    ("sql", "VARCHAR"),
    ("client", "VARCHAR"),  # JSON
    ("rows", "BIGINT"),
    ("bytes", "BIGINT"),
    ("duration_ms", "DOUBLE"),
    ("result_digest", "VARCHAR"),
    ("completion_status", "VARCHAR"),
    ("policy_revision", "VARCHAR"),
    ("hash", "VARCHAR"),
    ("offset", "BIGINT"),
    ("length", "BIGINT"),
    ("completion_offset", "BIGINT"),
    ("completion_length", "BIGINT"),
]
NAMES = [name for name, _ in SCHEMA]
COMPLETION_FIELDS = ("rows", "bytes", "duration_ms", "result_digest", "completion_status", "completion_seq", "completion_offset", "completion_length")
ROW_KEYS = (
    "stream", "seq", "completion_seq", "decision_id", "timestamp", "user", "groups", "project_id", "tenants", "tables", "columns",
    "outcome", "reasons", "messages", "sql", "client", "rows", "bytes", "duration_ms", "result_digest", "completion_status",
    "policy_revision", "hash", "kind", "type", "offset", "length", "completion_offset", "completion_length",
)  # fmt: skip


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _strs(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def index_row(record: dict[str, Any], stream: str, offset: int, length: int) -> dict[str, Any]:
    """One index row for a decision (attempt), a completion, or any other record (event)."""
    from dataroom.querylog import attempt_row

    kind = record.get("type")
    base: dict[str, Any] = {k: None for k in NAMES}
    base.update(type=str(kind), stream=stream, seq=_int(record.get("seq")), timestamp=str(record.get("timestamp") or ""), hash=record.get("hash"))
    if kind == "decision":
        row = attempt_row({**record, "completion": None})
        base.update(
            kind="attempt", decision_id=row["decision_id"], user=row["user"], groups=_strs(row["groups"]), project_id=row["project_id"],
            tenants=_strs(row["tenants"]), tables=_strs(row["tables"]), columns=_strs(row["columns"]), decision_outcome=row["outcome"],
            reasons=[str(r) for r in row["reasons"]], messages=[str(m) for m in row["messages"]], sql=str(row["sql"]),
            client=json.dumps(row["client"], default=str), policy_revision=row["policy_revision"], offset=offset, length=length,
        )  # fmt: skip
        return base
    if kind == "completion":
        base.update(kind="completion", decision_id=record.get("decision_id"), seq=None)
        _fold(base, record, offset, length)
        return base
    summary = {k: v for k, v in record.items() if k not in ("seq", "prev_hash", "hash", "timestamp", "type", "stream", "fragment_b64")}
    base.update(kind="event", user=str(record.get("actor") or ""), sql=json.dumps(summary, default=str, sort_keys=True)[:500], offset=offset, length=length, groups=[], tenants=[], tables=[], columns=[], reasons=[], messages=[])
    return base


def _fold(row: dict[str, Any], completion: dict[str, Any], offset: int, length: int) -> None:
    row.update(
        rows=_int(completion.get("rows")), bytes=_int(completion.get("bytes")), duration_ms=_float(completion.get("duration_ms")),
        result_digest=completion.get("result_digest"), completion_status=completion.get("status"), completion_seq=_int(completion.get("seq")),
        completion_offset=offset, completion_length=length,
    )  # fmt: skip


@dataclass
class _Open:
    """Rows of the records after the last closed segment (kept by a long-lived reader)."""

    start: int  # offset the open rows start at (= the closed segments' end)
    end: int  # offset read up to
    records: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, record: dict[str, Any], stream: str, offset: int, length: int) -> None:
        self.records += 1
        self.end = offset + length
        if record.get("type") == "completion" and record.get("decision_id") in self.by_id:
            _fold(self.by_id[record["decision_id"]], record, offset, length)
            return
        row = index_row(record, stream, offset, length)
        self.rows.append(row)
        if row["kind"] == "attempt" and row["decision_id"]:
            self.by_id[row["decision_id"]] = row


class AuditIndex:
    """Incrementally maintained index of every stream in ``view``; pages of attempts by :class:`QueryFilter`."""

    def __init__(self, view: AuditView, segment_records: int = 4096) -> None:
        self.view = view
        self.segment_records = max(1, segment_records)
        self._lock = threading.Lock()
        self._open: dict[str, _Open] = {}
        self._states: dict[str, dict[str, Any]] = {}
        self._memory_only: set[str] = set()

    # -- maintenance ---------------------------------------------------------------------------
    def refresh(self, rebuild: Iterable[str] = ()) -> None:
        """Index what was appended to every stream since the last refresh (``rebuild``: start these streams over)."""
        with self._lock:
            paths = self.view.paths()
            for stream in list(self._states):
                if stream not in paths:
                    self._states.pop(stream)
                    self._open.pop(stream, None)
            for stream, path in paths.items():
                self._refresh_stream(stream, path, stream in set(rebuild))

    def _refresh_stream(self, stream: str, path: Path, rebuild: bool) -> None:
        directory = self.view.index_dir(stream)
        try:
            make_owned_dirs(directory)
            lock = (directory / ".lock").open("a")
            hand_to_directory_owner(directory / ".lock")
        except OSError:
            lock = None
            self._memory_only.add(stream)
        try:
            if lock is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)
            st = os.stat(path)
            identity = [st.st_dev, st.st_ino]
            state = self._load_state(stream, directory)
            if rebuild or state["identity"] != identity or st.st_size < state["end"] or not self._segments_present(directory, state):
                self._drop(directory, state)
                state = {"identity": identity, "end": 0, "segments": [], "records": 0}
                self._open.pop(stream, None)
            opened = self._open.get(stream)
            if opened is None or opened.start != state["end"] or opened.end > st.st_size:
                opened = _Open(state["end"], state["end"])
            for offset, length, record in read_stream(path, stream, opened.end):
                opened.add(record, stream, offset, length)
                if opened.records >= self.segment_records and stream not in self._memory_only:
                    self._close_segment(stream, directory, state, opened)
                    opened = _Open(state["end"], state["end"])
            self._open[stream] = opened
            self._states[stream] = state
            if stream not in self._memory_only:
                self._compact(directory, state)
                self._save_state(directory, state)
        finally:
            if lock is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)
                lock.close()

    def _load_state(self, stream: str, directory: Path) -> dict[str, Any]:
        try:
            state = json.loads((directory / "state.json").read_text())
            if {"identity", "end", "segments", "records"} <= set(state):
                return state
        except (FileNotFoundError, ValueError, OSError):
            pass
        return {"identity": None, "end": 0, "segments": [], "records": 0}

    def _save_state(self, directory: Path, state: dict[str, Any]) -> None:
        tmp = directory / f"state.json.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(state))
        hand_to_directory_owner(tmp)
        os.replace(tmp, directory / "state.json")

    @staticmethod
    def _segments_present(directory: Path, state: dict[str, Any]) -> bool:
        return all((directory / s["file"]).exists() for s in state["segments"])

    @staticmethod
    def _drop(directory: Path, state: dict[str, Any]) -> None:
        for child in directory.glob("seg-*.parquet"):
            child.unlink(missing_ok=True)

    def _close_segment(self, stream: str, directory: Path, state: dict[str, Any], opened: _Open) -> None:
        name = f"seg-0-{opened.start:016d}.parquet"
        con = duckdb.connect(config={"threads": 1})
        try:
            load_rows(con, "open_rows", opened.rows)
            self._write(con, directory / name, "SELECT * FROM open_rows")
        finally:
            con.close()
        stamps = [r["timestamp"] for r in opened.rows] or [""]
        state["segments"].append({"file": name, "level": 0, "start": opened.start, "end": opened.end, "records": opened.records, "min_ts": min(stamps), "max_ts": max(stamps)})
        state["end"], state["records"] = opened.end, state["records"] + opened.records
        self._save_state(directory, state)

    def _compact(self, directory: Path, state: dict[str, Any]) -> None:
        """Merge the last ``FANOUT`` segments of one level into one of the next, repeatedly."""
        while True:
            segments = state["segments"]
            if len(segments) < FANOUT:
                return
            run = segments[-FANOUT:]
            if len({s["level"] for s in run}) != 1:
                return
            level = run[0]["level"] + 1
            name = f"seg-{level}-{run[0]['start']:016d}.parquet"
            con = duckdb.connect(config={"threads": 1})
            try:
                self._write(con, directory / name, f"SELECT * FROM read_parquet({[str(directory / s['file']) for s in run]!r})")
            finally:
                con.close()
            merged = {"file": name, "level": level, "start": run[0]["start"], "end": run[-1]["end"], "records": sum(s["records"] for s in run)}
            if all("min_ts" in s for s in run):
                merged.update(min_ts=min(s["min_ts"] for s in run), max_ts=max(s["max_ts"] for s in run))
            state["segments"] = segments[:-FANOUT] + [merged]
            self._save_state(directory, state)
            for s in run:
                (directory / s["file"]).unlink(missing_ok=True)

    @staticmethod
    def _write(con: duckdb.DuckDBPyConnection, path: Path, select: str) -> None:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        con.execute(f"COPY ({select}) TO '{tmp}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 65536)")
        hand_to_directory_owner(tmp)
        os.replace(tmp, path)

    def indexed_records(self) -> dict[str, int]:
        """Records per stream the index holds (closed segments + open tail)."""
        with self._lock:
            return {s: st["records"] + (self._open[s].records if s in self._open else 0) for s, st in self._states.items()}

    # -- queries -------------------------------------------------------------------------------
    def _connect(self) -> duckdb.DuckDBPyConnection:
        """A connection holding the open rows (the records after the last closed segment) as ``open_rows``."""
        con = duckdb.connect(config={"threads": 2})
        load_rows(con, "open_rows", [r for o in self._open.values() for r in o.rows])
        return con

    def _query(self, flt: "QueryFilter | None", events: bool, extra: tuple[str, list[Any]] | None = None, con: duckdb.DuckDBPyConnection | None = None,
               ) -> tuple[duckdb.DuckDBPyConnection, str, list[Any]]:  # fmt: skip
        """A connection and the SQL of the matching rows (one per attempt or event, completion folded in).

        The filters go inside each scan (not above a view), so DuckDB reads only the matching
        rows' columns from the segments; only the outcome, which depends on a completion that may
        sit in a later segment, is decided after the join.
        """
        con = con or self._connect()
        files = self._files()
        sources = ["open_rows"] + ([f"read_parquet({files!r})"] if files else [])
        pre, pre_params, post, post_params = self._where(flt, events)
        if extra is not None:
            pre, pre_params = f"{pre} AND {extra[0]}", pre_params + extra[1]
        matching = " UNION ALL ".join(f"SELECT * FROM {src} WHERE {pre}" for src in sources)
        late = " UNION ALL ".join(
            f"SELECT decision_id, completion_seq, rows, bytes, duration_ms, result_digest, completion_status, completion_offset, completion_length FROM {src} WHERE kind = 'completion'"
            for src in sources
        )
        sql = f"""WITH a AS ({matching}),
            late AS (SELECT decision_id, max(completion_seq) AS l_seq, any_value(rows) AS l_rows, any_value(bytes) AS l_bytes,
                any_value(duration_ms) AS l_duration, any_value(result_digest) AS l_digest, any_value(completion_status) AS l_status,
                any_value(completion_offset) AS l_off, any_value(completion_length) AS l_len FROM ({late}) GROUP BY decision_id),
            v AS (SELECT a.kind, a.type, a.stream, a.seq, coalesce(a.completion_seq, l.l_seq) AS completion_seq, a.decision_id,
                a.timestamp, a."user", a.groups, a.project_id, a.tenants, a.tables, a.columns,
                CASE WHEN a.decision_outcome = 'allowed' AND coalesce(a.completion_status, l.l_status) = 'failed' THEN 'error' ELSE a.decision_outcome END AS outcome,
                a.reasons, a.messages, a.sql, a.client, coalesce(a.rows, l.l_rows) AS rows, coalesce(a.bytes, l.l_bytes) AS bytes,
                coalesce(a.duration_ms, l.l_duration) AS duration_ms, coalesce(a.result_digest, l.l_digest) AS result_digest,
                coalesce(a.completion_status, l.l_status) AS completion_status, a.policy_revision, a.hash, a.offset, a.length,
                coalesce(a.completion_offset, l.l_off) AS completion_offset, coalesce(a.completion_length, l.l_len) AS completion_length
              FROM a LEFT JOIN late l ON a.kind = 'attempt' AND a.decision_id = l.decision_id)
            SELECT * FROM v WHERE {post}"""
        return con, sql, pre_params * len(sources) + post_params

    def _narrow(self, flt: "QueryFilter | None", events: bool, files: list[str] | None = None, extra: tuple[str, list[Any]] | None = None,
                con: duckdb.DuckDBPyConnection | None = None) -> tuple[duckdb.DuckDBPyConnection, str, list[Any]]:  # fmt: skip
        """Like :meth:`_query`, but only the columns that order and count the matches, with the source of each (``filename``).

        ``files`` restricts the scan to these segments (the open rows are always read); completions
        that arrived in a later segment are looked up in all of them.
        """
        con = con or self._connect()
        every = self._files()
        chosen = every if files is None else files
        sources = ["(SELECT *, 'open' AS filename FROM open_rows)"] + ([f"read_parquet({chosen!r}, filename = true)"] if chosen else [])
        pre, pre_params, post, post_params = self._where(flt, events)
        if extra is not None:
            pre, pre_params = f"{pre} AND {extra[0]}", pre_params + extra[1]
        narrow = " UNION ALL ".join(f"SELECT filename, stream, seq, timestamp, decision_id, decision_outcome, completion_status FROM {src} WHERE {pre}" for src in sources)
        if not post_params:
            return con, narrow, pre_params * len(sources)
        late = " UNION ALL ".join(f"SELECT decision_id, completion_status FROM {src} WHERE kind = 'completion'" for src in ["open_rows"] + ([f"read_parquet({every!r})"] if every else []))
        sql = f"""SELECT a.filename, a.stream, a.seq, a.timestamp,
                CASE WHEN a.decision_outcome = 'allowed' AND coalesce(a.completion_status, l.l_status) = 'failed' THEN 'error' ELSE a.decision_outcome END AS outcome
            FROM ({narrow}) a LEFT JOIN (SELECT decision_id, any_value(completion_status) AS l_status FROM ({late}) GROUP BY decision_id) l
              ON a.decision_id = l.decision_id
            WHERE {post}"""
        return con, sql, pre_params * len(sources) + post_params

    def _files(self) -> list[str]:
        return [str(self.view.index_dir(s) / seg["file"]) for s, st in self._states.items() for seg in st["segments"]]

    def _bounds(self, con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, str]]:
        """Each source's (oldest, newest) timestamp: from the segment's Parquet statistics (kept in the state), and the open rows."""
        out: dict[str, tuple[str, str]] = {}
        for stream, st in self._states.items():
            for seg in st["segments"]:
                path = str(self.view.index_dir(stream) / seg["file"])
                if "min_ts" not in seg:
                    low, high = con.execute("SELECT min(stats_min), max(stats_max) FROM parquet_metadata(?) WHERE path_in_schema = 'timestamp'", [path]).fetchone()
                    seg["min_ts"], seg["max_ts"] = low or "", high or "\uffff"
                out[path] = (seg["min_ts"], seg["max_ts"])
        stamps = [r["timestamp"] for o in self._open.values() for r in o.rows]
        out["open"] = (min(stamps), max(stamps)) if stamps else ("", "")
        return out

    @staticmethod
    def _where(flt: "QueryFilter | None", events: bool) -> tuple[str, list[Any], str, list[Any]]:
        """(filter inside the scans, its parameters, filter after the join, its parameters)."""
        active = flt.active() if flt is not None else {}
        clauses = ["kind <> 'completion'"] if events and not active else ["kind = 'attempt'"]
        params: list[Any] = []
        for name, sql in (
            ("user", '"user" = ?'),
            ("project", "project_id = ?"),
            ("tenant", "list_contains(tenants, ?)"),
            ("since", "timestamp >= ?"),
            ("until", "timestamp < ?"),
            ("text", "contains(lower(sql), lower(?))"),
            ("table", "list_contains(tables, lower(?))"),
            ("reason", "list_contains(reasons, ?)"),
            ("decision_id", "decision_id = ?"),
        ):
            if name in active:
                clauses.append(sql)
                params.append(active[name])
        if "decision" not in active:
            return " AND ".join(clauses), params, "TRUE", []
        decided = "allowed" if active["decision"] in ("allowed", "error") else active["decision"]  # error: allowed, then failed
        clauses.append("decision_outcome = ?")
        params.append(decided)
        if decided != "allowed":  # denied, invalid: the decision alone says it
            return " AND ".join(clauses), params, "TRUE", []
        return " AND ".join(clauses), params, "outcome = ?", [active["decision"]]

    def page(self, flt: "QueryFilter | None" = None, *, limit: int = 50, offset: int = 0, newest_first: bool = True, events: bool = False) -> tuple[list[dict[str, Any]], int]:
        """(rows, total matching): ``limit`` rows from ``offset`` counted from the newest (or oldest)."""
        with self._lock:
            return self._page_locked(flt, events, limit=limit, offset=offset, newest_first=newest_first)

    def _page_locked(self, flt: "QueryFilter | None", events: bool, *, limit: int, offset: int, newest_first: bool) -> tuple[list[dict[str, Any]], int]:
        direction = "DESC" if newest_first else "ASC"
        order = f"timestamp {direction}, stream {direction}, seq {direction}"
        columns = ", ".join(_q(k) for k in ROW_KEYS)
        if not limit:
            con, sql, params = self._query(flt, events)
            try:
                rows = [_row(dict(zip(ROW_KEYS, v))) for v in con.execute(f"SELECT {columns} FROM ({sql}) ORDER BY {order}", params).fetchall()]
            finally:
                con.close()
            return rows, len(rows)
        # the count (per source) and the page's keys from a few narrow columns, reading only the segments whose time range
        # can hold the page (by their Parquet statistics); then the page's full rows, from the row groups holding those seqs
        con = self._connect()
        try:
            _, sql, params = self._narrow(flt, events, con=con)
            per_source = dict(con.execute(f"SELECT filename, count(*) FROM ({sql}) GROUP BY 1", params).fetchall())
            total = sum(per_source.values())
            if offset >= total:
                return [], total
            if offset > total // 2:  # a page nearer the far end: count from there instead
                rows, _ = self._page_locked(flt, events, limit=min(limit, total - offset), offset=max(0, total - offset - limit), newest_first=not newest_first)
                return list(reversed(rows)), total
            bounds = self._bounds(con)
            ranked = sorted(per_source, key=lambda f: bounds[f][1], reverse=True) if newest_first else sorted(per_source, key=lambda f: bounds[f][0])
            taken, seen = [], 0
            for source in ranked:
                taken.append(source)
                seen += per_source[source]
                if seen >= offset + limit:
                    break
            if newest_first:
                edge = min(bounds[f][0] for f in taken)  # the page's rows are no older than this
                chosen = [f for f in per_source if f != "open" and bounds[f][1] >= edge]
                extra = ("timestamp >= ?", [edge])
            else:
                edge = max(bounds[f][1] for f in taken)
                chosen = [f for f in per_source if f != "open" and bounds[f][0] <= edge]
                extra = ("timestamp <= ?", [edge])
            _, sql, params = self._narrow(flt, events, chosen, extra, con=con)
            keys = con.execute(f"SELECT stream, seq FROM ({sql}) ORDER BY {order} LIMIT {int(limit)} OFFSET {int(offset)}", params).fetchall()
            if not keys:
                return [], total
            streams, seqs = sorted({k[0] for k in keys}), [k[1] for k in keys]
            where = f"stream IN ({', '.join('?' * len(streams))}) AND seq BETWEEN ? AND ?"
            _, sql, params = self._query(flt, events, (where, [*streams, min(seqs), max(seqs)]), con=con)
            found = {(r[0], r[1]): r for r in con.execute(f"SELECT stream, seq, {columns} FROM ({sql})", params).fetchall()}
        finally:
            con.close()
        return [_row(dict(zip(ROW_KEYS, found[k][2:]))) for k in keys if k in found], total

    def rows(self, flt: "QueryFilter | None" = None) -> list[dict[str, Any]]:
        """Every matching attempt, oldest first."""
        return self.page(flt, limit=0, newest_first=False)[0]

    def summary(self, flt: "QueryFilter | None", key: str) -> list[dict[str, Any]]:
        """Per ``user`` or ``project_id``: attempts by outcome, rows and bytes (as :func:`dataroom.querylog.summarise`)."""
        from dataroom.querylog import OUTCOMES

        column = {"user": '"user"', "project_id": "project_id"}[key]
        with self._lock:
            con, sql, params = self._query(flt, False)
        try:
            counts = ", ".join(f"count(*) FILTER (WHERE outcome = '{o}')" for o in OUTCOMES)
            result = con.execute(f"SELECT coalesce({column}, '-'), count(*), {counts}, coalesce(sum(rows), 0), coalesce(sum(bytes), 0) FROM ({sql}) GROUP BY 1", params).fetchall()
        finally:
            con.close()
        out = [{key: r[0], "total": r[1], **dict(zip(OUTCOMES, r[2 : 2 + len(OUTCOMES)])), "rows": int(r[-2]), "bytes": int(r[-1])} for r in result]
        return sorted(out, key=lambda s: (-s["denied"], -s["total"], s[key]))

    def record(self, decision_id: str) -> dict[str, Any] | None:
        """The decision record as written, with its completion folded in (read from the stream by offset)."""
        from dataroom.querylog import QueryFilter

        rows, _ = self.page(QueryFilter(decision_id=decision_id), limit=1)
        if not rows:
            return None
        row = rows[0]
        record = self.view.record_at(row["stream"], row["offset"], row["length"])
        if record is None:
            return None
        completion = None
        if row["completion_offset"] is not None:
            completion = self.view.record_at(row["stream"], row["completion_offset"], row["completion_length"])
        return {**record, "completion": completion}


def make_owned_dirs(directory: Path) -> None:
    """``mkdir -p``, each new directory handed to the owner of its parent (root running the CLI leaves the index to the room's account)."""
    missing = []
    for candidate in [directory, *directory.parents]:
        if candidate.exists():
            break
        missing.append(candidate)
    for new in reversed(missing):
        new.mkdir(exist_ok=True)
        hand_to_directory_owner(new)


def load_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    """A temporary table of index rows, filled column by column (no pyarrow: importing it with DuckDB pulls in pandas, 0.3 s per CLI call)."""
    con.execute(f"CREATE TEMP TABLE {table} ({', '.join(f'{_q(n)} {t}' for n, t in SCHEMA)})")
    if rows:
        columns = {f"c{i}": [r[name] for r in rows] for i, name in enumerate(NAMES)}
        con.execute(f"INSERT INTO {table} SELECT {', '.join(f'unnest($c{i})' for i in range(len(NAMES)))}", columns)


def _q(name: str) -> str:
    return f'"{name}"'


def _row(row: dict[str, Any]) -> dict[str, Any]:
    try:
        row["client"] = json.loads(row["client"]) if row["client"] is not None else None
    except ValueError:
        pass
    for key in ("groups", "tenants", "tables", "columns", "reasons", "messages"):
        row[key] = list(row[key] or [])
    return row


"""Visible-column copies of local tables: the only Parquet files a session can read.

A session could name any file it is allowed to read (``read_parquet('<file>')``, or SQL hidden in
a string that the engine plans), and a raw production file holds the withheld columns and their
statistics. So sessions never get the raw files: for each (table, set of visible columns) the
broker writes a copy holding only the visible columns, once, and the session's views and
``allowed_paths`` name only those copies. Whatever a query names — a view, a file, its Parquet
metadata or statistics, a plan — holds no withheld value, even if the analysis missed something.

A source file whose columns are exactly the visible ones is copied byte for byte (nothing in it is
withheld, and its layout is the producer's). Any other is written by DuckDB itself, a streaming
``COPY`` per source file with the source's compression codec and row-group size, so that a
project scans its copies as fast as a raw query scans the originals. Copies are keyed by the source files' names,
sizes and modification times and the visible columns, built under a file lock (several brokers
may share a home) into a temporary directory that is renamed into place. The statement is the
data room's own, over files the user never names.
They live in ``$DATAROOM_HOME/cache/visible`` (0700, the broker's account); deleting the
directory while the room is stopped is always safe.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from dataroom.storage import StorageError

FORMAT_VERSION = 3  # 2: written by DuckDB; 3: byte copies when nothing is withheld, else the source's codec and row groups


def copy_key(source_files: list[str], columns: list[str]) -> str:
    """Identifies a copy: changes when a source file or the visible columns change."""
    stats = []
    for name in source_files:
        st = os.stat(name)
        stats.append([name, st.st_size, st.st_mtime_ns])
    body = json.dumps({"v": FORMAT_VERSION, "files": stats, "columns": columns}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()[:24]


def visible_copy(table_name: str, source_files: list[str], columns: list[str], cache_dir: Path, unique: list[str] = ()) -> list[str]:
    """The copy's Parquet files (built first if needed), in the order of ``source_files``.

    ``unique``: the catalog's key of the table; the build checks that it is one (output-policy
    rewrites count rows without identities across a join on it), and refuses the table if not.
    """
    try:
        key = copy_key(source_files, columns + [f"unique:{c}" for c in unique])
    except OSError as exc:
        raise StorageError(f"cannot open table data of {table_name}: {exc.strerror}") from exc
    root = cache_dir / "visible" / table_name
    target = root / key
    names = [f"part-{i:05d}.parquet" for i in range(len(source_files))]
    if not (target / "manifest.json").exists():
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (target / "manifest.json").exists():
                _build(source_files, columns, names, target, table_name, list(unique))
                _owned_like_home(cache_dir, target)
    return [str(target / n) for n in names]


def _owned_like_home(cache_dir: Path, target: Path) -> None:
    """Root (the CLI of an administrator) builds copies the broker's account must read: hand them over."""
    if os.geteuid() != 0:
        return
    home = os.stat(cache_dir.parent)
    if home.st_uid == 0:
        return
    paths = [cache_dir, cache_dir / "visible", target.parent, target.parent / ".lock", target, *target.iterdir()]
    for path in paths:
        os.chown(path, home.st_uid, home.st_gid, follow_symlinks=False)


def _build(source_files: list[str], columns: list[str], names: list[str], target: Path, table_name: str = "", unique: list[str] = ()) -> None:
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    select = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
    con = duckdb.connect(config={"threads": 2, "memory_limit": "1GB", "autoload_known_extensions": False})
    try:
        for source, name in zip(source_files, names):
            layout = _layout(source)
            if {c.lower() for c in layout.columns} == {c.lower() for c in columns} and len(layout.columns) == len(columns):
                shutil.copyfile(source, work / name)  # every column visible: the file as it is
                continue
            options = f"FORMAT parquet, COMPRESSION {layout.codec}" + (f", ROW_GROUP_SIZE {layout.row_group_rows}" if layout.row_group_rows else "")
            con.execute(f"COPY (SELECT {select} FROM read_parquet(?)) TO '{_quoted(work / name)}' ({options})", [source])
        if unique:
            key = ", ".join('"' + c.replace('"', '""') + '"' for c in unique)
            files = [str(work / n) for n in names]
            repeated = con.execute(f"SELECT count(*) - count(DISTINCT ({key})) FROM read_parquet(?)", [files]).fetchone()[0]
            if repeated:
                raise StorageError(
                    f"the catalog declares ({', '.join(unique)}) unique in {table_name}, but {repeated:,} rows repeat a value: "
                    "fix the data or the catalog's `unique`"
                )
        (work / "manifest.json").write_text(json.dumps({"sources": source_files, "columns": columns}))
        for path in work.iterdir():
            os.chmod(path, 0o600)
        os.chmod(work, 0o700)
        if target.exists():  # a half-built copy from a crash (no manifest): replace it
            shutil.rmtree(target)
        os.rename(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        con.close()


@dataclass(frozen=True)
class _Layout:
    columns: tuple[str, ...]  # top-level column names, as the file spells them
    codec: str  # DuckDB's name of the first column chunk's compression
    row_group_rows: int  # rows of the first row group (0: the file has none)


# Parquet codecs by the names DuckDB's COPY takes; anything else (LZO, ...) is written as zstd.
_DUCKDB_CODECS = {"SNAPPY": "snappy", "GZIP": "gzip", "ZSTD": "zstd", "LZ4": "lz4_raw", "LZ4_RAW": "lz4_raw", "BROTLI": "brotli", "UNCOMPRESSED": "uncompressed"}


def _layout(source: str) -> _Layout:
    """What a copy keeps of ``source``'s layout: read from its footer (no data pages)."""
    meta = pq.ParquetFile(source).metadata
    columns = tuple(meta.schema.to_arrow_schema().names)
    if meta.num_row_groups == 0 or meta.num_columns == 0:
        return _Layout(columns, "zstd", 0)
    first = meta.row_group(0)
    return _Layout(columns, _DUCKDB_CODECS.get(first.column(0).compression.upper(), "zstd"), first.num_rows)


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")

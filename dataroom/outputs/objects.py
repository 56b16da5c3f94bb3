"""What a release request carries: one object turned into bytes with a kind, a file name and a media type.

The notebook client encodes (:func:`encode_object`); the broker decodes and checks the same bytes
(:func:`decode_table`). Tables travel as CSV (what a reader opens), figures as PNG, text files as
they are. Only these kinds, and only up to :data:`MAX_RELEASE_BYTES`: a release is a result, not an
extract.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

MAX_RELEASE_BYTES = 5 * 1024 * 1024
KINDS = ("table", "figure", "text")
MEDIA_TYPES = {"table": "text/csv", "figure": "image/png", "text": "text/plain"}
TABLE_SUFFIXES = {".csv", ".tsv"}
TEXT_SUFFIXES = {".txt", ".md", ".json", ".log", ".tex", ".rst"}
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class ReleaseObjectError(ValueError):
    """The object cannot be released as it is; the message says what to send instead."""


@dataclass(frozen=True)
class ReleaseObject:
    kind: str  # table | figure | text
    filename: str
    media_type: str
    data: bytes


def safe_filename(title: str, suffix: str) -> str:
    """A download name from the request's title (letters, digits, dashes only)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", title).strip("-.")[:80] or "release"
    return stem + suffix


def _limit(data: bytes, what: str) -> bytes:
    if len(data) > MAX_RELEASE_BYTES:
        raise ReleaseObjectError(
            f"{what} is {len(data) / 1048576:.1f} MiB; a release may be at most {MAX_RELEASE_BYTES // 1048576} MiB: "
            "release an aggregate (fewer rows, fewer columns), not an extract"
        )
    return data


def encode_object(obj: Any, title: str) -> ReleaseObject:
    """A polars/pandas DataFrame, a matplotlib Figure, or the path of a small text/CSV file → bytes."""
    if isinstance(obj, pl.DataFrame):
        try:
            text = obj.write_csv()
        except Exception as exc:  # nested (list, struct) or binary columns have no CSV form
            raise ReleaseObjectError(f"the table cannot be written as CSV ({type(exc).__name__}): flatten nested columns, drop binary ones") from exc
        return ReleaseObject("table", safe_filename(title, ".csv"), MEDIA_TYPES["table"], _limit(text.encode(), "the table"))
    module = type(obj).__module__ or ""
    if module.startswith("pandas") and type(obj).__name__ == "DataFrame":
        try:
            frame = pl.from_pandas(obj, include_index=not _default_index(obj))
        except Exception as exc:  # MultiIndex columns, mixed object columns
            raise ReleaseObjectError(f"the pandas DataFrame cannot be converted ({type(exc).__name__}): flatten its columns, reset_index()") from exc
        return encode_object(frame, title)
    if module.startswith("matplotlib") and hasattr(obj, "savefig"):
        buf = io.BytesIO()
        obj.savefig(buf, format="png", metadata={"Software": None})
        return ReleaseObject("figure", safe_filename(title, ".png"), MEDIA_TYPES["figure"], _limit(buf.getvalue(), "the figure"))
    if isinstance(obj, (str, Path)):
        return _encode_file(Path(obj), title)
    raise ReleaseObjectError(
        f"cannot release a {type(obj).__name__}: send a polars or pandas DataFrame, a matplotlib Figure, "
        "or the path of a small text or CSV file"
    )


def _default_index(frame: Any) -> bool:
    index = frame.index
    return type(index).__name__ == "RangeIndex" and index.start == 0 and index.step == 1 and index.name is None


def _encode_file(path: Path, title: str) -> ReleaseObject:
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES | TEXT_SUFFIXES:
        raise ReleaseObjectError(
            f"{path.name}: only text files ({', '.join(sorted(TABLE_SUFFIXES | TEXT_SUFFIXES))}) can be released; "
            "release tables as DataFrames and figures as matplotlib Figures"
        )
    if not path.is_file():
        raise ReleaseObjectError(f"{path}: no such file")
    if path.stat().st_size > MAX_RELEASE_BYTES:
        _limit(b"\0" * (MAX_RELEASE_BYTES + 1), path.name)  # raises with the size rule
    data = _limit(path.read_bytes(), path.name)
    check_text(data, path.name)
    kind = "table" if suffix in TABLE_SUFFIXES else "text"
    return ReleaseObject(kind, safe_filename(title, suffix), MEDIA_TYPES[kind], data)


def check_text(data: bytes, what: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReleaseObjectError(f"{what} is not UTF-8 text: only text, CSV tables and PNG figures can be released") from exc
    if "\0" in text:
        raise ReleaseObjectError(f"{what} holds NUL bytes: only text, CSV tables and PNG figures can be released")
    return text


def validate_object(kind: str, data: bytes) -> None:
    """What the broker accepts: a known kind within the size limit whose bytes are what the kind says."""
    if kind not in KINDS:
        raise ReleaseObjectError(f"kind must be one of {', '.join(KINDS)}")
    _limit(data, "the object")
    if not data:
        raise ReleaseObjectError("the object is empty")
    if kind == "figure":
        if not data.startswith(_PNG_MAGIC):
            raise ReleaseObjectError("a figure must be a PNG image (matplotlib Figure)")
    else:
        check_text(data, "the object")
    if kind == "table":
        decode_table(data)


def decode_table(data: bytes, separator: str | None = None) -> pl.DataFrame:
    """The CSV bytes of a table as a DataFrame (every column as text, then numbers where they parse)."""
    text = check_text(data, "the table")
    sep = separator or ("\t" if text.split("\n", 1)[0].count("\t") > text.split("\n", 1)[0].count(",") else ",")
    try:
        frame = pl.read_csv(io.BytesIO(data), separator=sep, infer_schema_length=10_000, try_parse_dates=False)
    except Exception as exc:  # polars raises several error types for malformed CSV
        raise ReleaseObjectError(f"the table is not readable CSV ({type(exc).__name__}): send a DataFrame") from exc
    return frame

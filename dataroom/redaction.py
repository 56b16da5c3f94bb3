"""Making hostile text safe to store and user-bound text safe to send.

Two directions, one module:

* **In** — SQL, user names and project ids arrive as arbitrary text: invalid UTF-8 (the CLI
  gets it as lone surrogates), lone surrogates in JSON, NUL bytes, megabytes. :func:`inspect_text`
  says what is wrong with a text and gives a form that can always be written to the audit log:
  escaped, truncated to :data:`STORED_CHARS` characters, with its full length and SHA-256.
* **Out** — error messages from DuckDB, Arrow or the OS may name files, buckets and prefixes.
  :func:`scrub_paths` replaces every storage location in a message with ``<path>`` before it
  leaves the data room (the audit log keeps the original for the security team).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

STORED_CHARS = 4096

# Absolute paths (two segments or more), file:/s3:/gs:/http(s) URLs, Windows drive paths.
_LOCATION = re.compile(
    r"(?:\b(?:s3|s3a|gs|gcs|az|abfss?|file|https?|hf)://[^\s'\"]+)"
    r"|(?:(?<![\w.:/])/(?:[^\s'\"/()\[\],;]+/)+[^\s'\"()\[\],;]*)"
    r"|(?:\b[A-Za-z]:\\[^\s'\"]+)"
)

_REST_OF_PATH = re.compile(r"<path>[^\s'\"()\[\],;]*")


@dataclass(frozen=True)
class InspectedText:
    """A text as received, and what the data room can safely do with it."""

    text: str  # the original (may hold surrogates); only used when ``problem`` is None
    stored: str  # escaped and truncated: always valid UTF-8, fit for the audit log
    length: int
    sha256: str
    problem: str | None  # why the text is refused as input, or None

    def audit_fields(self, name: str) -> dict[str, Any]:
        """``{name}`` plus, when it had to be escaped or cut, its length and hash."""
        fields: dict[str, Any] = {name: self.stored}
        if self.stored != self.text:
            fields[f"{name}_length"] = self.length
            fields[f"{name}_sha256"] = self.sha256
        return fields


def original_bytes(value: str) -> bytes:
    """The bytes ``value`` came from: undecodable argv bytes come back as they were (surrogateescape)."""
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # lone surrogates that were never bytes (e.g. a JSON \ud800 escape)
        return value.encode("utf-8", "surrogatepass")


def inspect_text(value: str, *, max_chars: int, what: str = "the SQL text") -> InspectedText:
    """Check ``value`` for bytes that are not text, NUL characters and excessive length."""
    digest = hashlib.sha256(original_bytes(value)).hexdigest()
    problem = None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        problem = f"{what} is not valid UTF-8 (or holds lone surrogates): send text"
    if problem is None and "\x00" in value:
        problem = f"{what} holds a NUL character"
    if problem is None and len(value) > max_chars:
        problem = f"{what} is {len(value):,} characters long; the limit is {max_chars:,}"
    stored = value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    if len(stored) > STORED_CHARS:
        stored = stored[:STORED_CHARS] + "…"
    return InspectedText(value, stored, len(value), digest, problem)


def scrub_paths(message: str, known: tuple[str, ...] = ()) -> str:
    """``message`` with every storage location (path shapes, then ``known`` roots) as ``<path>``."""
    message = _LOCATION.sub("<path>", message)
    for root in sorted((k for k in known if k), key=len, reverse=True):
        message = message.replace(root, "<path>")
    return _REST_OF_PATH.sub("<path>", message)

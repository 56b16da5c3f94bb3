"""What an engine answers instead of a result.

* :class:`EngineRefusal` — the query's own fault, explained (exit 3 / HTTP 403 with the code):
  ``time_limit``, ``memory_limit``, ``row_limit``, ``engine_guard``, ``engine_crash``, ``cancelled``.
* :class:`SqlError` — DuckDB rejected the SQL (binder, conversion, ...): bad input (exit 2).
* :class:`EngineFailure` — the data room failed (data unreachable): an internal error (exit 1).

Messages are what the user sees: they carry no storage path (see :mod:`dataroom.redaction`).
"""

from __future__ import annotations

REFUSAL_CODES = ("time_limit", "memory_limit", "row_limit", "engine_guard", "engine_crash", "cancelled")


class EngineRefusal(RuntimeError):
    """The engine refused or stopped the query; ``code`` is one of :data:`REFUSAL_CODES`."""

    def __init__(self, code: str, message: str) -> None:
        if code not in REFUSAL_CODES:
            raise ValueError(f"unknown refusal code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message


class SqlError(RuntimeError):
    """DuckDB rejected the statement (the user's SQL is wrong); ``kind`` is DuckDB's error class."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind


class EngineFailure(RuntimeError):
    """The engine could not run a statement for a reason that is not the user's (e.g. storage)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind

"""Unique result column names, the way DuckDB's own ``.pl()``/``.df()`` make them.

SQL allows a result with two columns of one name (``SELECT d_year, d_year``, a self-join's
``a.id, b.id``); Arrow carries it, but Polars and pandas cannot. The engine renames once, where
the result is built, so that the IPC stream, its audit digest, the broker, the CLI and the
notebook all see the same names, and records the renaming in the schema metadata so that every
front door can say which columns were renamed.
"""

from __future__ import annotations

import json

import pyarrow as pa

RENAMED_KEY = b"dataroom.renamed_columns"  # schema metadata: JSON [{"column", "original"}]


def unique_names(names: list[str]) -> list[str]:
    """Keep the first of each name, suffix the others ``_1``, ``_2``, ... (case-insensitive).

    Mirrors DuckDB's ``QueryResult::DeduplicateColumns`` (what ``.pl()`` and ``.df()`` do): a
    suffixed name that is already taken gets the next number, and a later column whose own name
    is taken by a renamed one is renamed in turn (``a, a, a_1`` → ``a, a_1, a_1_1``).
    """
    seen: dict[str, int] = {}
    out = []
    for name in names:
        low = name.lower()
        if low not in seen:
            seen[low] = 1
            out.append(name)
            continue
        candidate = f"{name}_{seen[low]}"
        while candidate.lower() in seen:
            seen[low] += 1
            candidate = f"{name}_{seen[low]}"
        seen[candidate.lower()] = 1
        out.append(candidate)
    return out


def unique_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with unique column names, the renaming listed in its metadata; ``schema`` itself if none is renamed."""
    names = schema.names
    unique = unique_names(names)
    if unique == names:
        return schema
    renamed = [{"column": new, "original": old} for old, new in zip(names, unique) if old != new]
    metadata = {**(schema.metadata or {}), RENAMED_KEY: json.dumps(renamed).encode()}
    return pa.schema([field.with_name(name) for field, name in zip(schema, unique)], metadata=metadata)


def with_unique_names(table: pa.Table) -> pa.Table:
    """``table`` with unique column names; renamed columns are listed in its schema metadata."""
    schema = unique_schema(table.schema)
    if schema is table.schema:
        return table
    return table.rename_columns(schema.names).replace_schema_metadata(schema.metadata)


def renamed_columns(schema: pa.Schema) -> list[dict[str, str]]:
    """The renaming :func:`with_unique_names` recorded (empty when nothing was renamed)."""
    raw = (schema.metadata or {}).get(RENAMED_KEY)
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        return []
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []


def renamed_note(renamed: list[dict[str, str]]) -> str | None:
    """One line for a person: which result columns were renamed and why; None if none were."""
    if not renamed:
        return None
    parts = ", ".join(f"{r.get('original')} → {r.get('column')}" for r in renamed)
    return f"note: duplicate result column names were made unique (the first kept, the others suffixed): {parts}"

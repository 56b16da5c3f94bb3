"""A name that does not exist is a typo, not an attack: "did you mean ..." from what the user may see.

The policy denies a query naming a table or column it cannot resolve (fail closed). When those
are the *only* reasons, nothing withheld was touched: the pipeline answers it as bad input
(exit 2, HTTP 400; audited as ``invalid``, so it does not feed the denied-query alerts) and adds
suggestions. Suggestions are drawn only from the visible columns of the project's tables and the
project's table names, never from a withheld column or another project's table; a withheld
column resolves (it is in the catalog) and stays a denial that names its rule.
"""

from __future__ import annotations

import difflib
import re

from dataroom.analysis import QueryFacts
from dataroom.catalog import Catalog, Project, visible_columns
from dataroom.policy import Reason

UNKNOWN_NAME_CODES = frozenset({"unresolved_column", "unknown_table"})
MAX_SUGGESTIONS = 3
CUTOFF = 0.6  # difflib's similarity ratio: "severty" ~ "severity", not "cvss" ~ "severity"


# What looks like probing the engine rather than mistyping a catalog name stays a denial (and
# counts toward the denied-query alerts): DuckDB's system namespaces, the session's internal
# names (``__source_...``), virtual columns (``filename`` would name a storage path), quoted
# names holding anything but identifier characters, catalog-qualified names, SHOW/DESCRIBE.
_PLAIN = re.compile(r"[a-z][a-z0-9_]*")
SYSTEM_NAMESPACES = frozenset({"main", "pg_catalog", "information_schema", "system", "temp", "memory"})
VIRTUAL_COLUMNS = frozenset({"rowid", "filename", "file_row_number", "file_index"})


def is_plain_name(name: str, code: str) -> bool:
    """A name a person could mistype: identifier parts, at most ``schema.table`` (or ``alias.column``),
    in no system namespace, not an internal or virtual name of the engine."""
    parts = name.lower().split(".")
    if len(parts) > 2 or not all(_PLAIN.fullmatch(p) for p in parts):
        return False
    if code == "unknown_table":
        return len(parts) == 1 or parts[0] not in SYSTEM_NAMESPACES
    return parts[-1] not in VIRTUAL_COLUMNS


def only_unknown_names(reasons: list[Reason], facts: QueryFacts) -> bool:
    """True when every reason is a plainly written name the catalog does not know: a typo, not an attack."""
    if not reasons or not all(r.code in UNKNOWN_NAME_CODES for r in reasons):
        return False
    names = [(n, "unknown_table") for n in facts.unknown_tables] + [(n, "unresolved_column") for n in facts.unresolved_columns]
    return bool(names) and all(is_plain_name(n, code) for n, code in names)


def visible_names(catalog: Catalog, project: Project, tables: list[str]) -> tuple[list[str], list[str]]:
    """(table names of the project, visible columns of ``tables`` — of all its tables when none)."""
    project_tables = catalog.project_tables(project)
    in_query = [t for t in project_tables if t.name in set(tables)] or project_tables
    columns = sorted({c for t in in_query for c in visible_columns(t, project)})
    return sorted(t.name for t in project_tables), columns


def close_matches(name: str, candidates: list[str]) -> list[str]:
    """Up to three candidates close to ``name`` (case-insensitive), best first."""
    lowered = {c.lower(): c for c in candidates}
    return [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=MAX_SUGGESTIONS, cutoff=CUTOFF)]


def table_matches(name: str, tables: list[str]) -> list[str]:
    """Tables close to ``name`` as written (``acme.findngs``) or by their last part (``findngs``)."""
    found = close_matches(name, tables)
    if not found:
        short = {t.split(".")[-1]: t for t in tables}
        found = [short[m] for m in close_matches(name.split(".")[-1], list(short))]
    return found


def with_suggestions(reasons: list[Reason], facts: QueryFacts, catalog: Catalog, project: Project) -> list[Reason]:
    """``reasons`` with "did you mean ..." added to each unknown name that has a close visible match."""
    tables, columns = visible_names(catalog, project, facts.tables)
    names = [(n, "unknown_table") for n in facts.unknown_tables] + [(n, "unresolved_column") for n in facts.unresolved_columns]
    names.sort(key=lambda item: -len(item[0]))  # "f.severty" before "severty"
    out = []
    for reason in reasons:
        message = reason.message
        for name, code in names:
            if code != reason.code or not re.search(rf"(?<![\w.]){re.escape(name)}(?![\w.])", message, re.IGNORECASE):
                continue
            found = table_matches(name, tables) if code == "unknown_table" else close_matches(name.split(".")[-1], columns)
            if found:
                message += f" — did you mean {' or '.join(found)}?"
            break
        out.append(Reason(reason.code, message))
    return out

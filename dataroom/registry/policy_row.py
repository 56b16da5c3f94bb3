"""A project's row as the query policy sees it, and a read of it that needs neither SQLAlchemy nor Alembic.

:meth:`Registry.policy_project <dataroom.registry.service.Registry.policy_project>` and
:func:`read_policy_project` select the same :data:`POLICY_COLUMNS` and build the
:class:`~dataroom.catalog.Project` with the same :func:`project_from_row`, so the two cannot disagree
on what a row means. The light read exists for ``dataroom tables`` (issue 17 item 7: start in
≤ 0.25 s, while importing SQLAlchemy and Alembic alone takes longer than that): it answers only for
a SQLite registry stamped at :data:`~dataroom.registry.migrations.HEAD_REVISION`, in one read-only
transaction, and writes no data. Anything else (another database, no file yet, a schema behind or
ahead of this code, a locked or unreadable file, a value it cannot decode) is :data:`UNREAD`, and
:func:`policy_project` takes the Registry's own path, which creates, upgrades or refuses exactly as
it always did.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import sqlite3
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import quote

from dataroom.catalog import Classification, Project
from dataroom.registry.migrations import HEAD_REVISION  # a database at any other revision is UNREAD

if TYPE_CHECKING:
    from dataroom.catalog import Catalog


# The columns the query policy reads, and how SQLite stores each (the test checks them against the ORM's types).
POLICY_COLUMNS: Final[dict[str, str]] = {
    "id": "text",
    "description": "text",
    "members": "json",
    "tenants": "json",
    "tables": "json",
    "multi_tenant": "bool",
    "column_classes": "json",
    "expires": "date",
    "status": "text",
    "output_policy": "json",
    "engine": "text",
}


class Unread(enum.Enum):
    """The light read cannot answer; ask the Registry (not the same as "no such project": None)."""

    UNREAD = "unread"


UNREAD: Final = Unread.UNREAD


def project_from_row(row: Mapping[str, Any]) -> Project:
    """The :class:`Project` of a ``projects`` row (its :data:`POLICY_COLUMNS`, decoded): the one reading of a row."""
    return Project(
        id=row["id"],
        description=row["description"],
        members=list(row["members"]),
        tenants=list(row["tenants"]),
        tables=list(row["tables"]),
        multi_tenant=row["multi_tenant"],
        column_classes=[Classification(c) for c in row["column_classes"]],
        expires=row["expires"],
        status=row["status"],
        output_policy=row["output_policy"],
        engine=row["engine"],
    )


def sqlite_file(url: str) -> str | None:
    """The file of a plain ``sqlite:///<path>`` URL (the default registry); None for any other URL.

    Anything SQLAlchemy might read differently (a driver suffix, query options, percent escapes,
    ``:memory:``) is None too: the Registry's path handles it.
    """
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    path = url.removeprefix(prefix)
    if not path or path == ":memory:" or any(ch in path for ch in "?#%"):
        return None
    return path


def _decode(kind: str, value: Any) -> Any:
    """A SQLite value as SQLAlchemy's JSON, Boolean and Date types return it (ValueError when it cannot)."""
    if value is None or kind == "text":
        return value
    if kind == "json":
        return json.loads(value)
    if kind == "bool":
        if value not in (0, 1):
            raise ValueError(f"not a stored boolean: {value!r}")
        return bool(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    raise ValueError(f"unknown column kind {kind!r}")  # pragma: no cover - POLICY_COLUMNS names only the kinds above


def read_policy_project(url: str, project_id: str) -> Project | None | Literal[Unread.UNREAD]:
    """The project as the query policy sees it (None: no such row), read with the standard library's sqlite3;
    :data:`UNREAD` whenever this read cannot stand for the Registry's (see the module's docstring)."""
    path = sqlite_file(url)
    if path is None:
        return UNREAD
    try:  # mode=ro: never creates the file (a fresh home's registry is the Registry's to create)
        conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=30, isolation_level=None)
    except sqlite3.Error:
        return UNREAD
    try:
        conn.execute("BEGIN")  # one snapshot: the revision checked is the revision of the row read
        if conn.execute("SELECT version_num FROM alembic_version").fetchall() != [(HEAD_REVISION,)]:
            return UNREAD
        columns = ", ".join(POLICY_COLUMNS)
        row = conn.execute(f"SELECT {columns} FROM projects WHERE id = ?", (project_id,)).fetchone()  # noqa: S608 - constant names
    except sqlite3.Error:
        return UNREAD
    finally:
        conn.close()
    if row is None:
        return None
    try:
        return project_from_row({name: _decode(kind, value) for (name, kind), value in zip(POLICY_COLUMNS.items(), row)})
    except (ValueError, TypeError):  # the Registry's path decodes it, or raises its own error
        return UNREAD


def policy_project(url: str, catalog: Catalog, project_id: str) -> Project | None:
    """The project as the query policy sees it: the light read when it can answer, else one read by
    the (unseeded) Registry, which first makes the database usable by this code as it always does."""
    found = read_policy_project(url, project_id)
    if found is not UNREAD:
        return found
    from dataroom.registry.service import Registry

    return Registry(url, catalog, seed=False).policy_project(project_id)

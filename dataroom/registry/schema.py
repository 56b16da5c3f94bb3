"""The registry's schema version: Alembic migrations in :mod:`dataroom.registry.migrations`.

A new database gets the current tables (``create_all``) and is stamped at the newest revision,
which the test suite proves equal to what the migrations build. A database behind the code is
upgraded automatically on SQLite (one host, the local room) and refused elsewhere: on PostgreSQL
several broker and review replicas share the database, so the schema moves by one explicit
``dataroom db upgrade`` (a deploy step), under an advisory lock so two upgrades never interleave.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from dataroom.registry.migrations import HEAD_REVISION
from dataroom.registry.models import Base

if TYPE_CHECKING:  # Alembic loads only when the schema must change or be compared (prepare's fast path skips it)
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"
_ADVISORY_LOCK_ID = 0x64617461726F6F6D & 0x7FFFFFFFFFFFFFFF  # "dataroom": one schema change at a time


class SchemaError(RuntimeError):
    """The database's schema does not match this code; the message says which command fixes it."""


@dataclass(frozen=True)
class UpgradeResult:
    """Revisions before and after ``upgrade`` (``before`` is None for a database without a version)."""

    before: str | None
    after: str
    created: bool  # a new, empty database got the current tables

    def describe(self) -> str:
        if self.created:
            return f"created the registry schema at revision {self.after}"
        if self.before == self.after:
            return f"registry schema already at revision {self.after} (head)"
        return f"upgraded the registry schema from revision {self.before or 'unversioned'} to {self.after}"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the packaged migrations, bound to ``connection`` (no alembic.ini)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def script_directory() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = script_directory().get_current_head()
    if head is None:  # pragma: no cover - the package always ships a baseline
        raise SchemaError("the dataroom package ships no registry migrations")
    return head


def current_revision(connection: Connection) -> str | None:
    from alembic.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _stamped_at_known_head(engine: Engine) -> bool:
    """The database's version table holds exactly :data:`~dataroom.registry.migrations.HEAD_REVISION`:
    one read, without importing Alembic (every broker, review and CLI process starts here)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return False
        return list(connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()) == [HEAD_REVISION]


def _lock(connection: Connection) -> None:
    """Serialise schema changes across processes (PostgreSQL); SQLite's own write lock does it there."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})


_SCHEMA_LOCKS: dict[str, threading.RLock] = {}
_SCHEMA_LOCKS_GUARD = threading.Lock()
_SCHEMA_LOCK_DEPTH: dict[str, int] = {}


@contextmanager
def _sqlite_schema_lock(engine: Engine) -> Iterator[None]:
    """Serialise schema set-up of one SQLite file across processes (brokers starting together).

    SQLite's write lock comes too late: both would read "no version table" before either writes.
    Re-entrant within a process (``prepare`` upgrades under the lock it holds): a thread lock per
    file, and the file lock taken by the outermost holder only.
    """
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    lock_path = str(Path(database).resolve().with_name(Path(database).name + ".schema-lock"))
    with _SCHEMA_LOCKS_GUARD:
        thread_lock = _SCHEMA_LOCKS.setdefault(lock_path, threading.RLock())
    with thread_lock:
        depth = _SCHEMA_LOCK_DEPTH.get(lock_path, 0)
        _SCHEMA_LOCK_DEPTH[lock_path] = depth + 1
        fd = None
        try:
            if depth == 0:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            _SCHEMA_LOCK_DEPTH[lock_path] = depth
            if fd is not None:
                os.close(fd)


def _has_registry_tables(connection: Connection) -> bool:
    return bool(set(inspect(connection).get_table_names()) & set(Base.metadata.tables))


def upgrade(engine: Engine, revision: str = "head") -> UpgradeResult:
    """Bring the database to ``revision`` by its migrations (``dataroom db upgrade``).

    An empty database is built by the migrations from the baseline; a database made by an older
    dataroom without a version table (``create_all``) is taken as at head if it matches the models,
    else as at the baseline revision.
    """
    from alembic import command
    from alembic.migration import MigrationContext

    with _sqlite_schema_lock(engine), engine.begin() as connection:
        _lock(connection)
        before = current_revision(connection)
        if before is None and _has_registry_tables(connection):
            # made by `create_all` before migrations existed: of the current models (stamp head), or older
            adopted = head_revision() if not schema_differences(connection) else baseline_revision()
            MigrationContext.configure(connection).stamp(script_directory(), adopted)
            before = adopted
        command.upgrade(alembic_config(connection), revision)
        after = current_revision(connection)
    return UpgradeResult(before=before, after=after or "", created=False)


def baseline_revision() -> str:
    revisions = list(script_directory().walk_revisions())
    return revisions[-1].revision


def prepare(engine: Engine) -> None:
    """Make ``engine``'s database usable by this code, or say why not (called once per engine).

    New database: current tables, stamped at head. Behind head: upgraded on SQLite, refused
    elsewhere with the command to run. Ahead of head (a newer dataroom migrated it): refused.
    """
    if _stamped_at_known_head(engine):
        return
    head = head_revision()
    with _sqlite_schema_lock(engine):
        _prepare_locked(engine, head)


def _prepare_locked(engine: Engine, head: str) -> None:
    from alembic.migration import MigrationContext

    with engine.begin() as connection:
        _lock(connection)
        current = current_revision(connection)
        if current == head:
            return
        if current is None and not _has_registry_tables(connection):
            Base.metadata.create_all(connection)
            MigrationContext.configure(connection).stamp(script_directory(), head)
            return
    known = {r.revision for r in script_directory().walk_revisions()}
    if current is not None and current not in known:
        raise SchemaError(
            f"the registry database is at schema revision {current}, which this dataroom does not know "
            "(a newer version migrated it): upgrade dataroom"
        )
    if engine.dialect.name == "sqlite":
        upgrade(engine)
        return
    raise SchemaError(
        f"the registry database is at schema revision {current or 'unversioned'}, this dataroom needs {head}: "
        "run `dataroom db upgrade` once (a deploy step), then restart"
    )


def schema_differences(connection: Connection) -> list[object]:
    """What differs between the database's schema and the models (empty when they agree)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))

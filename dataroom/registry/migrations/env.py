"""Alembic environment: migrate the registry database given by the caller (never a config file).

:mod:`dataroom.registry.schema` passes either an open connection (``config.attributes["connection"]``)
or a URL (``sqlalchemy.url``). SQLite runs in batch mode, because its ALTER TABLE cannot drop or
alter columns.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from dataroom.registry.models import Base

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("the registry migrations run online only: dataroom db upgrade")
run_migrations_online()

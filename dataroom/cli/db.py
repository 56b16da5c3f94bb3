"""``dataroom db``: the registry database's schema (Alembic migrations), for operators.

The database is ``DATAROOM_REGISTRY_URL`` (SQLite in ``$DATAROOM_HOME`` by default, PostgreSQL in
production). Nothing here prints the URL: it may carry the database password.
"""

from __future__ import annotations

import click

from dataroom.settings import Settings


def _engine(url: str | None):  # type: ignore[no-untyped-def]
    from dataroom.registry.service import create_registry_engine

    return create_registry_engine(url or Settings().registry_database_url)


_URL_OPTION = click.option(
    "--url",
    envvar="DATAROOM_REGISTRY_URL",
    help="Registry database URL (default: DATAROOM_REGISTRY_URL, else SQLite in $DATAROOM_HOME).",
)


@click.group()
def db() -> None:
    """Registry database schema: upgrade and inspect its migration revision."""


@db.command()
@_URL_OPTION
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def upgrade(url: str | None, revision: str) -> None:
    """Migrate the registry database to the newest schema (run once per deploy, before the services)."""
    from sqlalchemy.exc import SQLAlchemyError

    from dataroom.registry.schema import upgrade as run_upgrade

    engine = _engine(url)
    try:
        result = run_upgrade(engine, revision)
    except SQLAlchemyError as exc:
        raise click.ClickException(f"registry database migration failed: {type(exc.orig or exc).__name__}") from exc
    finally:
        engine.dispose()
    click.echo(result.describe())


@db.command()
@_URL_OPTION
def current(url: str | None) -> None:
    """Print the database's schema revision and the newest one this dataroom ships."""
    from dataroom.registry.schema import current_revision, head_revision

    from sqlalchemy.exc import SQLAlchemyError

    engine = _engine(url)
    try:
        with engine.connect() as connection:
            revision = current_revision(connection)
    except SQLAlchemyError as exc:
        raise click.ClickException(f"cannot read the registry database: {type(exc.orig or exc).__name__}") from exc
    finally:
        engine.dispose()
    head = head_revision()
    state = "up to date" if revision == head else "behind: run `dataroom db upgrade`"
    click.echo(f"revision {revision or 'none'} (head {head}): {state}")

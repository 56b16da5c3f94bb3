"""Registry schema migrations (Alembic) on SQLite and a real PostgreSQL server: `dataroom db upgrade`.

The migrated schema must equal the models, so a model change without a migration fails here.
"""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, insert, inspect, select, text

from dataroom.cli.db import db
from dataroom.registry.models import Base, ProjectRow
from dataroom.registry.schema import (
    SchemaError,
    baseline_revision,
    current_revision,
    head_revision,
    schema_differences,
    script_directory,
    upgrade,
)
from dataroom.registry.service import create_registry_engine, dispose_engines, engine_for


@pytest.fixture
def engine(empty_db_url: str):
    engine = create_registry_engine(empty_db_url)
    yield engine
    engine.dispose()
    dispose_engines()


def _revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return current_revision(connection)


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        return schema_differences(connection)


def _add_project(engine: Engine, project_id: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(ProjectRow.__table__).values(
                id=project_id, description="kept across upgrades", requester="alice", status="approved",
                tenants=["acme"], tables=["findings"], column_classes=["public"], multi_tenant=False,
                expires=dt.date(2027, 1, 31), justification="migration test", proposed_at="2026-11-30T00:00:00+00:00",
                members=["alice"],
            )
        )


def _project_ids(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(select(ProjectRow.__table__.c.id)).scalars())


def test_migrations_build_exactly_the_models(engine: Engine) -> None:
    result = upgrade(engine)
    assert (result.before, result.after) == (None, head_revision())
    assert _differences(engine) == [], "a model changed without a migration: add one in dataroom/registry/migrations/versions"
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())


def test_a_new_database_is_created_from_the_models_and_stamped_at_head(empty_db_url: str) -> None:
    engine = engine_for(empty_db_url)
    assert _revision(engine) == head_revision()
    assert _differences(engine) == []


def test_revisions_form_one_chain_from_the_baseline() -> None:
    revisions = list(script_directory().walk_revisions())
    assert len(script_directory().get_heads()) == 1, "two migrations revise the same parent: chain them"
    assert revisions[-1].revision == baseline_revision() and revisions[-1].down_revision is None


def test_db_upgrade_on_an_empty_database(empty_db_url: str, engine: Engine) -> None:
    result = CliRunner().invoke(db, ["upgrade", "--url", empty_db_url])
    assert result.exit_code == 0, result.output
    assert f"to {head_revision()}" in result.output
    assert _revision(engine) == head_revision() and _differences(engine) == []
    again = CliRunner().invoke(db, ["upgrade", "--url", empty_db_url])
    assert again.exit_code == 0 and "already at revision" in again.output
    from dataroom.cli import main  # as `dataroom db current` runs it

    current = CliRunner().invoke(main, ["db", "current", "--url", empty_db_url])
    assert current.exit_code == 0 and "up to date" in current.output


def test_db_upgrade_keeps_the_rows_of_a_previous_version_database(empty_db_url: str, engine: Engine) -> None:
    upgrade(engine, baseline_revision())
    _add_project(engine, "kept-project")
    assert _revision(engine) == baseline_revision()
    result = CliRunner().invoke(db, ["upgrade", "--url", empty_db_url])
    assert result.exit_code == 0, result.output
    assert _revision(engine) == head_revision()
    assert _project_ids(engine) == ["kept-project"]
    assert _differences(engine) == []


def test_db_upgrade_adopts_a_database_made_before_migrations(engine: Engine, empty_db_url: str) -> None:
    """Rooms created by `create_all` (no version table) are taken as at the baseline and upgraded."""
    upgrade(engine, baseline_revision())  # the baseline's tables, then forget the version
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))
    _add_project(engine, "legacy-project")
    result = CliRunner().invoke(db, ["upgrade", "--url", empty_db_url])
    assert result.exit_code == 0, result.output
    assert "from revision " + baseline_revision() in result.output or baseline_revision() == head_revision()
    assert _revision(engine) == head_revision() and _project_ids(engine) == ["legacy-project"]


def test_a_database_from_a_newer_dataroom_is_refused(engine: Engine, empty_db_url: str) -> None:
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffffffff'"))
    with pytest.raises(SchemaError, match="newer version"):
        engine_for(empty_db_url)


def test_postgresql_behind_head_is_refused_until_db_upgrade(postgres_url: str) -> None:
    """Replicas share the database: the services never migrate it on their own."""
    assert baseline_revision() != head_revision()  # migrations 0002-0004 exist: a database can be behind head
    behind = baseline_revision()
    engine = create_registry_engine(postgres_url)
    upgrade(engine, behind)
    engine.dispose()
    with pytest.raises(SchemaError, match=r"run `dataroom db upgrade`") as refused:
        engine_for(postgres_url)
    assert behind in str(refused.value) and "127.0.0.1" not in str(refused.value)
    assert CliRunner().invoke(db, ["upgrade", "--url", postgres_url]).exit_code == 0
    assert _revision(engine_for(postgres_url)) == head_revision()


def test_sqlite_behind_head_is_upgraded_on_first_use(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    engine = create_registry_engine(url)
    upgrade(engine, baseline_revision())
    _add_project(engine, "local-project")
    engine.dispose()
    live = engine_for(url)
    assert _revision(live) == head_revision() and _project_ids(live) == ["local-project"]


def test_a_failed_upgrade_names_no_password_nor_host() -> None:
    url = "postgresql://registry:s3cret-password@127.0.0.1:9/registry"  # port 9 (discard): nothing listens
    result = CliRunner().invoke(db, ["upgrade", "--url", url])
    assert result.exit_code == 1
    assert "migration failed" in result.output
    assert "s3cret" not in result.output and "127.0.0.1" not in result.output


def test_unreachable_database_in_db_current_names_no_password_nor_host() -> None:
    result = CliRunner().invoke(db, ["current", "--url", "postgresql://registry:s3cret-password@127.0.0.1:9/registry"])
    assert result.exit_code == 1 and "cannot read the registry database" in result.output
    assert "s3cret" not in result.output and "127.0.0.1" not in result.output


def test_concurrent_upgrades_of_one_postgresql_database_take_turns(postgres_url: str) -> None:
    """Two replicas' deploy steps at once: the advisory lock makes the second wait, then find head."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import create_engine

    # a lock wait longer than 20 s is an error, so that interleaved DDL fails instead of hanging
    engines = [create_engine(postgres_url, connect_args={"options": "-c lock_timeout=20000"}) for _ in range(3)]
    try:
        with ThreadPoolExecutor(len(engines)) as pool:
            results = list(pool.map(upgrade, engines))
        assert sorted(r.before is None for r in results) == [False, False, True]  # one built it, the others found it
        assert {r.after for r in results} == {head_revision()}
        assert _differences(engines[0]) == []
    finally:
        for engine in engines:
            engine.dispose()


def test_db_upgrade_adopts_an_unversioned_database_of_the_current_models(engine: Engine, empty_db_url: str) -> None:
    with engine.begin() as connection:
        Base.metadata.create_all(connection)  # what engine_for did before migrations existed
    _add_project(engine, "current-project")
    result = CliRunner().invoke(db, ["upgrade", "--url", empty_db_url])
    assert result.exit_code == 0, result.output
    assert _revision(engine) == head_revision() and _project_ids(engine) == ["current-project"]
    assert _differences(engine) == []


def test_processes_preparing_one_new_sqlite_registry_at_once_all_succeed(tmp_path) -> None:
    """Brokers started together on a fresh SQLite registry: one builds the schema, the others wait."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    code = (
        "from sqlalchemy import create_engine; from dataroom.registry.schema import prepare; "
        f"prepare(create_engine({url!r}))"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors

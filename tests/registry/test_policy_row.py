"""The light read of a project's row (``dataroom tables``, issue 17 item 7) is the Registry's read.

:mod:`dataroom.registry.policy_row` reads SQLite with the standard library so that ``dataroom tables``
starts without SQLAlchemy and Alembic. These tests try to make it answer differently from
:meth:`Registry.policy_project`: projects in every state, NULL columns, a schema behind or ahead,
an undecodable row, a missing file, another database (a real PostgreSQL server), odd URLs.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import JSON, Boolean, Date, String

from dataroom.catalog import Catalog, Project, load_catalog
from dataroom.registry.models import ProjectRow
from dataroom.registry.policy_row import (
    HEAD_REVISION,
    POLICY_COLUMNS,
    UNREAD,
    policy_project,
    read_policy_project,
    sqlite_file,
)
from dataroom.registry.schema import SchemaError, alembic_config, head_revision
from dataroom.registry.service import Registry, create_registry_engine, dispose_engines

IDS = ["remediation-acme", "remediation-benchmark", "proposed-only", "rejected-one", "spark-aggregates", "no-output-policy"]


@pytest.fixture
def catalog(dataroom_home: Path) -> Catalog:
    return load_catalog(dataroom_home / "catalog.toml")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    yield f"sqlite:///{tmp_path / 'registry.sqlite'}"
    dispose_engines()


def _every_state(url: str, catalog: Catalog) -> Registry:
    """Seeded projects, then one of each state and of each stored shape (NULL output policy, an engine)."""
    reg = Registry(url, catalog)
    reg.propose("alice", "proposed-only", justification="why", tenants=["acme"], tables=["acme.findings"])
    reg.propose("bob", "rejected-one", justification="why", tenants=["globex"], tables=["globex.findings"])
    reg.reject("sam", "rejected-one", reason="too broad")
    reg.propose("alice", "spark-aggregates", justification="why", tenants=["acme", "globex"],
                tables=["acme.findings", "globex.findings"], multi_tenant=True, column_classes=["public"])
    reg.approve("sam", "spark-aggregates", justification="fine", output_policy={"min_rows": 25, "min_tenants": 2}, engine="spark")
    reg.propose("alice", "no-output-policy", justification="why", tenants=["acme"], tables=["reference.cve"])
    reg.revoke("sam", "remediation-acme", reason="ended")
    reg.expire("sam", "remediation-benchmark", reason="ended early")
    with reg.engine.begin() as conn:  # a row as migration 0003 left it: no output policy stored
        conn.execute(ProjectRow.__table__.update().where(ProjectRow.__table__.c.id == "no-output-policy").values(output_policy=None))
    return reg


def test_head_revision_is_alembics() -> None:
    assert HEAD_REVISION == head_revision(), "a new migration: set HEAD_REVISION in dataroom/registry/migrations/__init__.py"


def test_policy_columns_are_the_orms_and_the_projects() -> None:
    kinds = {JSON: "json", Boolean: "bool", Date: "date", String: "text"}  # Text is a String
    for name, kind in POLICY_COLUMNS.items():
        column_type = ProjectRow.__table__.c[name].type
        assert [k for cls, k in kinds.items() if isinstance(column_type, cls)] == [kind], (name, column_type)
    assert set(POLICY_COLUMNS) == set(Project.model_fields)


def test_the_light_read_is_the_registrys_read_in_every_state(sqlite_url: str, catalog: Catalog) -> None:
    reg = _every_state(sqlite_url, catalog)
    seen = {}
    for project_id in [*catalog.projects, *IDS]:
        light = read_policy_project(sqlite_url, project_id)
        assert light is not UNREAD, project_id  # it answered: not a comparison of two Registry reads
        assert light == reg.policy_project(project_id), project_id
        assert light == policy_project(sqlite_url, catalog, project_id)
        seen[project_id] = light
    assert seen["remediation-acme"].status == "revoked"
    assert seen["remediation-benchmark"].is_expired() and seen["rejected-one"].status == "rejected"
    assert seen["spark-aggregates"].engine == "spark" and seen["spark-aggregates"].output_policy == {"min_rows": 25, "min_tenants": 2}
    assert seen["no-output-policy"].output_policy is None and seen["proposed-only"].status == "proposed"
    for unknown in ("no-such-project", "x' OR '1'='1", "remediation-acme' --", ""):
        assert read_policy_project(sqlite_url, unknown) is None
        assert reg.policy_project(unknown) is None


def test_the_light_read_writes_no_data(sqlite_url: str, catalog: Catalog) -> None:
    _every_state(sqlite_url, catalog)
    dispose_engines()
    path = Path(sqlite_file(sqlite_url))
    files = [path, path.with_name(path.name + "-wal")]
    before = [f.read_bytes() if f.exists() else b"" for f in files]  # an empty WAL (a reader opens one) holds no data
    assert read_policy_project(sqlite_url, "spark-aggregates") not in (None, UNREAD)
    assert [f.read_bytes() if f.exists() else b"" for f in files] == before


def test_a_missing_registry_is_the_registrys_to_create(sqlite_url: str, catalog: Catalog) -> None:
    path = Path(sqlite_file(sqlite_url))
    assert read_policy_project(sqlite_url, "remediation-acme") is UNREAD
    assert not path.exists()  # the light read created nothing
    assert policy_project(sqlite_url, catalog, "remediation-acme") is None  # created, not seeded: the service seeds
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD_REVISION,)]
    assert read_policy_project(sqlite_url, "remediation-acme") is None  # now the light read answers


def test_a_schema_behind_head_is_upgraded_as_before(sqlite_url: str, catalog: Catalog) -> None:
    from alembic import command

    _every_state(sqlite_url, catalog)
    dispose_engines()
    engine = create_registry_engine(sqlite_url)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0003")
    engine.dispose()
    assert read_policy_project(sqlite_url, "proposed-only") is UNREAD
    found = policy_project(sqlite_url, catalog, "proposed-only")  # the Registry's path upgrades SQLite, as always
    assert found is not None and found.status == "proposed" and found.engine is None
    assert read_policy_project(sqlite_url, "proposed-only") == found


def test_a_schema_ahead_is_refused_as_before(sqlite_url: str, catalog: Catalog) -> None:
    _every_state(sqlite_url, catalog)
    dispose_engines()
    with sqlite3.connect(Path(sqlite_file(sqlite_url))) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    assert read_policy_project(sqlite_url, "proposed-only") is UNREAD
    with pytest.raises(SchemaError, match="9999"):
        policy_project(sqlite_url, catalog, "proposed-only")


@pytest.mark.parametrize(
    ("column", "stored"),
    [("members", "not json"), ("multi_tenant", 7), ("expires", "31/01/2027"), ("column_classes", '["secret"]')],
)
def test_an_undecodable_row_gets_the_registrys_answer(sqlite_url: str, catalog: Catalog, column: str, stored: object) -> None:
    _every_state(sqlite_url, catalog)
    dispose_engines()
    with sqlite3.connect(Path(sqlite_file(sqlite_url))) as conn:
        conn.execute(f"UPDATE projects SET {column} = ? WHERE id = 'proposed-only'", (stored,))  # noqa: S608
    assert read_policy_project(sqlite_url, "proposed-only") is UNREAD
    try:
        expected = Registry(sqlite_url, catalog, seed=False).policy_project("proposed-only")
    except Exception as exc:  # noqa: BLE001 - whatever the Registry raises, policy_project raises the same
        with pytest.raises(type(exc)):
            policy_project(sqlite_url, catalog, "proposed-only")
    else:
        assert policy_project(sqlite_url, catalog, "proposed-only") == expected


def test_other_databases_take_the_registrys_path(postgres_url: str, catalog: Catalog) -> None:
    reg = _every_state(postgres_url, catalog)
    libpq = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    for project_id in [*catalog.projects, *IDS, "no-such-project"]:
        assert read_policy_project(postgres_url, project_id) is UNREAD
        assert read_policy_project(libpq, project_id) is UNREAD
        assert policy_project(postgres_url, catalog, project_id) == reg.policy_project(project_id), project_id
    assert policy_project(libpq, catalog, "spark-aggregates").engine == "spark"
    assert policy_project(postgres_url, catalog, "remediation-benchmark").expires < dt.date.today()


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:////abs/registry.sqlite", "/abs/registry.sqlite"),
        ("sqlite:///relative/registry.sqlite", "relative/registry.sqlite"),
        ("sqlite://", None),
        ("sqlite:///", None),
        ("sqlite:///:memory:", None),
        ("sqlite+pysqlite:///x.sqlite", None),
        ("sqlite:///x.sqlite?mode=ro", None),
        ("sqlite:///a%20b.sqlite", None),
        ("postgresql://u@h/db", None),
        ("postgres://u@h/db", None),
    ],
)
def test_only_a_plain_sqlite_url_is_read_lightly(url: str, path: str | None) -> None:
    assert sqlite_file(url) == path
    if path is None:
        assert read_policy_project(url, "remediation-acme") is UNREAD

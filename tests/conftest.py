"""Shared fixtures: a data room home with demo data, and a query service over it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dataroom.demo_data import generate
from dataroom.pipeline import QueryService
from dataroom.settings import Settings


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo data generated once per test run; tests copy it so each gets a fresh audit log."""
    home = tmp_path_factory.mktemp("demo-template")
    generate(home, rows=2000)
    return home


@pytest.fixture
def dataroom_home(demo_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh $DATAROOM_HOME holding the demo data and catalog, set in the environment."""
    home = tmp_path / "home"
    shutil.copytree(demo_template, home)
    monkeypatch.setenv("DATAROOM_HOME", str(home))
    return home


@pytest.fixture
def service(dataroom_home: Path):
    svc = QueryService(Settings())
    yield svc
    svc.close()


# -- a real PostgreSQL server for the registry (tests/support/postgres.py) ---------------------------
@pytest.fixture(scope="session")
def postgres_server():
    """One server per test session, started on first use and stopped at the session's end."""
    from tests.support.postgres import PostgresUnavailable, postgres_server

    try:
        with postgres_server() as server:
            yield server
    except PostgresUnavailable as exc:
        pytest.fail(str(exc))


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A new, empty database on the session's server, dropped after the test."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    from dataroom.registry import dispose_engines

    dispose_engines()
    postgres_server.drop_database(name)

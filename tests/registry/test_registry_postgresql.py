"""The registry on a real PostgreSQL server: the rows the services write are in the server, not a file."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from dataroom.pipeline import QueryService
from dataroom.settings import Settings


def test_query_service_keeps_its_registry_in_postgresql(
    dataroom_home: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAROOM_REGISTRY_URL", postgres_url.replace("postgresql+psycopg://", "postgresql://"))
    svc = QueryService(Settings())
    try:
        proposed = svc.registry.propose("alice", "pg-backed-project", tables=["globex.findings"], tenants=["globex"],
                                        justification="stored on PostgreSQL")
        assert proposed.status == "proposed"
    finally:
        svc.close()
    assert not (dataroom_home / "registry.sqlite").exists()
    with psycopg.connect(postgres_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        status = conn.execute("SELECT status FROM projects WHERE id = 'pg-backed-project'").fetchone()
        events = conn.execute("SELECT kind FROM project_events WHERE project_id = 'pg-backed-project'").fetchall()
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert status == ("proposed",)
    assert ("proposed",) in events
    from dataroom.registry.schema import head_revision

    assert version == (head_revision(),)

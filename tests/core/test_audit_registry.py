"""Registry writes are evidence: an approval edited, a row inserted or deleted in the database is named by verify."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from dataroom.audit.registry_events import STREAM_NAME, adopt_registry, registry_stream, verify_registry
from dataroom.pipeline import QueryService
from dataroom.registry.models import Base


def _check(service: QueryService):  # type: ignore[no-untyped-def]
    return verify_registry(service.audit, service.registry.engine, Base.metadata)


def _approve_globex(service: QueryService) -> None:
    service.registry.propose("alice", "remediation-globex", justification="compare globex", tenants=["globex"], tables=["globex.findings"])
    service.registry.approve("sam", "remediation-globex", justification="one tenant", column_classes=["public", "internal"])


def test_every_registry_write_is_recorded_in_its_own_signed_stream(service: QueryService) -> None:
    _approve_globex(service)
    events = [r for r in registry_stream(service.audit).records() if r["type"] == "registry_event"]
    approvals = [e for e in events if e["table"] == "project_events" and e["row"]["kind"] == "approved"]
    assert [(e["op"], e["row"]["project_id"], e["row"]["actor"]) for e in approvals] == [("insert", "remediation-globex", "sam")]
    project = [e for e in events if e["table"] == "projects" and e["key"] == {"id": "remediation-globex"}]
    assert [(e["op"], e["row"]["status"]) for e in project] == [("insert", "proposed"), ("update", "approved")]
    check = _check(service)
    assert check.ok and check.rows == check.events - 1, check.describe()  # one project row written twice
    assert check.stream is not None and check.stream.checkpoints >= 3  # signed after every commit
    assert all(r.get("type") != "registry_event" for r in service.audit.records())  # the query stream keeps its shapes


def test_editing_an_approval_in_the_database_is_named(service: QueryService, dataroom_home: Path) -> None:
    _approve_globex(service)
    db = sqlite3.connect(dataroom_home / "registry.sqlite")
    db.execute("UPDATE projects SET decided_by = 'mallory' WHERE id = 'remediation-globex'")
    db.execute("UPDATE project_events SET actor = 'mallory' WHERE kind = 'approved' AND project_id = 'remediation-globex'")
    db.execute("INSERT INTO project_events (project_id, at, actor, kind, note, details) VALUES ('remediation-acme', '2026-01-01', 'sam', 'approved', 'backdated', '{}')")
    db.execute("DELETE FROM project_events WHERE kind = 'proposed' AND project_id = 'remediation-globex'")
    db.commit()
    check = _check(service)
    assert not check.ok
    text = check.describe()
    assert 'projects {"id":"remediation-globex"}: edited in the database' in text and "column(s) decided_by" in text
    assert "column(s) actor" in text
    assert "inserted behind the registry's back" in text and "deleted behind the registry's back" in text
    assert len(check.problems) == 4


def test_cli_verify_names_a_registry_edit_and_adopt_records_an_old_registry(service: QueryService, dataroom_home: Path) -> None:
    _approve_globex(service)
    service.close()
    env = {**os.environ, "DATAROOM_HOME": str(dataroom_home)}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dataroom.cli", "audit", *args], capture_output=True, text=True, env=env, timeout=120)

    ok = cli("verify")
    assert ok.returncode == 0 and "registry OK" in ok.stdout, ok.stdout + ok.stderr
    db = sqlite3.connect(dataroom_home / "registry.sqlite")
    db.execute("UPDATE projects SET column_classes = '[\"public\", \"internal\", \"pii\"]' WHERE id = 'remediation-globex'")
    db.commit()
    broken = cli("verify")
    assert broken.returncode == 1 and "registry TAMPERED" in broken.stdout and "column(s) column_classes" in broken.stdout
    assert cli("verify", "--no-registry").returncode == 0

    # a registry older than its stream: named until adopted, explicitly
    (dataroom_home / "audit" / STREAM_NAME).unlink()
    for suffix in (".head", ".checkpoints"):
        (dataroom_home / "audit" / (STREAM_NAME + suffix)).unlink()
    db.execute("UPDATE projects SET column_classes = '[\"public\", \"internal\"]' WHERE id = 'remediation-globex'")
    db.commit()
    assert "never recorded" in cli("verify").stdout
    adopted = cli("adopt", "--actor", "admin", "--registry")
    assert adopted.returncode == 0 and "adopted" in adopted.stdout
    after = cli("verify")
    assert after.returncode == 0 and "adopted, not recorded as written" in after.stdout, after.stdout


def test_adopt_leaves_edited_rows_named(service: QueryService, dataroom_home: Path) -> None:
    _approve_globex(service)
    db = sqlite3.connect(dataroom_home / "registry.sqlite")
    db.execute("UPDATE projects SET requester = 'sam' WHERE id = 'remediation-globex'")
    db.commit()
    assert adopt_registry(service.audit, service.registry.engine, Base.metadata, "admin") == 0  # every row was recorded once
    assert "column(s) requester" in _check(service).describe()

"""The registry's answers to the query policy are reused only while the registry is unchanged.

The pipeline reads a project's row and its quarantines on every query; on SQLite they come from
memory until SQLite's ``data_version`` moves (state_cache.py). These tests try to get a query
through on a stale answer: a revocation by another process, a raw write by another connection,
a change made by this process, an expiry that passes while the row sits in the cache.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dataroom.pipeline import Outcome, QueryService
from dataroom.registry.state_cache import RegistryStateCache

PROJECT = "remediation-acme"
SQL = "SELECT count(*) AS n FROM acme.findings"


@pytest.fixture
def reads(service: QueryService, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The project ids the registry actually read from the database (cache misses)."""
    seen: list[str] = []
    original = service.registry._read_policy_project

    def counted(project_id: str):
        seen.append(project_id)
        return original(project_id)

    monkeypatch.setattr(service.registry, "_read_policy_project", counted)
    return seen


def registry_file(service: QueryService) -> str:
    return service.settings.registry_database_url.removeprefix("sqlite:///")


def outcome(service: QueryService, user: str = "alice") -> tuple[Outcome, list[str]]:
    result = service.run(user, PROJECT, SQL)
    return result.outcome, [r.code for r in result.reasons]


def test_queries_reuse_the_project_read_until_the_registry_changes(service: QueryService, reads: list[str]) -> None:
    for _ in range(5):
        assert outcome(service)[0] is Outcome.ALLOWED
    assert reads == [PROJECT]  # read once, then served from memory
    service.registry.add_member("sam", PROJECT, "mallory")
    assert outcome(service, "mallory")[0] is Outcome.ALLOWED
    assert reads == [PROJECT, PROJECT]  # the write moved the version: read again


def test_a_revocation_by_another_process_denies_the_next_query(service: QueryService, dataroom_home: Path) -> None:
    assert outcome(service)[0] is Outcome.ALLOWED
    assert outcome(service)[0] is Outcome.ALLOWED  # now cached
    subprocess.run(
        [sys.executable, "-m", "dataroom.cli", "project", "revoke", PROJECT, "--as", "sam", "--reason", "red team"],
        check=True, capture_output=True,
    )
    assert outcome(service) == (Outcome.DENIED, ["project_not_approved"])


def test_a_raw_write_by_another_connection_is_seen(service: QueryService) -> None:
    """Not through the Registry at all: a plain sqlite3 connection (as any other program would) empties the members."""
    assert outcome(service)[0] is Outcome.ALLOWED
    with sqlite3.connect(registry_file(service)) as other:
        other.execute("UPDATE projects SET members = '[]' WHERE id = ?", (PROJECT,))
    assert outcome(service) == (Outcome.DENIED, ["project_not_available"])


def test_a_revocation_in_this_process_denies_the_next_query(service: QueryService) -> None:
    """The broker's own review endpoints write through this process's SQLAlchemy pool: another connection too."""
    assert outcome(service)[0] is Outcome.ALLOWED
    service.registry.revoke("sam", PROJECT, reason="red team")
    assert outcome(service) == (Outcome.DENIED, ["project_not_approved"])


def test_expiry_is_decided_when_the_query_runs_not_when_the_row_was_read(service: QueryService, reads: list[str], monkeypatch) -> None:
    today = dt.date.today()
    service.registry.expire("sam", PROJECT, reason="ends today", on=today)
    assert outcome(service)[0] is Outcome.ALLOWED  # the last day is still allowed
    assert outcome(service)[0] is Outcome.ALLOWED
    misses = len(reads)

    class Tomorrow(dt.date):
        @classmethod
        def today(cls) -> dt.date:
            return today + dt.timedelta(days=1)

    monkeypatch.setattr("dataroom.pipeline.dt.date", Tomorrow)
    assert outcome(service) == (Outcome.DENIED, ["project_expired"])
    assert len(reads) == misses  # the cached row: the policy, not the cache, applies the date


def test_a_registry_the_cache_cannot_open_is_read_every_time(tmp_path: Path) -> None:
    cache = RegistryStateCache(str(tmp_path / "missing.sqlite"))
    loads = []
    for n in range(3):
        assert cache.get("k", lambda n=n: loads.append(n) or n) == n
    assert loads == [0, 1, 2]
    assert not (tmp_path / "missing.sqlite").exists()  # read-only: never creates the file


def test_other_databases_are_read_every_time() -> None:
    cache = RegistryStateCache(None)  # e.g. PostgreSQL: a version check would be a round trip itself
    loads = []
    for n in range(3):
        cache.get("k", lambda n=n: loads.append(n))
    assert loads == [0, 1, 2]


def test_an_answer_loaded_across_a_commit_is_not_kept(tmp_path: Path) -> None:
    """A load that raced a commit may be stale: it is not kept, even when another reader has already
    seen the new version (the broker serves queries from several threads)."""
    path = tmp_path / "r.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (v INTEGER)")
        db.execute("INSERT INTO t VALUES (1)")
    cache = RegistryStateCache(str(path))

    def read() -> int:
        with sqlite3.connect(path) as db:
            value = db.execute("SELECT v FROM t").fetchone()[0]
        if value == 1:  # a commit lands right after this load read its answer ...
            with sqlite3.connect(path) as db:
                db.execute("UPDATE t SET v = 2")
            cache.get("other", lambda: None)  # ... and another thread's query sees the new version
        return value

    assert cache.get("v", read) == 1
    assert cache.get("v", read) == 2  # not the stale 1
    assert cache.get("v", lambda: pytest.fail("should be cached now")) == 2

"""Worker pools: a session keeps as many warm workers as it has had statements running at once.

Before, a session kept two idle workers whatever its load, so every statement beyond the second
of a burst paid a worker start-up (a fresh interpreter importing DuckDB: ~0.3 s) and a broker
under 50 clients spent its time starting and stopping processes.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from dataroom.catalog import load_catalog
from dataroom.engines.supervisor import IDLE_WORKERS_PER_SESSION, MAX_IDLE_WORKERS_PER_SESSION, SupervisedEngine
from dataroom.settings import Settings


@pytest.fixture
def engine(dataroom_home: Path):
    catalog = load_catalog(dataroom_home / "catalog.toml")
    eng = SupervisedEngine(Settings(threads=1, memory_limit="256MB", worker_memory_limit="1GiB"), catalog)
    yield eng, catalog.projects["remediation-acme"]
    eng.close()


def burst(eng: SupervisedEngine, project, size: int) -> set[int]:
    """``size`` statements running at once, as the broker's threads would hold them; returns the workers' pids."""
    held = []
    for _ in range(size):
        pool, worker = eng._checkout("alice", project)
        held.append((pool, worker or eng._new_worker(pool.spec)))
    for pool, worker in held:
        eng._checkin("alice", pool, worker)
    return {worker.process.pid for _, worker in held}


def wait_until(condition, timeout_s: float = 30.0) -> None:
    """Poll ``condition`` until it holds (the tests' threads and worker start-ups run on their own time)."""
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def idle_pids(eng: SupervisedEngine, project) -> set[int]:
    return {w.process.pid for w in eng._pools[("alice", project.id)].idle}


def test_a_burst_keeps_its_workers_warm(engine) -> None:
    eng, project = engine
    first = burst(eng, project, 4)
    assert idle_pids(eng, project) == first  # all four kept, not two
    again = burst(eng, project, 4)
    assert again == first  # the next burst starts no worker
    assert eng.execute("alice", project, "SELECT count(*) AS n FROM acme.findings").table.num_rows == 1


def test_a_quiet_session_keeps_what_it_used_and_a_storm_no_more_than_the_cap(engine) -> None:
    eng, project = engine
    burst(eng, project, 1)
    assert len(idle_pids(eng, project)) == 1  # one statement at a time: one worker
    burst(eng, project, MAX_IDLE_WORKERS_PER_SESSION + 2)
    assert len(idle_pids(eng, project)) == MAX_IDLE_WORKERS_PER_SESSION
    assert IDLE_WORKERS_PER_SESSION <= MAX_IDLE_WORKERS_PER_SESSION


def test_a_worker_that_cannot_start_does_not_count_as_busy(engine, monkeypatch: pytest.MonkeyPatch) -> None:
    eng, project = engine
    burst(eng, project, 1)
    eng._pools[("alice", project.id)].idle.clear()

    def fail(spec):
        raise OSError("no process")

    monkeypatch.setattr(eng, "_new_worker", fail)
    with pytest.raises(OSError):
        eng.execute("alice", project, "SELECT 1 AS x")
    assert eng._pools[("alice", project.id)].busy == 0


def test_a_statement_takes_a_worker_handed_back_before_a_new_one_has_started(engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A start-up takes 0.3-1 s; another statement's worker usually comes back within milliseconds.
    Here the start is held until the statement has been answered: it must not wait for it."""
    eng, project = engine
    burst(eng, project, 1)
    pool, held = eng._checkout("alice", project)  # the session's only worker, busy
    start_began, release_start = threading.Event(), threading.Event()
    real_new_worker = eng._new_worker

    def slow_start(spec):
        start_began.set()
        release_start.wait(60)
        return real_new_worker(spec)

    monkeypatch.setattr(eng, "_new_worker", slow_start)
    answer: dict = {}
    statement = threading.Thread(target=lambda: answer.update(result=eng.execute("alice", project, "SELECT 1 AS x")))
    statement.start()
    assert start_began.wait(30)  # no idle worker: a start began...
    eng._checkin("alice", pool, held)  # ...but the busy worker came back first
    statement.join(30)
    assert not statement.is_alive(), "the statement waited for the new worker"
    assert answer["result"].table.num_rows == 1
    release_start.set()
    wait_until(lambda: len(idle_pids(eng, project)) == 2)  # the new worker, once started, stays idle in the session
    assert len(idle_pids(eng, project)) == 2 and held.process.pid in idle_pids(eng, project)


def test_statements_waiting_for_a_start_that_fails_get_its_error(engine, monkeypatch: pytest.MonkeyPatch) -> None:
    eng, project = engine
    burst(eng, project, 1)
    pool, held = eng._checkout("alice", project)

    def fail(spec):
        raise OSError("no process")

    monkeypatch.setattr(eng, "_new_worker", fail)
    with pytest.raises(OSError):
        eng.execute("alice", project, "SELECT 1 AS x")
    monkeypatch.undo()  # starts work again: a later statement tries again instead of reusing the old error
    eng._pools[("alice", project.id)].idle.clear()
    assert eng.execute("alice", project, "SELECT 1 AS x").table.num_rows == 1
    eng._checkin("alice", pool, held)


def test_a_worker_handed_back_reaches_its_own_sessions_waiting_statement(engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Statements of two sessions wait at once (their starts held); a worker handed back to one
    session must wake that session's statement, whoever began waiting first."""
    eng, project = engine
    burst(eng, project, 1)
    eng.execute("bob", project, "SELECT 1 AS x")  # bob's session: one worker
    bob_pool, bob_held = eng._checkout("bob", project)
    alice_pool, alice_held = eng._checkout("alice", project)
    release_starts = threading.Event()
    real_new_worker = eng._new_worker

    def held_start(spec):
        release_starts.wait(60)
        return real_new_worker(spec)

    monkeypatch.setattr(eng, "_new_worker", held_start)
    bob_statement = threading.Thread(target=eng.execute, args=("bob", project, "SELECT 1 AS x"))
    bob_statement.start()
    wait_until(lambda: bob_pool.waiting)  # bob's statement waits first
    answer: dict = {}
    alice_statement = threading.Thread(target=lambda: answer.update(result=eng.execute("alice", project, "SELECT 2 AS x")))
    alice_statement.start()
    wait_until(lambda: alice_pool.waiting)
    eng._checkin("alice", alice_pool, alice_held)
    alice_statement.join(30)
    assert not alice_statement.is_alive(), "alice's statement missed the worker handed back to her session"
    assert answer["result"].table.to_pylist() == [{"x": 2}]
    release_starts.set()
    eng._checkin("bob", bob_pool, bob_held)
    bob_statement.join(60)
    assert not bob_statement.is_alive()

"""Supervised execution: each statement runs in a worker process the parent can always stop.

:class:`SupervisedEngine` keeps, per (user, project), a few idle workers that hold the project's
session (reused between queries: no start-up on the hot path) and hands each statement to one
of them. What the parent guarantees, whatever the statement does:

* **time** — the worker interrupts the statement at the time limit; if it has not answered
  ``kill_grace_s`` later (a native loop that never checks for interrupts) the parent kills it.
  Either way the answer is a ``time_limit`` refusal.
* **memory** — the worker's address space is capped by the OS (``worker_memory_limit``); an
  allocation past it fails inside the worker, which answers ``memory_limit`` and exits.
* **crashes** — a worker that dies (an abort in a native library, the OOM killer) is an
  ``engine_crash`` refusal; the next statement gets a fresh worker.
* **cancellation** — the caller's :class:`~dataroom.engines.Cancellation` kills the worker.

Workers are fresh interpreters (``python -m dataroom.engines.worker``), never forks of the broker,
whose threads make ``fork`` unsafe. One spare worker is started ahead of need (it imports DuckDB
while the pipeline analyses and decides), so a new session costs a message, not a start-up. A
statement that finds none of its session's workers idle does not wait for a start-up either
(0.3-1 s): one worker is started for the session in the background, and the statement takes
whichever comes first, a worker another statement hands back (usually within milliseconds) or
the new one; a new one nobody took stays as an idle worker of the session.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from dataroom.catalog import Catalog, Project, visible_columns
from dataroom.engines.cancellation import Cancellation
from dataroom.engines.base import Engine, ExecutionResult
from dataroom.engines.duckdb_session import SessionSpec, TableSource
from dataroom.engines.errors import EngineFailure, EngineRefusal, SqlError
from dataroom.engines.gauge import MemoryGauge
from dataroom.engines.results import RefusedResult, receive_table
from dataroom.engines.visible_copies import visible_copy
from dataroom.engines.worker import memory_message
from dataroom.outputs.finish import Finish
from dataroom.settings import Settings
from dataroom.storage import local_parquet_files

SESSION_TTL_S = 900  # specs (and their workers) are rebuilt after this: source files may change
# Idle workers a session keeps: at least this many, and as many as it has had statements running at
# once since it was built (a burst of concurrent queries does not pay a worker start-up for each
# query beyond the second), but never more than the cap: each idle worker holds memory. The cap
# equals the broker's default number of query threads, so a busy broker's session stays warm.
IDLE_WORKERS_PER_SESSION = 2
MAX_IDLE_WORKERS_PER_SESSION = 8
WORKER_START_TIMEOUT_S = 120
# A worker that dies after taking this share of its budget (see gauge.py) ran out of memory in
# native code that does not report it (an allocation failure outside DuckDB's checks can end in
# SIGSEGV or SIGABRT): it is answered as memory_limit, not engine_crash.
MEMORY_DEATH_SHARE = 0.5
S3_SETTINGS = ("aws_role_arn", "aws_external_id", "aws_region", "aws_endpoint_url")


class Worker:
    """One worker process and the parent's end of its socket. Started blank; :meth:`open` gives it a session."""

    def __init__(self, budget: int, test_hooks: bool) -> None:
        parent, child = socket.socketpair()
        self.gauge = MemoryGauge()
        args = [sys.executable, "-m", "dataroom.engines.worker", str(child.fileno()), str(budget), str(self.gauge.fd)]
        if test_hooks:
            args.append("--test-hooks")
        self.process = subprocess.Popen(args, pass_fds=(child.fileno(), self.gauge.fd), stdin=subprocess.DEVNULL)
        self.budget = budget
        child.close()
        self._conn = Connection(parent.detach())
        self.usable = True

    def _send(self, **message: object) -> None:
        self._conn.send_bytes(json.dumps(message).encode())

    def _receive(self) -> dict:
        try:
            return json.loads(self._conn.recv_bytes())
        except (EOFError, OSError):
            raise self._died() from None

    def _died(self) -> EngineRefusal:
        """The worker is gone: reap it, and say whether it ran out of memory or crashed."""
        self.usable = False
        code = self._reap()
        if self.gauge.used_beyond_base() >= MEMORY_DEATH_SHARE * self.budget:
            return EngineRefusal("memory_limit", memory_message(self.budget) + " (the engine stopped while allocating)")
        how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
        return EngineRefusal("engine_crash", f"the query engine stopped unexpectedly ({how}) and the query was not completed")

    def _reap(self) -> int | None:
        """Exit code of the dead worker (waits up to 5 s, then kills)."""
        try:
            return self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.returncode

    def open(self, spec: SessionSpec, s3: dict | None) -> None:
        """Build the project's session in the worker (raises EngineFailure if it cannot)."""
        try:
            self._send(op="open", spec=spec.to_dict(), s3=s3)
        except OSError:
            raise EngineFailure("the query engine did not start", "WorkerStart") from None
        if not self._conn.poll(WORKER_START_TIMEOUT_S):
            self.kill()
            raise EngineFailure("the query engine did not start in time", "WorkerStartTimeout")
        try:
            reply = self._receive()
        except EngineRefusal as crash:
            raise EngineFailure(crash.message, "WorkerStart") from None
        if reply.get("reply") != "ready":
            self.kill()
            raise EngineFailure(reply.get("message", "the query engine could not open the project"), reply.get("kind", "WorkerStart"))

    def run(
        self, sql: str, *, max_rows: int, timeout_s: float, grace_s: float, cancellation: Cancellation, finish: Finish | None = None
    ) -> ExecutionResult:
        with cancellation.running(self.kill):
            try:
                self._send(op="run", sql=sql, max_rows=max_rows, timeout_s=timeout_s, finish=finish.to_dict() if finish else None)
            except OSError:  # it died while idle (e.g. the kernel's OOM killer)
                raise self._died() from None
            if not self._conn.poll(timeout_s + grace_s):
                self.kill()
                raise EngineRefusal("time_limit", f"the query ran longer than the time limit ({timeout_s:g} s) and was stopped: filter or aggregate more")
            try:
                reply = self._receive()
                if reply.get("reply") == "ok":
                    table, ipc = receive_table(self._conn, int(reply["size"]), bool(reply.get("inline")))
                    return ExecutionResult(table, ipc, reply.get("groups"), reply.get("suppressed"))
            except RefusedResult as exc:  # a worker that misbehaves is not used again
                self.kill()
                raise EngineFailure(str(exc), type(exc).__name__) from None
            except (EOFError, OSError):
                raise self._died() from None
            except EngineRefusal:
                if cancellation.requested:
                    raise EngineRefusal("cancelled", "the query was cancelled while it ran") from None
                raise
        kind = reply.get("reply")
        if kind == "refused":
            if reply["code"] == "memory_limit":  # the worker exits after it
                self.usable = False
            raise EngineRefusal(reply["code"], reply["message"])
        if kind == "sql_error":
            raise SqlError(reply["message"], reply["kind"])
        raise EngineFailure(reply.get("message", "the query engine failed"), reply.get("kind", "EngineFailure"))

    def stop(self) -> None:
        """Ask the worker to exit (it closes its session); kill it if it does not."""
        self.usable = False
        try:
            self._send(op="stop")
            self.process.wait(2)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()
        self._conn.close()
        self.gauge.close()

    def kill(self) -> None:
        self.usable = False
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def discard(self) -> None:
        """Make sure the process is gone and its socket and gauge closed (after a kill, crash or memory refusal)."""
        self.kill()
        self._conn.close()
        self.gauge.close()


@dataclass
class _Pool:
    project: Project
    spec: SessionSpec
    created: float = field(default_factory=time.monotonic)
    idle: list[Worker] = field(default_factory=list)
    busy: int = 0  # workers of this pool running a statement now
    peak: int = 0  # the most that ran at once
    starting: bool = False  # a worker is being started for statements that found none idle
    start_error: BaseException | None = None  # why the last such start failed
    waiting: int = 0  # statements waiting for an idle worker

    def take_idle(self, dead: list[Worker]) -> Worker | None:
        """An idle worker that is still alive (the caller holds the engine's lock); dead ones go to ``dead``."""
        while self.idle:
            worker = self.idle.pop()
            if worker.process.poll() is None:
                return worker
            dead.append(worker)  # died while idle (e.g. the kernel's OOM killer)
        return None

    def keeps_another_idle(self) -> bool:
        return len(self.idle) < min(max(IDLE_WORKERS_PER_SESSION, self.peak), MAX_IDLE_WORKERS_PER_SESSION)

    def current(self, project: Project) -> bool:
        return self.project == project and time.monotonic() - self.created < SESSION_TTL_S


class SupervisedEngine(Engine):
    """Runs decided statements in worker processes, one pool of workers per (user, project)."""

    name = "duckdb"

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self._pools: dict[tuple[str, str], _Pool] = {}
        self._spare: Worker | None = None
        self._lock = threading.Lock()
        self._returned = threading.Condition(self._lock)  # an idle worker was added to a pool
        remote = any(t.is_remote for t in catalog.tables.values())
        self._s3 = {k: getattr(settings, k) for k in S3_SETTINGS} if remote else None

    def prewarm(self) -> None:
        """Start the spare worker if there is none (it starts while the caller does other work)."""
        with self._lock:
            if self._spare is None or self._spare.process.poll() is not None:
                self._spare = Worker(int(self.settings.worker_memory_limit), self.settings.engine_test_hooks)

    def _new_worker(self, spec: SessionSpec) -> Worker:
        """The spare if there is a live one (taken atomically: concurrent callers never share it), else a new worker."""
        with self._lock:
            worker, self._spare = self._spare, None
        if worker is not None and worker.process.poll() is not None:
            worker.discard()
            worker = None
        if worker is None:
            worker = Worker(int(self.settings.worker_memory_limit), self.settings.engine_test_hooks)
        worker.open(spec, self._s3)
        return worker

    def session_spec(self, project: Project) -> SessionSpec:
        """The project's tables as a worker builds them: visible columns, copies or ``s3://``."""
        tables = []
        for table in self.catalog.project_tables(project):
            columns = visible_columns(table, project)
            source = TableSource(table.schema_name, table.table_name, tuple(columns))
            location = self.catalog.resolve_location(table)
            if table.is_remote:
                tables.append(TableSource(**{**source.__dict__, "location": location}))
            else:
                unique = [c for c in table.unique if c in columns]  # checked when the copy is built
                copies = visible_copy(table.name, local_parquet_files(location), columns, self.settings.cache_dir, unique)
                tables.append(TableSource(**{**source.__dict__, "files": tuple(copies)}))
        return SessionSpec(project.id, tuple(tables), self.settings.memory_limit, self.settings.threads)

    def _checkout(self, user: str, project: Project) -> tuple[_Pool, Worker | None]:
        """The session's pool (rebuilt when the project changed or aged) and an idle live worker, if any."""
        key = (user, project.id)
        dropped: list[Worker] = []
        worker = None
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None and not pool.current(project):
                dropped, pool = pool.idle, None
            if pool is not None:
                worker = pool.take_idle(dropped)
        for old in dropped:
            old.discard()
        if pool is None:
            pool = _Pool(project, self.session_spec(project))
            with self._lock:
                self._pools[key] = pool
        with self._lock:
            pool.busy += 1
            pool.peak = max(pool.peak, pool.busy)
        return pool, worker

    def _worker_for(self, user: str, pool: _Pool) -> Worker:
        """For a statement that found no idle worker: the first one the pool gets, handed back or new (see the module's docstring)."""
        waited = False
        with self._returned:
            pool.waiting += 1
            try:
                while True:
                    dead: list[Worker] = []
                    worker = pool.take_idle(dead)
                    for gone in dead:
                        gone.discard()  # already reaped by poll(): nothing blocks under the lock
                    if worker is not None:
                        return worker
                    if waited and pool.start_error is not None:  # the start it waited for failed
                        raise pool.start_error
                    if not pool.starting:
                        pool.starting, pool.start_error = True, None
                        threading.Thread(target=self._start_for, args=(user, pool), name="worker-start", daemon=True).start()
                    self._returned.wait()
                    waited = True
            finally:
                pool.waiting -= 1

    def _start_for(self, user: str, pool: _Pool) -> None:
        """Start a worker for ``pool``'s waiting statements; it stays as an idle worker of the pool if still current."""
        try:
            worker = self._new_worker(pool.spec)
        except BaseException as exc:  # the statements waiting for it get the error
            with self._returned:
                pool.starting, pool.start_error = False, exc
                self._returned.notify_all()
            return
        with self._returned:
            pool.starting = False
            if pool.waiting or self._is_current(user, pool):
                pool.idle.append(worker)
                self._returned.notify_all()  # all: the condition is shared by every session's pool
                return
        worker.stop()  # the pool was replaced or closed meanwhile and nobody waits

    def _is_current(self, user: str, pool: _Pool) -> bool:
        """``pool`` is still the session's (not replaced by a changed project or its age, not closed); lock held."""
        return self._pools.get((user, pool.project.id)) is pool

    def _checkin(self, user: str, pool: _Pool, worker: Worker | None) -> None:
        """Back to the pool's idle workers, or stopped; ``None``: no worker could be started."""
        with self._lock:
            pool.busy -= 1
            if worker is None:
                return
            if worker.usable and self._is_current(user, pool) and pool.keeps_another_idle():
                pool.idle.append(worker)
                self._returned.notify_all()
                return
        if worker.usable:
            worker.stop()
        else:
            worker.discard()

    def execute(
        self, user: str, project: Project, sql: str, cancellation: Cancellation | None = None, finish: Finish | None = None
    ) -> ExecutionResult:
        """Run one decided statement (then ``finish`` over its groups, under an output policy); raises EngineRefusal, SqlError or EngineFailure."""
        cancellation = cancellation or Cancellation()
        if cancellation.requested:
            raise EngineRefusal("cancelled", "the query was cancelled before it ran")
        pool, worker = self._checkout(user, project)
        try:
            if worker is None:
                worker = self._worker_for(user, pool)
            return worker.run(
                sql,
                max_rows=self.settings.max_rows,
                timeout_s=self.settings.query_timeout_s,
                grace_s=self.settings.kill_grace_s,
                cancellation=cancellation,
                finish=finish,
            )
        finally:
            self._checkin(user, pool, worker)

    def close(self) -> None:
        with self._lock:
            workers = [w for pool in self._pools.values() for w in pool.idle]
            if self._spare is not None:
                workers.append(self._spare)
            self._pools.clear()
            self._spare = None
        for worker in workers:
            worker.stop()


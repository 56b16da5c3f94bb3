"""The execution worker: a child process that holds one project's session and runs statements.

The broker (or the CLI) never executes SQL in its own process. A worker is started as
``python -m dataroom.engines.worker <fd> <memory budget bytes> <gauge fd> [--test-hooks]`` (a fresh
interpreter: nothing of the parent's memory, threads or modules — notably not regopy, whose
allocator reserves hundreds of GB of address space). Once the session is open it caps its
address space with ``RLIMIT_AS`` at what it has mapped so far (shared libraries and DuckDB's
reservations, about 1 GB of mostly untouched virtual space) plus the memory budget (DuckDB's ``memory_limit``
governs only its buffer manager; a list built by ``unnest(range(...))`` is not
buffer-managed). It disables core dumps (a core would hold data), then talks to its parent over
the inherited socket ``fd``.

Messages are JSON (the parent never unpickles anything a worker sends: a worker runs hostile SQL
and must not be able to run code in the broker), one per ``send_bytes``::

    parent → worker  {"op": "open", "spec": {...}, "s3": {...} | null}    worker → parent  {"reply": "ready"}
    parent → worker  {"op": "run", "sql": ..., "max_rows": n, "timeout_s": t}
    worker → parent  {"reply": "ok", "rows": n, "size": bytes, "inline": bool} then the result as one
                     Arrow IPC stream: in the next message (inline, small results) or in a sealed
                     memfd passed over the socket (see results.py)
                     {"reply": "refused", "code": ..., "message": ...}
                     {"reply": "sql_error" | "failure", "kind": ..., "message": ...}
    parent → worker  {"op": "stop"}

After a memory refusal the worker exits: its heap may be in any state.
"""

from __future__ import annotations

import faulthandler
import json
import os
import resource
import sys
from multiprocessing.connection import Connection

from dataroom.engines.gauge import MemoryGauge
from dataroom.engines.heap import keep_freed_heap

# A test-only hook (the ``engine_test_hooks`` setting): a statement holding this marker aborts
# the worker the way a crash inside a native library would.
TEST_ABORT_MARKER = "dataroom:test-abort-worker"


def memory_message(limit_bytes: int) -> str:
    return (
        f"the query needed more memory than its limit ({limit_bytes / 2**30:.1f} GiB) and was stopped: "
        "aggregate or filter more, or select fewer columns"
    )


# Allocation failures that surface as other DuckDB errors (e.g. a SerializationException whose
# message is "memory allocation failed"): under the OS cap, these are the memory limit too.
_OUT_OF_MEMORY_TEXT = ("memory allocation failed", "could not allocate", "bad_alloc", "out of memory")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def mapped_bytes() -> int:
    """The process's current virtual size (``VmSize``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def serve(conn: Connection, budget: int, gauge: MemoryGauge, test_hooks: bool) -> None:
    """Open the session the parent describes, then answer ``run`` requests until ``stop`` or EOF."""
    import duckdb

    from dataroom.engines.duckdb_session import Session, SessionSpec
    from dataroom.engines.errors import EngineRefusal
    from dataroom.engines.results import ResultWriter, send_result, write_result
    from dataroom.outputs.finish import Finish, finish_groups

    user_sql_errors = (
        duckdb.BinderException,
        duckdb.CatalogException,
        duckdb.ParserException,
        duckdb.ConversionException,
        duckdb.InvalidInputException,
        duckdb.OutOfRangeException,
        duckdb.TypeMismatchException,
        duckdb.NotImplementedException,
    )

    def reply(**fields: object) -> None:
        conn.send_bytes(json.dumps(fields).encode())

    try:
        request = json.loads(conn.recv_bytes())
        if request.get("op") != "open":
            return
        session = Session(SessionSpec.from_dict(request["spec"]), _s3(request.get("s3")))
        base = mapped_bytes()  # DuckDB's own reservations at open (~0.6 GB virtual) are not the query's
        resource.setrlimit(resource.RLIMIT_AS, (base + budget, base + budget))
        gauge.start_sampling(base)
    except (EOFError, OSError):
        return
    except Exception as exc:  # reported to the parent, which answers the query with it
        reply(reply="failure", kind=type(exc).__name__, message=_first_line(exc))
        return
    reply(reply="ready")
    while True:
        try:
            request = json.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        if request.get("op") != "run":
            return
        sql = request["sql"]
        if test_hooks and TEST_ABORT_MARKER in sql:
            os.abort()
        try:
            with gauge.busy():
                limits = {"max_rows": request["max_rows"], "timeout_s": request["timeout_s"]}
                groups = suppressed = None
                if request.get("finish"):  # an output policy: keep the supported groups (dataroom/outputs/aggregation.py)
                    table = session.execute(sql, **limits)
                    groups = table.num_rows
                    table, suppressed = finish_groups(table, Finish.from_dict(request["finish"]))
                    result = write_result(table)
                    rows = table.num_rows
                else:  # written as it is produced; finished and sent only once the session has checked it
                    writer = ResultWriter()
                    try:
                        session.execute_into(sql, writer, **limits)
                    except BaseException:
                        writer.discard()
                        raise
                    result = writer.finish()
                    rows = writer.rows
            reply(reply="ok", rows=rows, size=result.size, inline=result.inline is not None, groups=groups, suppressed=suppressed)
            send_result(conn, result)
        except EngineRefusal as refusal:
            reply(reply="refused", code=refusal.code, message=refusal.message)
        except Exception as exc:
            kind = classify(exc, user_sql_errors, duckdb.PermissionException)
            if kind == "memory_limit":
                reply(reply="refused", code="memory_limit", message=memory_message(budget))
                return
            if kind == "engine_guard":  # a file, setting or extension outside the session
                reply(reply="refused", code="engine_guard", message="the statement reaches outside the project's tables (files, settings or extensions)")
            else:
                reply(reply=kind, kind=type(exc).__name__, message=_first_line(exc))
        session.prepare_reruns()  # off the query's path: the answer has left


def classify(exc: BaseException, user_sql_errors: tuple, permission_error: type) -> str:
    """``memory_limit``, ``engine_guard``, ``sql_error`` (the user's SQL) or ``failure`` (ours)."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryException":
        return "memory_limit"
    if isinstance(exc, permission_error):
        return "engine_guard"
    if isinstance(exc, user_sql_errors):
        return "sql_error"
    return "memory_limit" if any(t in str(exc).lower() for t in _OUT_OF_MEMORY_TEXT) else "failure"


def _s3(settings: dict | None):
    if not settings:
        return None
    from dataroom.settings import Settings
    from dataroom.storage import S3Access

    return S3Access(Settings.model_validate(settings))


def main(argv: list[str]) -> None:
    fd, budget, gauge = int(argv[0]), int(argv[1]), MemoryGauge(int(argv[2]))
    # Arrow's default pool (jemalloc) reserves address space in large chunks and then fails small
    # mallocs under RLIMIT_AS far below the cap; the system allocator grows as it is used.
    os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"
    keep_freed_heap()  # an operator's working memory stays with the worker between queries (heap.py)
    faulthandler.enable()  # a crash leaves a Python traceback in the broker's log (stderr)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    conn = Connection(fd)
    try:
        serve(conn, budget, gauge, "--test-hooks" in argv[3:])
    finally:
        conn.close()
    os._exit(0)  # no interpreter teardown: nothing to flush, and no binding-layer leak reports


if __name__ == "__main__":
    main(sys.argv[1:])

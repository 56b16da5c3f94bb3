"""One query, run through the pipeline in a worker thread, cancellable from the event loop.

The pipeline executes on the calling thread's DuckDB cursor of the (user, project) session. A
job fetches that cursor in its worker thread before running, so that :meth:`QueryJob.cancel`
(called from the event loop when the client disconnects) can interrupt exactly this query.
The interrupt is repeated until the worker returns, because the disconnect may arrive while the
pipeline is still deciding or auditing; the pipeline then audits the query as failed
(``InterruptException``). Interrupting an idle cursor has no effect on its next query.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from dataroom.pipeline import Outcome, QueryOutcome, QueryService

IPC_CHUNK_BYTES = 4 << 20


def arrow_ipc_stream(table: pa.Table) -> pa.Buffer:
    """The result as one Arrow IPC stream (schema, record batches, end-of-stream)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


@dataclass
class QueryJob:
    service: QueryService
    user: str
    groups: list[str]
    project_id: str
    sql: str
    cancelled: threading.Event = field(default_factory=threading.Event)
    outcome: QueryOutcome | None = None
    payload: pa.Buffer | None = None
    _cursor: Any = None

    def run(self) -> QueryOutcome:
        """Worker thread: the governed pipeline, then the result serialised as Arrow IPC."""
        self._cursor = self._this_threads_cursor()
        outcome = self.service.run(self.user, self.project_id, self.sql, groups=self.groups, client="broker")
        self.outcome = outcome
        if outcome.outcome is Outcome.ALLOWED and outcome.table is not None and not self.cancelled.is_set():
            self.payload = arrow_ipc_stream(outcome.table)
        return outcome

    def _this_threads_cursor(self) -> Any:
        """The cursor ``Session.execute`` will use on this thread, when the query may execute at all.

        Only for members of an existing project (anyone else is refused before execution), so
        that no session is opened for a caller the policy will deny.
        """
        project = self.service.project_for(self.project_id)
        if project is None or self.user not in project.members:
            return None
        session = self.service.session(self.user, project)
        cursor_for_thread = getattr(session, "_cursor", None)  # engine.Session: per-thread cursors
        return cursor_for_thread() if cursor_for_thread else session

    def cancel(self) -> None:
        """Event loop: stop the query (idempotent; call repeatedly until the worker returns)."""
        self.cancelled.set()
        target = self._cursor
        if target is None:
            return
        try:
            if hasattr(target, "interrupt"):
                target.interrupt()
            else:
                target.interrupt_all()
        except Exception:  # a closed cursor or session: nothing left to stop
            pass

"""One query, run through the pipeline in a worker thread, cancellable from the event loop.

The job hands the pipeline a :class:`~dataroom.pipeline.Cancellation`; when the client disconnects
the event loop calls :meth:`QueryJob.cancel`, which stops the query before it executes or
stops its worker while it runs. The pipeline audits it as refused (``cancelled``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pyarrow as pa

from dataroom.pipeline import Cancellation, Outcome, QueryOutcome, QueryService


@dataclass(eq=False)
class QueryJob:
    service: QueryService
    user: str
    groups: list[str]
    project_id: str
    sql: str
    cancellation: Cancellation = field(default_factory=Cancellation)
    done: threading.Event = field(default_factory=threading.Event)
    outcome: QueryOutcome | None = None

    def run(self) -> QueryOutcome:
        """Worker thread: the governed pipeline."""
        try:
            self.outcome = self.service.run(
                self.user, self.project_id, self.sql, groups=self.groups, client="broker", cancellation=self.cancellation
            )
            return self.outcome
        finally:
            self.done.set()

    @property
    def payload(self) -> pa.Buffer | None:
        """The Arrow IPC bytes the audit record's ``result_digest`` was computed over."""
        outcome = self.outcome
        if outcome is None or outcome.outcome is not Outcome.ALLOWED or outcome.result is None:
            return None
        return outcome.result.ipc

    @property
    def cancelled(self) -> bool:
        return self.cancellation.requested

    def cancel(self) -> None:
        """Event loop: stop the query (idempotent)."""
        self.cancellation.cancel()

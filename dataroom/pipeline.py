"""The one path every query takes: scope → analyse → decide → audit → execute → check → audit.

Both front doors (the ``dataroom query`` CLI in-process, the broker service over HTTP) call
:meth:`QueryService.run`; there is no other way to execute SQL over the data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import duckdb
import pyarrow as pa

from dataroom.analysis import QueryFacts, analyse
from dataroom.audit import AuditLog, decision_record, new_decision_id, utc_now
from dataroom.catalog import Catalog, Project, load_catalog
from dataroom.engine import Cancellation, PlanRejected, QueryResult, ResultTooLarge, Session, withheld_columns
from dataroom.policy import Decision, PolicyEngine, Reason, make_policy_engine
from dataroom.settings import Settings
from dataroom.storage import S3Access

SESSION_TTL_S = 900

# DuckDB errors that mean "your SQL is wrong" (exit 2), as opposed to a failure of the data room.
USER_SQL_ERRORS = (
    duckdb.BinderException,
    duckdb.CatalogException,
    duckdb.ParserException,
    duckdb.ConversionException,
    duckdb.InvalidInputException,
    duckdb.OutOfRangeException,
    duckdb.TypeMismatchException,
    duckdb.NotImplementedException,
)


class Outcome(str, Enum):
    """How a query attempt ended; the CLI's exit codes follow it."""

    ALLOWED = "allowed"  # decided and executed, result returned (exit 0)
    DENIED = "denied"  # refused by policy (exit 3)
    INVALID = "invalid"  # bad input: unparseable SQL, unknown user or project (exit 2)
    ERROR = "error"  # allowed but failed to execute, or the policy could not decide (exit 1)

    @property
    def exit_code(self) -> int:
        return {"allowed": 0, "denied": 3, "invalid": 2, "error": 1}[self.value]


@dataclass
class QueryOutcome:
    outcome: Outcome
    decision_id: str
    reasons: list[Reason] = field(default_factory=list)
    result: QueryResult | None = None
    error: str | None = None
    facts: QueryFacts | None = None

    @property
    def table(self) -> pa.Table | None:
        return self.result.table if self.result else None

    def summary(self) -> dict[str, Any]:
        """JSON-friendly description (no result rows), as the CLI's and broker's JSON output."""
        return {
            "decision_id": self.decision_id,
            "outcome": self.outcome.value,
            "allowed": self.outcome is Outcome.ALLOWED,
            "reasons": [r.__dict__ for r in self.reasons],
            "error": self.error,
            "rows": self.result.rows if self.result else None,
            "withheld_columns": [w.__dict__ for w in self.result.withheld] if self.result else [],
        }


def arrow_ipc_stream(table: pa.Table) -> pa.Buffer:
    """The result as one Arrow IPC stream (schema, record batches, end-of-stream).

    Sized first (a mock stream only counts bytes), then written once into a buffer of exactly
    that size: no regrowth copies. The audit hashes these bytes and the broker sends them, so a
    client can match what it received to its audit record.
    """
    mock = pa.MockOutputStream()
    with pa.ipc.new_stream(mock, table.schema) as writer:
        writer.write_table(table)
    buffer = pa.allocate_buffer(mock.size())
    with pa.ipc.new_stream(pa.FixedSizeBufferWriter(buffer), table.schema) as writer:
        writer.write_table(table)
    return buffer


class QueryService:
    """Holds the catalog, the policy engine, the audit log and the per-(user, project) sessions."""

    def __init__(self, settings: Settings | None = None, catalog: Catalog | None = None, policy: PolicyEngine | None = None) -> None:
        self.settings = settings or Settings()
        self.catalog = catalog or load_catalog(self.settings.catalog_file)
        self.policy = policy or make_policy_engine(self.settings.policy_engine, self.settings.opa_url)
        self.audit = AuditLog(self.settings.audit_file)
        # Projects come from the registry (seeded from the catalog on first use).
        from dataroom.registry import Registry

        self.registry = Registry(self.settings.registry_database_url, self.catalog, self.audit)
        self._s3 = S3Access(self.settings)
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    # -- step 2: scope -------------------------------------------------------------------------
    def project_for(self, project_id: str) -> Project | None:
        """The project as the policy sees it: the registry's row, read by primary key on every query."""
        return self.registry.policy_project(project_id)

    def policy_input(self, user: str, groups: list[str], project: Project | None, facts: QueryFacts) -> dict[str, Any]:
        proj = None
        if project is not None:
            proj = {
                "id": project.id,
                "members": project.members,
                "tenants": project.tenants,
                "tables": [t.lower() for t in project.tables],
                "multi_tenant": project.multi_tenant,
                "status": project.status,
                "expires": project.expires.isoformat(),
                "visible_classes": sorted(c.value for c in project.visible_classes()),
            }
        return {
            "user": {"name": user, "groups": groups},
            "project": proj,
            "facts": facts.to_dict(),
            "today": dt.date.today().isoformat(),
        }

    # -- the pipeline ---------------------------------------------------------------------------
    def run(
        self,
        user: str,
        project_id: str,
        sql: str,
        groups: list[str] | None = None,
        client: str = "cli",
        cancellation: Cancellation | None = None,
    ) -> QueryOutcome:
        decision_id = new_decision_id()
        known_user = self.catalog.users.get(user)
        if groups is None:
            groups = list(known_user.groups) if known_user else []
        project = self.project_for(project_id)
        facts = analyse(sql, self.catalog)  # step 3 (never raises for bad SQL)
        policy_input = self.policy_input(user, groups, project, facts)

        invalid = []
        if known_user is None:
            invalid.append(Reason("unknown_user", f"user {user!r} is not in the catalog"))
        if project is None:
            invalid.append(Reason("unknown_project", f"project {project_id!r} does not exist (see `dataroom project list`)"))
        decision: Decision | None = None
        error = None
        if invalid:
            outcome, reasons = Outcome.INVALID, invalid
        else:
            try:  # step 4
                decision = self.policy.decide(policy_input)
                reasons = decision.reasons
                if decision.allow:
                    outcome = Outcome.ALLOWED
                elif facts.parse_error:
                    outcome = Outcome.INVALID
                else:
                    outcome = Outcome.DENIED
            except Exception as exc:  # the policy could not decide: fail closed
                outcome, reasons, error = Outcome.ERROR, [], f"policy decision failed: {exc}"

        self.audit.append(  # step 5: durable before anything executes
            decision_record(
                decision_id=decision_id,
                path="dataroom/query/main",
                input_doc={**policy_input, "project_id": project_id, "sql": sql, "client": client},
                allow=outcome is Outcome.ALLOWED,
                reasons=[r.__dict__ for r in reasons],
                outcome=outcome.value,
                error=error,
                revision=self.policy.revision,
                labels={"engine": decision.engine if decision else None},
                metrics={"timer_policy_eval_ms": round(decision.eval_ms, 3) if decision else None},
            )
        )
        result = QueryOutcome(outcome, decision_id, list(reasons), error=error, facts=facts)
        if outcome is not Outcome.ALLOWED:
            return result

        assert project is not None
        started = time.perf_counter()
        try:  # step 6 and 7 (row cap inside execute)
            session = self.session(user, project)
            table = session.execute(
                sql, max_rows=self.settings.max_rows, timeout_s=self.settings.query_timeout_s, cancellation=cancellation
            )
            withheld = []
            if facts.stars:
                star_tables = set(facts.tables)
                withheld = [w for t in self.catalog.project_tables(project) if t.name in star_tables for w in withheld_columns(t, project)]
            ipc = arrow_ipc_stream(table)
            result.result = QueryResult(table, (time.perf_counter() - started) * 1000, withheld, ipc)
            completion = {
                "status": "executed",
                "rows": table.num_rows,
                "bytes": table.nbytes,
                "result_digest": hashlib.sha256(memoryview(ipc)).hexdigest(),
            }
        except (ResultTooLarge, PlanRejected) as exc:  # the output check or the engine's own guard refused it
            code = "row_limit" if isinstance(exc, ResultTooLarge) else "engine_guard"
            result.outcome, result.reasons = Outcome.DENIED, [Reason(code, str(exc))]
            completion = {"status": "refused", "error": str(exc), "error_type": type(exc).__name__}
        except Exception as exc:
            user_error = isinstance(exc, USER_SQL_ERRORS)
            result.outcome, result.error = (Outcome.INVALID if user_error else Outcome.ERROR), _first_line(exc)
            completion = {"status": "failed", "error": result.error, "error_type": type(exc).__name__}
        self.audit.append(  # step 8
            {
                "type": "completion",
                "decision_id": decision_id,
                "timestamp": utc_now(),
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                **completion,
            }
        )
        return result

    def session(self, user: str, project: Project) -> Session:
        key = f"{user}\0{project.id}"
        with self._lock:
            session = self._sessions.get(key)
            if session is None or time.monotonic() - session.created > SESSION_TTL_S or session.project != project:
                if session is not None:
                    session.close()
                session = Session(
                    self.catalog, project, memory_limit=self.settings.memory_limit, threads=self.settings.threads, s3=self._s3
                )
                self._sessions[key] = session
            return session

    def close(self) -> None:
        with self._lock:
            for session in self._sessions.values():
                session.close()
            self._sessions.clear()
        self.audit.close()


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

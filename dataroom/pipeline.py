"""The one path every query takes: scope → analyse → decide → audit → execute → check → audit.

Both front doors (the ``dataroom query`` CLI in-process, the broker service over HTTP) call
:meth:`QueryService.run`; there is no other way to execute SQL over the data. Requests a front
door refuses before a query exists (a bad token, a malformed body, a flood) are recorded through
:meth:`QueryService.record_refusal`, and what a project may see is answered by
:meth:`QueryService.project_tables`: the front doors import neither the engine nor the audit log.

Every input is hostile: SQL, user and project arrive as arbitrary text and are checked
(:mod:`dataroom.redaction`) before anything else; whatever they hold, the attempt leaves exactly
one decision record. Every message that goes back out is scrubbed of storage locations.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import pyarrow as pa

from dataroom.analysis import QueryFacts, analyse
from dataroom.audit import AuditLog, decision_record, new_decision_id, utc_now
from dataroom.catalog import Catalog, Project, WithheldColumn, load_catalog, withheld_columns
from dataroom.engines import Cancellation, EngineRefusal, SqlError
from dataroom.engines.base import EngineChoice, engine_of
from dataroom.engines.errors import REFUSAL_CODES
from dataroom.engines.results import result_digest
from dataroom.engines.supervisor import SupervisedEngine
from dataroom.memo import BoundedCache
from dataroom.outputs.aggregation import OutputPlan, plan_output
from dataroom.outputs.policy import OutputPolicy
from dataroom.project_view import describe_tables
from dataroom.policy import Decision, PolicyEngine, Reason, make_policy_engine
from dataroom.redaction import InspectedText, inspect_text, scrub_paths
from dataroom.settings import Settings
from dataroom.suggestions import only_unknown_names, with_suggestions

__all__ = ["Cancellation", "Outcome", "QueryOutcome", "QueryResult", "QueryService", "Suppression"]

GENERIC_CONSTRAINED_ERROR = (
    "the query failed while computing its groups; under the project's output policy the engine's message is not shown, "
    "because it could describe a group that is suppressed (it is in the audit record for the security team)"
)
MAX_NAME_CHARS = 64  # user names and project ids (the registry's key width)
ANALYSIS_MEMO_SIZE = 1024  # analyses (and output plans) of recent SQL texts kept per service
REFUSAL_PATH = "dataroom/broker/authenticate"


class Outcome(str, Enum):
    """How a query attempt ended; the CLI's exit codes follow it."""

    ALLOWED = "allowed"  # decided and executed, result returned (exit 0)
    DENIED = "denied"  # refused by policy, a limit or the engine guard (exit 3)
    INVALID = "invalid"  # bad input: unparseable SQL or bytes, unknown user (exit 2)
    ERROR = "error"  # allowed but failed to execute, or the policy could not decide (exit 1)

    @property
    def exit_code(self) -> int:
        return {"allowed": 0, "denied": 3, "invalid": 2, "error": 1}[self.value]


@dataclass
class Suppression:
    """Groups an output policy held back: how many of how many, and the rule."""

    suppressed: int
    groups: int
    rule: str

    def note(self) -> str:
        return f"{self.suppressed} of {self.groups} result rows suppressed: {self.rule}"

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.suppressed, "of": self.groups, "rule": self.rule}


@dataclass
class QueryResult:
    table: pa.Table
    duration_ms: float
    withheld: list[WithheldColumn] = field(default_factory=list)
    ipc: pa.Buffer | None = None  # the result as one Arrow IPC stream: hashed for the audit, sent by the broker
    suppression: Suppression | None = None  # set when the project has an output policy

    @property
    def rows(self) -> int:
        return self.table.num_rows

    @property
    def bytes(self) -> int:
        return self.table.nbytes


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

    @property
    def label(self) -> str:
        """How to introduce the outcome to a person: denied by policy, refused by a limit, ..."""
        if self.outcome is Outcome.DENIED and self.reasons and all(r.code in REFUSAL_CODES for r in self.reasons):
            return "refused"
        return {"allowed": "allowed", "denied": "denied by policy", "invalid": "bad input", "error": "error"}[self.outcome.value]

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
            "suppressed": self.result.suppression.to_dict() if self.result and self.result.suppression else None,
        }


def project_unavailable(project_id: str) -> Reason:
    """One answer for a project that does not exist and one the caller may not use (no oracle)."""
    return Reason(
        "project_not_available",
        f"project {project_id!r} does not exist or you are not a member of it: see your projects with "
        "`dataroom project list` or room.projects()",
    )


class QueryService:
    """Holds the catalog, the policy engine, the audit log, the registry and the execution engine."""

    def __init__(self, settings: Settings | None = None, catalog: Catalog | None = None, policy: PolicyEngine | None = None) -> None:
        self.settings = settings or Settings()
        self.catalog = catalog or load_catalog(self.settings.catalog_file)
        self.policy = policy or make_policy_engine(self.settings.policy_engine, self.settings.opa_url, self.settings.policy_memo_size)
        self.audit = AuditLog.from_settings(self.settings)  # signs checkpoints; close() signs the last
        from dataroom.registry import Registry

        self.registry = Registry(self.settings.registry_database_url, self.catalog, self.audit)
        self.engine = SupervisedEngine(self.settings, self.catalog)
        self.engines = EngineChoice(self.settings, self.catalog, self.engine)  # per project: Project.engine, else default_engine
        self._recent_facts: BoundedCache[str, QueryFacts] = BoundedCache(ANALYSIS_MEMO_SIZE)
        self._recent_plans: BoundedCache[tuple, OutputPlan | None] = BoundedCache(ANALYSIS_MEMO_SIZE)
        # Storage roots scrubbed from every message that goes out (the patterns catch the rest).
        roots = {str(self.settings.home), str(self.settings.home.resolve()), str(self.settings.cache_dir)}
        roots |= {self.catalog.resolve_location(t) for t in self.catalog.tables.values()}
        self._storage_roots = tuple(roots)

    # -- step 2: scope -------------------------------------------------------------------------
    def project_for(self, project_id: str) -> Project | None:
        """The project as the policy sees it (the registry's row; see Registry.policy_state)."""
        return self._policy_state(inspect_text(project_id, max_chars=MAX_NAME_CHARS, what="the project id"))[0]

    def _policy_state(self, project_id: InspectedText) -> tuple[Project | None, list[dict[str, str]]]:
        """The project and its quarantines; a project id that is not even valid text is no project (never sent to the database)."""
        return (None, []) if project_id.problem is not None else self.registry.policy_state(project_id.text)

    def policy_input(
        self,
        user: str,
        groups: list[str],
        project: Project | None,
        facts: QueryFacts,
        project_id: str = "",
        output: OutputPlan | None = None,
        quarantines: list[dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        """The query policy's input; ``quarantines`` as read with the project (else read here)."""
        if quarantines is None:
            quarantines = self.registry.quarantines(project.id) if project is not None else []
        proj = None
        if project is not None:
            output_policy = OutputPolicy.for_project(project)
            proj = {
                "id": project.id,
                "members": project.members,
                "tenants": project.tenants,
                "tables": [t.lower() for t in project.tables],
                "multi_tenant": project.multi_tenant,
                "status": project.status,
                "expires": project.expires.isoformat(),
                "visible_classes": sorted(c.value for c in project.visible_classes()),
                "output_policy": output_policy.to_dict() if output_policy else None,
            }
        return {
            "user": {"name": user, "groups": groups},
            "project_id": project_id,
            "project": proj,
            "quarantines": quarantines,  # tenants a model alert withholds
            "facts": facts.to_dict(),
            "output": output.facts() if output else None,  # how the result's support is computed (outputs/aggregation.py)
            "today": dt.date.today().isoformat(),
        }

    def public_message(self, message: str) -> str:
        """``message`` as it may leave the data room: no storage locations."""
        return scrub_paths(message, self._storage_roots)

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
        self.engine.prewarm()  # a spare worker starts while this thread analyses and decides
        text = inspect_text(sql, max_chars=self.settings.max_sql_chars)
        who = inspect_text(user, max_chars=MAX_NAME_CHARS, what="the user name")
        where = inspect_text(project_id, max_chars=MAX_NAME_CHARS, what="the project id")
        known_user = self.catalog.users.get(user) if who.problem is None else None
        if groups is None:
            groups = list(known_user.groups) if known_user else []
        project, quarantines = self._policy_state(where)
        facts = self._analyse(sql) if text.problem is None else QueryFacts(parse_error=text.problem)
        output = self._plan_output(sql, project, facts)
        policy_input = self.policy_input(who.stored, groups, project, facts, where.stored, output, quarantines if project is not None else [])

        invalid = [Reason("bad_input", p) for p in (text.problem, who.problem) if p]
        if known_user is None and who.problem is None:
            invalid.append(Reason("unknown_user", f"user {user!r} is not in the catalog"))
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
                elif facts.parse_error and not any(r.code == "project_not_available" for r in reasons):
                    outcome = Outcome.INVALID
                elif project is not None and only_unknown_names(reasons, facts):  # a typo, not an attack: bad input
                    outcome, reasons = Outcome.INVALID, with_suggestions(reasons, facts, self.catalog, project)
                else:
                    outcome = Outcome.DENIED
            except Exception as exc:  # the policy could not decide: fail closed
                outcome, reasons, error = Outcome.ERROR, [], f"policy decision failed: {exc}"

        self.audit.append(  # step 5: durable before anything executes
            decision_record(
                decision_id=decision_id,
                path="dataroom/query/main",
                input_doc={**policy_input, **where.audit_fields("project_id"), **text.audit_fields("sql"), "client": client},
                allow=outcome is Outcome.ALLOWED,
                reasons=[r.__dict__ for r in reasons],
                outcome=outcome.value,
                error=error,
                revision=self.policy.revision,
                labels={"engine": decision.engine if decision else None, "policy_cache": ("hit" if decision.cached else "miss") if decision else None},
                metrics={"timer_policy_eval_ms": round(decision.eval_ms, 3) if decision else None},
            )
        )
        result = QueryOutcome(outcome, decision_id, self._public(reasons), error=self._public_error(error), facts=facts)
        if outcome is not Outcome.ALLOWED:
            return result
        assert project is not None
        self._execute(result, user, project, sql, cancellation, output)
        return result

    def _analyse(self, sql: str) -> QueryFacts:
        """Step 3 (the same text is analysed once: facts depend on the text and the catalog only);
        a defect in the analysis fails closed as unanalysable input, never as a traceback."""
        facts = self._recent_facts.get(sql)
        if facts is None:
            try:
                facts = analyse(sql, self.catalog)
            except Exception as exc:  # e.g. RecursionError on a pathological tree
                facts = QueryFacts(parse_error=f"the statement cannot be analysed ({type(exc).__name__})")
            self._recent_facts.put(sql, facts)
        return facts

    def _plan_output(self, sql: str, project: Project | None, facts: QueryFacts) -> OutputPlan | None:
        """Step 3b: under an output policy, the statement rewritten to carry each group's support."""
        if project is None or facts.parse_error or facts.statement_kinds != ["SELECT"]:
            return None
        key = (sql, json.dumps(project.output_policy, sort_keys=True), project.multi_tenant, tuple(project.tenants))
        plan = self._recent_plans.get(key)
        if plan is None:
            plan = plan_output(sql, self.catalog, project)
            self._recent_plans.put(key, plan)  # a plan depends on the text, the catalog and these project fields only
        return plan

    def _execute(
        self, result: QueryOutcome, user: str, project: Project, sql: str, cancellation: Cancellation | None, output: OutputPlan | None = None
    ) -> None:
        """Steps 6–8: run on the project's engine, check, and append the completion record."""
        started = time.perf_counter()
        completion: dict[str, Any]
        constrained: dict[str, Any] = {}
        if output is not None:
            assert output.groups_sql is not None and output.finish is not None  # the policy denies plans with a problem
            sql = output.groups_sql
            constrained = {**output.policy.to_dict(), "counting": output.counting, "executed_sql": sql}
        engine_name = engine_of(project, self.settings.default_engine)
        try:
            executed = self.engines.for_project(project).execute(user, project, sql, cancellation, output.finish if output else None)
            withheld = []
            if result.facts and result.facts.stars:
                star_tables = set(result.facts.tables)
                withheld = [w for t in self.catalog.project_tables(project) if t.name in star_tables for w in withheld_columns(t, project)]
            suppression = None
            if output is not None:
                suppression = Suppression(executed.suppressed or 0, executed.groups or 0, output.policy.describe())
                constrained.update(groups=executed.groups, suppressed=executed.suppressed)
            result.result = QueryResult(executed.table, (time.perf_counter() - started) * 1000, withheld, executed.ipc, suppression)
            completion = {
                "status": "executed",
                "rows": executed.table.num_rows,
                "bytes": executed.table.nbytes,
                "result_digest": result_digest(executed.ipc),
                **({"executed_sql": executed.executed_sql} if executed.executed_sql else {}),
            }
        except EngineRefusal as refusal:  # a limit, the guard, a crash or a cancel: the query's own fault
            result.outcome, result.reasons = Outcome.DENIED, self._public([Reason(refusal.code, refusal.message)])
            completion = {"status": "refused", "reason_code": refusal.code, "error": refusal.message, "error_type": "EngineRefusal"}
        except SqlError as exc:
            # Under an output policy an error may come from a group it suppresses (a cast that fails
            # on one tenant's value): its text stays in the audit record, the user gets a generic one.
            public = GENERIC_CONSTRAINED_ERROR if output is not None else self.public_message(exc.message)
            result.outcome, result.error = Outcome.INVALID, public
            completion = {"status": "failed", "error": exc.message, "error_type": exc.kind}
        except Exception as exc:  # EngineFailure, StorageError, or a defect: an internal error
            message = getattr(exc, "message", None) or _first_line(exc)
            result.outcome, result.error = Outcome.ERROR, self.public_message(message)
            completion = {"status": "failed", "error": message, "error_type": getattr(exc, "kind", type(exc).__name__)}
        self.audit.append(  # step 8: durable with the next decision record or checkpoint (see AuditLog.append)
            {
                "type": "completion",
                "decision_id": result.decision_id,
                "timestamp": utc_now(),
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                **completion,
                **({"engine": engine_name} if engine_name != "duckdb" else {}),
                **({"output_policy": constrained} if constrained else {}),
            },
            durable=False,
        )

    def _public(self, reasons: list[Reason]) -> list[Reason]:
        return [Reason(r.code, self.public_message(r.message)) for r in reasons]

    def _public_error(self, error: str | None) -> str | None:
        return self.public_message(error) if error else None

    # -- the other doors' records and questions ------------------------------------------------
    def record_refusal(
        self,
        *,
        outcome: str,
        reasons: list[Reason],
        request: dict[str, Any],
        http_status: int,
        user: str | None = None,
        groups: list[str] | None = None,
        project_id: str | None = None,
        sql: str | None = None,
        count: int = 1,
    ) -> str:
        """Record a request refused before a query existed (bad token, bad body, a flood); returns its decision id.

        ``count`` > 1 records a coalesced flood: one record standing for that many identical refusals.
        """
        if outcome not in ("denied", "invalid", "error"):
            raise ValueError(f"a refusal's outcome is denied, invalid or error, not {outcome!r}")
        fields: dict[str, Any] = {}
        for name, value in (("user", user), ("project_id", project_id), ("sql", sql)):
            if value is not None:
                fields.update(inspect_text(value, max_chars=self.settings.max_sql_chars).audit_fields(name))
        record = decision_record(
            path=REFUSAL_PATH,
            input_doc={
                "user": {"name": fields.pop("user", None), "groups": list(groups or [])},
                "project": None,
                "facts": None,
                "today": dt.date.today().isoformat(),
                "project_id": fields.pop("project_id", None),
                "sql": fields.pop("sql", None),
                **fields,
                "client": "broker",
                "request": {k: inspect_text(v, max_chars=1024).stored if isinstance(v, str) else v for k, v in request.items()},
            },
            allow=False,
            reasons=[r.__dict__ for r in reasons],
            outcome=outcome,
            revision=self.policy.revision,
            labels={"engine": "broker"},
            metrics={"http_status": http_status},
        )
        if count != 1:
            record["count"] = count
        return self.audit.append(record)["decision_id"]

    def project_tables(self, project_id: str, user: str | None = None) -> dict[str, Any] | None:
        """What ``project_id`` may see, column by column; None when it is not available to ``user``.

        ``user=None`` is the operator's view (the CLI run by the room's administrator).
        """
        project = self.project_for(project_id)
        if project is None or (user is not None and user not in project.members):
            return None
        return describe_tables(self.catalog, project)

    def close(self) -> None:
        self.engines.close()  # the DuckDB engine and, if one was used, the Spark engine
        self.audit.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

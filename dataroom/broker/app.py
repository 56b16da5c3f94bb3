"""The broker's tornado application: health, OpenAPI, whoami, projects, tables and queries.

Every endpoint except ``health`` and ``openapi.json`` authenticates the caller with the Hub
(:class:`~dataroom.broker.auth.BrokerAuth`). Queries run through the one pipeline in a thread
pool, so the event loop stays free for other callers; an allowed result is streamed as Arrow IPC
in chunks, a denial is a 403 with the decision and its reasons. A request refused before the
pipeline (401/403/400/503) is audited with :func:`~dataroom.broker.refusals.record_refusal`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tornado import web
from tornado.iostream import StreamClosedError
from tornado.log import app_log

from dataroom.broker.auth import BrokerAuth, Caller, Refused
from dataroom.broker.jobs import QueryJob
from dataroom.broker.openapi import ARROW_STREAM, openapi_spec
from dataroom.broker.refusals import record_refusal
from dataroom.engine import visible_columns, withheld_columns
from dataroom.pipeline import Outcome, QueryService
from dataroom.policy import Reason

MAX_SQL_CHARS = 100_000
MAX_BODY_BYTES = 1 << 20

STATUS_FOR_OUTCOME = {Outcome.DENIED: 403, Outcome.INVALID: 400, Outcome.ERROR: 500}


@dataclass
class BrokerState:
    """What every handler shares: the pipeline, the Hub auth, the worker pool."""

    service: QueryService
    auth: BrokerAuth
    executor: ThreadPoolExecutor
    prefix: str = "/"
    service_name: str = "broker"
    started: float = field(default_factory=time.time)
    jobs: set[QueryJob] = field(default_factory=set)


class BrokerHandler(web.RequestHandler):
    def initialize(self, state: BrokerState) -> None:
        self.state = state

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    def check_xsrf_cookie(self) -> None:
        """Token-authenticated API: no cookies are accepted, so no XSRF check either."""

    def write_json(self, status: int, payload: dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(payload, default=str))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.write_json(status_code, {"message": self._reason, "status": status_code})

    def _request_info(self) -> dict[str, Any]:
        return {
            "method": self.request.method,
            "path": self.request.path,
            "remote_ip": self.request.remote_ip,
            "forwarded_for": self.request.headers.get("X-Forwarded-For"),  # as sent (e.g. by the Hub's proxy): untrusted
            "user_agent": self.request.headers.get("User-Agent", ""),
        }

    async def refuse(
        self,
        status: int,
        outcome: str,
        reason: Reason,
        *,
        user: str | None = None,
        groups: list[str] | None = None,
        project_id: str | None = None,
        sql: str | None = None,
    ) -> None:
        """Audit the refusal (durably, off the event loop), then answer with its decision.

        The append runs on the loop's default executor, not the query pool, so that refusals are
        answered even while every query worker is busy.
        """
        loop = asyncio.get_running_loop()
        record = await loop.run_in_executor(
            None,
            lambda: record_refusal(
                self.state.service.audit,
                outcome=outcome,
                reasons=[reason],
                http_status=status,
                policy_revision=self.state.service.policy.revision,
                request=self._request_info(),
                user=user,
                groups=groups,
                project_id=project_id,
                sql=sql,
            ),
        )
        if status == 401:
            self.set_header("WWW-Authenticate", 'token realm="jupyterhub"')
        decision = {
            "decision_id": record["decision_id"],
            "outcome": outcome,
            "allowed": False,
            "reasons": [reason.__dict__],
            "error": None,
            "rows": None,
            "withheld_columns": [],
        }
        self.write_json(status, {"decision": decision, "message": reason.message})

    async def caller(self, project_id: str | None = None, sql: str | None = None) -> Caller | None:
        """The authenticated caller, or None after a refusal has been audited and sent."""
        try:
            return await self.state.auth.authenticate(self)
        except Refused as refused:
            app_log.warning("refused %s %s: %s", self.request.method, self.request.path, refused.reason.code)
            await self.refuse(
                refused.status,
                refused.outcome,
                refused.reason,
                user=refused.user,
                groups=refused.groups,
                project_id=project_id,
                sql=sql,
            )
            return None


class HealthHandler(BrokerHandler):
    def get(self) -> None:
        self.write_json(
            200,
            {
                "status": "ok",
                "service": self.state.service_name,
                "policy_revision": self.state.service.policy.revision,
                "uptime_s": round(time.time() - self.state.started, 1),
            },
        )


class IndexHandler(BrokerHandler):
    def get(self) -> None:
        prefix = self.state.prefix
        self.write_json(200, {"service": self.state.service_name, "openapi": f"{prefix}openapi.json", "health": f"{prefix}health"})


class OpenAPIHandler(BrokerHandler):
    def get(self) -> None:
        self.write_json(200, openapi_spec(self.state.prefix, self.state.service_name))


class WhoAmIHandler(BrokerHandler):
    async def get(self) -> None:
        caller = await self.caller()
        if caller is not None:
            self.write_json(200, {"name": caller.name, "groups": caller.groups})


def member_projects(service: QueryService, user: str) -> list[dict[str, Any]]:
    """The registry's projects ``user`` is a member of, with their effective status."""
    fields = ("id", "description", "tenants", "tables", "multi_tenant", "expires")
    infos = [p.to_dict() for p in service.registry.projects()]
    return [{**{k: p[k] for k in fields}, "status": p["effective_status"]} for p in infos if user in p["members"]]


class ProjectsHandler(BrokerHandler):
    async def get(self) -> None:
        caller = await self.caller()
        if caller is None:
            return
        loop = asyncio.get_running_loop()
        projects = await loop.run_in_executor(None, member_projects, self.state.service, caller.name)  # not behind queries
        self.write_json(200, {"user": caller.name, "projects": projects})


class TablesHandler(BrokerHandler):
    async def get(self, project_id: str) -> None:
        caller = await self.caller(project_id=project_id)
        if caller is None:
            return
        service = self.state.service
        loop = asyncio.get_running_loop()
        project = await loop.run_in_executor(None, service.project_for, project_id)
        if project is None:
            await self.refuse(
                404, "invalid", Reason("unknown_project", f"project {project_id!r} does not exist"), user=caller.name, groups=caller.groups, project_id=project_id
            )
            return
        if caller.name not in project.members:
            await self.refuse(
                403,
                "denied",
                Reason("not_a_member", f"user {caller.name} is not a member of project {project_id}"),
                user=caller.name,
                groups=caller.groups,
                project_id=project_id,
            )
            return
        tables = []
        for table in service.catalog.project_tables(project):
            visible = set(visible_columns(table, project))
            withheld = {w.column: w.reason for w in withheld_columns(table, project)}
            tables.append(
                {
                    "table": table.name,
                    "tenant": table.tenant,
                    "description": table.description,
                    "columns": [
                        {"name": c, "classification": cls.value, "visible": c in visible, "reason": withheld.get(c)}
                        for c, cls in table.columns.items()
                    ],
                }
            )
        self.write_json(200, {"project": project.id, "multi_tenant": project.multi_tenant, "tables": tables})


class QueryHandler(BrokerHandler):
    job: QueryJob | None = None
    _closed = False

    def _body(self) -> dict[str, Any] | None:
        try:
            body = json.loads(self.request.body or b"null")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def post(self) -> None:
        body = self._body()
        project_id = body.get("project") if body else None
        sql = body.get("sql") if body else None
        project_id = project_id if isinstance(project_id, str) else None
        sql = sql if isinstance(sql, str) else None
        caller = await self.caller(project_id=project_id, sql=sql)
        if caller is None:
            return
        problem = None
        if body is None:
            problem = "the request body must be a JSON object {\"project\": ..., \"sql\": ...}"
        elif not project_id:
            problem = "name the project: {\"project\": \"<project id>\", \"sql\": ...}"
        elif not sql or not sql.strip():
            problem = "send one SQL statement in \"sql\""
        elif len(sql) > MAX_SQL_CHARS:
            problem = f"the SQL text is longer than {MAX_SQL_CHARS} characters"
        if problem:
            await self.refuse(400, "invalid", Reason("bad_request", problem), user=caller.name, groups=caller.groups, project_id=project_id, sql=sql)
            return

        job = self.job = QueryJob(self.state.service, caller.name, caller.groups, project_id, sql)
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.state.executor, job.run)
        self.state.jobs.add(job)
        if self._closed:  # the client left while we were authenticating
            self.on_connection_close()
        try:
            outcome = await future
        finally:
            self.state.jobs.discard(job)
        summary = outcome.summary()
        if self._closed:
            app_log.info("query %s: client disconnected, not sending the result", outcome.decision_id)
            return
        if outcome.outcome is not Outcome.ALLOWED or job.payload is None:
            message = "; ".join([r.message for r in outcome.reasons] + ([outcome.error] if outcome.error else []))
            self.write_json(STATUS_FOR_OUTCOME.get(outcome.outcome, 500), {"decision": summary, "message": message})
            return
        payload = job.payload
        self.set_status(200)
        self.set_header("Content-Type", ARROW_STREAM)
        self.set_header("Content-Length", str(payload.size))
        self.set_header("X-Dataroom-Decision-Id", outcome.decision_id)
        self.set_header("X-Dataroom-Decision", json.dumps(summary, default=str, ensure_ascii=True))
        try:
            await self.flush()  # the headers; then the IPC bytes as they are, without copies
            await self.request.connection.write(memoryview(payload))  # type: ignore[union-attr]
            self.finish()
        except StreamClosedError:
            app_log.info("query %s: client disconnected while receiving the result", outcome.decision_id)

    def on_connection_close(self) -> None:
        """The client went away: cancel its query (before it executes, or interrupt it)."""
        self._closed = True
        job = self.job
        if job is None or job.cancelled:
            return
        app_log.info("client disconnected: cancelling the query of %s", job.user)
        job.cancel()


def make_app(
    service: QueryService,
    *,
    auth: BrokerAuth,
    prefix: str = "/",
    service_name: str = "broker",
    workers: int = 8,
    extra_routes: list[tuple[str, type[BrokerHandler]]] | None = None,
) -> web.Application:
    """The broker application with its routes under ``prefix`` (``/services/<name>/`` under a Hub).

    ``extra_routes`` mounts further :class:`BrokerHandler` subclasses (patterns relative to the
    prefix, e.g. ``(r"v1/hypotheses", HypothesisHandler)``); they share the state and the auth.
    """
    if not prefix.endswith("/"):
        prefix += "/"
    state = BrokerState(service, auth, ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dataroom-query"), prefix, service_name)
    routes = [
        (r"", IndexHandler),
        (r"health", HealthHandler),
        (r"openapi\.json", OpenAPIHandler),
        (r"v1/whoami", WhoAmIHandler),
        (r"v1/projects", ProjectsHandler),
        (r"v1/projects/([^/]+)/tables", TablesHandler),
        (r"v1/query", QueryHandler),
        *(extra_routes or []),
    ]
    app = web.Application(
        [(prefix + pattern, handler, {"state": state}) for pattern, handler in routes],
        log_function=_log_request,
    )
    app.settings["broker_state"] = state
    return app


def _log_request(handler: web.RequestHandler) -> None:
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING
    app_log.log(level, "%d %s %s %.1fms", status, handler.request.method, handler.request.path, 1000.0 * handler.request.request_time())

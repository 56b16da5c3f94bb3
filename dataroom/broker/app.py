"""The broker's tornado application: health, OpenAPI, whoami, projects, tables and queries.

Every endpoint except ``health`` and ``openapi.json`` authenticates the caller with the Hub
(:class:`~dataroom.broker.auth.BrokerAuth`). Queries run through the one pipeline in a thread
pool, so the event loop stays free for other callers; an allowed result is streamed as Arrow IPC
in chunks, a denial is a 403 with the decision and its reasons. A request refused before the
pipeline (401/403/400/413/503) is recorded through the pipeline
(:meth:`~dataroom.pipeline.QueryService.record_refusal`), and a flood of refusals from one client
is answered 429 and audited as counts (:mod:`dataroom.broker.flood`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

from tornado import web
from tornado.iostream import StreamClosedError
from tornado.log import app_log

from dataroom.broker.auth import BrokerAuth, Caller, Refused
from dataroom.broker.flood import FLUSH_S, RefusalLimiter
from dataroom.broker.jobs import QueryJob
from dataroom.broker.openapi import ARROW_STREAM, openapi_spec
from dataroom.pipeline import Outcome, QueryService, project_unavailable
from dataroom.policy import Reason

MAX_BODY_BYTES = 1 << 20  # larger query bodies are read, discarded and refused (413)
MAX_DISCARDED_BODY_BYTES = 1 << 30  # beyond this the connection is closed unread

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
    limiter: RefusalLimiter = field(default_factory=RefusalLimiter)
    flush_scheduled: bool = False

    async def flush_floods(self) -> None:
        """Write the 429s counted since the last flush as one coalesced record per (client, reason)."""
        self.flush_scheduled = False
        loop = asyncio.get_running_loop()
        for flood in self.limiter.drain():
            await loop.run_in_executor(
                None,
                lambda f=flood: self.service.record_refusal(
                    outcome="denied",
                    reasons=[Reason("rate_limited", f"{f.count} requests from {f.client} refused as a flood after: {f.reason}")],
                    request={"remote_ip": f.client, "flood_of": f.reason},
                    http_status=429,
                    count=f.count,
                ),
            )


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
        self.state.limiter.spend(self.request.remote_ip or "?")
        decision_id = await loop.run_in_executor(
            None,
            lambda: self.state.service.record_refusal(
                outcome=outcome,
                reasons=[reason],
                http_status=status,
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
            "decision_id": decision_id,
            "outcome": outcome,
            "allowed": False,
            "reasons": [reason.__dict__],
            "error": None,
            "rows": None,
            "withheld_columns": [],
        }
        self.write_json(status, {"decision": decision, "message": reason.message})

    def too_many(self, token: str | None) -> bool:
        """A flooding client without a known-good token: answer 429 and count it (no record of its own)."""
        client = self.request.remote_ip or "?"
        if not self.state.limiter.flooding(client, token):
            return False
        self.state.limiter.count(client, f"{self.request.method} {self.request.path}")
        if not self.state.flush_scheduled:
            self.state.flush_scheduled = True
            asyncio.get_running_loop().call_later(FLUSH_S, lambda: asyncio.ensure_future(self.state.flush_floods()))
        self.set_header("Retry-After", "10")
        message = "too many refused requests from this client: wait, then send a valid JupyterHub token"
        self.write_json(429, {"decision": None, "message": message, "reasons": [{"code": "rate_limited", "message": message}]})
        return True

    async def caller(self, project_id: str | None = None, sql: str | None = None) -> Caller | None:
        """The authenticated caller, or None after a refusal has been audited and sent."""
        token = self.state.auth.token(self)
        if self.too_many(token):
            return None
        try:
            caller = await self.state.auth.authenticate(self)
            self.state.limiter.remember_good(token)
            return caller
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


class RegistryHandler(BrokerHandler):
    """Routes that answer from the registry (hypotheses, models): authenticate, read the JSON body
    if there is one, run a ``(status, payload)`` request function off the event loop, send it."""

    async def answer(self, request: Callable[..., tuple[int, dict[str, Any]]], *, body: str | None = None, pool: bool = False) -> None:
        """``request(caller)``, or ``request(caller, parsed_body)`` when ``body`` describes the expected JSON."""
        caller = await self.caller()
        if caller is None:
            return
        args: list[Any] = [caller]
        if body is not None:
            if len(self.request.body) > MAX_BODY_BYTES:
                self.write_json(413, {"message": "request body too large"})
                return
            try:
                args.append(json.loads(self.request.body or b"null"))
            except (ValueError, RecursionError):
                self.write_json(400, {"message": f"the body must be JSON: {body}"})
                return
        executor = self.state.executor if pool else None  # long work (a monitor run) shares the query pool
        status, payload = await asyncio.get_running_loop().run_in_executor(executor, lambda: request(*args))
        self.write_json(status, payload)


class HealthHandler(BrokerHandler):
    def get(self) -> None:
        from dataroom.alerts.loop import shipping_json  # the shipper's backlog, from local files (null without an audit bucket)

        self.write_json(
            200,
            {
                "status": "ok",
                "service": self.state.service_name,
                "policy_revision": self.state.service.policy.revision,
                "uptime_s": round(time.time() - self.state.started, 1),
                "audit_shipping": shipping_json(self.state.service.settings),
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
        loop = asyncio.get_running_loop()
        described = await loop.run_in_executor(None, self.state.service.project_tables, project_id, caller.name)
        if described is None:  # the same answer for a project that does not exist
            await self.refuse(403, "denied", project_unavailable(project_id), user=caller.name, groups=caller.groups, project_id=project_id)
            return
        self.write_json(200, described)


@web.stream_request_body
class QueryHandler(BrokerHandler):
    """``POST v1/query``. The body is streamed: past :data:`MAX_BODY_BYTES` it is discarded and refused."""

    job: QueryJob | None = None
    _closed = False

    def prepare(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self.request.connection.set_max_body_size(MAX_DISCARDED_BODY_BYTES)  # type: ignore[union-attr]

    def data_received(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size <= MAX_BODY_BYTES:
            self._chunks.append(chunk)

    def _body(self) -> dict[str, Any] | None:
        try:
            body = json.loads(b"".join(self._chunks) or b"null")
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past the parser's depth
            return None
        return body if isinstance(body, dict) else None

    async def post(self) -> None:
        if self._size > MAX_BODY_BYTES:
            caller = await self.caller()
            if caller is not None:
                problem = f"the request body is {self._size:,} bytes; the limit is {MAX_BODY_BYTES:,}"
                await self.refuse(413, "invalid", Reason("body_too_large", problem), user=caller.name, groups=caller.groups)
            return
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

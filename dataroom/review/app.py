"""The security review service: a tornado JupyterHub service with Hub OAuth login.

Only members of the ``security`` group enter (the Hub's group in the OAuth user model *and* the
catalog's group: both must agree); everyone else gets 403. Pages are rendered on the server, charts
are SVG drawn by matplotlib, nothing is loaded from the internet.

Pages (under the service prefix, e.g. ``/services/review/``): ``queries`` (live log with filters),
``queries/<decision_id>`` (full record and reasons), ``summary`` (denied queries and volumes per
user and project, with charts), ``projects`` (pending approvals: approve/reject; revoke), ``hypotheses``
(pending production approvals), ``alerts`` (open first, acknowledge/resolve:
:mod:`dataroom.review.alerts`; evaluated every ``DATAROOM_ALERT_INTERVAL_S`` seconds), ``monitoring`` (registered models per tenant and week, alerts and their
acknowledgement: :mod:`dataroom.review.monitoring`), ``chain`` (audit chain verification). Every change goes through
:class:`~dataroom.registry.Registry`, so the UI applies the same rules as the CLI.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated
from tornado import web

from dataroom.alerts import AlertScanner
from dataroom.alerts.loop import shipping_json
from dataroom.audit import VerifyResult, utc_now
from dataroom.catalog import Catalog
from dataroom.registry import SECURITY_GROUP, Phase, Registry, RegistryError
from dataroom.querylog import OUTCOMES, QueryFilter, QueryLog
from dataroom.review.alerts import make_handlers as make_alert_handlers, open_alert_count
from dataroom.review.audit_pages import ChainStatus
from dataroom.review.audit_pages import make_handlers as make_audit_handlers
from dataroom.review.monitoring import make_handlers as make_monitoring_handlers
from dataroom.review.releases import make_handlers as make_release_handlers
from dataroom.review.templates import LOADER
from dataroom.settings import Settings

log = logging.getLogger("dataroom.review")
AUTH_CACHE_S = 30  # re-ask the Hub about a token (and its groups) at least this often


@dataclass
class ReviewState:
    settings: Settings
    catalog: Catalog
    registry: Registry
    hub_auth: HubOAuth
    prefix: str = "/"
    querylog: QueryLog = field(init=False)
    scanner: AlertScanner = field(init=False)
    last_scan: str = "never"
    _chain: ChainStatus = field(init=False)

    def __post_init__(self) -> None:
        self.querylog = QueryLog(self.settings)  # every audit stream, through the index
        self._chain = ChainStatus(self.querylog)
        self.scanner = AlertScanner(self.settings)  # re-reads the catalog each scan (reclassifications)

    def chain(self) -> tuple[VerifyResult, str]:
        """Every stream's verification (resumed from its last verified checkpoint), redone whenever a stream, head or checkpoint file changed."""
        return self._chain.get()  # a pinned key (settings.audit_public_key), if any: the view's

    def scan(self) -> list[dict[str, Any]]:
        from dataroom.alerts.loop import evaluate_once

        raised = evaluate_once(self.scanner)
        self.last_scan = utc_now()
        return raised


class ReviewHandler(HubOAuthenticated, web.RequestHandler):
    """Base: Hub OAuth login, then the security-group gate, then the page."""

    def initialize(self, state: ReviewState) -> None:
        self.state = state
        self.hub_auth = state.hub_auth

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'")

    def prepare(self) -> None:
        user = self.current_user
        if user is None:
            if self.request.method in ("GET", "HEAD"):
                self.redirect(self.get_login_url())  # raises 403 for a Hub user without the access scope
                return
            raise web.HTTPError(403, "log in through the Hub first")
        name = user.get("name", "")
        hub_groups = set(user.get("groups") or [])
        catalog_user = self.state.catalog.users.get(name)
        if SECURITY_GROUP not in hub_groups or catalog_user is None or SECURITY_GROUP not in catalog_user.groups:
            log.warning("refused %s %s to %s (groups %s)", self.request.method, self.request.path, name, sorted(hub_groups))
            self.set_status(403)
            self.render("forbidden.html", message=f"{name} may not use the security review: only members of the {SECURITY_GROUP} group may.")
            return

    @property
    def user_name(self) -> str:
        return self.current_user["name"]

    def get_template_namespace(self) -> dict[str, Any]:
        ns = super().get_template_namespace()
        ns.update(prefix=self.state.prefix, user=(self.current_user or {}).get("name", ""), flash_error=None, flash_info=self.get_argument("info", None))
        ns.update(shipping=shipping_json(self.state.settings))  # the audit shipper's backlog (None without an audit bucket)
        return ns

    def page(self, template: str, status: int = 200, **kwargs: Any) -> None:
        chain, _ = self.state.chain()
        kwargs.setdefault("flash_error", None)
        self.set_status(status)
        self.render(
            template,
            chain=chain,
            pending_count=len(self.state.registry.projects("proposed")),
            alert_count=open_alert_count(self.state),
            **kwargs,
        )

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or self._reason
        if status_code == 403:
            self.render("forbidden.html", message=message or "forbidden")
        else:
            self.render("error.html", status=status_code, reason=self._reason, message=message or "")


class RootHandler(ReviewHandler):
    def get(self) -> None:
        self.redirect(self.state.prefix + "queries")


def _window(handler: ReviewHandler) -> tuple[QueryFilter, dict[str, str]]:
    args = {k: handler.get_argument(k, "") for k in ("since", "until")}
    try:
        return QueryFilter.from_args(args), args
    except ValueError:
        return QueryFilter(), {}


class SummaryHandler(ReviewHandler):
    def get(self) -> None:
        flt, args = _window(self)
        sections = [
            ("user", "Per user", self.state.querylog.summary(flt, "user"), "user"),
            ("project_id", "Per project", self.state.querylog.summary(flt, "project_id"), "project"),
        ]
        self.page("summary.html", sections=sections, args=args, query=urlencode({k: v for k, v in args.items() if v}))


class ChartHandler(ReviewHandler):
    def get(self, metric: str, kind: str) -> None:
        flt, _ = _window(self)
        key = "user" if kind == "user" else "project_id"
        data = self.state.querylog.summary(flt, key)
        labels = [s[key] for s in data]
        if metric == "outcomes":
            series = {o: [s[o] for s in data] for o in OUTCOMES}
            svg = bar_chart_svg(labels, series, f"Query attempts by outcome, per {kind}", stacked=True)
        else:
            svg = bar_chart_svg(labels, {"rows returned": [s["rows"] for s in data]}, f"Rows returned, per {kind}")
        self.set_header("Content-Type", "image/svg+xml")
        self.finish(svg)


_COLOURS = {"allowed": "#2e7d32", "denied": "#c62828", "invalid": "#b58900", "error": "#6a3fc1", "rows returned": "#1f6feb"}


def bar_chart_svg(labels: list[str], series: dict[str, list[float]], title: str, stacked: bool = False) -> bytes:
    """A horizontal bar chart as SVG (matplotlib, no pyplot state, no fonts or files from outside)."""
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    height = max(1.6, 0.42 * max(1, len(labels)) + 1.0)
    fig = Figure(figsize=(6.4, height))
    FigureCanvasSVG(fig)
    ax = fig.add_subplot()
    positions = list(range(len(labels)))
    left = [0.0] * len(labels)
    for name, values in series.items():
        if stacked and not any(values):
            continue
        ax.barh(positions, values, left=left if stacked else None, label=name, color=_COLOURS.get(name, "#555"))
        if stacked:
            left = [a + b for a, b in zip(left, values)]
    ax.set_yticks(positions, labels=labels or [])
    ax.invert_yaxis()
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=8)
    if not labels:
        ax.text(0.5, 0.5, "no queries in this window", ha="center", va="center", transform=ax.transAxes)
    elif len(series) > 1:
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="svg")
    return buf.getvalue()


def _csv(value: str) -> list[str]:
    return [v.strip() for v in (value or "").replace("\n", ",").split(",") if v.strip()]


class ProjectsHandler(ReviewHandler):
    def get(self) -> None:
        self.show()

    def show(self, status: int = 200, error: str | None = None) -> None:
        projects = self.state.registry.projects()
        self.page("projects.html", status=status, flash_error=error, pending=[p for p in projects if p.status == "proposed"], projects=projects)


class ProjectActionHandler(ProjectsHandler):
    def post(self, project_id: str, action: str) -> None:
        registry = self.state.registry
        try:
            if action == "approve":
                expires = self.get_body_argument("expires", "")
                info = registry.approve(
                    self.user_name,
                    project_id,
                    justification=self.get_body_argument("justification", ""),
                    tenants=_csv(self.get_body_argument("tenants", "")) or None,
                    tables=_csv(self.get_body_argument("tables", "")) or None,
                    column_classes=self.get_body_arguments("column_classes") or None,
                    multi_tenant=bool(self.get_body_argument("multi_tenant", "")),
                    expires=dt.date.fromisoformat(expires) if expires else None,
                )
                message = f"approved {info.id} (expires {info.expires})"
            elif action == "reject":
                info = registry.reject(self.user_name, project_id, reason=self.get_body_argument("reason", ""))
                message = f"rejected {info.id}"
            else:
                info = registry.revoke(self.user_name, project_id, reason=self.get_body_argument("reason", ""))
                message = f"revoked {info.id}: its queries are denied from now on"
        except RegistryError as exc:
            log.warning("%s by %s on %s refused: %s", action, self.user_name, project_id, exc)
            self.show(status=exc.status, error=str(exc))
            return
        except ValueError as exc:  # a malformed date
            self.show(status=400, error=str(exc))
            return
        self.redirect(self.state.prefix + "projects?" + urlencode({"info": message}))


class HypothesesHandler(ReviewHandler):
    def get(self) -> None:
        self.show()

    def show(self, status: int = 200, error: str | None = None) -> None:
        self.page(
            "hypotheses.html",
            status=status,
            flash_error=error,
            hypotheses=self.state.registry.hypotheses(),
            transitions=list(reversed(self.state.registry.transitions())),
            phase_display=lambda value: Phase(value).display(),
        )


class HypothesisActionHandler(HypothesesHandler):
    def post(self, hypothesis_id: str, action: str) -> None:
        try:
            info = self.state.registry.decide_phase(self.user_name, hypothesis_id, approve=action == "approve", note=self.get_body_argument("note", ""))
        except RegistryError as exc:
            self.show(status=exc.status, error=str(exc))
            return
        self.redirect(self.state.prefix + "hypotheses?" + urlencode({"info": f"{action}d: {info.key} is in {Phase(info.phase).display()}"}))


class ChainHandler(ReviewHandler):
    def get(self) -> None:
        chain, verified_at = self.state.chain()
        self.page("chain.html", status=200, audit_file=", ".join(map(str, self.state.querylog.view.paths().values())) or self.state.settings.audit_file, verified_at=verified_at)


class CallbackHandler(HubOAuthCallbackHandler):
    def initialize(self, state: ReviewState) -> None:
        self.hub_auth = state.hub_auth


class HealthHandler(web.RequestHandler):
    def get(self) -> None:
        self.finish({"status": "ok"})


def make_app(state: ReviewState, cookie_secret: bytes | None = None) -> web.Application:
    prefix = state.prefix if state.prefix.endswith("/") else state.prefix + "/"
    state.prefix = prefix
    routes = [
        (r"", RootHandler),
        (r"oauth_callback", CallbackHandler),
        *make_audit_handlers(ReviewHandler),  # queries (paginated), queries/<id>, replay
        (r"summary", SummaryHandler),
        (r"charts/(outcomes|rows)-(user|project)\.svg", ChartHandler),
        (r"projects", ProjectsHandler),
        (r"projects/([a-z0-9-]+)/(approve|reject|revoke)", ProjectActionHandler),
        (r"hypotheses", HypothesesHandler),
        (r"hypotheses/([^/]+)/(approve|reject)", HypothesisActionHandler),
        *make_alert_handlers(ReviewHandler),
        (r"chain", ChainHandler),
        *make_monitoring_handlers(ReviewHandler),
        *make_release_handlers(ReviewHandler),  # releases (two-person release of outputs), releases/mine, download
    ]
    handlers: list[Any] = [(prefix + pattern, handler, {"state": state}) for pattern, handler in routes]
    handlers.append((prefix + "health", HealthHandler))
    return web.Application(
        handlers,
        template_loader=LOADER,
        cookie_secret=cookie_secret or os.urandom(32),
        xsrf_cookies=True,
    )


def make_state(settings: Settings | None = None, hub_auth: HubOAuth | None = None, prefix: str | None = None) -> ReviewState:
    """State for the service; ``hub_auth`` defaults to the JUPYTERHUB_* environment a managed service gets."""
    settings = settings or Settings()
    registry = Registry.from_settings(settings)
    hub_auth = hub_auth or HubOAuth(cache_max_age=AUTH_CACHE_S)
    prefix = prefix or os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    return ReviewState(settings=settings, catalog=registry.catalog, registry=registry, hub_auth=hub_auth, prefix=prefix)

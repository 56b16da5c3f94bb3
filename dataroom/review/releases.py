"""Release requests in the review service: two security reviewers decide, the requester downloads.

Routes (under the service prefix), from :func:`make_handlers` with the review app's base handler:

* ``releases`` (security): requests, pending first;
* ``releases/<id>`` (security): the object itself (table preview with the flagged cells marked,
  the figure, or the text), the checker's report, the linked queries (each a link to its audit
  record), every step so far, and approve/reject forms, which are not shown to the requester or to
  a reviewer who already decided; ``releases/<id>/object`` is the submitted figure for that page;
* ``releases/<id>/(approve|reject)`` (security, POST): the registry's rules apply, so the requester
  gets 403 whatever the page shows, one approval leaves the request pending, the second releases it;
* ``releases/mine`` and ``releases/<id>/download`` (any catalog user the Hub lets in, see
  :func:`release_role`): a requester's own requests, and the download of a *released* object by its
  requester or a security reviewer, checked against its recorded SHA-256 and recorded as a step.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from tornado import web

from dataroom.outputs.objects import ReleaseObjectError, decode_table
from dataroom.outputs.releases import ReleaseService
from dataroom.outputs.store import StoreError
from dataroom.registry import SECURITY_GROUP, PermissionDenied, RegistryError
from dataroom.review.templates import LOADER

if TYPE_CHECKING:
    from dataroom.review.app import ReviewHandler

log = logging.getLogger("dataroom.review")
PREVIEW_ROWS = 200
REQUESTER_GROUPS = ("data-scientists",)

LIST = r"""{% extends "base.html" %}
{% block title %}Release requests{% end %}
{% block body %}
<h1>Release requests</h1>
<p class="muted">Nothing leaves the room except through a request that two security reviewers other than the requester approve.</p>
<table id="releases"><tr><th>Request</th><th>Project</th><th>Requester</th><th>Title</th><th>Kind</th><th>Checks</th><th>Approvals</th><th>Status</th><th>Filed</th></tr>
{% for r in releases %}<tr class="release-row" data-release-id="{{ r.id }}">
 <td><a href="{{ prefix }}releases/{{ r.id }}">{{ r.key }}</a></td><td>{{ r.project_id }}</td><td>{{ r.requester }}</td><td>{{ r.title }}</td><td>{{ r.kind }}</td>
 <td><span class="chip {{ chip(r.checks.get('status')) }}">{{ r.checks.get('status') }}</span></td><td>{{ len(r.approvers) }} / {{ needed }}</td>
 <td><span class="chip {{ chip(r.status) }}">{{ r.status }}</span></td><td>{{ r.created_at[:19] }}</td></tr>
{% end %}</table>
{% if not releases %}<p>No release requests yet.</p>{% end %}
{% end %}
"""

DETAIL = r"""{% extends "base.html" %}
{% block title %}{{ r.key }}{% end %}
{% block body %}
<h1 id="release-key">{{ r.key }}: {{ r.title }}</h1>
<div class="card"><p>Requested by <b id="requester">{{ r.requester }}</b> in project <b>{{ r.project_id }}</b> at {{ r.created_at[:19] }}; status
<span class="chip {{ chip(r.status) }}" id="status">{{ r.status }}</span>, approvals <span id="approvals">{{ len(r.approvers) }}</span> of {{ needed }}.</p>
<p><b>Justification:</b> {{ r.justification }}</p>
<p class="muted">{{ r.kind }} · {{ r.filename }} · {{ r.size }} bytes · SHA-256 <code id="sha256">{{ r.sha256 }}</code>{% if r.released_sha256 %} · released {{ r.released_at[:19] }}{% end %}</p></div>
<h2>The object</h2>
<div class="card" id="object">
{% if r.kind == "figure" %}<img src="{{ prefix }}releases/{{ r.id }}/object" alt="{{ r.title }}" style="max-width:100%">
{% elif table is not None %}<table id="preview"><tr>{% for c in table.columns %}<th>{{ c }}</th>{% end %}</tr>
{% for i, row in enumerate(table.rows()) %}<tr>{% for c, v in zip(table.columns, row) %}<td{% if (i, c) in flagged %} class="flagged" style="background:#fde2e1;font-weight:600" title="flagged by the checks"{% end %}>{{ v }}</td>{% end %}</tr>{% end %}</table>
{% if truncated %}<p class="muted">first {{ len(table) }} of {{ truncated }} rows</p>{% end %}
{% else %}<pre id="text">{{ text }}</pre>{% end %}
</div>
<h2>Checks: <span class="chip {{ chip(r.checks.get('status')) }}" id="checks-status">{{ r.checks.get('status') }}</span></h2>
<table id="checks"><tr><th>Check</th><th>Status</th><th>Finding</th></tr>
{% for c in r.checks.get('checks', []) %}<tr class="check-row" data-code="{{ c['code'] }}"><td>{{ c['code'] }}</td><td><span class="chip {{ chip(c['status']) }}">{{ c['status'] }}</span></td><td>{{ c['message'] }}{% if c['cells'] %} <span class="muted">(cells: {{ ', '.join(f'row {x[0]} {x[1]}' for x in c['cells'][:12]) }}{% if len(c['cells']) > 12 %} …{% end %})</span>{% end %}</td></tr>{% end %}
</table>
<h2>Queries behind it</h2>
{% if r.decision_ids %}<ul id="queries">{% for d in r.decision_ids %}<li><a href="{{ prefix }}queries/{{ d }}">{{ d }}</a></li>{% end %}</ul>{% else %}<p id="queries">None linked: the support of this object is unknown.</p>{% end %}
<h2>Steps</h2>
<table id="events"><tr><th>When</th><th>Who</th><th>Step</th><th>Note</th></tr>
{% for e in r.events %}<tr><td>{{ e.at[:19] }}</td><td>{{ e.actor }}</td><td>{{ e.kind }}</td><td>{{ e.note }}</td></tr>{% end %}</table>
{% if can_decide %}
<div class="card" id="decide"><form method="post" action="{{ prefix }}releases/{{ r.id }}/approve" id="approve-form">{% module xsrf_form_html() %}
<label>Note (required when a check failed)<textarea name="note"></textarea></label><button class="primary" type="submit" id="approve">Approve</button></form>
<form method="post" action="{{ prefix }}releases/{{ r.id }}/reject" id="reject-form">{% module xsrf_form_html() %}
<label>Reason<textarea name="note"></textarea></label><button class="danger" type="submit" id="reject">Reject</button></form></div>
{% elif why_not %}<p class="muted" id="no-decision">{{ why_not }}</p>{% end %}
{% if r.status == "released" %}<p><a href="{{ prefix }}releases/{{ r.id }}/download" id="download">Download {{ r.filename }}</a></p>{% end %}
{% end %}
"""

MINE = r"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>My release requests · data room</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#1d2430}table{border-collapse:collapse}td,th{border-bottom:1px solid #e3e6ea;padding:.35rem .6rem;text-align:left}</style></head>
<body><h1>My release requests</h1><p>Signed in as <b id="who">{{ user }}</b>. A request is downloadable once two security reviewers released it.</p>
<table id="mine"><tr><th>Request</th><th>Project</th><th>Title</th><th>Checks</th><th>Status</th><th></th></tr>
{% for r in releases %}<tr class="release-row" data-release-id="{{ r.id }}"><td>{{ r.key }}</td><td>{{ r.project_id }}</td><td>{{ r.title }}</td><td>{{ r.checks.get('status') }}</td><td>{{ r.status }}</td>
<td>{% if r.status == "released" %}<a href="{{ prefix }}releases/{{ r.id }}/download">download ({{ r.released_sha256[:12] }}…)</a>{% end %}</td></tr>{% end %}
</table></body></html>
"""

LOADER.dict.update({"releases.html": LIST, "release.html": DETAIL, "releases_mine.html": MINE})  # beside the service's other templates


def _chip(status: str | None) -> str:
    return {"pass": "ok", "released": "ok", "fail": "denied", "rejected": "denied", "review": "invalid", "pending": "invalid"}.get(status or "", "")


def release_role(service: str = "review", groups: tuple[str, ...] = REQUESTER_GROUPS) -> dict[str, Any]:
    """The Hub role letting requesters reach the review service for their own releases (the service
    lets them see nothing else: every security page re-checks the security group)."""
    return {
        "name": f"{service}-release-requesters",
        "description": "May reach the review service to download their own released outputs",
        "scopes": [f"access:services!service={service}"],
        "groups": list(groups),
    }


def make_handlers(base: type["ReviewHandler"]) -> list[tuple[str, Any]]:
    """The release routes, as subclasses of the review app's authenticated base handler."""

    class ReleaseHandler(base):  # type: ignore[misc,valid-type]
        def releases(self) -> ReleaseService:
            state = self.state
            service = getattr(state, "_release_service", None)
            if service is None:
                service = ReleaseService.from_settings(state.settings, state.registry)
                state._release_service = service
            return service

    class ReleasesHandler(ReleaseHandler):
        def get(self) -> None:
            items = self.releases().releases.list()
            items.sort(key=lambda r: (r.status != "pending", -r.id))
            self.page("releases.html", releases=items, needed=2, chip=_chip)

    class ReleaseDetailHandler(ReleaseHandler):
        def get(self, rid: str) -> None:
            self.show(rid)

        def show(self, rid: str, status: int = 200, error: str | None = None) -> None:
            try:
                info, data = self.releases().content(self.user_name, rid)
            except (RegistryError, StoreError) as exc:
                raise web.HTTPError(getattr(exc, "status", 500), str(exc)) from exc
            table, text, truncated = None, None, 0
            if info.kind == "table":
                try:
                    frame = decode_table(data)
                    truncated = frame.height if frame.height > PREVIEW_ROWS else 0
                    table = frame.head(PREVIEW_ROWS)
                except ReleaseObjectError:
                    text = data.decode("utf-8", "replace")
            elif info.kind == "text":
                text = data.decode("utf-8", "replace")
            flagged = {(cell[0], cell[1]) for c in info.checks.get("checks", []) if c["status"] == "fail" for cell in c.get("cells", [])}
            me = self.user_name
            why_not = None
            if info.status != "pending":
                why_not = f"{info.key} is {info.status}."
            elif me == info.requester:
                why_not = f"You asked for {info.key}: two other security reviewers decide."
            elif me in info.reviewers:
                why_not = "You gave your verdict; a second approval must come from another reviewer."
            self.page("release.html", status=status, flash_error=error, r=info, table=table, text=text, truncated=truncated, flagged=flagged,
                      can_decide=why_not is None, why_not=why_not, needed=2, chip=_chip)

    class ReleaseObjectHandler(ReleaseHandler):
        def get(self, rid: str) -> None:
            try:
                info, data = self.releases().content(self.user_name, rid)
            except (RegistryError, StoreError) as exc:
                raise web.HTTPError(getattr(exc, "status", 500), str(exc)) from exc
            if info.kind != "figure":
                raise web.HTTPError(404, "only a figure is served for the page; tables and text are shown in it")
            self.set_header("Content-Type", "image/png")
            self.finish(data)

    class ReleaseActionHandler(ReleaseDetailHandler):
        def post(self, rid: str, action: str) -> None:
            note = self.get_body_argument("note", "")
            try:
                info = self.releases().review(self.user_name, rid, approve=action == "approve", note=note)
            except RegistryError as exc:
                log.warning("release %s by %s on %s refused: %s", action, self.user_name, rid, exc)
                self.show(rid, status=exc.status, error=str(exc))
                return
            except StoreError as exc:
                self.show(rid, status=500, error=str(exc))
                return
            message = f"{action}d {info.key}: " + (f"released, SHA-256 {info.released_sha256}" if info.status == "released" else info.status)
            self.redirect(self.state.prefix + f"releases/{info.id}?" + urlencode({"info": message}))

    class RequesterHandler(base):  # type: ignore[misc,valid-type]
        """Any catalog user the Hub lets in (the requester's pages); the registry decides per request."""

        def prepare(self) -> None:
            user = self.current_user
            if user is None:
                if self.request.method in ("GET", "HEAD"):
                    self.redirect(self.get_login_url())
                    return
                raise web.HTTPError(403, "log in through the Hub first")
            if self.state.catalog.users.get(user.get("name", "")) is None:
                raise web.HTTPError(403, "only data room users may download released outputs")

        def releases(self) -> ReleaseService:
            return ReleaseHandler.releases(self)  # type: ignore[arg-type]

    class MineHandler(RequesterHandler):
        def get(self) -> None:
            mine = [r for r in self.releases().releases.list(as_user=self.user_name) if r.requester == self.user_name]
            self.render("releases_mine.html", releases=mine)

    class DownloadHandler(RequesterHandler):
        def get(self, rid: str) -> None:
            try:
                info, data = self.releases().download(self.user_name, rid, via="review")
            except PermissionDenied as exc:
                raise web.HTTPError(403, str(exc)) from exc
            except RegistryError as exc:
                raise web.HTTPError(exc.status, str(exc)) from exc
            log.info("%s downloaded %s (sha256 %s)", self.user_name, info.key, info.released_sha256)
            self.set_header("Content-Type", {"table": "text/csv; charset=utf-8", "text": "text/plain; charset=utf-8"}.get(info.kind, info.media_type))
            self.set_header("Content-Disposition", f'attachment; filename="{info.filename}"')
            self.set_header("X-Dataroom-Release", info.key)
            self.set_header("X-Dataroom-SHA256", info.released_sha256 or "")
            self.finish(data)

    return [
        (r"releases", ReleasesHandler),
        (r"releases/mine", MineHandler),
        (r"releases/(\d+)", ReleaseDetailHandler),
        (r"releases/(\d+)/object", ReleaseObjectHandler),
        (r"releases/(\d+)/(approve|reject)", ReleaseActionHandler),
        (r"releases/(\d+)/download", DownloadHandler),
    ]


__all__ = ["SECURITY_GROUP", "make_handlers", "release_role"]

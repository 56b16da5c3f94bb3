"""The review service's alerts page: open alerts first, with acknowledge and resolve for the security group.

The page reads the lifecycle store (:class:`~dataroom.alerts.lifecycle.AlertStore`), which the
running room keeps current (:class:`~dataroom.alerts.loop.AlertLoop`); opening the page also
evaluates once, so it never shows less than ``dataroom alerts scan`` would. Acknowledge and resolve
go through the store, so the page applies the CLI's rules: only members of the catalog's
``security`` group (403 for anyone else, the buttons shown only to them), a written comment, and
every step and every refusal is an audit event.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from tornado import web

from dataroom.alerts import config_file
from dataroom.alerts.lifecycle import SECURITY_GROUP, AlertError, AlertStore
from dataroom.review.templates import LOADER

if TYPE_CHECKING:
    from dataroom.review.app import ReviewHandler
else:
    ReviewHandler = object

log = logging.getLogger("dataroom.review")
MAX_HITS_SHOWN = 200

PAGE = r"""{% extends "base.html" %}
{% block title %}Alerts{% end %}
{% block body %}
<h1>Alerts</h1>
<p class="muted">Rules and severity ladders: <code>policies/alerts/</code>; thresholds: <code>{{ config_path }}</code>.
Evaluated every {{ interval }} s by the running room; last evaluation here: {{ scanned }}.
{% if shipping %}<span id="alerts-shipping">Audit shipping: {{ shipping['backlog'] }} checkpoint(s) waiting, oldest {{ int(shipping['lag_s']) }} s (limit {{ int(shipping['max_lag_s']) }} s).</span>{% end %}</p>
{% if not alerts %}<p class="muted" id="no-alerts">No alerts.</p>{% end %}
<table id="lifecycle"><thead><tr><th>alert</th><th>status</th><th>severity</th><th>rule</th><th>user</th><th>count</th><th>evidence (UTC)</th><th>latest</th><th>history</th><th></th></tr></thead><tbody>
{% for a in alerts %}<tr class="alert-row {{ a['status'] }}" id="alert-{{ a['id'] }}" data-alert-id="{{ a['id'] }}" data-status="{{ a['status'] }}">
 <td>{{ a['id'] }}</td><td class="status">{{ a['status'] }}</td><td><span class="chip severity {{ a['severity'] }}">{{ a['severity'] }}</span></td>
 <td>{{ a['title'] }}</td><td>{{ a.get('user') or '' }}</td><td class="count">{{ a['count'] }}</td>
 <td>{{ (a.get('first_event_at') or '')[:19].replace('T', ' ') }} – {{ (a.get('last_event_at') or '')[:19].replace('T', ' ') }}</td>
 <td>{{ a['message'] }}{% if a['decision_ids'] %} · <a href="{{ prefix }}queries/{{ a['decision_ids'][-1] }}">latest query</a>{% end %}</td>
 <td class="history">{% for h in a['history'][-4:] %}<div>{{ h['at'][:19].replace('T', ' ') }} <b>{{ h['step'] }}</b> by {{ h['by'] }}{% if h['step'] in ('acknowledged', 'resolved') %}: {{ h['comment'] }}{% end %}</div>{% end %}</td>
 <td>{% if may_act and a['status'] != 'resolved' %}
  {% if a['status'] == 'open' %}<form class="ack-form" method="post" action="{{ prefix }}alerts/{{ a['id'] }}/acknowledge">{% module xsrf_form_html() %}
   <input name="comment" placeholder="what you checked / are doing" required size="24"> <button class="primary" type="submit">Acknowledge</button></form>{% end %}
  <form class="resolve-form" method="post" action="{{ prefix }}alerts/{{ a['id'] }}/resolve">{% module xsrf_form_html() %}
   <input name="comment" placeholder="what you found" required size="24"> <button type="submit">Resolve</button></form>
 {% end %}</td></tr>{% end %}
</tbody></table>
<h2>Raised hits</h2>
<p class="muted">Every rule firing written to the alert log (repeats of a key within the dedupe period are folded into the alert above, not listed).</p>
<table id="alerts"><thead><tr><th>event time (UTC)</th><th>severity</th><th>rule</th><th>user</th><th>project</th><th>message</th><th>query</th></tr></thead><tbody>
{% for a in hits %}<tr class="hit-row"><td>{{ (a.get('event_at') or '')[:19].replace('T', ' ') }}</td><td><span class="chip {{ a['severity'] }}">{{ a['severity'] }}</span></td><td>{{ a['title'] }}</td><td>{{ a.get('user') or '' }}</td><td>{{ a.get('project_id') or '' }}</td><td>{{ a['message'] }}</td>
 <td>{% if a.get('decision_id') %}<a href="{{ prefix }}queries/{{ a['decision_id'] }}">open</a>{% end %}</td></tr>{% end %}
</tbody></table>
{% end %}
"""
LOADER.dict["alert_lifecycle.html"] = PAGE  # beside the other pages, extending their base


def make_handlers(base: type) -> list[tuple[str, type]]:
    """The alerts routes, as subclasses of the review app's authenticated base handler."""

    class AlertsHandler(base):  # type: ignore[misc,valid-type]
        def get(self) -> None:
            error = None
            try:
                self.state.scan()
            except ValueError as exc:  # a bad alerts.toml
                error = str(exc)
            self.show(error=error)

        def show(self, status: int = 200, error: str | None = None) -> None:
            settings = self.state.settings
            user = self.state.catalog.users.get(self.user_name)
            self.page(
                "alert_lifecycle.html", status=status, flash_error=error,
                alerts=AlertStore(settings).alerts(), hits=list(reversed(self.state.scanner.alerts()))[:MAX_HITS_SHOWN],
                may_act=user is not None and SECURITY_GROUP in user.groups,
                config_path=config_file(settings), scanned=self.state.last_scan, interval=settings.alert_interval_s,
            )

    class AlertActionHandler(AlertsHandler):
        def prepare(self) -> None:
            try:
                super().prepare()
            except web.HTTPError as exc:
                self._refused(exc)
                raise
            if self._finished:  # refused by the review service's gate (not security): audited here
                self._refused(web.HTTPError(403, "not a member of the security group"))

        def _refused(self, exc: web.HTTPError) -> None:
            actor = (self.current_user or {}).get("name") or "(not signed in to the review service)"
            args = self.path_args or ["", "act on"]
            AlertStore(self.state.settings).refused(actor, args[0], args[1], AlertError(f"HTTP {exc.status_code}: {exc.log_message}"))

        def post(self, alert_id: str, action: str) -> None:
            store = AlertStore(self.state.settings)
            comment = self.get_body_argument("comment", "")
            try:
                alert = store.acknowledge(self.user_name, alert_id, comment) if action == "acknowledge" else store.resolve(self.user_name, alert_id, comment)
            except AlertError as exc:
                log.warning("%s of alert %s by %s refused: %s", action, alert_id, self.user_name, exc)
                self.show(status=exc.status, error=str(exc))
                return
            verb = "acknowledged" if action == "acknowledge" else "resolved"
            self.redirect(self.state.prefix + "alerts?" + urlencode({"info": f"{verb} {alert['id']} ({alert['rule']}, {alert['severity']}, count {alert['count']})"}))

    return [
        (r"alerts", AlertsHandler),
        (r"alerts/(AL-[0-9]{1,9})/(acknowledge|resolve)", AlertActionHandler),
    ]


def open_alert_count(state: Any) -> int:
    """Open alerts, for the header's badge."""
    return AlertStore(state.settings).open_count()

"""The review service's audit pages: the query log (paginated, served by the audit index), one
attempt's full record, and policy-change replay.

The query log asks the index (:mod:`dataroom.audit.index`) for one page under the filters, so a
page costs the same on a 10M-record log as on a small one. Replay lets a security engineer pick a
candidate policy directory under ``DATAROOM_REVIEW_REPLAY_DIR`` (chosen by name from a listing:
no path from the request reaches the file system) and shows :func:`dataroom.replay.replay`'s
report; it runs off the I/O loop. Every page is behind the review service's security-group gate.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from tornado import web
from tornado.ioloop import IOLoop

from dataroom.audit import VerifyResult, utc_now
from dataroom.audit.reader import combine
from dataroom.querylog import OUTCOMES, QueryFilter, QueryLog
from dataroom.review.templates import LOADER

if TYPE_CHECKING:
    from dataroom.review.app import ReviewHandler
    from dataroom.settings import Settings

PAGE_SIZE = 100
FILTERS = ("user", "project", "tenant", "decision", "since", "until", "text", "reason", "table")

QUERIES = r"""{% extends "base.html" %}
{% block title %}Query log{% end %}
{% block head %}{% if args.get('live') %}<meta http-equiv="refresh" content="10">{% end %}{% end %}
{% block body %}
<h1>Query log</h1>
<form class="filters" method="get" action="{{ prefix }}queries" id="filters">
 <label>User<select name="user"><option value="">any</option>{% for u in users %}<option {{ 'selected' if flt.user == u else '' }}>{{ u }}</option>{% end %}</select></label>
 <label>Project<select name="project"><option value="">any</option>{% for p in projects %}<option {{ 'selected' if flt.project == p else '' }}>{{ p }}</option>{% end %}</select></label>
 <label>Tenant<select name="tenant"><option value="">any</option>{% for t in tenants %}<option {{ 'selected' if flt.tenant == t else '' }}>{{ t }}</option>{% end %}</select></label>
 <label>Decision<select name="decision"><option value="">any</option>{% for o in outcomes %}<option {{ 'selected' if flt.decision == o else '' }}>{{ o }}</option>{% end %}</select></label>
 <label>From (UTC)<input type="date" name="since" value="{{ args.get('since', '') }}"></label>
 <label>Until (UTC, inclusive)<input type="date" name="until" value="{{ args.get('until', '') }}"></label>
 <label>SQL contains<input type="text" name="text" value="{{ args.get('text', '') }}"></label>
 <label>Reason code<input type="text" name="reason" value="{{ args.get('reason', '') }}" size="14"></label>
 <label>Table<input type="text" name="table" value="{{ args.get('table', '') }}" size="14"></label>
 <label><span>Live</span><input type="checkbox" name="live" value="1" {{ 'checked' if args.get('live') else '' }} title="reload every 10 s"></label>
 <button class="primary" type="submit">Filter</button> <a href="{{ prefix }}queries">clear</a>
</form>
<p class="muted" id="match-count">{{ total }} matching attempt(s){% if total > len(rows) %}, {{ first }}–{{ first + len(rows) - 1 }} shown (newest first){% end %}.</p>
<p class="pager" id="pager">{% if page > 1 %}<a id="newer" href="{{ prefix }}queries?{{ link(page - 1) }}">← newer</a>{% end %}
 page {{ page }} of {{ pages }}
 {% if page < pages %}<a id="older" href="{{ prefix }}queries?{{ link(page + 1) }}">older →</a>{% end %}</p>
<table id="queries"><thead><tr><th>seq</th><th>time (UTC)</th><th>user</th><th>project</th><th>tenants</th><th>decision</th><th>rows</th><th>SQL</th><th>reasons</th></tr></thead><tbody>
{% for r in rows %}<tr class="query-row" data-decision-id="{{ r['decision_id'] }}">
 <td><a href="{{ prefix }}queries/{{ r['decision_id'] }}" title="decision record{{ ' + completion record' if r['completion_seq'] is not None else '' }}{{ ', stream ' + r['stream'] if several else '' }}">{{ (r['stream'] + ':') if several else '' }}{{ r['seq'] }}{{ ('+' + str(r['completion_seq'])) if r['completion_seq'] is not None else '' }}</a></td><td>{{ (r['timestamp'] or '')[:19].replace('T', ' ') }}</td><td>{{ r['user'] }}</td><td>{{ r['project_id'] }}</td>
 <td>{{ ', '.join(r['tenants']) }}</td><td><span class="chip {{ r['outcome'] }}">{{ r['outcome'] }}</span></td><td>{{ '' if r['rows'] is None else r['rows'] }}</td>
 <td><a href="{{ prefix }}queries/{{ r['decision_id'] }}"><code>{{ r['sql'][:120] }}{{ '…' if len(r['sql'] or '') > 120 else '' }}</code></a></td><td>{{ ', '.join(r['reasons']) }}</td></tr>
{% end %}</tbody></table>
{% end %}
"""

REPLAY = r"""{% extends "base.html" %}
{% block title %}Policy replay{% end %}
{% block body %}
<h1>Policy-change replay</h1>
<p class="muted">Re-decides the recorded queries with a candidate query policy directory under <code>{{ root_name }}</code>: what would flip, per reason code.</p>
{% if not candidates %}<p id="no-candidates">No candidate policy directories yet: put a copy of <code>policies/query</code> with your edit in a sub-directory of the configured replay directory.</p>{% end %}
<form class="filters" method="get" action="{{ prefix }}replay" id="replay-form">
 <label>Candidate<select name="candidate">{% for c in candidates %}<option {{ 'selected' if c == chosen else '' }}>{{ c }}</option>{% end %}</select></label>
 <label>Since (UTC)<input type="date" name="since" value="{{ since or '' }}"></label>
 <button class="primary" type="submit">Replay</button>
</form>
{% if report %}
<div class="card" id="replay-report">
 <p>Replayed <b id="replayed">{{ report['decisions'] }}</b> recorded decision(s){{ ' since ' + report['since'] if report['since'] else '' }} against <code>{{ chosen }}</code> (revision {{ report['candidate_revision'][:12] }}) in {{ '%.2f' % report['seconds'] }} s.</p>
 <p>allow → deny: <b id="allow-to-deny">{{ report['totals']['allow_to_deny'] }}</b> · deny → allow: <b id="deny-to-allow">{{ report['totals']['deny_to_allow'] }}</b> · still denied, other reasons: <b>{{ report['totals']['reasons_changed'] }}</b> · unchanged: {{ report['unchanged'] }} · skipped (not decided by the query policy): {{ report['skipped'] }}</p>
</div>
{% for title, key in (("allow → deny, by the candidate's reason", 'allow_to_deny'), ("deny → allow, by the recorded reason", 'deny_to_allow'), ("still denied, reasons added (+) or dropped (-)", 'reasons_changed')) %}
{% if report[key] %}<h2>{{ title }}</h2><table class="flips" id="{{ key }}"><thead><tr><th>reason</th><th>count</th><th>examples (decision, user, project, SQL)</th></tr></thead><tbody>
{% for code, flip in report[key].items() %}<tr><td><code>{{ code }}</code></td><td>{{ flip['count'] }}</td><td>{% for e in flip['examples'] %}<div><a href="{{ prefix }}queries/{{ e.get('decision_id') }}">{{ e.get('decision_id', '')[:8] }}</a> {{ e.get('user') }} {{ e.get('project_id') }} <code>{{ (e.get('sql') or '')[:100] }}</code></div>{% end %}</td></tr>{% end %}
</tbody></table>{% end %}
{% end %}
{% end %}
{% end %}
"""

LOADER.dict.update({"audit_queries.html": QUERIES, "audit_replay.html": REPLAY})  # beside the service's other templates


class ChainStatus:
    """The chain status every page shows: every stream verified incrementally when a file changed.

    Past ``sync_bytes`` of logs, a re-verification (which re-hashes what was verified before, ~0.6 s
    CPU per GB) runs in a background thread and pages show the last result, noted as such, so no
    page waits for it; the first verification of the service's life is always waited for.
    """

    def __init__(self, querylog: "QueryLog", sync_bytes: int = 256 << 20) -> None:
        self.querylog = querylog
        self.sync_bytes = sync_bytes
        self._lock = threading.Lock()
        self._last: tuple[Any, VerifyResult, str] | None = None
        self._running: threading.Thread | None = None

    def get(self) -> tuple[VerifyResult, str]:
        view = self.querylog.view
        key = view.fingerprint()
        with self._lock:
            last = self._last
            if last is not None and last[0] == key:
                return last[1], last[2]
            if last is None or sum(view.sizes().values()) <= self.sync_bytes:
                self._last = (key, *self._verify())
                return self._last[1], self._last[2]
            if self._running is None or not self._running.is_alive():
                self._running = threading.Thread(target=self._background, args=(key,), name="review-chain-verify", daemon=True)
                self._running.start()
            note = "newer records are being verified now (this status is the last completed verification)"
            return dataclasses.replace(last[1], notes=(*last[1].notes, note)), last[2]

    def _background(self, key: Any) -> None:
        done = self._verify()  # without the lock: pages keep being served meanwhile
        with self._lock:
            self._last = (key, *done)

    def _verify(self) -> tuple[VerifyResult, str]:
        results = self.querylog.view.verify(incremental=True)
        self.querylog.refresh(rebuild=[r.stream for r in results if not r.result.ok])  # list what the files hold now
        return combine(results), utc_now()


def replay_root(settings: "Settings") -> Path:
    return settings.review_replay_dir or settings.home / "policy-candidates"


def candidates(root: Path) -> list[str]:
    """Sub-directories of ``root`` holding .rego files (a candidate is chosen by one of these names)."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and any(p.glob("*.rego")))


def make_handlers(base: type["ReviewHandler"]) -> list[tuple[str, Any]]:
    """Routes for the review app, on its authenticated base handler."""

    class QueriesHandler(base):  # type: ignore[valid-type, misc]
        def get(self) -> None:
            args = {k: self.get_argument(k, "") for k in (*FILTERS, "live")}
            try:
                flt = QueryFilter.from_args(args)
                error = None
            except ValueError as exc:
                flt, error = QueryFilter(), str(exc)
            try:
                page = max(1, int(self.get_argument("page", "1")))
            except ValueError:
                page = 1
            rows, total = self.state.querylog.page(flt, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
            pages = max(1, -(-total // PAGE_SIZE))
            kept = {k: v for k, v in args.items() if v}
            self.page(
                "audit_queries.html",
                status=400 if error else 200,
                flash_error=error,
                rows=rows,
                total=total,
                page=page,
                pages=pages,
                first=(page - 1) * PAGE_SIZE + 1,
                link=lambda n: urlencode({**kept, "page": n}),
                several=len({r["stream"] for r in rows}) > 1 or any(r["stream"] != "audit" for r in rows),
                flt=flt,
                args=args,
                users=sorted(self.state.catalog.users),
                projects=sorted(p.id for p in self.state.registry.projects()),
                tenants=sorted(self.state.catalog.tenants),
                outcomes=OUTCOMES,
            )

    class QueryHandler(base):  # type: ignore[valid-type, misc]
        def get(self, decision_id: str) -> None:
            found, _ = self.state.querylog.page(QueryFilter(decision_id=decision_id), limit=1)
            record = self.state.querylog.record(decision_id) if found else None
            if record is None:
                raise web.HTTPError(404, f"no audit record for decision {decision_id}")
            linked = self.state.registry.linked_decision_ids().get(decision_id, [])
            self.page(
                "query.html",
                row=found[0],
                record_json=json.dumps(record, indent=2, sort_keys=True, default=str),
                reasons=(record.get("result") or {}).get("reasons") or [],
                completion=record.get("completion"),
                linked=linked,
            )

    class ReplayHandler(base):  # type: ignore[valid-type, misc]
        async def get(self) -> None:
            from dataroom.querylog import parse_time
            from dataroom.rego import PolicyError
            from dataroom.replay import records_of, replay

            root = replay_root(self.state.settings)
            names = candidates(root)
            chosen, since = self.get_argument("candidate", ""), self.get_argument("since", "") or None
            report, error, status = None, None, 200
            if chosen:
                if chosen not in names:
                    error, status = f"no candidate policy directory named {chosen!r} (choose one from the list)", 400
                else:
                    try:
                        start = parse_time(since)
                        settings = self.state.settings
                        result = await IOLoop.current().run_in_executor(None, lambda: replay(records_of(settings), root / chosen, start, jobs=1))
                        report = result.to_json()
                        report["seconds"] = result.seconds
                    except (PolicyError, ValueError) as exc:
                        error, status = str(exc).replace(str(root), root.name), 400
            self.page("audit_replay.html", status=status, flash_error=error, candidates=names, chosen=chosen, since=since, report=report, root_name=root.name)

    return [
        (r"queries", QueriesHandler),
        (r"queries/([0-9a-fA-F-]{36})", QueryHandler),
        (r"replay", ReplayHandler),
    ]

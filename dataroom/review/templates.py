"""Server-rendered pages of the review service (tornado templates, no external assets: works offline)."""

from __future__ import annotations

from tornado.template import DictLoader

BASE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">{% block head %}{% end %}<title>{% block title %}Security review{% end %} · data room</title>
<style>
 body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
 header{background:#1d2430;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap}
 header a{color:#cfe0ff;text-decoration:none} header a:hover{text-decoration:underline}
 header .who{margin-left:auto;font-size:.9rem;opacity:.85}
 main{padding:1rem 1.2rem;max-width:1400px}
 table{border-collapse:collapse;width:100%;background:#fff;font-size:.88rem}
 th,td{border-bottom:1px solid #e3e6ea;padding:.35rem .5rem;text-align:left;vertical-align:top}
 th{background:#eef1f5} tr:hover td{background:#fafbfd}
 code,pre{font-family:ui-monospace,Menlo,monospace;font-size:.85rem} pre{background:#fff;border:1px solid #e3e6ea;padding:.8rem;overflow:auto}
 .chip{display:inline-block;padding:.05rem .45rem;border-radius:.6rem;font-size:.8rem;font-weight:600}
 .allowed{background:#dff5e3;color:#17632a}.denied{background:#fde2e1;color:#9b1c1c}.invalid{background:#fff1c2;color:#7a5800}.error{background:#ece4ff;color:#4b2a9b}
 .ok{background:#dff5e3;color:#17632a}.broken{background:#fde2e1;color:#9b1c1c}
 .high{background:#fde2e1;color:#9b1c1c}.medium{background:#fff1c2;color:#7a5800}.critical{background:#9b1c1c;color:#fff}.low{background:#eef1f5;color:#1d2430}
 form.filters{display:flex;gap:.5rem;flex-wrap:wrap;align-items:end;margin-bottom:1rem;background:#fff;padding:.6rem;border:1px solid #e3e6ea}
 form.filters label{display:flex;flex-direction:column;font-size:.8rem;gap:.15rem}
 input,select,textarea,button{font:inherit;font-size:.88rem} textarea{width:100%;min-height:3.2rem}
 button{cursor:pointer;padding:.3rem .8rem;border-radius:.3rem;border:1px solid #8a94a6;background:#fff}
 button.primary{background:#1f6feb;color:#fff;border-color:#1f6feb} button.danger{background:#c62828;color:#fff;border-color:#c62828}
 .card{background:#fff;border:1px solid #e3e6ea;padding:.8rem 1rem;margin-bottom:1rem}
 .flash{padding:.6rem 1rem;margin-bottom:1rem;border:1px solid}
 .flash.err{background:#fde2e1;border-color:#e57373}.flash.info{background:#dff5e3;border-color:#81c784}
 .grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:1rem}
 .muted{color:#5b6475;font-size:.85rem}
</style></head>
<body>
<header>
 <strong>Data room · security review</strong>
 <a href="{{ prefix }}queries">Query log</a>
 <a href="{{ prefix }}summary">Summaries</a>
 <a href="{{ prefix }}projects">Projects{% if pending_count %} ({{ pending_count }} pending){% end %}</a>
 <a href="{{ prefix }}hypotheses">Hypotheses</a>
 <a href="{{ prefix }}alerts">Alerts{% if alert_count %} ({{ alert_count }}){% end %}</a>
 <a href="{{ prefix }}monitoring">Monitoring</a>
 <a href="{{ prefix }}releases">Releases</a>
 <a href="{{ prefix }}chain" id="chain-status">Audit chain: <span class="chip {{ 'ok' if chain.ok else 'broken' }}">{{ 'OK' if chain.ok else 'BROKEN' }}</span></a>
 {% if shipping %}<span id="shipping-status" title="checkpoints signed but not yet anchored in the audit bucket">Shipping: <span class="chip {{ 'broken' if shipping['behind'] else 'ok' }}">{{ shipping['backlog'] }} waiting{% if shipping['backlog'] %}, oldest {{ int(shipping['lag_s']) }} s{% end %}</span></span>{% end %}
 <span class="who">signed in as <b id="who">{{ user }}</b></span>
</header>
<main>
{% if flash_error %}<div class="flash err" id="flash-error">{{ flash_error }}</div>{% end %}
{% if flash_info %}<div class="flash info" id="flash-info">{{ flash_info }}</div>{% end %}
{% block body %}{% end %}
</main></body></html>
"""

QUERY = r"""{% extends "base.html" %}
{% block title %}Query {{ row['seq'] }}{% end %}
{% block body %}
<h1>Query attempt {{ row['seq'] }} <span class="chip {{ row['outcome'] }}" id="outcome">{{ row['outcome'] }}</span></h1>
<div class="card">
 <p><b>decision id</b> <code id="decision-id">{{ row['decision_id'] }}</code> · <b>time</b> {{ row['timestamp'] }} · <b>client</b> {{ row['client'] }}</p>
 <p><b>user</b> {{ row['user'] }} ({{ ', '.join(row['groups']) }}) · <b>project</b> {{ row['project_id'] }} · <b>tenants</b> {{ ', '.join(row['tenants']) or '-' }} · <b>tables</b> {{ ', '.join(row['tables']) or '-' }}</p>
 <p><b>linked to hypotheses</b> {{ ', '.join(linked) or 'none' }}</p>
 <pre id="sql">{{ row['sql'] }}</pre>
</div>
<h2>Reasons</h2>
{% if reasons %}<table id="reasons"><thead><tr><th>code</th><th>message</th></tr></thead><tbody>
{% for r in reasons %}<tr><td><code>{{ r.get('code') }}</code></td><td>{{ r.get('message') }}</td></tr>{% end %}</tbody></table>
{% else %}<p class="muted">No reasons: the policy allowed this query.</p>{% end %}
{% if completion %}<h2>Execution</h2><p>status {{ completion.get('status') }} · rows {{ completion.get('rows') }} · bytes {{ completion.get('bytes') }} · {{ completion.get('duration_ms') }} ms · result digest <code>{{ completion.get('result_digest') or completion.get('error') }}</code></p>{% end %}
<h2>Full audit record</h2>
<pre id="record">{{ record_json }}</pre>
{% end %}
"""

SUMMARY = r"""{% extends "base.html" %}
{% block title %}Summaries{% end %}
{% block body %}
<h1>Denied queries and volumes</h1>
<form class="filters" method="get" action="{{ prefix }}summary">
 <label>From (UTC)<input type="date" name="since" value="{{ args.get('since', '') }}"></label>
 <label>Until (UTC, inclusive)<input type="date" name="until" value="{{ args.get('until', '') }}"></label>
 <button type="submit">Apply</button>
</form>
<div class="grid">
{% for key, title, data, kind in sections %}
<div class="card"><h2>{{ title }}</h2>
 <img alt="attempts by outcome, {{ title.lower() }}" src="{{ prefix }}charts/outcomes-{{ kind }}.svg?{{ query }}" style="max-width:100%">
 <img alt="rows returned, {{ title.lower() }}" src="{{ prefix }}charts/rows-{{ kind }}.svg?{{ query }}" style="max-width:100%">
 <table id="summary-{{ kind }}"><thead><tr><th>{{ key.replace('_id', '') }}</th><th>total</th><th>allowed</th><th>denied</th><th>invalid</th><th>error</th><th>rows</th><th>bytes</th></tr></thead><tbody>
 {% for s in data %}<tr><td><a href="{{ prefix }}queries?{{ kind }}={{ url_escape(s[key]) }}&decision=denied">{{ s[key] }}</a></td><td>{{ s['total'] }}</td><td>{{ s['allowed'] }}</td><td>{{ s['denied'] }}</td><td>{{ s['invalid'] }}</td><td>{{ s['error'] }}</td><td>{{ s['rows'] }}</td><td>{{ s['bytes'] }}</td></tr>{% end %}
 </tbody></table></div>
{% end %}
</div>
{% end %}
"""

PROJECTS = r"""{% extends "base.html" %}
{% block title %}Projects{% end %}
{% block body %}
<h1>Pending approvals</h1>
{% if not pending %}<p class="muted" id="no-pending">Nothing awaits approval.</p>{% end %}
{% for p in pending %}
<div class="card pending-project" id="pending-{{ p.id }}">
 <h2>{{ p.id }} <span class="muted">requested by {{ p.requester }} at {{ p.proposed_at[:19] }}</span></h2>
 <p>{{ p.description }}</p>
 <p><b>Requester's justification:</b> {{ p.justification }}</p>
 <p><b>Members:</b> {{ ', '.join(p.members) }}</p>
 {% if user == p.requester or user in p.members %}<p class="muted sod">You requested or would be a member of this project: another reviewer decides (segregation of duties).</p>{% else %}
 <form method="post" action="{{ prefix }}projects/{{ p.id }}/approve" class="approve-form">
  {% module xsrf_form_html() %}
  <p><label>Tenants <input name="tenants" value="{{ ', '.join(p.tenants) }}" size="30"></label>
     <label>Tables <input name="tables" value="{{ ', '.join(p.tables) }}" size="60"></label></p>
  <p>Column classes:
   {% for c in ('public', 'internal', 'quasi_identifier') %}<label><input type="checkbox" name="column_classes" value="{{ c }}" {{ 'checked' if c in p.column_classes else '' }}> {{ c }}</label> {% end %}
   · <label><input type="checkbox" name="multi_tenant" value="1" {{ 'checked' if p.multi_tenant else '' }}> multi-tenant</label>
   · <label>Expires <input type="date" name="expires" value="{{ p.expires.isoformat() }}"></label></p>
  <p><label>Your written justification (required)<textarea name="justification" required></textarea></label></p>
  <button class="primary" type="submit">Approve</button>
 </form>
 <form method="post" action="{{ prefix }}projects/{{ p.id }}/reject" class="reject-form" style="margin-top:.5rem">
  {% module xsrf_form_html() %}
  <label>Reason for rejecting <input name="reason" size="60" required></label> <button class="danger" type="submit">Reject</button>
 </form>{% end %}
</div>
{% end %}
<h1>All projects</h1>
<table id="projects"><thead><tr><th>project</th><th>status</th><th>requester</th><th>decided by</th><th>members</th><th>tenants</th><th>tables</th><th>classes</th><th>expires</th><th></th></tr></thead><tbody>
{% for p in projects %}<tr id="project-{{ p.id }}"><td>{{ p.id }}</td><td><span class="chip {{ 'allowed' if p.effective_status == 'approved' else 'denied' if p.effective_status in ('revoked', 'rejected', 'expired') else 'invalid' }}">{{ p.effective_status }}</span></td>
 <td>{{ p.requester }}</td><td title="{{ p.decision_note or '' }}">{{ p.decided_by or '' }}</td><td>{{ ', '.join(p.members) }}</td><td>{{ ', '.join(p.tenants) }}{{ ' (multi)' if p.multi_tenant else '' }}</td>
 <td>{{ ', '.join(p.tables) }}</td><td>{{ ', '.join(p.column_classes) }}</td><td>{{ p.expires }}</td>
 <td>{% if p.status == 'approved' %}<form method="post" action="{{ prefix }}projects/{{ p.id }}/revoke">{% module xsrf_form_html() %}<input name="reason" placeholder="reason" required size="14"> <button class="danger" type="submit">Revoke</button></form>{% end %}</td></tr>
{% end %}</tbody></table>
{% end %}
"""

HYPOTHESES = r"""{% extends "base.html" %}
{% block title %}Hypotheses{% end %}
{% block body %}
<h1>Hypotheses</h1>
<table id="hypotheses"><thead><tr><th>id</th><th>project</th><th>statement</th><th>author</th><th>phase</th><th>queries</th><th>production approval</th></tr></thead><tbody>
{% for h in hypotheses %}<tr id="hypothesis-{{ h.key }}"><td>{{ h.key }}</td><td>{{ h.project_id }}</td><td>{{ h.statement }}</td><td>{{ h.author }}</td><td>{{ phase_display(h.phase) }}</td>
 <td>{% for d in h.decision_ids %}<a href="{{ prefix }}queries/{{ d }}"><code>{{ d[:8] }}</code></a> {% end %}</td>
 <td>{% if h.pending_phase %}asked by {{ h.pending_by }} to enter <b>{{ phase_display(h.pending_phase) }}</b>{% if h.pending_note %}: {{ h.pending_note }}{% end %}
   {% if user not in (h.author, h.pending_by) %}<form method="post" action="{{ prefix }}hypotheses/{{ h.key }}/approve">{% module xsrf_form_html() %}<input name="note" placeholder="what you checked" required size="24"> <button class="primary" type="submit">Approve</button></form>
   <form method="post" action="{{ prefix }}hypotheses/{{ h.key }}/reject">{% module xsrf_form_html() %}<input name="note" placeholder="why not" required size="24"> <button class="danger" type="submit">Reject</button></form>
   {% else %}<p class="muted sod">You wrote or asked for this: another reviewer decides (segregation of duties).</p>{% end %}
 {% end %}</td></tr>
{% end %}</tbody></table>
<h2>Phase transitions</h2>
<table id="transitions"><thead><tr><th>time (UTC)</th><th>hypothesis</th><th>from</th><th>to</th><th>outcome</th><th>by</th><th>approver</th><th>note</th></tr></thead><tbody>
{% for t in transitions %}<tr><td>{{ t.at[:19].replace('T', ' ') }}</td><td>H-{{ t.hypothesis_id }}</td><td>{{ phase_display(t.from_phase) if t.from_phase else '' }}</td><td>{{ phase_display(t.to_phase) }}</td><td>{{ t.outcome }}</td><td>{{ t.actor }}</td><td>{{ t.approver or '' }}</td><td>{{ t.note }}</td></tr>{% end %}
</tbody></table>
{% end %}
"""

MONITORING = r"""{% extends "base.html" %}
{% block title %}Model monitoring{% end %}
{% block body %}
<h1>Model monitoring</h1>
<p class="muted">Scores per tenant and week, computed on the governed path as <code>{{ monitor_user }}</code> in project
<code>{{ monitor_project }}</code>. Thresholds (<code>policies/alerts/monitoring.rego</code>, <code>[monitoring]</code> in
<code>{{ config_path }}</code>): R² below {{ config['r2_min'] }}, RMSE above {{ config['rmse_ratio_max'] }}× the reference,
drift when a KS test has p &lt; {{ config['drift_p_value'] }} and statistic ≥ {{ config['drift_min_statistic'] }}.
An alert sends the hypothesis back to Data Exploration and quarantines the tenant in the model's project until someone
other than the model's author acknowledges it.</p>
{% if not models %}<p class="muted" id="no-models">No models registered.</p>{% end %}
{% for m in models %}
<div class="card model" id="model-{{ m['model'].name }}">
 <h2>{{ m['model'].name }} v{{ m['model'].version }} <span class="muted">{{ m['model'].target }} ~ {{ ', '.join(m['model'].features) }} ·
  {{ m['model'].hypothesis }} ({{ phase_display(m['phase']) }}) · project {{ m['model'].project_id }} · author {{ m['model'].author }} ·
  reference {{ m['model'].reference_start }} .. {{ m['model'].reference_end }}</span></h2>
 {% if not m['segments'] %}<p class="muted">Not monitored yet: run <code>dataroom monitor run</code>.</p>{% end %}
 <div class="grid">
 {% for segment in m['segments'] %}
  <div class="segment" id="segment-{{ m['model'].name }}-{{ segment }}"><h3>{{ segment }}</h3>
   <img class="monitoring-chart" alt="R², RMSE and drift of {{ m['model'].name }} on {{ segment }} per week" src="{{ prefix }}charts/monitoring/{{ url_escape(m['model'].name) }}/{{ url_escape(segment) }}.svg" style="max-width:100%"></div>
 {% end %}
 </div>
 <h3>Alerts</h3>
 {% if not m['alerts'] %}<p class="muted">No alerts.</p>{% end %}
 <table class="model-alerts"><thead><tr><th>id</th><th>tenant</th><th>kind</th><th>from week</th><th>message</th><th>state</th></tr></thead><tbody>
 {% for a in m['alerts'] %}<tr class="model-alert" id="model-alert-{{ a.id }}" data-segment="{{ a.segment }}" data-kind="{{ a.kind }}"><td>{{ a.id }}</td><td>{{ a.segment }}</td><td><span class="chip high">{{ a.kind }}</span></td><td>{{ a.window_start }}</td><td>{{ a.message }}</td>
  <td>{% if a.acknowledged_at %}<span class="chip ok">acknowledged</span> by {{ a.acknowledged_by }} at {{ a.acknowledged_at[:19].replace('T', ' ') }}: {{ a.acknowledge_note }}
   {% else %}<span class="chip denied">quarantined</span> in {{ ', '.join(a.quarantined_projects) }}
   <form method="post" action="{{ prefix }}monitoring/alerts/{{ a.id }}/acknowledge" class="ack-form">{% module xsrf_form_html() %}<input name="note" placeholder="what you checked, what happens next" required size="34"> <button class="primary" type="submit">Acknowledge</button></form>
  {% end %}</td></tr>{% end %}
 </tbody></table>
</div>
{% end %}
{% end %}
"""

CHAIN = r"""{% extends "base.html" %}
{% block title %}Audit chain{% end %}
{% block body %}
<h1>Audit chain verification</h1>
<div class="card"><p id="chain-result"><span class="chip {{ 'ok' if chain.ok else 'broken' }}">{{ 'OK' if chain.ok else 'BROKEN' }}</span> {{ chain.describe() }}</p>
<p class="muted">Log: <code>{{ audit_file }}</code> · verified at {{ verified_at }} (every record's hash, the chain of previous hashes and the head file).</p></div>
{% end %}
"""

FORBIDDEN = r"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>403 Forbidden · data room</title>
<style>body{font-family:system-ui,sans-serif;margin:3rem;color:#1d2430}h1{color:#9b1c1c}</style></head>
<body><h1>403 Forbidden</h1><p id="forbidden">{{ message }}</p></body></html>
"""

ERROR = r"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{ status }} · data room</title></head>
<body style="font-family:system-ui,sans-serif;margin:3rem"><h1>{{ status }} {{ reason }}</h1><p>{{ message }}</p></body></html>
"""

LOADER = DictLoader(
    {
        "base.html": BASE,
        "query.html": QUERY,
        "summary.html": SUMMARY,
        "projects.html": PROJECTS,
        "hypotheses.html": HYPOTHESES,
        "chain.html": CHAIN,
        "monitoring.html": MONITORING,
        "forbidden.html": FORBIDDEN,
        "error.html": ERROR,
    }
)

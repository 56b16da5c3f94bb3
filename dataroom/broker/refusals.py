"""Audit records for requests the broker refuses before they reach the pipeline.

The pipeline audits every query it sees. Requests refused earlier (no token, a token the Hub
rejects, a token without the broker scope, a malformed body) never get there, so the broker
appends a ``decision`` record of the same shape itself: ``decision_id``, ``timestamp``, ``path``,
``input`` (user, groups, project, SQL, client, and the HTTP request), ``result`` (``allow:
false`` with the reasons), ``outcome`` (``denied``, ``invalid`` or ``error``) and ``bundles``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from dataroom.audit import AuditLog, decision_record
from dataroom.policy import Reason

REFUSAL_PATH = "dataroom/broker/authenticate"


def refusal_record(
    *,
    outcome: str,
    reasons: list[Reason],
    http_status: int,
    policy_revision: str,
    request: dict[str, Any],
    user: str | None = None,
    groups: list[str] | None = None,
    project_id: str | None = None,
    sql: str | None = None,
) -> dict[str, Any]:
    """A ``decision`` record for a refused request (the same builder as the pipeline's)."""
    if outcome not in ("denied", "invalid", "error"):
        raise ValueError(f"a refusal's outcome is denied, invalid or error, not {outcome!r}")
    return decision_record(
        path=REFUSAL_PATH,
        input_doc={
            "user": {"name": user, "groups": list(groups or [])},
            "project": None,
            "facts": None,
            "today": dt.date.today().isoformat(),
            "project_id": project_id,
            "sql": sql,
            "client": "broker",
            "request": request,
        },
        allow=False,
        reasons=[r.__dict__ for r in reasons],
        outcome=outcome,
        revision=policy_revision,
        labels={"engine": "broker"},
        metrics={"http_status": http_status},
    )


def record_refusal(audit: AuditLog, **fields: Any) -> dict[str, Any]:
    """Append (durably, chained) a refusal record built by :func:`refusal_record`; returns it."""
    return audit.append(refusal_record(**fields))

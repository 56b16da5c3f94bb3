"""Registry requests arriving over HTTP (the broker's ``POST v1/hypotheses`` for the notebook client).

The broker authenticates the caller with the Hub and passes the user name; these functions turn
a JSON body into a registry call and a JSON answer with an HTTP status, applying exactly the
rules of :class:`~dataroom.registry.service.Registry` (the CLI and the review UI use the same).
"""

from __future__ import annotations

from typing import Any

from dataroom.registry.service import Registry, RegistryError

MAX_STATEMENT_CHARS = 10_000
MAX_LINKED_QUERIES = 1_000


def register_hypothesis_request(registry: Registry, user: str, body: Any) -> tuple[int, dict[str, Any]]:
    """``{"project": str, "statement": str, "decision_ids": [str], "note": str?}`` → (status, JSON).

    201 with ``{"hypothesis": {...}}`` when registered; 400/403/404/409 with ``{"message": ...}``
    when refused (the message says what to change).
    """
    if not isinstance(body, dict):
        return 400, {"message": "send a JSON object: {project, statement, decision_ids}"}
    project = body.get("project") or body.get("project_id")
    statement = body.get("statement")
    decision_ids = body.get("decision_ids") or []
    note = body.get("note") or ""
    if not isinstance(project, str) or not project:
        return 400, {"message": "name the project the hypothesis belongs to ('project')"}
    if not isinstance(statement, str) or not statement.strip() or len(statement) > MAX_STATEMENT_CHARS:
        return 400, {"message": f"'statement' must be non-empty text of at most {MAX_STATEMENT_CHARS} characters"}
    if not isinstance(decision_ids, list) or not all(isinstance(d, str) for d in decision_ids) or len(decision_ids) > MAX_LINKED_QUERIES:
        return 400, {"message": f"'decision_ids' must be a list of at most {MAX_LINKED_QUERIES} decision id strings"}
    if not isinstance(note, str):
        return 400, {"message": "'note' must be text"}
    try:
        info = registry.register_hypothesis(user, project, statement, decision_ids, note=note)
    except RegistryError as exc:
        return exc.status, {"message": str(exc)}
    return 201, {"hypothesis": info.to_dict()}


def list_hypotheses_request(registry: Registry, user: str, project: str | None = None) -> tuple[int, dict[str, Any]]:
    """The hypotheses of the projects ``user`` is a member of (optionally one project)."""
    mine = {p.id for p in registry.projects() if user in p.members}
    if project and project not in mine:
        return 403, {"message": f"{user} is not a member of project {project}"}
    items = [h.to_dict() for h in registry.hypotheses(project) if h.project_id in mine]
    return 200, {"hypotheses": items}

"""Model requests arriving over HTTP (the broker's ``v1/models`` routes for the notebook client).

The broker authenticates the caller with the Hub and passes the user name; these functions turn a
JSON body into a :class:`~dataroom.registry.models_registry.ModelRegistry` call and a JSON answer
with an HTTP status. The model file travels as base64 skops bytes and is validated by the registry
(never unpickled). Only members of a model's project (or the security group) see its monitoring.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from dataroom.registry.service import Registry, RegistryError, SECURITY_GROUP

MAX_FEATURES = 100


def register_model_request(registry: Registry, user: str, body: Any) -> tuple[int, dict[str, Any]]:
    """``{name, artifact (base64 skops), hypothesis, features, target, reference: [start, end], segment?, table?, time_column?, note?}``."""
    if not isinstance(body, dict):
        return 400, {"message": "send a JSON object: {name, artifact, hypothesis, features, target, reference}"}
    name, artifact, hypothesis = body.get("name"), body.get("artifact"), body.get("hypothesis")
    features, target, reference = body.get("features"), body.get("target"), body.get("reference")
    if not isinstance(name, str) or not isinstance(hypothesis, (str, int)) or not isinstance(target, str):
        return 400, {"message": "'name', 'hypothesis' and 'target' are required text"}
    if not isinstance(features, list) or not features or len(features) > MAX_FEATURES or not all(isinstance(f, str) for f in features):
        return 400, {"message": f"'features' must be a list of 1 to {MAX_FEATURES} column names"}
    if not isinstance(reference, list) or len(reference) != 2 or not all(isinstance(d, str) for d in reference):
        return 400, {"message": "'reference' must be [start, end] dates (YYYY-MM-DD, end exclusive): the period the model was fitted on"}
    options = {k: body[k] for k in ("segment", "table", "time_column", "note") if k in body}
    if not all(isinstance(v, str) for v in options.values()):
        return 400, {"message": "'segment', 'table', 'time_column' and 'note' must be text"}
    try:
        data = base64.b64decode(artifact or "", validate=True)
    except (binascii.Error, TypeError, ValueError):
        return 400, {"message": "'artifact' must be the model's skops bytes in base64"}
    try:
        info = registry.models.register(user, name, data, hypothesis=hypothesis, features=features, target=target, reference=(reference[0], reference[1]), **options)
    except RegistryError as exc:
        return exc.status, {"message": str(exc)}
    return 201, {"model": info.to_dict()}


def visible_models(registry: Registry, user: str) -> list[Any]:
    """The latest version of each model whose project ``user`` is a member of (all, for security)."""
    actor = registry.catalog.users.get(user)
    security = actor is not None and SECURITY_GROUP in actor.groups
    mine = {p.id for p in registry.projects() if user in p.members}
    latest = {}
    for m in registry.models.models():
        if security or m.project_id in mine:
            latest[m.name] = m
    return list(latest.values())


def list_models_request(registry: Registry, user: str) -> tuple[int, dict[str, Any]]:
    return 200, {"models": [m.to_dict() for m in visible_models(registry, user)]}


def monitoring_request(registry: Registry, user: str, name: str) -> tuple[int, dict[str, Any]]:
    """A model's stored windows and alerts; 404 alike for an unknown model and one the caller may not see."""
    model = next((m for m in visible_models(registry, user) if m.name == name), None)
    if model is None:
        return 404, {"message": f"no model {name!r} in your projects (see room.models())"}
    return 200, {
        "model": model.to_dict(),
        "windows": registry.models.results(model.name, model.version),
        "alerts": [a.to_dict() for a in registry.models.alerts(model.name)],
    }

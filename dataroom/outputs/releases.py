"""Release requests end to end: check the object, store it by its hash, file it; review; download.

:class:`ReleaseService` is what the broker (``POST v1/releases``), the review UI and the CLI use:
it joins the output checks (:mod:`dataroom.outputs.checks`), the content-addressed store
(:mod:`dataroom.outputs.store`) and the registry's rules (:mod:`dataroom.registry.releases`).
The checks' context comes from the room itself, never from the request: the project's scope from
the registry, the sensitive columns from the catalog, and the linked queries from the audit log
(each must be the requester's own, in the same project).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from dataroom.audit import AuditLog
from dataroom.catalog import Classification
from dataroom.outputs.checks import CheckContext, check_object
from dataroom.outputs.objects import MEDIA_TYPES, TABLE_SUFFIXES, TEXT_SUFFIXES, ReleaseObject, ReleaseObjectError, safe_filename, validate_object
from dataroom.outputs.store import ReleaseStore, StoreError
from dataroom.registry import Conflict, Registry, RegistryError
from dataroom.registry.releases import ReleaseInfo, ReleaseRegistry

MAX_LINKED_QUERIES = 1_000
SENSITIVE = {Classification.PII.value, Classification.QUASI_IDENTIFIER.value}


class ReleaseService:
    def __init__(self, registry: Registry, store: ReleaseStore, audit: AuditLog) -> None:
        self.registry = registry
        self.releases = ReleaseRegistry(registry)
        self.store = store
        self.audit = audit

    @classmethod
    def from_settings(cls, settings: Any, registry: Registry | None = None) -> "ReleaseService":
        registry = registry or Registry.from_settings(settings)
        return cls(registry, ReleaseStore(settings.home / "releases"), AuditLog(settings.audit_file))

    # -- requesting ------------------------------------------------------------------------------
    def request(self, user: str, project_id: str, *, title: str, justification: str, obj: ReleaseObject, decision_ids: list[str]) -> ReleaseInfo:
        """Check ``obj`` and file a release request for it (RegistryError / ReleaseObjectError if refused)."""
        self.releases.check_requester(self.registry.actor(user).name, project_id)
        validate_object(obj.kind, obj.data)
        ids = list(dict.fromkeys(str(d) for d in decision_ids))
        context = self.context(user, project_id, ids)
        report = check_object(obj.kind, obj.data, context)
        digest = self.store.put("submitted", obj.data)
        return self.releases.file(
            user, project_id, title=title, justification=justification, kind=obj.kind, filename=obj.filename,
            media_type=MEDIA_TYPES[obj.kind], size=len(obj.data), sha256=digest, decision_ids=ids, checks=report,
        )

    def context(self, user: str, project_id: str, decision_ids: list[str]) -> CheckContext:
        """What the checks need to know, from the registry, the catalog and the audit log."""
        project = self.registry.project(project_id)
        catalog = self.registry.catalog
        sensitive: dict[str, str] = {}
        for name in project.tables:
            table = catalog.table(name)
            for column, cls in (table.columns.items() if table else []):
                if cls.value in SENSITIVE:
                    sensitive.setdefault(column.lower(), cls.value)
        return CheckContext(project_id, project.multi_tenant, list(project.tenants), sensitive, self.linked_queries(user, project_id, decision_ids))

    def linked_queries(self, user: str, project_id: str, decision_ids: list[str]) -> list[dict[str, Any]]:
        """The audited decisions behind the object, with the aggregation facts of their completions."""
        if len(decision_ids) > MAX_LINKED_QUERIES:
            raise RegistryError(f"link at most {MAX_LINKED_QUERIES} queries")
        if not decision_ids:
            return []
        wanted = set(decision_ids)
        decisions: dict[str, dict[str, Any]] = {}
        completions: dict[str, dict[str, Any]] = {}
        for record in self.audit.records():
            did = record.get("decision_id")
            if did in wanted:
                if record.get("type") == "decision":
                    decisions[did] = record
                elif record.get("type") == "completion":
                    completions[did] = record
        missing = sorted(wanted - set(decisions))
        if missing:
            raise RegistryError(f"no audit record for decision id(s) {', '.join(missing[:10])}")
        foreign = sorted(d for d, r in decisions.items() if (r.get("input") or {}).get("project_id") != project_id or ((r.get("input") or {}).get("user") or {}).get("name") != user)
        if foreign:
            raise RegistryError(f"decision id(s) {', '.join(foreign[:10])} are not your queries in project {project_id}")
        out = []
        for did in decision_ids:
            completion = completions.get(did) or {}
            out.append({
                "decision_id": did,
                "outcome": decisions[did].get("outcome"),
                "status": completion.get("status"),
                "rows": completion.get("rows"),
                "output_policy": completion.get("output_policy"),
            })
        return out

    # -- reviewing -------------------------------------------------------------------------------
    def review(self, reviewer: str, request_id: int | str, *, approve: bool, note: str = "") -> ReleaseInfo:
        """A verdict; the second approval stores the object immutably in the released area."""
        return self.releases.review(reviewer, request_id, approve=approve, note=note, release=lambda info: self.store.release(info.sha256))

    # -- reading ---------------------------------------------------------------------------------
    def content(self, user: str, request_id: int | str) -> tuple[ReleaseInfo, bytes]:
        """The submitted object, for its requester and the reviewers (what the review pages show)."""
        info = self.releases.get(request_id, as_user=user)
        return info, self.store.read("submitted", info.sha256)

    def download(self, user: str, request_id: int | str, *, via: str) -> tuple[ReleaseInfo, bytes]:
        """The released object's bytes, verified against the recorded SHA-256; the download is recorded."""
        info = self.releases.get(request_id, as_user=user)
        if info.status != "released" or not info.released_sha256:
            raise Conflict(f"{info.key} is {info.status}: only a released object can be downloaded")
        try:
            data = self.store.read("released", info.released_sha256 or "")
        except StoreError as exc:
            raise RegistryError(str(exc)) from exc
        info = self.releases.record_download(user, request_id, sha256=info.released_sha256 or "", via=via)
        return info, data


def release_request(service: ReleaseService, user: str, body: Any) -> tuple[int, dict[str, Any]]:
    """``POST v1/releases``: ``{project, title, justification, kind, filename?, data (base64), decision_ids}`` → (status, JSON)."""
    if not isinstance(body, dict):
        return 400, {"message": "send a JSON object: {project, title, justification, kind, data, decision_ids}"}
    project, title, justification, kind = (body.get(k) for k in ("project", "title", "justification", "kind"))
    ids = body.get("decision_ids") or []
    for name, value in (("project", project), ("title", title), ("justification", justification), ("kind", kind)):
        if not isinstance(value, str) or not value.strip():
            return 400, {"message": f"'{name}' must be non-empty text"}
    if not isinstance(ids, list) or not all(isinstance(d, str) for d in ids):
        return 400, {"message": "'decision_ids' must be a list of decision id strings"}
    try:
        data = base64.b64decode(body.get("data") or "", validate=True)
    except (binascii.Error, TypeError, ValueError):
        return 400, {"message": "'data' must be the object's bytes in base64"}
    given = body.get("filename") if isinstance(body.get("filename"), str) else ""
    suffix = "." + given.rsplit(".", 1)[1].lower() if "." in given else ""
    allowed = {"table": TABLE_SUFFIXES, "figure": {".png"}, "text": TEXT_SUFFIXES}.get(kind, set())
    default = {"table": ".csv", "figure": ".png", "text": ".txt"}.get(kind, "")
    filename = safe_filename(title, suffix if suffix in allowed else default)
    try:
        info = service.request(user, project, title=title, justification=justification, obj=ReleaseObject(kind, filename, MEDIA_TYPES.get(kind, ""), data), decision_ids=ids)
    except ReleaseObjectError as exc:
        return 400, {"message": str(exc)}
    except RegistryError as exc:
        return exc.status, {"message": str(exc)}
    return 201, {"release": info.to_dict()}


def list_releases_request(service: ReleaseService, user: str) -> tuple[int, dict[str, Any]]:
    """``GET v1/releases``: the caller's own requests (a reviewer's: all)."""
    try:
        return 200, {"releases": [i.to_dict() for i in service.releases.list(as_user=user)]}
    except RegistryError as exc:
        return exc.status, {"message": str(exc)}

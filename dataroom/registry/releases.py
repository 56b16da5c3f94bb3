"""Release requests in the registry: the one way a result leaves the room, decided by two people.

Rules (the broker, the review UI and the CLI all call :class:`ReleaseRegistry`):

* A release is **requested** by a member of an approved, unexpired project, with a title and a
  justification, linking audited queries of that project made by the requester
  (:mod:`dataroom.outputs.releases` runs the output checks and stores the object first).
* Each request is **reviewed** by members of the ``security`` group, never by the requester. A
  reviewer gives one verdict. One rejection ends the request; the **second approval** from a
  different reviewer releases it: the ``release`` callback stores the object immutably and returns
  its SHA-256, in the same transaction (a failed store releases nothing). A request whose checks
  failed can only be approved with a written note.
* A released object is **downloaded** only by its requester or a security reviewer; a pending or
  rejected one never.

Every step is a :class:`~dataroom.registry.models.ReleaseEventRow` (requested, approved,
rejected, released, downloaded); the registry stream mirrors each into the audit evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from dataroom.audit import utc_now
from dataroom.registry.models import ProjectRow, ReleaseEventRow, ReleaseRequestRow
from dataroom.registry.service import Conflict, NotFound, PermissionDenied, RegistryError

if TYPE_CHECKING:
    from dataroom.registry.service import Registry

APPROVALS_NEEDED = 2
MAX_TITLE_CHARS = 200
MAX_JUSTIFICATION_CHARS = 10_000


@dataclass
class ReleaseEvent:
    id: int
    at: str
    actor: str
    kind: str  # requested | approved | rejected | released | downloaded
    note: str
    details: dict[str, Any]


@dataclass
class ReleaseInfo:
    id: int
    key: str  # "R-<id>"
    project_id: str
    requester: str
    title: str
    justification: str
    kind: str
    filename: str
    media_type: str
    size: int
    sha256: str
    decision_ids: list[str]
    checks: dict[str, Any]
    created_at: str
    status: str  # pending | rejected | released
    released_at: str | None
    released_sha256: str | None
    events: list[ReleaseEvent] = field(default_factory=list)

    @property
    def approvers(self) -> list[str]:
        return [e.actor for e in self.events if e.kind == "approved"]

    @property
    def reviewers(self) -> list[str]:
        return [e.actor for e in self.events if e.kind in ("approved", "rejected")]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "approvers": self.approvers, "approvals_needed": APPROVALS_NEEDED}


def release_key(rid: int) -> str:
    return f"R-{rid}"


def parse_release_id(text: str | int) -> int:
    """``R-3``, ``r3`` or ``3`` → 3."""
    if isinstance(text, int):
        return text
    raw = str(text).strip().upper().removeprefix("R").removeprefix("-")
    if not raw.isdigit():
        raise RegistryError(f"{text!r} is not a release request id: use the R-<number> shown by `dataroom release list`")
    return int(raw)


class ReleaseRegistry:
    """Release requests over the registry's database and rules (see the module docstring)."""

    def __init__(self, registry: "Registry") -> None:
        self.registry = registry

    @contextmanager
    def _refusals(self, actor: str, action: str, request_id: int | str) -> Iterator[None]:
        """A refused attempt (requester approving, someone else downloading) is a ``registry_refusal`` audit record."""
        try:
            yield
        except PermissionDenied as exc:
            self.registry._record_refusal(actor, action, str(request_id), None, exc)
            raise

    # -- requests --------------------------------------------------------------------------------
    def file(
        self,
        requester: str,
        project_id: str,
        *,
        title: str,
        justification: str,
        kind: str,
        filename: str,
        media_type: str,
        size: int,
        sha256: str,
        decision_ids: list[str],
        checks: dict[str, Any],
    ) -> ReleaseInfo:
        """Record a request (after the checks ran and the object was stored by its hash)."""
        who = self.registry.actor(requester)
        self.check_requester(who.name, project_id)
        title, justification = (title or "").strip(), (justification or "").strip()
        if not title or len(title) > MAX_TITLE_CHARS:
            raise RegistryError(f"a release needs a title of at most {MAX_TITLE_CHARS} characters")
        if not justification or len(justification) > MAX_JUSTIFICATION_CHARS:
            raise RegistryError("a release needs a justification: why must this result leave the room, and for whom?")
        now = utc_now()
        with self.registry._session() as db, db.begin():
            row = ReleaseRequestRow(
                project_id=project_id, requester=who.name, title=title, justification=justification, kind=kind, filename=filename,
                media_type=media_type, size=size, sha256=sha256, decision_ids=list(decision_ids), checks=checks, created_at=now, status="pending",
            )
            db.add(row)
            db.flush()
            db.add(ReleaseEventRow(request_id=row.id, at=now, actor=who.name, kind="requested", note=justification,
                                   details={"sha256": sha256, "size": size, "checks": checks.get("status"), "decision_ids": list(decision_ids)}))
            db.flush()
            return self._info(db, row)

    def check_requester(self, user: str, project_id: str) -> None:
        """``user`` may ask for a release from ``project_id`` (a member of an approved, unexpired project)."""
        with self.registry._session() as db:
            project = db.get(ProjectRow, project_id)
            if project is None or user not in project.members:
                raise PermissionDenied(f"{user} is not a member of project {project_id}")
        info = self.registry.project(project_id)
        if info.effective_status != "approved":
            raise Conflict(f"project {project_id} is {info.effective_status}: nothing can be released from it")

    # -- decisions -------------------------------------------------------------------------------
    def review(self, reviewer: str, request_id: int | str, *, approve: bool, note: str = "", release: Callable[[ReleaseInfo], str] | None = None) -> ReleaseInfo:
        """One reviewer's verdict; the second approval calls ``release`` (which stores the object and
        returns its SHA-256) inside the transaction, so the request is released only if that worked."""
        with self._refusals(reviewer, "release_approve" if approve else "release_reject", request_id):
            return self._review(reviewer, request_id, approve=approve, note=note, release=release)

    def _review(self, reviewer: str, request_id: int | str, *, approve: bool, note: str, release: Callable[[ReleaseInfo], str] | None) -> ReleaseInfo:
        who = self.registry.actor(reviewer)
        rid = parse_release_id(request_id)
        now = utc_now()
        note = (note or "").strip()
        with self.registry._session() as db, db.begin():
            row = self._row(db, rid, lock=True)
            key = release_key(rid)
            if not who.is_security:
                raise PermissionDenied(f"only members of the security group may review {key}")
            if who.name == row.requester:
                raise PermissionDenied(f"{who.name} asked for {key} and may not review it")
            if row.status != "pending":
                raise Conflict(f"{key} is {row.status}: it takes no more verdicts")
            events = self._events(db, rid)
            if any(e.actor == who.name and e.kind in ("approved", "rejected") for e in events):
                raise Conflict(f"{who.name} already gave a verdict on {key}: a second approval must come from someone else")
            if approve and (row.checks or {}).get("status") == "fail" and not note:
                raise RegistryError(f"the output checks of {key} failed: approving it needs a note saying why the flagged cells are safe")
            db.add(ReleaseEventRow(request_id=rid, at=now, actor=who.name, kind="approved" if approve else "rejected", note=note))
            db.flush()  # from here this transaction holds the database's write lock (SQLite) or the row lock (PostgreSQL):
            db.refresh(row)  # decide on what other reviewers committed meanwhile, not on the reads above
            events = self._events(db, rid)
            if row.status != "pending":
                raise Conflict(f"{key} became {row.status} meanwhile: it takes no more verdicts")
            if sum(e.actor == who.name and e.kind in ("approved", "rejected") for e in events) > 1:
                raise Conflict(f"{who.name} already gave a verdict on {key}: a second approval must come from someone else")
            if not approve:
                row.status = "rejected"
            else:
                approvers = {e.actor for e in events if e.kind == "approved"}
                if len(approvers) >= APPROVALS_NEEDED:
                    if release is None:
                        raise RegistryError(f"{key} has its approvals but nothing to store it with")
                    digest = release(self._info(db, row))
                    if digest != row.sha256:
                        raise RegistryError(f"{key}: the stored object does not match the requested one; nothing was released")
                    row.status, row.released_at, row.released_sha256 = "released", now, digest
                    db.add(ReleaseEventRow(request_id=rid, at=now, actor=who.name, kind="released", note=f"approved by {', '.join(sorted(approvers))}",
                                           details={"sha256": digest, "approvers": sorted(approvers)}))
            db.flush()
            return self._info(db, row)

    def record_download(self, user: str, request_id: int | str, *, sha256: str, via: str) -> ReleaseInfo:
        """Check that ``user`` may download the released object, and record that they did."""
        who = self.registry.actor(user)
        rid = parse_release_id(request_id)
        with self._refusals(user, "release_download", request_id), self.registry._session() as db, db.begin():
            row = self._row(db, rid)
            self._check_reader(who.name, who.is_security, row)
            if row.status != "released":
                raise Conflict(f"{release_key(rid)} is {row.status}: only a released object can be downloaded")
            if sha256 != row.released_sha256:
                raise RegistryError(f"{release_key(rid)}: the stored object does not match its recorded hash; it cannot be downloaded")
            db.add(ReleaseEventRow(request_id=rid, at=utc_now(), actor=who.name, kind="downloaded", details={"sha256": sha256, "via": via}))
            db.flush()
            return self._info(db, row)

    # -- reading ---------------------------------------------------------------------------------
    def get(self, request_id: int | str, *, as_user: str | None = None) -> ReleaseInfo:
        """One request; with ``as_user``, only if they may see it (requester or security)."""
        rid = parse_release_id(request_id)
        with self.registry._session() as db:
            row = self._row(db, rid)
            if as_user is not None:
                who = self.registry.actor(as_user)
                with self._refusals(as_user, "release_read", request_id):
                    self._check_reader(who.name, who.is_security, row)
            return self._info(db, row)

    def list(self, *, status: str | None = None, as_user: str | None = None) -> list[ReleaseInfo]:
        """Requests, newest first; with ``as_user``, those they may see."""
        with self.registry._session() as db:
            query = select(ReleaseRequestRow).order_by(ReleaseRequestRow.id.desc())
            if status:
                query = query.where(ReleaseRequestRow.status == status)
            if as_user is not None:
                who = self.registry.actor(as_user)
                if not who.is_security:
                    query = query.where(ReleaseRequestRow.requester == who.name)
            return [self._info(db, row) for row in db.scalars(query)]

    # -- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _check_reader(name: str, is_security: bool, row: ReleaseRequestRow) -> None:
        if name != row.requester and not is_security:
            raise PermissionDenied(f"only the requester of {release_key(row.id)} and the security group may see or download it")

    @staticmethod
    def _row(db: Any, rid: int, lock: bool = False) -> ReleaseRequestRow:
        query = select(ReleaseRequestRow).where(ReleaseRequestRow.id == rid)
        if lock and db.bind.dialect.name == "postgresql":
            query = query.with_for_update()  # two reviewers at once: the second waits and sees the first
        row = db.scalars(query).first()
        if row is None:
            raise NotFound(f"no release request {release_key(rid)}")
        return row

    @staticmethod
    def _events(db: Any, rid: int) -> list[ReleaseEvent]:
        rows = db.scalars(select(ReleaseEventRow).where(ReleaseEventRow.request_id == rid).order_by(ReleaseEventRow.id))
        return [ReleaseEvent(r.id, r.at, r.actor, r.kind, r.note, dict(r.details or {})) for r in rows]

    def _info(self, db: Any, row: ReleaseRequestRow) -> ReleaseInfo:
        return ReleaseInfo(
            id=row.id, key=release_key(row.id), project_id=row.project_id, requester=row.requester, title=row.title,
            justification=row.justification, kind=row.kind, filename=row.filename, media_type=row.media_type, size=row.size,
            sha256=row.sha256, decision_ids=list(row.decision_ids or []), checks=dict(row.checks or {}), created_at=row.created_at,
            status=row.status, released_at=row.released_at, released_sha256=row.released_sha256, events=self._events(db, row.id),
        )

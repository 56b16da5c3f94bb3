"""The registry service: projects (proposed → approved → revoked/expired) and hypotheses.

Rules (the same for the CLI, the review UI and the broker API, because all three call this class):

* Anyone in the catalog may **propose** a project (they become its requester and first member).
* Only a member of the ``security`` group may **approve** or **reject** it, and never the requester
  nor anyone the project would grant access to (segregation of duties). Approval sets the scope:
  tenants, tables, column classes (never PII), ``multi_tenant``, expiry, and a written justification.
* **Revoke** (security or the requester) and **expire** (security) take effect on the next query:
  the query path reads the project row by primary key on every query, nothing is cached.
* **Membership** changes are security decisions (never your own), each an event row.
* **Hypotheses** are registered by project members, link audit ``decision_id``s of the project, and
  move through the five phases (:mod:`dataroom.registry.phases`); entering a production sub-phase is a
  request that someone other than the author and the requester must approve.

Every change appends a :class:`ProjectEvent` or :class:`PhaseTransition`; nothing is updated
without a record of who did it and when.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import re
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from sqlalchemy import Engine, bindparam, create_engine, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dataroom.audit import AuditLog, utc_now
from dataroom.catalog import DEFAULT_COLUMN_CLASSES, ENGINES, Catalog, Classification, Project
from dataroom.outputs.policy import normalise_output_policy
from dataroom.registry.models import HypothesisQuery, HypothesisRow, Meta, PhaseTransition, ProjectEvent, ProjectRow
from dataroom.registry.phases import Phase, allowed_targets
from dataroom.registry.policy_row import POLICY_COLUMNS, project_from_row, sqlite_file
from dataroom.registry.state_cache import RegistryStateCache

if TYPE_CHECKING:
    from dataroom.registry.models_registry import ModelRegistry

_PROJECTS = ProjectRow.__table__
_POLICY_SELECT = select(*(_PROJECTS.c[name] for name in POLICY_COLUMNS)).where(_PROJECTS.c.id == bindparam("project_id"))

log = logging.getLogger(__name__)
SECURITY_GROUP = "security"
APPROVER_GROUP = "approvers"  # may approve hypothesis phases and project membership, like security (not projects)
SEED_ACTOR = "system:catalog-seed"
DEFAULT_PROJECT_DAYS = 90
MAX_PROJECT_DAYS = 366
_PROJECT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


class RegistryError(Exception):
    """A request the registry refuses; the message says what to do instead."""

    status = 400


class PermissionDenied(RegistryError):
    """The acting user may not do this (wrong group, or segregation of duties)."""

    status = 403


class NotFound(RegistryError):
    status = 404


class Conflict(RegistryError):
    """The object is not in a state that allows this (e.g. approving an approved project)."""

    status = 409


@dataclass(frozen=True)
class Actor:
    """Who is acting, with the groups the catalog gives them."""

    name: str
    groups: tuple[str, ...] = ()

    @property
    def is_security(self) -> bool:
        return SECURITY_GROUP in self.groups

    @property
    def may_approve(self) -> bool:
        """Security or approver: who may approve a production phase or a new project member."""
        return self.is_security or APPROVER_GROUP in self.groups


def _records_refusals(action: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Separation of duties leaves evidence: a refused attempt is a ``registry_refusal`` record in the audit."""

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def inner(self: "Registry", actor: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, actor, target, *args, **kwargs)
            except PermissionDenied as exc:
                self._record_refusal(actor, action, target, args[0] if args and isinstance(args[0], str) else None, exc)
                raise

        return inner

    return wrap


@dataclass
class ProjectInfo:
    id: str
    description: str
    requester: str
    status: str  # proposed | approved | rejected | revoked
    effective_status: str  # status, or "expired" for an approved project past its expiry
    members: list[str]
    tenants: list[str]
    tables: list[str]
    column_classes: list[str]
    multi_tenant: bool
    expires: dt.date
    output_policy: dict[str, Any] | None
    justification: str
    proposed_at: str
    decided_by: str | None
    decided_at: str | None
    decision_note: str | None
    revoked_by: str | None
    revoked_at: str | None
    revoke_reason: str | None
    engine: str | None = None  # duckdb | spark; None: the deployment's default engine

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "expires": self.expires.isoformat()}


@dataclass
class TransitionInfo:
    id: int
    hypothesis_id: int
    from_phase: str | None
    to_phase: str
    actor: str
    requested_at: str
    approver: str | None
    at: str
    outcome: str
    note: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class HypothesisInfo:
    id: int
    key: str  # "H-<id>"
    project_id: str
    statement: str
    author: str
    created_at: str
    phase: str
    pending_phase: str | None
    pending_by: str | None
    pending_at: str | None
    pending_note: str | None
    decision_ids: list[str] = field(default_factory=list)
    transitions: list[TransitionInfo] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "transitions": [t.to_dict() for t in self.transitions]}


def hypothesis_key(hid: int) -> str:
    return f"H-{hid}"


def parse_hypothesis_id(text: str | int) -> int:
    """``H-12``, ``h12`` or ``12`` → 12."""
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*[hH]-?(\d+)\s*|\s*(\d+)\s*", str(text))
    if not match:
        raise RegistryError(f"{text!r} is not a hypothesis id: use the H-<number> shown by `dataroom hypothesis list`")
    return int(match.group(1) or match.group(2))


# -- engines: one per database URL per process ------------------------------------------------
_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (the query path) never wait for a writer
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def driver_url(url: str) -> str:
    """``postgresql://`` (as RDS and libpq spell it) means the psycopg 3 driver the package pins."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def create_registry_engine(url: str) -> Engine:
    """A new engine for ``url`` with the registry's connection settings, schema untouched."""
    url = driver_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def engine_for(url: str) -> Engine:
    """The process-wide engine for ``url``, its schema current (:func:`dataroom.registry.schema.prepare`)."""
    from dataroom.registry.schema import prepare

    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = create_registry_engine(url)
            try:
                prepare(engine)
            except Exception:
                engine.dispose()
                raise
            _ENGINES[url] = engine
        return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests, and processes that are about to exit)."""
    with _ENGINES_LOCK:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()


class Registry:
    """Projects and hypotheses in a SQL database (SQLite by default, PostgreSQL by URL)."""

    def __init__(self, url: str, catalog: Catalog, audit: AuditLog | None = None, seed: bool = True) -> None:
        self.url = url
        self.catalog = catalog
        self.audit = audit
        self.engine = engine_for(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._policy_state = RegistryStateCache(sqlite_file(url))  # what every query reads (policy_project, quarantines)
        if audit is not None:  # audit hook (issue 10): committed rows are mirrored to the audit's registry stream
            from dataroom.audit.registry_events import record_registry_writes

            record_registry_writes(self._sessions, audit)
        if seed:
            self.ensure_seeded()

    @classmethod
    def from_settings(cls, settings: Any, catalog: Catalog | None = None) -> "Registry":
        from dataroom.catalog import load_catalog

        catalog = catalog or load_catalog(settings.catalog_file)
        return cls(settings.registry_database_url, catalog, AuditLog(settings.audit_file))

    def _session(self) -> Session:
        return self._sessions()

    # -- who is acting ---------------------------------------------------------------------------
    def actor(self, name: str) -> Actor:
        """The catalog user ``name`` with their catalog groups; unknown users may do nothing."""
        user = self.catalog.users.get(name)
        if user is None:
            raise PermissionDenied(f"{name!r} is not a user in the catalog; act as a catalog user (e.g. --as sam)")
        return Actor(user.name, tuple(user.groups))

    def _resolve(self, actor: Actor | str) -> Actor:
        # Groups always come from the catalog, whatever the front door claims.
        return self.actor(actor if isinstance(actor, str) else actor.name)

    # -- seeding ---------------------------------------------------------------------------------
    def ensure_seeded(self) -> bool:
        """Copy the catalog's projects in as approved, once per registry; True if this call seeded."""
        with self._session() as db:
            if db.get(Meta, "seeded") is not None:
                return False
        catalog_path = str(self.catalog.path) if self.catalog.path else "<in-memory catalog>"
        digest = hashlib.sha256(self.catalog.path.read_bytes()).hexdigest() if self.catalog.path and self.catalog.path.exists() else ""
        security = sorted(u.name for u in self.catalog.users.values() if SECURITY_GROUP in u.groups)
        now = utc_now()
        note = (
            f"seeded from catalog {catalog_path} (sha256 {digest or 'n/a'}) by {SEED_ACTOR}: "
            "declared as approved in the version-controlled catalog; no security reviewer approved it in this registry "
            f"(security group at seeding: {', '.join(security) or 'nobody'})"
        )
        try:
            with self._session() as db, db.begin():
                db.add(Meta(key="seeded", value={"at": now, "catalog": catalog_path, "sha256": digest, "projects": sorted(self.catalog.projects)}))
                db.flush()
                for p in self.catalog.projects.values():
                    if db.get(ProjectRow, p.id) is not None:
                        continue
                    db.add(
                        ProjectRow(
                            id=p.id,
                            description=p.description,
                            requester="catalog",
                            status="approved",
                            members=list(p.members),
                            tenants=list(p.tenants),
                            tables=[t.lower() for t in p.tables],
                            column_classes=[c.value for c in p.column_classes],
                            multi_tenant=p.multi_tenant,
                            output_policy=normalise_output_policy(p.output_policy, p.multi_tenant, len(p.tenants)),
                            engine=p.engine,
                            expires=p.expires,
                            justification=p.description or "declared in the catalog",
                            proposed_at=now,
                            decided_by=SEED_ACTOR,
                            decided_at=now,
                            decision_note=note,
                        )
                    )
                    db.flush()
                    db.add(
                        ProjectEvent(
                            project_id=p.id,
                            at=now,
                            actor=SEED_ACTOR,
                            kind="seeded",
                            note=note,
                            details={"catalog": catalog_path, "sha256": digest, "scope": _scope_of(p), "security_group": security},
                        )
                    )
                    for member in p.members:
                        db.add(ProjectEvent(project_id=p.id, at=now, actor=SEED_ACTOR, kind="member_added", subject=member, note="seeded from catalog"))
        except IntegrityError:  # another process seeded first
            return False
        return True

    # -- the query path --------------------------------------------------------------------------
    def policy_state(self, project_id: str) -> tuple[Project | None, list[dict[str, str]]]:
        """What the query policy reads of the registry: the project and its quarantined tenants,
        read together and reused while the registry is unchanged (one version check per query: state_cache.py)."""
        return self._policy_state.get(project_id, lambda: (self._read_policy_project(project_id), self.models.active_quarantines(project_id)))

    def policy_project(self, project_id: str) -> Project | None:
        """The project as the query policy sees it (see :meth:`policy_state`)."""
        return self.policy_state(project_id)[0]

    def _read_policy_project(self, project_id: str) -> Project | None:
        with self.engine.connect() as conn:
            row = conn.execute(_POLICY_SELECT, {"project_id": project_id}).mappings().first()
        return None if row is None else project_from_row(row)  # the light read (dataroom tables) shares it

    @property
    def models(self) -> "ModelRegistry":
        """Models, monitoring results, alerts and quarantines (:mod:`dataroom.registry.models_registry`)."""
        from dataroom.registry.models_registry import ModelRegistry

        return ModelRegistry(self)

    def quarantines(self, project_id: str) -> list[dict[str, str]]:
        """The project's quarantined tenants, as the query policy sees them (see :meth:`policy_state`)."""
        return self.policy_state(project_id)[1]

    # -- projects --------------------------------------------------------------------------------
    def propose(
        self,
        actor: Actor | str,
        project_id: str,
        *,
        justification: str,
        tenants: Iterable[str],
        tables: Iterable[str],
        description: str = "",
        column_classes: Iterable[str] | None = None,
        multi_tenant: bool = False,
        expires: dt.date | None = None,
        members: Iterable[str] = (),
        output_policy: dict[str, Any] | None = None,
        engine: str | None = None,
    ) -> ProjectInfo:
        who = self._resolve(actor)
        if not _PROJECT_ID_RE.match(project_id or ""):
            raise RegistryError(f"project id {project_id!r} must be 2-63 characters of a-z, 0-9 and '-', starting with a letter or digit")
        if not (justification or "").strip():
            raise RegistryError("a project needs a written justification (--justification): why production data, why this scope")
        member_list = _unique([who.name, *members])
        scope = self._check_scope(
            tenants, tables, column_classes, multi_tenant, expires or dt.date.today() + dt.timedelta(days=DEFAULT_PROJECT_DAYS), output_policy, engine
        )
        for m in member_list:
            if m not in self.catalog.users:
                raise RegistryError(f"member {m!r} is not a user in the catalog")
        now = utc_now()
        with self._session() as db, db.begin():
            if db.get(ProjectRow, project_id) is not None:
                raise Conflict(f"project {project_id} already exists; choose another id")
            row = ProjectRow(
                id=project_id,
                description=description,
                requester=who.name,
                status="proposed",
                members=member_list,
                justification=justification.strip(),
                proposed_at=now,
                **scope,
            )
            db.add(row)
            db.flush()
            db.add(ProjectEvent(project_id=project_id, at=now, actor=who.name, kind="proposed", note=justification.strip(), details={"scope": _scope_json(scope)}))
            for m in member_list:
                db.add(ProjectEvent(project_id=project_id, at=now, actor=who.name, kind="member_added", subject=m, note="named in the proposal"))
            return _project_info(row)

    @_records_refusals("approve_project")
    def approve(
        self,
        actor: Actor | str,
        project_id: str,
        *,
        justification: str,
        tenants: Iterable[str] | None = None,
        tables: Iterable[str] | None = None,
        column_classes: Iterable[str] | None = None,
        multi_tenant: bool | None = None,
        expires: dt.date | None = None,
        output_policy: dict[str, Any] | None = None,
        engine: str | None = None,
    ) -> ProjectInfo:
        """Approve a proposed project, setting its scope (defaults: the requested scope)."""
        who = self._resolve(actor)
        now = utc_now()
        with self._session() as db, db.begin():
            row = self._project_row(db, project_id)
            self._check_decider(who, row, "approve")
            if not (justification or "").strip():
                raise RegistryError("approving needs a written justification: why this scope is acceptable")
            requested = _scope_json(_row_scope(row))
            scope = self._check_scope(
                row.tenants if tenants is None else tenants,
                row.tables if tables is None else tables,
                row.column_classes if column_classes is None else column_classes,
                row.multi_tenant if multi_tenant is None else multi_tenant,
                row.expires if expires is None else expires,
                row.output_policy if output_policy is None else output_policy,
                row.engine if engine is None else engine,
            )
            for key, value in scope.items():
                setattr(row, key, value)
            row.status, row.decided_by, row.decided_at, row.decision_note = "approved", who.name, now, justification.strip()
            db.add(
                ProjectEvent(
                    project_id=project_id,
                    at=now,
                    actor=who.name,
                    kind="approved",
                    note=justification.strip(),
                    details={"requested_scope": requested, "approved_scope": _scope_json(scope), "requester": row.requester},
                )
            )
            return _project_info(row)

    @_records_refusals("reject_project")
    def reject(self, actor: Actor | str, project_id: str, *, reason: str) -> ProjectInfo:
        who = self._resolve(actor)
        now = utc_now()
        with self._session() as db, db.begin():
            row = self._project_row(db, project_id)
            self._check_decider(who, row, "reject")
            if not (reason or "").strip():
                raise RegistryError("rejecting needs a written reason the requester can act on")
            row.status, row.decided_by, row.decided_at, row.decision_note = "rejected", who.name, now, reason.strip()
            db.add(ProjectEvent(project_id=project_id, at=now, actor=who.name, kind="rejected", note=reason.strip(), details={"requester": row.requester}))
            return _project_info(row)

    @_records_refusals("revoke_project")
    def revoke(self, actor: Actor | str, project_id: str, *, reason: str) -> ProjectInfo:
        """Stop a project at once (security, or its requester withdrawing it)."""
        who = self._resolve(actor)
        now = utc_now()
        with self._session() as db, db.begin():
            row = self._project_row(db, project_id)
            if not (who.is_security or who.name == row.requester):
                raise PermissionDenied(f"only the security group or the requester ({row.requester}) may revoke project {project_id}")
            if row.status not in ("approved", "proposed"):
                raise Conflict(f"project {project_id} is {row.status}; only an approved or proposed project can be revoked")
            if not (reason or "").strip():
                raise RegistryError("revoking needs a written reason")
            previous = row.status
            row.status, row.revoked_by, row.revoked_at, row.revoke_reason = "revoked", who.name, now, reason.strip()
            db.add(ProjectEvent(project_id=project_id, at=now, actor=who.name, kind="revoked", note=reason.strip(), details={"previous_status": previous}))
            return _project_info(row)

    def expire(self, actor: Actor | str, project_id: str, *, reason: str, on: dt.date | None = None) -> ProjectInfo:
        """Move an approved project's expiry to ``on`` (default: yesterday, i.e. expired now)."""
        who = self._resolve(actor)
        if not who.is_security:
            raise PermissionDenied(f"only the security group may change project {project_id}'s expiry")
        if not (reason or "").strip():
            raise RegistryError("expiring a project needs a written reason")
        new = on or dt.date.today() - dt.timedelta(days=1)
        now = utc_now()
        with self._session() as db, db.begin():
            row = self._project_row(db, project_id)
            if row.status != "approved":
                raise Conflict(f"project {project_id} is {row.status}; only an approved project can expire")
            if new > row.expires:
                raise RegistryError(f"expire can only bring the expiry ({row.expires}) forward; extending a project needs a new proposal")
            old = row.expires
            row.expires = new
            db.add(ProjectEvent(project_id=project_id, at=now, actor=who.name, kind="expired", note=reason.strip(), details={"previous_expires": old.isoformat(), "expires": new.isoformat()}))
            return _project_info(row)

    @_records_refusals("add_member")
    def add_member(self, actor: Actor | str, project_id: str, user: str, *, note: str = "") -> ProjectInfo:
        who = self._resolve(actor)
        if not who.may_approve:
            raise PermissionDenied(f"adding a member widens who sees the data: only the {SECURITY_GROUP} or {APPROVER_GROUP} group may do it")
        if user == who.name:
            raise PermissionDenied(f"you may not add yourself to a project; ask another member of the {SECURITY_GROUP} group")
        if user not in self.catalog.users:
            raise RegistryError(f"{user!r} is not a user in the catalog")
        now = utc_now()
        with self._session() as db, db.begin():
            row = self._project_row(db, project_id)
            if who.name == row.requester:
                raise PermissionDenied(f"{who.name} requested project {project_id} and may not widen it (segregation of duties)")
            if row.status in ("rejected", "revoked"):
                raise Conflict(f"project {project_id} is {row.status}; members cannot be added")
            if user in row.members:
                raise Conflict(f"{user} is already a member of {project_id}")
            row.members = [*row.members, user]
            db.add(ProjectEvent(project_id=project_id, at=now, actor=who.name, kind="member_added", subject=user, note=note))
            return _project_info(row)

    @_records_refusals("remove_member")
    def remove_member(self, actor: Actor | str, project_id: str, user: str, *, note: str = "") -> ProjectInfo:
        who = self._resolve(actor)
        now = utc_now()
        with self._session() as db, db.begin():
            row = self._project_row(db, project_id)
            if not (who.may_approve or who.name in (row.requester, user)):  # narrowing: also the requester, or the member leaving
                raise PermissionDenied(f"only the security or approvers group, the requester ({row.requester}) or {user} may remove {user}")
            if user not in row.members:
                raise NotFound(f"{user} is not a member of {project_id}")
            row.members = [m for m in row.members if m != user]
            db.add(ProjectEvent(project_id=project_id, at=now, actor=who.name, kind="member_removed", subject=user, note=note))
            return _project_info(row)

    def project(self, project_id: str) -> ProjectInfo:
        with self._session() as db:
            return _project_info(self._project_row(db, project_id))

    def projects(self, status: str | None = None) -> list[ProjectInfo]:
        """All projects (``status`` filters on the effective status, e.g. ``proposed`` or ``expired``)."""
        with self._session() as db:
            rows = db.scalars(select(ProjectRow).order_by(ProjectRow.proposed_at, ProjectRow.id)).all()
            infos = [_project_info(r) for r in rows]
        return [p for p in infos if status is None or p.effective_status == status]

    def project_events(self, project_id: str | None = None, since: str | None = None, until: str | None = None) -> list[dict[str, Any]]:
        with self._session() as db:
            q = select(ProjectEvent).order_by(ProjectEvent.id)
            if project_id:
                q = q.where(ProjectEvent.project_id == project_id)
            if since:
                q = q.where(ProjectEvent.at >= since)
            if until:
                q = q.where(ProjectEvent.at < until)
            return [
                {"id": e.id, "project_id": e.project_id, "at": e.at, "actor": e.actor, "kind": e.kind, "subject": e.subject, "note": e.note, "details": e.details}
                for e in db.scalars(q)
            ]

    # -- hypotheses ------------------------------------------------------------------------------
    def register_hypothesis(self, actor: Actor | str, project_id: str, statement: str, decision_ids: Iterable[str] = (), note: str = "") -> HypothesisInfo:
        """Record a hypothesis (end of Data Exploration) and the audit decisions that led to it."""
        who = self._resolve(actor)
        if not (statement or "").strip():
            raise RegistryError("a hypothesis needs a statement: what you expect to hold, and how it will be tested")
        ids = _unique(decision_ids)
        now = utc_now()
        with self._session() as db, db.begin():
            project = self._project_row(db, project_id)
            if who.name not in project.members:
                raise PermissionDenied(f"only members of {project_id} may register hypotheses in it")
            if project.status != "approved" or project.expires < dt.date.today():
                raise Conflict(f"project {project_id} is {_effective_status(project)}: hypotheses are registered in an approved, unexpired project")
            self._check_decisions(project_id, ids)
            row = HypothesisRow(project_id=project_id, statement=statement.strip(), author=who.name, created_at=now, phase=Phase.DATA_EXPLORATION.value)
            db.add(row)
            db.flush()
            definition = f"project {project_id} approved by {project.decided_by} at {project.decided_at}"
            db.add(
                PhaseTransition(
                    hypothesis_id=row.id,
                    from_phase=Phase.PROJECT_DEFINITION.value,
                    to_phase=Phase.DATA_EXPLORATION.value,
                    actor=who.name,
                    requested_at=now,
                    approver=None,
                    at=now,
                    note=f"registered ({definition})" + (f": {note}" if note else ""),
                )
            )
            for d in ids:
                db.add(HypothesisQuery(hypothesis_id=row.id, decision_id=d, linked_by=who.name, linked_at=now))
            db.flush()
            db.refresh(row)
            return _hypothesis_info(row)

    def link_queries(self, actor: Actor | str, hypothesis_id: int | str, decision_ids: Iterable[str]) -> HypothesisInfo:
        who = self._resolve(actor)
        ids = _unique(decision_ids)
        now = utc_now()
        with self._session() as db, db.begin():
            row = self._hypothesis_row(db, hypothesis_id)
            project = self._project_row(db, row.project_id)
            if who.name not in project.members:
                raise PermissionDenied(f"only members of {row.project_id} may link queries to {hypothesis_key(row.id)}")
            self._check_decisions(row.project_id, ids)
            known = {q.decision_id for q in row.queries}
            for d in ids:
                if d not in known:
                    db.add(HypothesisQuery(hypothesis_id=row.id, decision_id=d, linked_by=who.name, linked_at=now))
            db.flush()
            db.refresh(row)
            return _hypothesis_info(row)

    def advance(self, actor: Actor | str, hypothesis_id: int | str, to_phase: Phase | str, note: str = "") -> HypothesisInfo:
        """Move a hypothesis; a production sub-phase becomes a request awaiting another person's approval."""
        who = self._resolve(actor)
        target = to_phase if isinstance(to_phase, Phase) else _parse_phase(to_phase)
        now = utc_now()
        with self._session() as db, db.begin():
            row = self._hypothesis_row(db, hypothesis_id)
            project = self._project_row(db, row.project_id)
            if who.name not in project.members and who.name != row.author:
                raise PermissionDenied(f"only members of {row.project_id} may move {hypothesis_key(row.id)}")
            if row.pending_phase:
                raise Conflict(
                    f"{hypothesis_key(row.id)} already has a request to enter {row.pending_phase} (by {row.pending_by}); "
                    "it must be approved or rejected first"
                )
            current = Phase(row.phase)
            if target not in allowed_targets(current):
                raise RegistryError(
                    f"{hypothesis_key(row.id)} is in {current.display()}; it may move to "
                    + ", ".join(p.display() for p in allowed_targets(current))
                )
            if target.is_production:
                row.pending_phase, row.pending_by, row.pending_at, row.pending_note = target.value, who.name, now, note
            else:
                row.phase = target.value
                db.add(PhaseTransition(hypothesis_id=row.id, from_phase=current.value, to_phase=target.value, actor=who.name, requested_at=now, at=now, note=note))
            db.flush()
            db.refresh(row)
            return _hypothesis_info(row)

    @_records_refusals("decide_phase")
    def decide_phase(self, actor: Actor | str, hypothesis_id: int | str, *, approve: bool, note: str = "") -> HypothesisInfo:
        """Approve or reject a pending production transition; never by its author or requester."""
        who = self._resolve(actor)
        now = utc_now()
        with self._session() as db, db.begin():
            row = self._hypothesis_row(db, hypothesis_id)
            key = hypothesis_key(row.id)
            if not row.pending_phase:
                raise Conflict(f"{key} has no production transition awaiting approval")
            if who.name == row.author:
                raise PermissionDenied(f"{who.name} is the author of {key} and may not approve its production phase")
            if who.name == row.pending_by:
                raise PermissionDenied(f"{who.name} asked for this transition and may not approve it")
            if not who.may_approve:  # a fellow data scientist is not a second pair of eyes with authority
                raise PermissionDenied(f"a production phase is approved by the {SECURITY_GROUP} or {APPROVER_GROUP} group; {who.name} is in neither")
            if approve and not (note or "").strip():
                raise RegistryError("approving a production phase needs a written note (what was checked)")
            db.add(
                PhaseTransition(
                    hypothesis_id=row.id,
                    from_phase=row.phase,
                    to_phase=row.pending_phase,
                    actor=row.pending_by,
                    requested_at=row.pending_at,
                    approver=who.name,
                    at=now,
                    outcome="completed" if approve else "rejected",
                    note="; ".join(n for n in (row.pending_note, note) if n),
                )
            )
            if approve:
                row.phase = row.pending_phase
            row.pending_phase = row.pending_by = row.pending_at = row.pending_note = None
            db.flush()
            db.refresh(row)
            return _hypothesis_info(row)

    def hypothesis(self, hypothesis_id: int | str) -> HypothesisInfo:
        with self._session() as db:
            return _hypothesis_info(self._hypothesis_row(db, hypothesis_id))

    def hypotheses(self, project_id: str | None = None) -> list[HypothesisInfo]:
        with self._session() as db:
            q = select(HypothesisRow).order_by(HypothesisRow.id)
            if project_id:
                q = q.where(HypothesisRow.project_id == project_id)
            return [_hypothesis_info(r) for r in db.scalars(q)]

    def transitions(self, since: str | None = None, until: str | None = None) -> list[TransitionInfo]:
        with self._session() as db:
            q = select(PhaseTransition).order_by(PhaseTransition.id)
            if since:
                q = q.where(PhaseTransition.at >= since)
            if until:
                q = q.where(PhaseTransition.at < until)
            return [_transition_info(t) for t in db.scalars(q)]

    def linked_decision_ids(self) -> dict[str, list[str]]:
        """decision_id → hypothesis keys that link it (for the review UI)."""
        out: dict[str, list[str]] = {}
        with self._session() as db:
            for q in db.scalars(select(HypothesisQuery)):
                out.setdefault(q.decision_id, []).append(hypothesis_key(q.hypothesis_id))
        return out

    # -- checks ----------------------------------------------------------------------------------
    def _project_row(self, db: Session, project_id: str) -> ProjectRow:
        row = db.get(ProjectRow, project_id)
        if row is None:
            raise NotFound(f"project {project_id!r} does not exist (see `dataroom project list`)")
        return row

    def _hypothesis_row(self, db: Session, hypothesis_id: int | str) -> HypothesisRow:
        hid = parse_hypothesis_id(hypothesis_id)
        row = db.get(HypothesisRow, hid)
        if row is None:
            raise NotFound(f"hypothesis {hypothesis_key(hid)} does not exist (see `dataroom hypothesis list`)")
        return row

    def _record_refusal(self, actor: Any, action: str, target: Any, subject: str | None, exc: Exception) -> None:
        if self.audit is None:
            return
        from dataroom.audit.registry_events import registry_stream

        try:
            stream = registry_stream(self.audit)
            try:
                stream.append({"type": "registry_refusal", "timestamp": utc_now(), "actor": str(getattr(actor, "name", actor))[:80], "action": action,
                               "target": str(target)[:80], "subject": subject, "reason": str(exc)[:500]})
                stream.checkpoint("refusal")
            finally:
                stream.close()
        except Exception:  # the refusal stands; say loudly that its record is missing
            log.exception("audit: refused %s could not be recorded", action)

    @staticmethod
    def _check_decider(who: Actor, row: ProjectRow, verb: str) -> None:
        if not who.is_security:
            raise PermissionDenied(f"only a member of the {SECURITY_GROUP} group may {verb} projects")
        if who.name == row.requester:
            raise PermissionDenied(f"{who.name} requested project {row.id} and may not {verb} it (segregation of duties)")
        if who.name in row.members:
            raise PermissionDenied(f"{who.name} would be a member of project {row.id} and may not {verb} it (segregation of duties)")
        if row.status != "proposed":
            raise Conflict(f"project {row.id} is {row.status}; only a proposed project can be {verb}d")

    def _check_scope(
        self,
        tenants: Iterable[str],
        tables: Iterable[str],
        column_classes: Iterable[str | Classification] | None,
        multi_tenant: bool,
        expires: dt.date,
        output_policy: dict[str, Any] | None = None,
        engine: str | None = None,
    ) -> dict[str, Any]:
        tenant_list = _unique(tenants)
        table_list = _unique(t.lower() for t in tables)
        classes = _unique(
            (c.value if isinstance(c, Classification) else str(c).lower())
            for c in (column_classes if column_classes is not None else DEFAULT_COLUMN_CLASSES)
        )
        problems = []
        if not tenant_list:
            problems.append("name at least one tenant")
        if not table_list:
            problems.append("name at least one table")
        for t in tenant_list:
            if t not in self.catalog.tenants:
                problems.append(f"unknown tenant {t!r} (known: {', '.join(self.catalog.tenants)})")
        for name in table_list:
            table = self.catalog.table(name)
            if table is None:
                problems.append(f"unknown table {name!r} (see `dataroom tables`)")
            elif table.tenant is not None and table.tenant not in tenant_list:
                problems.append(f"table {name} belongs to tenant {table.tenant}, which the project does not include")
        for c in classes:
            if c == Classification.PII.value:
                problems.append("pii is never visible in the data room: leave it out of the column classes")
            elif c not in {x.value for x in Classification}:
                problems.append(f"unknown column class {c!r} (use public, internal, quasi_identifier)")
        if not classes:
            problems.append("name at least one column class")
        if len(tenant_list) > 1 and not multi_tenant:
            problems.append("a project over several tenants must be marked multi_tenant (and then sees no quasi-identifiers)")
        today = dt.date.today()
        if expires <= today:
            problems.append(f"expiry {expires} must be after today ({today})")
        elif expires > today + dt.timedelta(days=MAX_PROJECT_DAYS):
            problems.append(f"expiry {expires} is more than {MAX_PROJECT_DAYS} days away; projects are time-boxed")
        try:
            output = normalise_output_policy(output_policy, bool(multi_tenant), len(tenant_list))
        except ValueError as exc:
            problems.append(str(exc))
        if engine is not None and engine not in ENGINES:
            problems.append(f"unknown engine {engine!r} (use {' or '.join(ENGINES)})")
        if problems:
            raise RegistryError("invalid project scope: " + "; ".join(problems))
        return {
            "tenants": tenant_list,
            "tables": table_list,
            "column_classes": classes,
            "multi_tenant": bool(multi_tenant),
            "expires": expires,
            "output_policy": output,
            "engine": engine,
        }

    def _check_decisions(self, project_id: str, decision_ids: list[str]) -> None:
        if not decision_ids:
            return
        if self.audit is None:
            raise RegistryError("this registry has no audit log to check decision ids against")
        wanted = set(decision_ids)
        found: dict[str, dict[str, Any]] = {}
        from dataroom.audit.reader import AuditView

        for record in AuditView(path=self.audit.path).records(types=("decision",)):  # every writer's stream
            if record.get("decision_id") in wanted:
                found[record["decision_id"]] = record
        missing = sorted(wanted - set(found))
        if missing:
            raise RegistryError(f"no audit record for decision id(s) {', '.join(missing)} (see `dataroom audit show`)")
        elsewhere = sorted(d for d, r in found.items() if r["input"].get("project_id") != project_id)
        if elsewhere:
            raise RegistryError(f"decision id(s) {', '.join(elsewhere)} belong to another project than {project_id}")


# -- helpers ---------------------------------------------------------------------------------------
def _unique(values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        v = str(v).strip()
        if v and v not in out:
            out.append(v)
    return out


def _parse_phase(text: str) -> Phase:
    try:
        return Phase.parse(text)
    except ValueError as exc:
        raise RegistryError(str(exc)) from exc


def _scope_of(p: Project) -> dict[str, Any]:
    return {
        "tenants": list(p.tenants),
        "tables": [t.lower() for t in p.tables],
        "column_classes": [c.value for c in p.column_classes],
        "multi_tenant": p.multi_tenant,
        "expires": p.expires.isoformat(),
        "output_policy": normalise_output_policy(p.output_policy, p.multi_tenant, len(p.tenants)),
        "engine": p.engine,
    }


def _row_scope(row: ProjectRow) -> dict[str, Any]:
    return {
        "tenants": row.tenants,
        "tables": row.tables,
        "column_classes": row.column_classes,
        "multi_tenant": row.multi_tenant,
        "expires": row.expires,
        "output_policy": row.output_policy,
        "engine": row.engine,
    }


def _scope_json(scope: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in scope.items()}


def _effective_status(row: ProjectRow) -> str:
    if row.status == "approved" and row.expires < dt.date.today():
        return "expired"
    return row.status


def _project_info(row: ProjectRow) -> ProjectInfo:
    return ProjectInfo(
        id=row.id,
        description=row.description,
        requester=row.requester,
        status=row.status,
        effective_status=_effective_status(row),
        members=list(row.members),
        tenants=list(row.tenants),
        tables=list(row.tables),
        column_classes=list(row.column_classes),
        multi_tenant=row.multi_tenant,
        expires=row.expires,
        output_policy=row.output_policy,
        engine=row.engine,
        justification=row.justification,
        proposed_at=row.proposed_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision_note=row.decision_note,
        revoked_by=row.revoked_by,
        revoked_at=row.revoked_at,
        revoke_reason=row.revoke_reason,
    )


def _transition_info(t: PhaseTransition) -> TransitionInfo:
    return TransitionInfo(t.id, t.hypothesis_id, t.from_phase, t.to_phase, t.actor, t.requested_at, t.approver, t.at, t.outcome, t.note)


def _hypothesis_info(row: HypothesisRow) -> HypothesisInfo:
    return HypothesisInfo(
        id=row.id,
        key=hypothesis_key(row.id),
        project_id=row.project_id,
        statement=row.statement,
        author=row.author,
        created_at=row.created_at,
        phase=row.phase,
        pending_phase=row.pending_phase,
        pending_by=row.pending_by,
        pending_at=row.pending_at,
        pending_note=row.pending_note,
        decision_ids=[q.decision_id for q in row.queries],
        transitions=[_transition_info(t) for t in row.transitions],
    )

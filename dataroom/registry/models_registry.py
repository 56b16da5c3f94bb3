"""Models in the registry: registration from a production hypothesis, monitoring results, alerts,
quarantines and their acknowledgement.

Rules (the CLI, the broker and the review UI all call this class):

* A model is **registered** by a member of its hypothesis's project, and only while that
  hypothesis is in a production phase (5A feature-flagged or 5B general). The artifact must be a
  safe skops file of a supported linear estimator (:mod:`dataroom.monitoring.artifacts`); the
  features, the target and the time column must be columns of the monitored tables that the
  monitor may see (public or internal: never PII, never quasi-identifiers). Each registration of a
  name is a new version. Refused registrations store nothing.
* A **monitoring alert** (raised by :mod:`dataroom.monitoring.runner` from the Rego rules in
  ``policies/alerts/monitoring.rego``) is recorded once per model, segment and kind until it is
  acknowledged; it moves the model's hypothesis back to phase 2 (Data Exploration) with a phase
  transition naming the alert, and **quarantines** the segment (tenant) for the model's projects:
  the query policy denies their queries over that tenant (``tenant_quarantined``).
* An alert is **acknowledged** by someone other than the model's author, in the security group or
  a member of the model's project, with a note; that releases its quarantines. Windows scored
  before the acknowledgement do not raise the same alert again.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from sqlalchemy import bindparam, func, select

from dataroom.audit import utc_now
from dataroom.catalog import Classification
from dataroom.registry.models import HypothesisRow, ModelAlertRow, ModelRow, MonitoringRow, PhaseTransition, ProjectRow, QuarantineRow
from dataroom.registry.phases import Phase
from dataroom.registry.service import Conflict, NotFound, PermissionDenied, RegistryError, hypothesis_key, parse_hypothesis_id

if TYPE_CHECKING:
    from dataroom.registry.service import Registry

MONITOR_ACTOR = "system:model-monitor"
MODEL_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
MONITORABLE_CLASSES = {Classification.PUBLIC, Classification.INTERNAL}
SEGMENTS = ("tenant",)

_Q = QuarantineRow.__table__
_QUARANTINE_SELECT = select(_Q.c.tenant, _Q.c.since, _Q.c.model_name).where(
    _Q.c.project_id == bindparam("project_id"), _Q.c.released_at.is_(None)
)


@dataclass
class ModelInfo:
    id: int
    name: str
    version: int
    author: str
    registered_at: str
    hypothesis: str  # H-<id>
    hypothesis_id: int
    project_id: str
    estimator: str
    linear: dict[str, Any] | None
    features: list[str]
    target: str
    segment: str
    table_name: str
    time_column: str
    tables: list[str]
    reference_start: dt.date
    reference_end: dt.date
    window: str
    artifact_sha256: str
    note: str = ""
    bins: dict[str, Any] | None = None  # the drift bins of each monitored column, fixed by the first monitoring run

    @property
    def segments(self) -> list[str]:
        return [t.split(".", 1)[0] for t in self.tables]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["reference_start"], d["reference_end"] = self.reference_start.isoformat(), self.reference_end.isoformat()
        return d


@dataclass
class ModelAlertInfo:
    id: int
    alert_id: str
    model_id: int
    model_name: str
    segment: str
    kind: str
    rule: str
    window_start: dt.date
    message: str
    raised_at: str
    hypothesis_id: int
    acknowledged_by: str | None
    acknowledged_at: str | None
    acknowledge_note: str | None
    quarantined_projects: list[str] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.acknowledged_at is None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "window_start": self.window_start.isoformat(), "open": self.open}


def _date(value: str | dt.date, what: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise RegistryError(f"{what} {value!r} is not a date (YYYY-MM-DD)") from exc


class ModelRegistry:
    """Models, monitoring results, alerts and quarantines, in the registry's database."""

    def __init__(self, registry: "Registry") -> None:
        self.registry = registry
        self.catalog = registry.catalog
        self.engine = registry.engine
        self._session = registry._session

    # -- the query path --------------------------------------------------------------------------
    def active_quarantines(self, project_id: str) -> list[dict[str, str]]:
        """The project's quarantined tenants: one indexed read (``ix_quarantines_project_active``)."""
        with self.engine.connect() as conn:
            rows = conn.execute(_QUARANTINE_SELECT, {"project_id": project_id}).all()
        earliest: dict[tuple[str, str], dt.date] = {}
        for r in rows:  # one entry per tenant and model: the earliest start of its open alerts
            key = (r.tenant, r.model_name)
            earliest[key] = min(earliest.get(key, r.since), r.since)
        return [{"tenant": t, "since": since.isoformat(), "model": m} for (t, m), since in sorted(earliest.items())]

    # -- registration ----------------------------------------------------------------------------
    def register(
        self,
        actor: str,
        name: str,
        artifact: bytes,
        *,
        hypothesis: str | int,
        features: Iterable[str],
        target: str,
        reference: tuple[str | dt.date, str | dt.date] | None,
        segment: str = "tenant",
        table: str = "findings",
        time_column: str = "detected_at",
        note: str = "",
    ) -> ModelInfo:
        """Validate everything first, store only when all is well (a refusal stores nothing)."""
        from dataroom.monitoring.artifacts import ArtifactError, load_estimator

        who = self.registry.actor(actor)
        if not isinstance(name, str) or not MODEL_NAME_RE.match(name):
            raise RegistryError(f"model name {name!r} must be 2-63 lower-case letters, digits, '.', '_' or '-'")
        if segment not in SEGMENTS:
            raise RegistryError(f"segment {segment!r} is not supported: models are monitored per {', '.join(SEGMENTS)}")
        feature_list = [str(f).lower() for f in features]
        target = str(target).lower()
        time_column = str(time_column).lower()
        if not feature_list or len(set(feature_list)) != len(feature_list):
            raise RegistryError("name the model's features, each once (features=[...])")
        if target in feature_list:
            raise RegistryError(f"the target {target} cannot also be a feature")
        if reference is None or len(reference) != 2:
            raise RegistryError("give the reference period the model was fitted on: reference=(start, end), dates, end exclusive")
        ref_start, ref_end = _date(reference[0], "reference start"), _date(reference[1], "reference end")
        if ref_end <= ref_start:
            raise RegistryError(f"the reference period must end after it starts ({ref_start} .. {ref_end})")
        try:
            loaded = load_estimator(artifact)
        except ArtifactError as exc:
            raise RegistryError(str(exc)) from exc
        if len(loaded.coef) != len(feature_list):
            raise RegistryError(f"the estimator takes {len(loaded.coef)} feature(s) but {len(feature_list)} were named ({', '.join(feature_list)})")
        with self._session() as db, db.begin():
            hyp = db.get(HypothesisRow, parse_hypothesis_id(hypothesis))
            if hyp is None:
                raise NotFound(f"hypothesis {hypothesis} does not exist (see `dataroom hypothesis list`)")
            key = hypothesis_key(hyp.id)
            project = db.get(ProjectRow, hyp.project_id)
            assert project is not None
            if who.name not in project.members:
                raise PermissionDenied(f"only members of {project.id} may register models for {key}")
            if not Phase(hyp.phase).is_production:
                raise Conflict(
                    f"{key} is in {Phase(hyp.phase).display()}: a model is registered for production monitoring only while its "
                    "hypothesis is in 5A or 5B (advance it with `dataroom hypothesis advance --to 5A` and have it approved)"
                )
            tables = self._check_columns(project.tenants, table, [*feature_list, target, time_column])
            version = (db.scalar(select(func.max(ModelRow.version)).where(ModelRow.name == name)) or 0) + 1
            row = ModelRow(
                name=name, version=version, author=who.name, registered_at=utc_now(), hypothesis_id=hyp.id, project_id=project.id,
                artifact_format="skops", artifact=bytes(artifact), artifact_sha256=loaded.sha256, estimator=loaded.type_name,
                linear=loaded.linear, features=feature_list, target=target, segment=segment, table_name=table.lower(),
                time_column=time_column, tables=tables, reference_start=ref_start, reference_end=ref_end, window="week", note=note,
            )
            db.add(row)
            db.flush()
            return _model_info(row)

    def _check_columns(self, tenants: list[str], table: str, columns: list[str]) -> list[str]:
        tables, problems = [], []
        for tenant in tenants:
            t = self.catalog.table(f"{tenant}.{table}")
            if t is None:
                continue
            tables.append(t.name)
            for c in columns:
                cls = t.classification(c)
                if c not in t.columns:
                    problems.append(f"{t.name} has no column {c}")
                elif cls not in MONITORABLE_CLASSES:
                    problems.append(f"column {t.name}.{c} is {cls.value}: a monitored model may use only public or internal columns")
        if not tables:
            raise RegistryError(f"no table {table!r} in the project's tenants ({', '.join(tenants)}): see `dataroom tables`")
        if problems:
            raise RegistryError("; ".join(sorted(set(problems))))
        return tables

    # -- reading ---------------------------------------------------------------------------------
    def models(self, name: str | None = None) -> list[ModelInfo]:
        with self._session() as db:
            q = select(ModelRow).order_by(ModelRow.name, ModelRow.version)
            if name:
                q = q.where(ModelRow.name == name)
            return [_model_info(r) for r in db.scalars(q)]

    def model(self, name: str, version: int | None = None) -> ModelInfo:
        """The latest version of ``name`` (or that version)."""
        found = [m for m in self.models(name) if version is None or m.version == version]
        if not found:
            raise NotFound(f"no model {name!r}{f' version {version}' if version else ''} (see `dataroom model list`)")
        return found[-1]

    # -- monitoring results ----------------------------------------------------------------------
    def save_bins(self, model_id: int, bins: dict[str, Any]) -> None:
        """Keep the reference period's bins: later runs compare every week on the same bins."""
        with self._session() as db, db.begin():
            row = db.get(ModelRow, model_id)
            if row is not None and row.bins is None:
                row.bins = bins

    def save_results(self, model_id: int, windows: list[dict[str, Any]], run_id: str) -> None:
        now = utc_now()
        with self._session() as db, db.begin():
            existing = {(r.segment, r.window_start): r for r in db.scalars(select(MonitoringRow).where(MonitoringRow.model_id == model_id))}
            for w in windows:
                start = _date(w["window_start"], "window start")
                row = existing.get((w["segment"], start))
                if row is None:
                    row = MonitoringRow(model_id=model_id, segment=w["segment"], window_start=start)
                    db.add(row)
                row.n, row.r2, row.rmse, row.mae = w["n"], w["r2"], w["rmse"], w["mae"]
                row.drift, row.run_id, row.scored_at = w["drift"], run_id, now

    def results(self, name: str, version: int | None = None) -> list[dict[str, Any]]:
        model = self.model(name, version)
        with self._session() as db:
            rows = db.scalars(select(MonitoringRow).where(MonitoringRow.model_id == model.id).order_by(MonitoringRow.segment, MonitoringRow.window_start))
            return [
                {"model": model.name, "version": model.version, "segment": r.segment, "window_start": r.window_start.isoformat(), "n": r.n,
                 "r2": r.r2, "rmse": r.rmse, "mae": r.mae, "drift": r.drift, "scored_at": r.scored_at}
                for r in rows
            ]

    # -- alerts, quarantines, acknowledgement ----------------------------------------------------
    def alerts(self, name: str | None = None, open_only: bool = False) -> list[ModelAlertInfo]:
        with self._session() as db:
            q = select(ModelAlertRow).order_by(ModelAlertRow.id)
            if name:
                q = q.where(ModelAlertRow.model_name == name)
            rows = list(db.scalars(q))
            quarantined: dict[int, list[str]] = {}
            for qr in db.scalars(select(QuarantineRow).where(QuarantineRow.alert_row_id.in_([r.id for r in rows]))):
                quarantined.setdefault(qr.alert_row_id, []).append(qr.project_id)
            infos = [_alert_info(r, quarantined.get(r.id, [])) for r in rows]
        return [a for a in infos if a.open or not open_only]

    def raise_alert(self, model: ModelInfo, *, segment: str, kind: str, rule: str, window_start: dt.date, message: str, alert_id: str) -> ModelAlertInfo | None:
        """Record an alert, send the hypothesis back to Data Exploration and quarantine the segment.

        Returns ``None`` (nothing recorded) when the same model, segment and kind already has an open
        alert, or when an acknowledgement already covered ``window_start``.
        """
        now = utc_now()
        with self._session() as db, db.begin():
            same = list(db.scalars(select(ModelAlertRow).where(
                ModelAlertRow.model_name == model.name, ModelAlertRow.segment == segment, ModelAlertRow.kind == kind)))
            if any(a.acknowledged_at is None for a in same):
                return None
            if any(a.acknowledged_through is not None and window_start <= a.acknowledged_through for a in same):
                return None
            row = ModelAlertRow(
                alert_id=alert_id, model_id=model.id, model_name=model.name, segment=segment, kind=kind, rule=rule,
                window_start=window_start, message=message, raised_at=now, hypothesis_id=model.hypothesis_id,
            )
            db.add(row)
            db.flush()
            projects = self._model_projects(db, model)
            for project_id in projects:
                db.add(QuarantineRow(alert_row_id=row.id, project_id=project_id, tenant=segment, since=window_start, model_name=model.name, created_at=now))
            hyp = db.get(HypothesisRow, model.hypothesis_id)
            if hyp is not None and hyp.phase != Phase.DATA_EXPLORATION.value:
                note = (
                    f"monitoring alert {alert_id} ({rule}) on model {model.name} v{model.version}, {segment} from {window_start}: {message}; "
                    f"{segment} quarantined in {', '.join(projects)} until acknowledged"
                )
                db.add(PhaseTransition(
                    hypothesis_id=hyp.id, from_phase=hyp.phase, to_phase=Phase.DATA_EXPLORATION.value, actor=MONITOR_ACTOR,
                    requested_at=now, at=now, note=note,
                ))
                hyp.phase = Phase.DATA_EXPLORATION.value
                hyp.pending_phase = hyp.pending_by = hyp.pending_at = hyp.pending_note = None
            db.flush()
            return _alert_info(row, projects)

    @staticmethod
    def _model_projects(db: Any, model: ModelInfo) -> list[str]:
        """The projects whose queries a model's quarantine applies to: its hypothesis's project."""
        return [model.project_id]

    def acknowledge(self, actor: str, alert: int | str, note: str) -> ModelAlertInfo:
        """Acknowledge an alert (not by the model's author), releasing its segment's quarantine.

        The other open alerts of the same model and segment (its drift and its performance alert)
        are acknowledged with it: they quarantine the same tenant, and one person reviewed it.
        """
        who = self.registry.actor(actor)
        now = utc_now()
        with self._session() as db, db.begin():
            row = self._alert_row(db, alert)
            model = db.get(ModelRow, row.model_id)
            assert model is not None
            if row.acknowledged_at is not None:
                raise Conflict(f"alert {row.id} was already acknowledged by {row.acknowledged_by} at {row.acknowledged_at}")
            if who.name == model.author:
                raise PermissionDenied(f"{who.name} is the author of model {model.name} and may not acknowledge its alerts (segregation of duties)")
            project = db.get(ProjectRow, model.project_id)
            if not (who.is_security or (project is not None and who.name in project.members)):
                raise PermissionDenied(f"a monitoring alert is acknowledged by the security group or another member of {model.project_id}")
            if not (note or "").strip():
                raise RegistryError("acknowledging an alert needs a written note (what was checked, what happens next)")
            same = db.scalars(select(ModelAlertRow).where(
                ModelAlertRow.model_name == row.model_name, ModelAlertRow.segment == row.segment, ModelAlertRow.acknowledged_at.is_(None)))
            projects: set[str] = set()
            for a in same:
                last = db.scalar(select(func.max(MonitoringRow.window_start)).where(MonitoringRow.model_id == a.model_id, MonitoringRow.segment == a.segment))
                a.acknowledged_by, a.acknowledged_at, a.acknowledge_note = who.name, now, note.strip()
                a.acknowledged_through = max(d for d in (last, a.window_start) if d is not None)
                for q in db.scalars(select(QuarantineRow).where(QuarantineRow.alert_row_id == a.id)):
                    projects.add(q.project_id)
                    if q.released_at is None:
                        q.released_at, q.released_by = now, who.name
            db.flush()
            return _alert_info(row, sorted(projects))

    def _alert_row(self, db: Any, alert: int | str) -> ModelAlertRow:
        row = None
        text = str(alert).strip()
        if text.isdigit():
            row = db.get(ModelAlertRow, int(text))
        if row is None:
            row = db.scalar(select(ModelAlertRow).where(ModelAlertRow.alert_id == text))
        if row is None:
            raise NotFound(f"no monitoring alert {alert!r} (see `dataroom monitor status`)")
        return row


def _model_info(row: ModelRow) -> ModelInfo:
    return ModelInfo(
        id=row.id, name=row.name, version=row.version, author=row.author, registered_at=row.registered_at,
        hypothesis=hypothesis_key(row.hypothesis_id), hypothesis_id=row.hypothesis_id, project_id=row.project_id,
        estimator=row.estimator, linear=row.linear, features=list(row.features), target=row.target, segment=row.segment,
        table_name=row.table_name, time_column=row.time_column, tables=list(row.tables), reference_start=row.reference_start,
        reference_end=row.reference_end, window=row.window, artifact_sha256=row.artifact_sha256, note=row.note, bins=row.bins,
    )


def _alert_info(row: ModelAlertRow, projects: list[str]) -> ModelAlertInfo:
    return ModelAlertInfo(
        id=row.id, alert_id=row.alert_id, model_id=row.model_id, model_name=row.model_name, segment=row.segment, kind=row.kind,
        rule=row.rule, window_start=row.window_start, message=row.message, raised_at=row.raised_at, hypothesis_id=row.hypothesis_id,
        acknowledged_by=row.acknowledged_by, acknowledged_at=row.acknowledged_at, acknowledge_note=row.acknowledge_note,
        quarantined_projects=sorted(projects),
    )

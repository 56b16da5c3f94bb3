"""Registry tables (SQLAlchemy 2.x ORM): projects, their members and event trail, hypotheses, models
and their monitoring (results, alerts, quarantines).

Every change is an append-only row in ``project_events`` or ``phase_transitions``; the
``projects`` and ``hypotheses`` rows hold the current state that the query path reads
(one primary-key lookup per query). Timestamps are timezone-aware UTC, stored as ISO text
so SQLite and PostgreSQL compare and export them identically.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}


class Meta(Base):
    """Key/value facts about the registry itself (e.g. when and from what it was seeded)."""

    __tablename__ = "registry_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)


class ProjectRow(Base):
    """A project's current state: requested scope, approved scope, who decided and when."""

    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    requester: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # proposed | approved | rejected | revoked
    tenants: Mapped[list[str]] = mapped_column(JSON)
    tables: Mapped[list[str]] = mapped_column(JSON)
    column_classes: Mapped[list[str]] = mapped_column(JSON)
    multi_tenant: Mapped[bool] = mapped_column(Boolean, default=False)
    # Aggregation constraint on results ({min_rows, min_tenants} or {enabled: false}; NULL: the
    # default for multi_tenant), approved with the scope: dataroom/outputs/aggregation.py.
    output_policy: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # Engine its queries run on (duckdb | spark; NULL: the deployment's default_engine), approved with the scope.
    engine: Mapped[str | None] = mapped_column(String(16), default=None)
    expires: Mapped[dt.date] = mapped_column(Date)
    justification: Mapped[str] = mapped_column(Text)  # the requester's case for the project
    proposed_at: Mapped[str] = mapped_column(String(40))
    decided_by: Mapped[str | None] = mapped_column(String(64), default=None)  # approver or rejecter
    decided_at: Mapped[str | None] = mapped_column(String(40), default=None)
    decision_note: Mapped[str | None] = mapped_column(Text, default=None)  # approver's written justification
    revoked_by: Mapped[str | None] = mapped_column(String(64), default=None)
    revoked_at: Mapped[str | None] = mapped_column(String(40), default=None)
    revoke_reason: Mapped[str | None] = mapped_column(Text, default=None)

    members: Mapped[list[str]] = mapped_column(JSON)  # current members; each change is a ProjectEvent


class ProjectEvent(Base):
    """One change to a project (append-only): proposed, approved, rejected, revoked, expired, member added/removed, seeded."""

    __tablename__ = "project_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    at: Mapped[str] = mapped_column(String(40), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str | None] = mapped_column(String(64), default=None)  # e.g. the member added
    note: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class HypothesisRow(Base):
    """A hypothesis within a project: the change ticket that follows it through the five phases."""

    __tablename__ = "hypotheses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    statement: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[str] = mapped_column(String(40), index=True)
    phase: Mapped[str] = mapped_column(String(40))
    pending_phase: Mapped[str | None] = mapped_column(String(40), default=None)  # a production step awaiting approval
    pending_by: Mapped[str | None] = mapped_column(String(64), default=None)
    pending_at: Mapped[str | None] = mapped_column(String(40), default=None)
    pending_note: Mapped[str | None] = mapped_column(Text, default=None)

    queries: Mapped[list["HypothesisQuery"]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="HypothesisQuery.id"
    )
    transitions: Mapped[list["PhaseTransition"]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="PhaseTransition.id"
    )


class HypothesisQuery(Base):
    """An audit decision (by ``decision_id``) that led to a hypothesis."""

    __tablename__ = "hypothesis_queries"
    __table_args__ = (UniqueConstraint("hypothesis_id", "decision_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hypothesis_id: Mapped[int] = mapped_column(ForeignKey("hypotheses.id"), index=True)
    decision_id: Mapped[str] = mapped_column(String(64), index=True)
    linked_by: Mapped[str] = mapped_column(String(64))
    linked_at: Mapped[str] = mapped_column(String(40))


class PhaseTransition(Base):
    """One move of a hypothesis between phases: who made it and, for production phases, who approved it."""

    __tablename__ = "phase_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hypothesis_id: Mapped[int] = mapped_column(ForeignKey("hypotheses.id"), index=True)
    from_phase: Mapped[str | None] = mapped_column(String(40))
    to_phase: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(64))  # who asked for / made the transition
    requested_at: Mapped[str] = mapped_column(String(40))
    approver: Mapped[str | None] = mapped_column(String(64), default=None)
    at: Mapped[str] = mapped_column(String(40), index=True)  # when it took effect (or was turned down)
    outcome: Mapped[str] = mapped_column(String(16), default="completed")  # completed | rejected
    note: Mapped[str] = mapped_column(Text, default="")


class ModelRow(Base):
    """A registered model version: the safe artifact (skops), what it predicts from what, where it is monitored."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[str] = mapped_column(String(40))
    hypothesis_id: Mapped[int] = mapped_column(ForeignKey("hypotheses.id"), index=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))  # the hypothesis's project: the model's project
    artifact_format: Mapped[str] = mapped_column(String(16))  # "skops"
    artifact: Mapped[bytes] = mapped_column(LargeBinary)
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    estimator: Mapped[str] = mapped_column(String(200))  # e.g. sklearn.linear_model._base.LinearRegression
    linear: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # {"intercept": b0, "coef": [..]} when linear
    features: Mapped[list[str]] = mapped_column(JSON)
    target: Mapped[str] = mapped_column(String(64))
    segment: Mapped[str] = mapped_column(String(32))  # "tenant"
    table_name: Mapped[str] = mapped_column(String(64))  # per tenant: <tenant>.<table_name>
    time_column: Mapped[str] = mapped_column(String(64))
    tables: Mapped[list[str]] = mapped_column(JSON)  # the monitored tables, one per segment
    reference_start: Mapped[dt.date] = mapped_column(Date)
    reference_end: Mapped[dt.date] = mapped_column(Date)  # exclusive
    window: Mapped[str] = mapped_column(String(16), default="week")
    note: Mapped[str] = mapped_column(Text, default="")
    bins: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # per column {lo, width, count}, fixed by the first run


class MonitoringRow(Base):
    """One model version's scores for one segment and window (replaced when the window is scored again)."""

    __tablename__ = "monitoring_results"
    __table_args__ = (UniqueConstraint("model_id", "segment", "window_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    segment: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[dt.date] = mapped_column(Date)
    n: Mapped[int] = mapped_column(Integer)
    r2: Mapped[float | None] = mapped_column(Float, default=None)
    rmse: Mapped[float | None] = mapped_column(Float, default=None)
    mae: Mapped[float | None] = mapped_column(Float, default=None)
    drift: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # column -> {ks, ks_p, psi, wasserstein, reference}
    run_id: Mapped[str] = mapped_column(String(40))
    scored_at: Mapped[str] = mapped_column(String(40))


class ModelAlertRow(Base):
    """A monitoring alert (performance or drift) for one model and segment, and its acknowledgement."""

    __tablename__ = "model_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(String(40), unique=True)  # as in the alert log
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    model_name: Mapped[str] = mapped_column(String(64), index=True)
    segment: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # performance | drift
    rule: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[dt.date] = mapped_column(Date)
    message: Mapped[str] = mapped_column(Text)
    raised_at: Mapped[str] = mapped_column(String(40))
    hypothesis_id: Mapped[int] = mapped_column(Integer)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), default=None)
    acknowledged_at: Mapped[str | None] = mapped_column(String(40), default=None)
    acknowledged_through: Mapped[dt.date | None] = mapped_column(Date, default=None)  # last window scored when acknowledged
    acknowledge_note: Mapped[str | None] = mapped_column(Text, default=None)


class QuarantineRow(Base):
    """A segment (tenant) withheld from one of a model's projects until its alert is acknowledged.

    The query path reads the active rows of one project by an index on ``(project_id, released_at)``.
    """

    __tablename__ = "quarantines"
    __table_args__ = (Index("ix_quarantines_project_active", "project_id", "released_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_row_id: Mapped[int] = mapped_column(ForeignKey("model_alerts.id"), index=True)
    project_id: Mapped[str] = mapped_column(String(64))
    tenant: Mapped[str] = mapped_column(String(64))
    since: Mapped[dt.date] = mapped_column(Date)  # the window where the drift or drop started
    model_name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[str] = mapped_column(String(40))
    released_at: Mapped[str | None] = mapped_column(String(40), default=None)
    released_by: Mapped[str | None] = mapped_column(String(64), default=None)


class ReleaseRequestRow(Base):
    """A request to take one output (table, figure, text) out of the room, and where it stands.

    The object's bytes are not in the database (the registry stream mirrors every row): they are a
    content-addressed file under the room's home, named by ``sha256`` (:mod:`dataroom.outputs.store`).
    """

    __tablename__ = "release_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    requester: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(200))
    justification: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))  # table | figure | text
    filename: Mapped[str] = mapped_column(String(200))  # what the download is called
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))  # of the submitted bytes
    decision_ids: Mapped[list[str]] = mapped_column(JSON)  # the audited queries behind the object
    checks: Mapped[dict[str, Any]] = mapped_column(JSON)  # the output checker's report
    created_at: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | rejected | released
    released_at: Mapped[str | None] = mapped_column(String(40), default=None)
    released_sha256: Mapped[str | None] = mapped_column(String(64), default=None)  # of the immutable released file


class ReleaseEventRow(Base):
    """One step of a release request (append-only): requested, approved, rejected, released, downloaded."""

    __tablename__ = "release_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("release_requests.id"), index=True)
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

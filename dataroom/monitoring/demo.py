"""The demo model of ``dataroom demo-data``: ``remediation-days-linear``, in phase 5A, out of the box.

alice registers a hypothesis in ``remediation-by-tenant`` ("remediation days grow linearly with
CVSS in every tenant"), takes it through phases 3 and 4 and asks for 5A, which sam (security)
approves; she then registers a linear regression of ``remediation_days`` on ``cvss`` fitted on
acme's and globex's first months (the reference period), stored as a skops file. The fit reads
the freshly generated demo files directly: it stands for a model trained before the room existed.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from dataroom.demo_data import DEMO_PROJECT, TIMELINE_START
from dataroom.monitoring.artifacts import dumps
from dataroom.registry import Phase, Registry
from dataroom.registry.models_registry import ModelInfo
from dataroom.settings import Settings

DEMO_MODEL = "remediation-days-linear"
DEMO_AUTHOR = "alice"
DEMO_APPROVER = "sam"
REFERENCE = (TIMELINE_START, TIMELINE_START + dt.timedelta(weeks=26))
STATEMENT = "Remediation days grow linearly with CVSS in every tenant: one linear model predicts them (R² ≥ 0.3 per tenant and week)"


def register_demo_model(settings: Settings | None = None) -> ModelInfo:
    """Register the demo hypothesis (in 5A) and model, unless the model is already registered."""
    from sklearn.linear_model import LinearRegression

    settings = settings or Settings()
    registry = Registry.from_settings(settings)
    models = registry.models
    existing = models.models(DEMO_MODEL)
    if existing:
        return existing[-1]
    h = registry.register_hypothesis(DEMO_AUTHOR, DEMO_PROJECT, STATEMENT, note="demo: the model of notebooks/remediation_by_tenant.ipynb")
    registry.advance(DEMO_AUTHOR, h.id, Phase.FUNCTIONAL_IMPLEMENTATION, note="demo: scoring job written")
    registry.advance(DEMO_AUTHOR, h.id, Phase.PRE_PRODUCTION_TESTING, note="demo: back-tested on acme and globex")
    registry.advance(DEMO_AUTHOR, h.id, Phase.PRODUCTION_FEATURE_FLAGGED, note="demo: feature-flagged for internal use")
    registry.decide_phase(DEMO_APPROVER, h.id, approve=True, note="demo: back-test reviewed, monitoring registered")
    start, end = REFERENCE
    data = settings.home / "data"
    rows = duckdb.sql(
        f"SELECT cvss, remediation_days FROM read_parquet(['{data}/acme/findings/*.parquet', '{data}/globex/findings/*.parquet']) "
        f"WHERE detected_at >= TIMESTAMP '{start}' AND detected_at < TIMESTAMP '{end}' AND remediation_days IS NOT NULL"
    ).fetchnumpy()
    estimator = LinearRegression().fit(rows["cvss"].reshape(-1, 1), rows["remediation_days"])
    return models.register(
        DEMO_AUTHOR, DEMO_MODEL, dumps(estimator), hypothesis=h.key, features=["cvss"], target="remediation_days",
        reference=REFERENCE, segment="tenant", table="findings", time_column="detected_at",
        note="demo: fitted on acme's and globex's first months",
    )

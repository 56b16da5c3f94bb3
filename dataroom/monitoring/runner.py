"""A monitoring run: score every window of every segment of a model, on the governed path.

The monitor is a service principal (``settings.monitor_user``, a catalog user in the ``services``
group) querying in its own project (``settings.monitor_project``) through
:meth:`dataroom.pipeline.QueryService.run`, like anyone: every query is decided by the query policy
and audited before and after it runs. Per model the run sends one query over the reference period
(the bins of each monitored column) and one scan per segment (:mod:`dataroom.monitoring.windows`);
then, in Python, over a few hundred rows of sums and counts: n, R², RMSE, MAE and the drift tests
(:mod:`dataroom.monitoring.drift`) per segment and window. The reference query runs once per model
version: its bins are kept in the registry, so a scheduled run is one scan per segment.

Each scored window is offered to the Rego rules in ``policies/alerts/monitoring.rego`` with the
thresholds of ``[monitoring]`` in ``$DATAROOM_HOME/alerts.toml``. The first window that breaches a
rule raises the alert for its segment and kind (recorded once until acknowledged,
:meth:`~dataroom.registry.models_registry.ModelRegistry.raise_alert`): the alert goes to the alert
log (``dataroom alerts list``, the review UI), the model's hypothesis goes back to Data
Exploration and the segment is quarantined for the model's projects. Results are stored in the
registry (``dataroom monitor status``, ``room.monitoring(name)``).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dataroom.alerts import ALERT_POLICY_DIR, AlertLog, alerts_dir, load_config
from dataroom.monitoring.drift import Bins, drift
from dataroom.monitoring.windows import DEFAULT_BINS, add_sums, metrics, parse_windows, reference_bins_sql, time_span_sql, window_sql
from dataroom.pipeline import Outcome, QueryService
from dataroom.registry.models_registry import ModelInfo, ModelRegistry
from dataroom.rego import PolicyBundle

MONITORING_ENTRYPOINT = "dataroom.alerts.monitoring.main"


class MonitorError(RuntimeError):
    """A run could not complete (a query was refused or failed); the message says which and why."""

    def __init__(self, message: str, codes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.codes = codes  # the refusal's reason codes, if a query was refused


@dataclass
class RunReport:
    model: ModelInfo
    run_id: str
    windows: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    decision_ids: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The ``dataroom monitor run --json`` document (README: the monitoring contract)."""
        return {
            "model": self.model.name,
            "version": self.model.version,
            "run_id": self.run_id,
            "windows": self.windows,
            "alerts": [{k: a[k] for k in ("segment", "kind", "window_start", "message")} for a in self.alerts],
            "decision_ids": self.decision_ids,
            "duration_s": round(self.duration_s, 3),
        }


class MonitorRunner:
    """Runs models' monitoring through ``service`` (one :class:`QueryService`, reused across runs)."""

    def __init__(self, service: QueryService, bundle: PolicyBundle | None = None) -> None:
        self.service = service
        self.settings = service.settings
        self.models: ModelRegistry = service.registry.models
        self._bundle = bundle
        self.alert_log = AlertLog(alerts_dir(self.settings) / "alerts.jsonl")

    @property
    def bundle(self) -> PolicyBundle:
        if self._bundle is None:
            self._bundle = PolicyBundle(ALERT_POLICY_DIR, [MONITORING_ENTRYPOINT])
        return self._bundle

    def run(self, name: str | None = None) -> list[RunReport]:
        """Monitor the latest version of ``name`` (or of every registered model)."""
        if name is not None:
            return [self.run_model(self.models.model(name))]
        latest: dict[str, ModelInfo] = {}
        for m in self.models.models():
            latest[m.name] = m
        return [self.run_model(m) for m in latest.values()]

    # -- one model -------------------------------------------------------------------------------
    def run_model(self, model: ModelInfo) -> RunReport:
        started = time.perf_counter()
        config = load_config(self.settings)["monitoring"]
        report = RunReport(model, str(uuid.uuid4()))
        if not model.linear:
            raise MonitorError(f"model {model.name} v{model.version} has no linear coefficients to score in the engine")
        columns = [*model.features, model.target]
        if model.bins and set(model.bins) == set(columns):  # the reference period does not change: neither do its bins
            bins = {c: Bins(**model.bins[c]) for c in columns}
        else:
            ref = self._query(report, reference_bins_sql(model.tables, columns, model.time_column, model.reference_start, model.reference_end))[0]
            if not ref["n"]:
                raise MonitorError(f"model {model.name}: no rows in its reference period {model.reference_start} .. {model.reference_end}")
            bins = {c: Bins.over(ref[f"{c}__lo"], ref[f"{c}__hi"], DEFAULT_BINS) for c in columns}
            self.models.save_bins(model.id, {c: {"lo": b.lo, "width": b.width, "count": b.count} for c, b in bins.items()})
            model.bins = {c: {"lo": b.lo, "width": b.width, "count": b.count} for c, b in bins.items()}

        segments = {}
        decisions = {}
        for table, segment in zip(model.tables, model.segments):
            rows = self._scan(report, model, table, bins)
            segments[segment] = parse_windows(rows, columns, bins)
            decisions[segment] = report.decision_ids[-1]

        def in_reference(start: dt.date) -> bool:
            return model.reference_start <= start < model.reference_end

        pooled_counts = {c: sum((v for s in segments.values() for w, v in s.counts[c].items() if in_reference(w)), np.zeros(bins[c].count)) for c in columns}
        pooled_sums = add_sums([v for s in segments.values() for w, v in s.sums.items() if in_reference(w)])
        breaches: dict[tuple[str, str], tuple[dt.date, dict[str, Any]]] = {}
        for segment, data in segments.items():
            own_sums = add_sums([v for w, v in data.sums.items() if in_reference(w)])
            own = own_sums["n"] >= config["min_reference_n"]
            ref_sums = own_sums if own else pooled_sums
            ref_counts = {c: sum((v for w, v in data.counts[c].items() if in_reference(w)), np.zeros(bins[c].count)) if own else pooled_counts[c] for c in columns}
            reference = {**metrics(ref_sums), "source": "segment" if own else "all segments"}
            for start in sorted(data.sums):
                window = {
                    "segment": segment,
                    "window_start": start.isoformat(),
                    **metrics(data.sums[start]),
                    "drift": {c: drift(data.counts[c].get(start, np.zeros(bins[c].count)), ref_counts[c], bins[c]) for c in columns},
                }
                report.windows.append(window)
                found = self.bundle.evaluate(
                    MONITORING_ENTRYPOINT,
                    {"model": {"name": model.name, "version": model.version}, "window": window, "reference": reference, "config": config},
                ) or []
                for alert in found:
                    breaches.setdefault((segment, alert["kind"]), (start, alert))
        self.models.save_results(model.id, report.windows, report.run_id)
        for (segment, kind), (start, alert) in sorted(breaches.items(), key=lambda item: (item[1][0], item[0])):
            alert_id = str(uuid.uuid4())
            recorded = self.models.raise_alert(model, segment=segment, kind=kind, rule=alert["rule"], window_start=start, message=alert["message"], alert_id=alert_id)
            if recorded is None:
                continue
            entry = {
                "alert_id": alert_id,
                "raised_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds"),
                "event_at": dt.datetime.combine(start, dt.time(), dt.timezone.utc).isoformat(timespec="microseconds"),
                "seq": None,
                "decision_id": decisions[segment],
                "user": self.settings.monitor_user,
                "project_id": model.project_id,
                **alert,
                "message": f"{alert['message']}; {model.hypothesis} moved back to Data Exploration, {segment} quarantined in "
                f"{', '.join(recorded.quarantined_projects)} until acknowledged",
                "model": model.name,
                "model_version": model.version,
                "segment": segment,
                "window_start": start.isoformat(),
                "model_alert": recorded.id,
            }
            self.alert_log.append([entry])
            report.alerts.append(entry)
        report.duration_s = time.perf_counter() - started
        return report

    def _scan(self, report: RunReport, model: ModelInfo, table: str, bins: dict[str, Bins], since: dt.date | None = None, until: dt.date | None = None) -> list[dict[str, Any]]:
        """One segment's scan; a result over the room's row cap (``row_limit``) is split into two halves of
        its weeks, and so on, each half its own governed query (weeks are never split)."""
        sql = window_sql(table, model.linear, model.features, model.target, model.time_column, bins, since, until)
        try:
            return self._query(report, sql)
        except MonitorError as exc:
            if "row_limit" not in exc.codes:
                raise
            if since is None or until is None:
                span = self._query(report, time_span_sql(table, model.time_column))[0]
                if span["first"] is None:
                    raise
                first, last = (v.date() if isinstance(v, dt.datetime) else v for v in (span["first"], span["last"]))
                since, until = first - dt.timedelta(days=first.weekday()), last + dt.timedelta(days=7 - last.weekday())
            weeks = (until - since).days // 7
            if weeks <= 1:
                raise
            middle = since + dt.timedelta(weeks=weeks // 2)
            return self._scan(report, model, table, bins, since, middle) + self._scan(report, model, table, bins, middle, until)

    def _query(self, report: RunReport, sql: str) -> list[dict[str, Any]]:
        outcome = self.service.run(self.settings.monitor_user, self.settings.monitor_project, sql, client="monitor")
        report.decision_ids.append(outcome.decision_id)
        if outcome.outcome is not Outcome.ALLOWED or outcome.table is None:
            why = "; ".join(f"{r.code}: {r.message}" for r in outcome.reasons) or outcome.error or outcome.outcome.value
            raise MonitorError(
                f"monitoring query {outcome.decision_id} as {self.settings.monitor_user} in {self.settings.monitor_project} was {outcome.label}: {why}",
                tuple(r.code for r in outcome.reasons),
            )
        return outcome.table.to_pylist()

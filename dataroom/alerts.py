"""Alerts over the audit stream: incremental scanning, Rego rules, a JSONL alert log.

The rules live in ``policies/alerts/`` (Rego, unit-tested beside the query policies). This module
feeds them one audit event at a time and remembers, between scans, what the rules need to know
about the past. It runs from ``dataroom alerts scan`` and from the review service, never on the
query path: a query costs nothing extra, and alerts arrive within one scan interval.

State (``$DATAROOM_HOME/alerts/state.json``, guarded by an ``flock``):

* ``offset``/``seq``: where the last scan stopped in the audit log (a log shorter than the offset
  means it was replaced or cut: the scanner starts over and says so in an alert);
* ``denials``: each user's denied-query times inside the burst window;
* ``volume``: each (user, project)'s row-count baseline (count, mean, M2: Welford's running variance);
* ``ledger``: each column's last seen classification, the one before it, and when it changed.

"Newly classified PII" is known from the ledger: every audit record carries the classification each
column had when the query ran, and every scan also reads the current catalog. When a column's
classification differs from the one last seen, the ledger records the previous class and the time
of the change. A query touching a column that is PII now, was something else before, and changed
at most ``new_pii.days`` days ago raises ``new_pii_column``.

Thresholds come from ``$DATAROOM_HOME/alerts.toml`` (see :data:`DEFAULT_CONFIG`); alerts are
appended to ``$DATAROOM_HOME/alerts/alerts.jsonl``.
"""

from __future__ import annotations

import copy
import datetime as dt
import fcntl
import json
import math
import os
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from dataroom.audit import utc_now
from dataroom.catalog import Catalog, load_catalog
from dataroom.rego import POLICY_ROOT, PolicyBundle
from dataroom.querylog import NO_PROJECT, UNAUTHENTICATED
from dataroom.settings import Settings

ALERT_POLICY_DIR = POLICY_ROOT / "alerts"
ALERT_ENTRYPOINT = "dataroom.alerts.main"

DEFAULT_CONFIG: dict[str, Any] = {
    "dedupe_s": 3600,  # the same alert key is raised at most once per this many seconds
    "denied_burst": {"count": 5, "window_s": 600},
    "volume": {"sigma": 3.0, "min_history": 5, "min_rows": 1000, "max_rows": 500_000},
    "new_pii": {"days": 30},
}


def alerts_dir(settings: Settings) -> Path:
    return settings.home / "alerts"


def config_file(settings: Settings) -> Path:
    return settings.home / "alerts.toml"


def load_config(settings: Settings) -> dict[str, Any]:
    """Defaults overlaid with ``$DATAROOM_HOME/alerts.toml`` (same keys, e.g. ``[denied_burst] count = 3``)."""
    config = copy.deepcopy(DEFAULT_CONFIG)
    path = config_file(settings)
    if path.exists():
        try:
            overrides = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"alert configuration {path} is invalid: {exc}") from exc
        for key, value in overrides.items():
            if key not in config:
                raise ValueError(f"alert configuration {path}: unknown setting {key!r} (known: {', '.join(config)})")
            if isinstance(config[key], dict):
                unknown = set(value) - set(config[key])
                if unknown:
                    raise ValueError(f"alert configuration {path}: unknown setting(s) {sorted(unknown)} in [{key}]")
                config[key].update(value)
            else:
                config[key] = value
    return config


def _epoch(timestamp: str) -> float:
    return dt.datetime.fromisoformat(timestamp).timestamp()


@dataclass
class ScanResult:
    events: int
    alerts: list[dict[str, Any]]
    seq: int


class AlertLog:
    """The append-only JSONL file of raised alerts."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, alerts: list[dict[str, Any]]) -> None:
        if not alerts:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            for alert in alerts:
                fh.write(json.dumps(alert, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]


class AlertScanner:
    """Evaluates the alert rules over audit records appended since the last scan."""

    def __init__(self, settings: Settings | None = None, catalog: Catalog | None = None, bundle: PolicyBundle | None = None) -> None:
        self.settings = settings or Settings()
        self.catalog = catalog
        self.bundle = bundle or PolicyBundle(ALERT_POLICY_DIR, [ALERT_ENTRYPOINT])
        self.dir = alerts_dir(self.settings)
        self.state_path = self.dir / "state.json"
        self.log = AlertLog(self.dir / "alerts.jsonl")

    # -- public ----------------------------------------------------------------------------------
    def scan(self) -> ScanResult:
        """Process new audit records; append and return the alerts they raise."""
        self.dir.mkdir(parents=True, exist_ok=True)
        config = load_config(self.settings)
        with (self.dir / "state.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self._load_state()
                raised: list[dict[str, Any]] = []
                events = 0
                audit_path = self.settings.audit_file
                size = audit_path.stat().st_size if audit_path.exists() else 0
                if size < state["offset"]:
                    raised.append(self._alert_log_replaced(state, size))
                    state = {**self._empty_state(), "ledger": state["ledger"]}
                for offset, record in self._new_records(audit_path, state["offset"]):
                    events += 1
                    try:
                        raised.extend(self._process(record, state, config))
                    except Exception as exc:  # never stall on one record: say so loudly instead
                        raised.append(self._unprocessable(record, exc))
                    state["offset"], state["seq"] = offset, record.get("seq", state["seq"])
                self._observe_catalog(state)
                self.log.append(raised)
                self._save_state(state)
                return ScanResult(events, raised, state["seq"])
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def alerts(self) -> list[dict[str, Any]]:
        return self.log.read()

    # -- state -----------------------------------------------------------------------------------
    @staticmethod
    def _empty_state() -> dict[str, Any]:
        return {"offset": 0, "seq": -1, "denials": {}, "volume": {}, "ledger": {}, "pending": {}, "last_alert": {}}

    def _load_state(self) -> dict[str, Any]:
        try:
            return {**self._empty_state(), **json.loads(self.state_path.read_text())}
        except FileNotFoundError:
            return self._empty_state()

    def _save_state(self, state: dict[str, Any]) -> None:
        tmp = self.state_path.with_name("state.json.tmp")
        tmp.write_text(json.dumps(state, sort_keys=True))
        os.replace(tmp, self.state_path)

    @staticmethod
    def _new_records(path: Path, offset: int) -> Iterator[tuple[int, dict[str, Any]]]:
        """Complete records after ``offset``, each with the offset just past it."""
        if not path.exists():
            return
        with path.open("rb") as fh:
            fh.seek(offset)
            for line in fh:
                if not line.endswith(b"\n"):
                    return  # a record still being written: next scan
                offset += len(line)
                if line.strip():
                    yield offset, json.loads(line)

    # -- per event -------------------------------------------------------------------------------
    def _process(self, record: dict[str, Any], state: dict[str, Any], config: dict[str, Any]) -> list[dict[str, Any]]:
        kind = record.get("type")
        if kind == "decision":
            event, context = self._decision_event(record, state, config)
        elif kind == "completion":
            pending = state["pending"].pop(record.get("decision_id"), None)
            if pending is None:
                return []
            event, context = self._completion_event(record, pending, state)
        else:
            return []
        found = self.bundle.evaluate(ALERT_ENTRYPOINT, {"event": event, "context": context, "config": config}) or []
        return [a for a in (self._finish(a, event, record, state, config) for a in sorted(found, key=lambda a: a["key"])) if a]

    def _decision_event(self, record: dict[str, Any], state: dict[str, Any], config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        inp = record.get("input") or {}
        user = (inp.get("user") or {}).get("name") or UNAUTHENTICATED
        at = _epoch(record["timestamp"])
        columns = []
        for c in (inp.get("facts") or {}).get("columns") or []:
            key = f"{c['table']}.{c['column']}"
            previous, days = self._classification_history(state["ledger"].get(key), c["classification"], at)
            columns.append({**c, "previous_classification": previous, "days_since_reclassified": days})
            self._observe(state["ledger"], key, c["classification"], record["timestamp"])
        window = float(config["denied_burst"]["window_s"])
        denials = [t for t in state["denials"].get(user, []) if at - t <= window]
        if record.get("outcome") == "denied":
            denials.append(at)
        state["denials"][user] = denials
        if not denials:
            state["denials"].pop(user, None)
        if record.get("outcome") == "allowed":
            state["pending"][record["decision_id"]] = [user, inp.get("project_id") or NO_PROJECT]
        event = {
            "kind": "decision",
            "decision_id": record.get("decision_id"),
            "user": user,
            "project_id": inp.get("project_id") or NO_PROJECT,
            "outcome": record.get("outcome"),
            "columns": columns,
            "reasons": [r.get("code") for r in (record.get("result") or {}).get("reasons") or []],
        }
        return event, {"user_denied_in_window": len(denials)}

    def _completion_event(self, record: dict[str, Any], pending: list[Any], state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        user, project_id = pending
        key = f"{user}|{project_id}"
        count, mean, m2 = state["volume"].get(key, [0, 0.0, 0.0])
        baseline = {"count": count, "mean": round(mean, 3), "stddev": round(math.sqrt(m2 / (count - 1)) if count > 1 else 0.0, 3)}
        rows = int(record.get("rows") or 0)
        if record.get("status") == "executed":  # Welford's running mean/variance, after taking the baseline
            count += 1
            delta = rows - mean
            mean += delta / count
            m2 += delta * (rows - mean)
            state["volume"][key] = [count, mean, m2]
        event = {
            "kind": "completion",
            "decision_id": record.get("decision_id"),
            "user": user,
            "project_id": project_id,
            "status": record.get("status"),
            "rows": rows,
            "bytes": int(record.get("bytes") or 0),
        }
        return event, {"volume_baseline": baseline}

    @staticmethod
    def _classification_history(entry: dict[str, Any] | None, current: str, at: float) -> tuple[str | None, float | None]:
        """(previous class, days since the change) for a column now classified ``current``."""
        if entry is None:
            return None, None
        if entry["classification"] != current:  # changed since last seen: the change is now
            return entry["classification"], 0.0
        if entry.get("previous") is None or entry.get("changed_at") is None:
            return None, None
        return entry["previous"], max(0.0, (at - _epoch(entry["changed_at"])) / 86400)

    @staticmethod
    def _observe(ledger: dict[str, Any], key: str, classification: str, timestamp: str) -> None:
        entry = ledger.get(key)
        if entry is None:
            ledger[key] = {"classification": classification, "previous": None, "changed_at": None, "seen_at": timestamp}
        elif entry["classification"] != classification:
            ledger[key] = {"classification": classification, "previous": entry["classification"], "changed_at": timestamp, "seen_at": timestamp}
        else:
            entry["seen_at"] = timestamp

    def _observe_catalog(self, state: dict[str, Any]) -> None:
        catalog = self.catalog
        if catalog is None:
            try:
                catalog = load_catalog(self.settings.catalog_file)
            except Exception:
                return
        now = utc_now()
        for table in catalog.tables.values():
            for column, cls in table.columns.items():
                key = f"{table.name}.{column}"
                entry = state["ledger"].get(key)
                if entry is not None and entry["classification"] != cls.value:
                    self._observe(state["ledger"], key, cls.value, now)

    def _finish(self, found: dict[str, Any], event: dict[str, Any], record: dict[str, Any], state: dict[str, Any], config: dict[str, Any]) -> dict[str, Any] | None:
        at = _epoch(record["timestamp"])
        last = state["last_alert"].get(found["key"])
        if last is not None and at - last < float(config["dedupe_s"]):
            return None
        state["last_alert"][found["key"]] = at
        # forget dedupe keys older than the window so the state stays small
        horizon = at - float(config["dedupe_s"])
        state["last_alert"] = {k: v for k, v in state["last_alert"].items() if v >= horizon}
        return {
            "alert_id": str(uuid.uuid4()),
            "raised_at": utc_now(),
            "event_at": record["timestamp"],
            "seq": record.get("seq"),
            "decision_id": event.get("decision_id"),
            "user": event.get("user"),
            "project_id": event.get("project_id"),
            **found,
        }

    def _unprocessable(self, record: dict[str, Any], exc: Exception) -> dict[str, Any]:
        return {
            "alert_id": str(uuid.uuid4()),
            "raised_at": utc_now(),
            "event_at": record.get("timestamp") or utc_now(),
            "seq": record.get("seq"),
            "decision_id": record.get("decision_id"),
            "user": None,
            "project_id": None,
            "rule": "unprocessable_record",
            "severity": "high",
            "title": "Audit record the alert rules could not evaluate",
            "key": f"unprocessable_record:{record.get('seq')}",
            "message": f"audit record seq {record.get('seq')} could not be evaluated ({type(exc).__name__}: {exc}); inspect it with `dataroom audit show --json`",
        }

    def _alert_log_replaced(self, state: dict[str, Any], size: int) -> dict[str, Any]:
        return {
            "alert_id": str(uuid.uuid4()),
            "raised_at": utc_now(),
            "event_at": utc_now(),
            "seq": None,
            "decision_id": None,
            "user": None,
            "project_id": None,
            "rule": "audit_log_shrank",
            "severity": "high",
            "title": "Audit log shorter than already scanned",
            "key": f"audit_log_shrank:{state['seq']}",
            "message": f"the audit log is {size} bytes but {state['offset']} bytes (through seq {state['seq']}) were scanned before: "
            "it was cut or replaced; run `dataroom audit verify`",
        }


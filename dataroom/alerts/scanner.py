"""Alerts over the audit stream: incremental scanning, Rego rules, a JSONL alert log.

The rules live in ``policies/alerts/`` (Rego, unit-tested beside the query policies). This module
feeds them one audit event at a time and remembers, between scans, what the rules need to know
about the past. It runs from ``dataroom alerts scan`` and from the review service, never on the
query path: a query costs nothing extra, and alerts arrive within one scan interval.

State (``$DATAROOM_HOME/alerts/state.json``, guarded by an ``flock``):

* ``offset``/``seq``: where the last scan stopped in the audit log (a log shorter than the offset
  means it was replaced or cut: the scanner starts over and says so in an alert);
* ``denials``: each user's denied attempts inside the burst window, as ``[time, count]`` (a
  coalesced record stands for ``count`` identical requests);
* ``limits``: each user's resource-limit refusals inside the window, ``[time, decision_id, code]``;
* ``functions``: each user's attempts to call denied function classes inside the window,
  ``[time, decision_id, count, [codes]]``;
* ``pending``: each allowed query still without a completion record (user, project, when it was
  allowed, whether ``never_completed`` already fired for it);
* ``volume``: each (user, project)'s row-count baseline (count, mean, M2: Welford's running variance);
* ``ledger``: each column's last seen classification, the one before it, and when it changed.

Queries that never complete are found by time, not by a record: every scan offers each pending
query to the rules with how long it has waited (by the scanner's clock, read once before the scan
reads the log, so a completion written before that moment is always seen first). The clock is
injectable (``AlertScanner(clock=...)``) so tests move time instead of sleeping. A completion that
arrives after the alert fired raises no second one; a completion that arrives late but before any
scan noticed raises the same alert (so the result does not depend on when scans run).

"Newly classified PII" is known from the ledger: every audit record carries the classification each
column had when the query ran, and every scan also reads the current catalog. When a column's
classification differs from the one last seen, the ledger records the previous class and the time
of the change. A query touching a column that is PII now, was something else before, and changed
at most ``new_pii.days`` days ago raises ``new_pii_column``.

Thresholds come from ``$DATAROOM_HOME/alerts.toml`` (see :data:`DEFAULT_CONFIG`); alerts are
appended to ``$DATAROOM_HOME/alerts/alerts.jsonl``.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import math
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dataroom.audit.reader import AuditView
from dataroom.audit.streams import LEGACY_STREAM
from dataroom.catalog import Catalog, load_catalog
from dataroom.alerts.lifecycle import KEYS_ENTRYPOINT, SEVERITIES_ENTRYPOINT, AlertStore
from dataroom.alerts.config import (
    ALERT_ENTRYPOINT,
    ALERT_POLICY_DIR,
    MAX_LISTED_DECISIONS,
    PENDING_RETENTION_S,
    UNKNOWN_USER,
    alerts_dir,
    load_config,
)
from dataroom.rego import PolicyBundle
from dataroom.querylog import NO_PROJECT, UNAUTHENTICATED
from dataroom.settings import Settings


def _epoch(timestamp: str) -> float:
    return dt.datetime.fromisoformat(timestamp).timestamp()


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat(timespec="microseconds")


def _attempts(record: dict[str, Any]) -> int:
    """How many requests a record stands for (a coalesced refusal carries ``count``)."""
    try:
        return max(1, int(record.get("count") or 1))
    except (TypeError, ValueError):
        return 1


@dataclass
class ScanResult:
    events: int
    alerts: list[dict[str, Any]]
    seq: int


class AlertLog:
    """The append-only JSONL file of raised alerts."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, alerts: list[dict[str, Any]], folded: bool = False) -> None:
        """Append raised alerts; ``folded``: the lifecycle has them already (else :meth:`AlertStore.ingest` folds them)."""
        if not alerts:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            for alert in alerts:
                fh.write(json.dumps({**alert, "folded": True} if folded else alert, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]


class AlertScanner:
    """Evaluates the alert rules over audit records appended since the last scan."""

    def __init__(
        self,
        settings: Settings | None = None,
        catalog: Catalog | None = None,
        bundle: PolicyBundle | None = None,
        clock: Callable[[], float] = time.time,
        store: AlertStore | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.catalog = catalog
        own = bundle is None
        self.bundle = bundle or PolicyBundle(ALERT_POLICY_DIR, [ALERT_ENTRYPOINT, KEYS_ENTRYPOINT, SEVERITIES_ENTRYPOINT])
        self.clock = clock  # seconds since the epoch; tests inject one to move time
        self.dir = alerts_dir(self.settings)
        self.state_path = self.dir / "state.json"
        self.log = AlertLog(self.dir / "alerts.jsonl")
        # every hit (also those the alert log suppresses as repeats) grows an alert's lifecycle
        self.store = store or AlertStore(self.settings, bundle=self.bundle if own else None, clock=lambda: _iso(self.clock()))
        self._hits: list[dict[str, Any]] = []

    # -- public ----------------------------------------------------------------------------------
    def scan(self) -> ScanResult:
        """Process new audit records; append and return the alerts they raise."""
        self.dir.mkdir(parents=True, exist_ok=True)
        config = load_config(self.settings)
        with (self.dir / "state.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                now = self.clock()  # before reading: any completion written before `now` is read below
                state = self._load_state(now)
                raised: list[dict[str, Any]] = []
                self._hits = []
                events = 0
                view = AuditView(self.settings)  # every audit stream, merged in order; a cursor per stream
                sizes = view.sizes()
                cursor = state.get("cursor") or ({LEGACY_STREAM: state["offset"]} if state["offset"] else {})
                shrunk = {s: sizes.get(s, 0) for s, read in cursor.items() if sizes.get(s, 0) < read}
                if shrunk:
                    raised.append(self._alert_log_replaced({**state, "offset": sum(cursor[s] for s in shrunk)}, sum(shrunk.values())))
                    state, cursor = {**self._empty_state(), "ledger": state["ledger"]}, {}
                for cursor, record in view.tail(cursor):
                    events += 1
                    try:
                        raised.extend(self._process(record, state, config))
                    except Exception as exc:  # never stall on one record: say so loudly instead
                        raised.append(self._unprocessable(record, exc))
                    state["offset"], state["seq"] = cursor.get(LEGACY_STREAM, 0), record.get("seq", state["seq"])
                state["cursor"] = cursor
                raised.extend(self._check_pending(state, config, now))
                self._observe_catalog(state)
                hit_ids = {h["alert_id"] for h in self._hits}
                self.store.ingest(self.log.path)  # the model monitor's alerts, before this scan's lines
                self.store.observe(self._hits + [a for a in raised if a["alert_id"] not in hit_ids])
                self.log.append(raised, folded=True)
                self._save_state(state)
                return ScanResult(events, raised, state["seq"])
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def alerts(self) -> list[dict[str, Any]]:
        return self.log.read()

    # -- state -----------------------------------------------------------------------------------
    @staticmethod
    def _empty_state() -> dict[str, Any]:
        return {
            "offset": 0,
            "seq": -1,
            "denials": {},
            "limits": {},
            "functions": {},
            "volume": {},
            "ledger": {},
            "pending": {},
            "last_alert": {},
        }

    def _load_state(self, now: float) -> dict[str, Any]:
        try:
            state = {**self._empty_state(), **json.loads(self.state_path.read_text())}
        except FileNotFoundError:
            return self._empty_state()
        # state written by earlier versions: denial times without counts, pending as [user, project]
        state["denials"] = {u: [t if isinstance(t, list) else [t, 1] for t in ts] for u, ts in state["denials"].items()}
        for decision_id, entry in list(state["pending"].items()):
            if isinstance(entry, list):
                state["pending"][decision_id] = {"user": entry[0], "project_id": entry[1], "at": now, "timestamp": _iso(now), "seq": None, "alerted": False}
        return state

    def _save_state(self, state: dict[str, Any]) -> None:
        tmp = self.state_path.with_name("state.json.tmp")
        tmp.write_text(json.dumps(state, sort_keys=True))
        os.replace(tmp, self.state_path)

    # -- per event -------------------------------------------------------------------------------
    def _process(self, record: dict[str, Any], state: dict[str, Any], config: dict[str, Any]) -> list[dict[str, Any]]:
        kind = record.get("type")
        if kind == "decision":
            event, context = self._decision_event(record, state, config)
        elif kind == "completion":
            pending = state["pending"].pop(record.get("decision_id"), None)
            event, context = self._completion_event(record, pending, state, config)
        else:
            return []
        return self._evaluate(event, context, record, state, config)

    def _evaluate(self, event: dict[str, Any], context: dict[str, Any], record: dict[str, Any], state: dict[str, Any], config: dict[str, Any]) -> list[dict[str, Any]]:
        found = self.bundle.evaluate(ALERT_ENTRYPOINT, {"event": event, "context": context, "config": config}) or []
        return [a for a in (self._finish(a, event, record, state, config) for a in sorted(found, key=lambda a: a["key"])) if a]

    def _check_pending(self, state: dict[str, Any], config: dict[str, Any], now: float) -> list[dict[str, Any]]:
        """Offer every allowed query still without a completion to the rules, with how long it has waited."""
        raised: list[dict[str, Any]] = []
        for decision_id, p in sorted(state["pending"].items(), key=lambda item: item[1]["at"]):
            if p["alerted"]:
                if now - p["at"] > PENDING_RETENTION_S:
                    del state["pending"][decision_id]
                continue
            event = {
                "kind": "pending",
                "decision_id": decision_id,
                "user": p["user"],
                "project_id": p["project_id"],
                "timestamp": p["timestamp"],
                "waited_s": round(now - p["at"], 3),
            }
            record = {"timestamp": p["timestamp"], "seq": p["seq"], "decision_id": decision_id}
            try:
                found = self._evaluate(event, {}, record, state, config)
            except Exception as exc:  # say so once, not on every scan
                p["alerted"] = True
                raised.append(self._unprocessable(record, exc))
                continue
            if any(a["rule"] == "never_completed" for a in found) or state["last_alert"].get(f"never_completed:{decision_id}") is not None:
                p["alerted"] = True
            raised.extend(found)
        return raised

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
        attempts = _attempts(record)
        reasons = [r for r in (record.get("result") or {}).get("reasons") or [] if isinstance(r, dict)]
        denials = self._window(state["denials"], user, at, config["denied_burst"]["window_s"], [at, attempts] if record.get("outcome") == "denied" else None)
        function_codes = sorted({r.get("code") for r in reasons} & set(config["denied_functions"]["reason_codes"]))
        entry = [at, record.get("decision_id"), attempts, function_codes] if function_codes else None
        functions = self._window(state["functions"], user, at, config["denied_functions"]["window_s"], entry)
        if record.get("outcome") == "allowed":
            state["pending"][record["decision_id"]] = {
                "user": user,
                "project_id": inp.get("project_id") or NO_PROJECT,
                "at": at,
                "timestamp": record["timestamp"],
                "seq": record.get("seq"),
                "alerted": False,
            }
        event = {
            "kind": "decision",
            "decision_id": record.get("decision_id"),
            "user": user,
            "project_id": inp.get("project_id") or NO_PROJECT,
            "outcome": record.get("outcome"),
            "attempts": attempts,
            "columns": columns,
            "reasons": [r.get("code") for r in reasons],
            "reason_details": [{"code": str(r.get("code")), "message": str(r.get("message") or "")} for r in reasons],
        }
        context = {
            "user_denied_in_window": sum(n for _, n in denials),
            "user_denied_function_attempts_in_window": sum(f[2] for f in functions),
            "user_denied_function_codes": sorted({c for f in functions for c in f[3]}),
            "user_denied_function_decisions": [f[1] for f in functions][-MAX_LISTED_DECISIONS:],
        }
        return event, context

    @staticmethod
    def _window(by_user: dict[str, list[list[Any]]], user: str, at: float, window_s: float, entry: list[Any] | None) -> list[list[Any]]:
        """``user``'s entries (each starting with its time) within ``window_s`` of ``at``, plus ``entry``; stored back."""
        kept = [e for e in by_user.get(user, []) if at - e[0] <= float(window_s)]
        if entry is not None:
            kept.append(entry)
        if kept:
            by_user[user] = kept
        else:
            by_user.pop(user, None)
        return kept

    def _completion_event(
        self, record: dict[str, Any], pending: dict[str, Any] | None, state: dict[str, Any], config: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A completion with its decision's user and project (unknown if the decision was never seen)."""
        at = _epoch(record["timestamp"])
        if pending is None:  # no decision seen for it (or forgotten long ago): still worth the crash/limit rules
            user, project_id = UNKNOWN_USER, NO_PROJECT
        else:
            user, project_id = pending["user"], pending["project_id"]
        key = f"{user}|{project_id}"
        count, mean, m2 = state["volume"].get(key, [0, 0.0, 0.0])
        baseline = {"count": count, "mean": round(mean, 3), "stddev": round(math.sqrt(m2 / (count - 1)) if count > 1 else 0.0, 3)}
        rows = int(record.get("rows") or 0)
        status, reason_code = record.get("status"), record.get("reason_code")
        limit = status == "refused" and reason_code in config["limit_refusals"]["reason_codes"]
        limits = self._window(state["limits"], user, at, config["limit_refusals"]["window_s"], [at, record.get("decision_id"), reason_code] if limit else None)
        codes: dict[str, int] = {}
        for entry in limits:
            codes[entry[2]] = codes.get(entry[2], 0) + 1
        if pending is not None and record.get("status") == "executed":  # Welford's running mean/variance, after taking the baseline
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
            "timestamp": record["timestamp"],
            "status": status,
            "reason_code": reason_code,
            "error": str(record.get("error") or "no message"),
            "error_type": str(record.get("error_type") or "unknown"),
            "rows": rows,
            "bytes": int(record.get("bytes") or 0),
        }
        context = {
            "volume_baseline": baseline,
            "user_limit_refusals_in_window": len(limits),
            "user_limit_refusal_codes": codes,
            "user_limit_refusal_decisions": [e[1] for e in limits][-MAX_LISTED_DECISIONS:],
        }
        if pending is not None:
            context["completed_after_s"] = round(at - pending["at"], 3)
            context["never_completed_alerted"] = bool(pending["alerted"])
        return event, context

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
        now = _iso(self.clock())
        for table in catalog.tables.values():
            for column, cls in table.columns.items():
                key = f"{table.name}.{column}"
                entry = state["ledger"].get(key)
                if entry is not None and entry["classification"] != cls.value:
                    self._observe(state["ledger"], key, cls.value, now)

    def _finish(self, found: dict[str, Any], event: dict[str, Any], record: dict[str, Any], state: dict[str, Any], config: dict[str, Any]) -> dict[str, Any] | None:
        at = _epoch(record["timestamp"])
        alert = {
            "alert_id": str(uuid.uuid4()),
            "raised_at": _iso(self.clock()),
            "event_at": record["timestamp"],
            "seq": record.get("seq"),
            "decision_id": event.get("decision_id"),
            "user": event.get("user"),
            "project_id": event.get("project_id"),
            **found,
        }
        self._hits.append(alert)  # the lifecycle sees every hit; the alert log only the first per dedupe period
        last = state["last_alert"].get(found["key"])
        if last is not None and at - last < float(config["dedupe_s"]):
            return None
        state["last_alert"][found["key"]] = at
        # forget dedupe keys older than the window so the state stays small
        horizon = at - float(config["dedupe_s"])
        state["last_alert"] = {k: v for k, v in state["last_alert"].items() if v >= horizon}
        return alert

    def _unprocessable(self, record: dict[str, Any], exc: Exception) -> dict[str, Any]:
        return {
            "alert_id": str(uuid.uuid4()),
            "raised_at": _iso(self.clock()),
            "event_at": record.get("timestamp") or _iso(self.clock()),
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
            "raised_at": _iso(self.clock()),
            "event_at": _iso(self.clock()),
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


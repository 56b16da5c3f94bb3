"""Alerts as a security team works them: one alert per subject, growing while open, acknowledged, resolved.

The scanner raises *hits* (one per audit event a rule fires on). This store folds them into
*alerts*: a hit joins the open (or acknowledged) alert of its group (``lifecycle.keys`` in
``policies/alerts/lifecycle.rego``: the rule and the user it is about) and adds its evidence to the
alert's count (a denied burst opens with the denials in the window, every later denied request adds
one); ``lifecycle.severities`` turns the count into a severity along the rule's ladder. Escalating an
acknowledged alert opens it again (someone must look at the new evidence). A hit after the group's
alert was resolved opens a new alert.

Steps: ``opened`` → ``acknowledged`` → ``resolved`` (an open alert may be resolved directly), each
with who, when and a comment; ``escalated`` and ``reopened`` by the room itself. Only members of the
catalog's ``security`` group acknowledge or resolve. Every step, and every refused attempt, is an
``alert_event`` record in the audit's registry stream (``audit/registry.jsonl``: hash-chained,
signed checkpoints, checked by ``dataroom audit verify``).

State: ``$DATAROOM_HOME/alerts/lifecycle.json`` (replaced atomically under ``lifecycle.lock``).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

from dataroom.alerts.config import ALERT_POLICY_DIR, alerts_dir
from dataroom.rego import PolicyBundle
from dataroom.settings import Settings

KEYS_ENTRYPOINT = "dataroom.alerts.lifecycle.keys"
SEVERITIES_ENTRYPOINT = "dataroom.alerts.lifecycle.severities"
SEVERITIES = ("low", "medium", "high", "critical")
STATUSES = ("open", "acknowledged", "resolved")
ACTIVE = ("open", "acknowledged")
SYSTEM_ACTOR = "system:alerts"
SECURITY_GROUP = "security"
MAX_COMMENT_CHARS = 2000
MAX_DECISIONS = 10  # decision ids kept per alert (the most recent)
_ID_RE = re.compile(r"^(?:AL-)?([0-9]{1,9})$", re.IGNORECASE)


class AlertError(Exception):
    """A request on an alert the store refuses; ``status`` is the HTTP answer, the message says what to do."""

    status = 400


class AlertNotFound(AlertError):
    status = 404


class AlertForbidden(AlertError):
    status = 403


class AlertConflict(AlertError):
    status = 409


def alert_key(number: int) -> str:
    return f"AL-{number}"


def parse_alert_id(text: str | int) -> int:
    match = _ID_RE.match(str(text).strip())
    if not match:
        raise AlertError(f"{text!r} is not an alert id (e.g. AL-3; see `dataroom alerts list`)")
    return int(match.group(1))


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 1


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


def record_alert_events(settings: Settings, events: list[dict[str, Any]]) -> None:
    """Append ``alert_event`` records to the audit's registry stream and sign a checkpoint."""
    if not events:
        return
    from dataroom.audit.log import AuditLog, utc_now
    from dataroom.audit.registry_events import registry_stream

    audit = AuditLog.from_settings(settings)
    stream = registry_stream(audit)
    try:
        for e in events:
            stream.append({"type": "alert_event", "timestamp": utc_now(), **e})
        stream.checkpoint("alert")
    finally:
        stream.close()
        audit.close()


def alert_events(settings: Settings) -> list[dict[str, Any]]:
    """Every ``alert_event`` record in the registry stream, oldest first (for tests and evidence)."""
    from dataroom.audit.log import AuditLog
    from dataroom.audit.registry_events import registry_stream

    stream = registry_stream(AuditLog.from_settings(settings))
    try:
        return [r for r in stream.records() if r.get("type") == "alert_event"] if stream.path.exists() else []
    finally:
        stream.close()


class AlertStore:
    """The alerts of one data room home, with their lifecycle (see the module docstring)."""

    def __init__(
        self,
        settings: Settings | None = None,
        bundle: PolicyBundle | None = None,
        clock: Callable[[], str] = _now,
        audit: Callable[[Settings, list[dict[str, Any]]], None] = record_alert_events,
    ) -> None:
        self.settings = settings or Settings()
        self._bundle = bundle
        self.clock = clock
        self._audit = audit
        self.dir = alerts_dir(self.settings)
        self.path = self.dir / "lifecycle.json"

    @property
    def bundle(self) -> PolicyBundle:
        if self._bundle is None:
            self._bundle = PolicyBundle(ALERT_POLICY_DIR, [KEYS_ENTRYPOINT, SEVERITIES_ENTRYPOINT])
        return self._bundle

    # -- state -----------------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """The state, exclusively; saved (atomically) when the block ends without an exception."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with (self.dir / "lifecycle.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self._read()
                yield state
                tmp = self.path.with_name("lifecycle.json.tmp")
                tmp.write_text(json.dumps(state, sort_keys=True))
                os.replace(tmp, self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"next_id": 1, "alerts": {}, "active": {}}

    # -- reading ---------------------------------------------------------------------------------
    def alerts(self, status: str | None = None) -> list[dict[str, Any]]:
        """Alerts, open first (most severe, then most recent evidence), then acknowledged, then resolved."""
        if status is not None and status not in STATUSES:
            raise AlertError(f"unknown status {status!r} (use {', '.join(STATUSES)})")
        items = [a for a in self._read()["alerts"].values() if status is None or a["status"] == status]
        items.sort(key=lambda a: (a["last_event_at"] or ""), reverse=True)
        items.sort(key=lambda a: (STATUSES.index(a["status"]), -_rank(a["severity"])))
        return items

    def alert(self, alert_id: str | int) -> dict[str, Any]:
        number = parse_alert_id(alert_id)
        found = self._read()["alerts"].get(str(number))
        if found is None:
            raise AlertNotFound(f"no alert {alert_key(number)} (see `dataroom alerts list`)")
        return found

    def open_count(self) -> int:
        return sum(1 for a in self._read()["alerts"].values() if a["status"] == "open")

    # -- hits from the scanner and the monitors -------------------------------------------------
    def observe(self, hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Fold raised hits into alerts; returns the alerts opened, grown or escalated."""
        if not hits:
            return []
        keys = self.bundle.evaluate(KEYS_ENTRYPOINT, {"alerts": [{"rule": h.get("rule"), "key": h.get("key"), "user": h.get("user")} for h in hits]})
        events: list[dict[str, Any]] = []
        with self._locked() as state:
            now = self.clock()
            touched: dict[str, dict[str, Any]] = {}
            for hit, group in zip(hits, keys):
                alert = state["alerts"].get(str(state["active"].get(group, "")))
                evidence = _number(hit.get("count"), 1)
                weight = _number(hit.get("weight"), 1)
                if alert is None:
                    number = state["next_id"]
                    state["next_id"] += 1
                    alert = {
                        "id": alert_key(number), "number": number, "key": group, "rule": hit.get("rule"), "title": hit.get("title"),
                        "user": hit.get("user"), "project_id": hit.get("project_id"), "status": "open",
                        "base_severity": hit.get("severity") or "medium", "severity": hit.get("severity") or "medium",
                        "count": evidence, "hits": 1, "opened_at": now, "first_event_at": hit.get("event_at"), "last_event_at": hit.get("event_at"),
                        "message": hit.get("message"), "decision_ids": [], "history": [],
                    }
                    state["alerts"][str(number)] = alert
                    state["active"][group] = number
                    alert["history"].append({"step": "opened", "by": SYSTEM_ACTOR, "at": now, "comment": hit.get("message"), "severity": alert["severity"], "count": evidence})
                    events.append(self._event(alert, "opened", SYSTEM_ACTOR, hit.get("message") or ""))
                else:
                    # a level (weight 0: e.g. a backlog) replaces the count when higher; an increment adds to it
                    alert["count"] = max(alert["count"], evidence) if weight == 0 else alert["count"] + weight
                    alert["hits"] += 1
                    alert["last_event_at"] = max(alert["last_event_at"] or "", hit.get("event_at") or "") or None
                    alert["message"] = hit.get("message")
                    if _rank(hit.get("severity") or "medium") > _rank(alert["base_severity"]):
                        alert["base_severity"], alert["title"] = hit.get("severity"), hit.get("title")
                if hit.get("decision_id"):
                    alert["decision_ids"] = [*alert["decision_ids"], hit["decision_id"]][-MAX_DECISIONS:]
                touched[str(alert["number"])] = alert
            ordered = list(touched.values())
            reached = self.bundle.evaluate(SEVERITIES_ENTRYPOINT, {"alerts": [{"rule": a["rule"], "severity": a["base_severity"], "count": a["count"]} for a in ordered]})
            for alert, severity in zip(ordered, reached):
                if _rank(severity) <= _rank(alert["severity"]):
                    continue
                note = f"escalated from {alert['severity']} to {severity} at count {alert['count']}"
                alert["severity"] = severity
                alert["history"].append({"step": "escalated", "by": SYSTEM_ACTOR, "at": now, "comment": note, "severity": severity, "count": alert["count"]})
                events.append(self._event(alert, "escalated", SYSTEM_ACTOR, note))
                if alert["status"] == "acknowledged":  # new evidence beyond what was acknowledged: look again
                    alert["status"] = "open"
                    alert["history"].append({"step": "reopened", "by": SYSTEM_ACTOR, "at": now, "comment": note, "severity": severity, "count": alert["count"]})
                    events.append(self._event(alert, "reopened", SYSTEM_ACTOR, note))
            self._audit(self.settings, events)
        return ordered

    def ingest(self, log_path: Path) -> list[dict[str, Any]]:
        """Fold alerts other writers appended to the alert log (the model monitor) since the last call.

        Lines the scanner wrote carry ``"folded": true`` (it handed them over as hits already).
        """
        if not log_path.exists():
            return []
        with self._locked() as state:
            offset = int(state.get("raw_offset", 0))
            size = log_path.stat().st_size
            if size < offset:  # the alert log was replaced: start from its end, never count twice
                offset = size
            found: list[dict[str, Any]] = []
            with log_path.open("rb") as fh:
                fh.seek(offset)
                for line in fh:
                    if not line.endswith(b"\n"):
                        break
                    offset += len(line)
                    try:
                        hit = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(hit, dict) and not hit.get("folded"):
                        found.append(hit)
            state["raw_offset"] = offset
        return self.observe(found) if found else []

    # -- people ----------------------------------------------------------------------------------
    def acknowledge(self, actor: str, alert_id: str | int, comment: str) -> dict[str, Any]:
        """open → acknowledged (security only; a comment saying what is being done)."""
        return self._step(actor, alert_id, comment, "acknowledged", from_statuses=("open",))

    def resolve(self, actor: str, alert_id: str | int, comment: str) -> dict[str, Any]:
        """open or acknowledged → resolved (security only; a comment saying what was found)."""
        return self._step(actor, alert_id, comment, "resolved", from_statuses=ACTIVE)

    def _step(self, actor: str, alert_id: str | int, comment: str, to: str, from_statuses: tuple[str, ...]) -> dict[str, Any]:
        verb = {"acknowledged": "acknowledge", "resolved": "resolve"}[to]
        try:
            number = parse_alert_id(alert_id)
            self._check_actor(actor, verb)
            comment = (comment or "").strip()
            if not comment:
                raise AlertError(f"to {verb} an alert, write a comment (--comment): what you checked or did")
            if len(comment) > MAX_COMMENT_CHARS:
                raise AlertError(f"the comment is longer than {MAX_COMMENT_CHARS} characters")
        except AlertError as exc:
            self.refused(actor, alert_id, verb, exc)
            raise
        try:
            with self._locked() as state:
                alert = state["alerts"].get(str(number))
                if alert is None:
                    raise AlertNotFound(f"no alert {alert_key(number)} (see `dataroom alerts list`)")
                if alert["status"] not in from_statuses:
                    raise AlertConflict(f"{alert['id']} is {alert['status']}; only an alert that is {' or '.join(from_statuses)} can be {to}")
                return self._apply(state, alert, actor, comment, to)
        except AlertError as exc:
            self.refused(actor, alert_id, verb, exc)
            raise

    def _apply(self, state: dict[str, Any], alert: dict[str, Any], actor: str, comment: str, to: str) -> dict[str, Any]:
        now = self.clock()
        alert["status"] = to
        alert["history"].append({"step": to, "by": actor, "at": now, "comment": comment, "severity": alert["severity"], "count": alert["count"]})
        if to == "resolved" and state["active"].get(alert["key"]) == alert["number"]:
            del state["active"][alert["key"]]  # the next hit of this group opens a new alert
        self._audit(self.settings, [self._event(alert, to, actor, comment)])
        return alert

    def refused(self, actor: str, alert_id: Any, verb: str, exc: Exception) -> None:
        """Audit a refused attempt (wrong group, no comment, unknown alert id)."""
        self._audit(self.settings, [{"step": f"{verb}_refused", "alert_id": str(alert_id)[:40], "actor": str(actor)[:80], "reason": str(exc)[:500]}])

    def _check_actor(self, actor: str, verb: str) -> None:
        from dataroom.catalog import load_catalog

        user = load_catalog(self.settings.catalog_file).users.get(actor)
        if user is None or SECURITY_GROUP not in user.groups:
            raise AlertForbidden(f"only members of the {SECURITY_GROUP} group may {verb} alerts; {actor} is not one")

    @staticmethod
    def _event(alert: dict[str, Any], step: str, actor: str, comment: str) -> dict[str, Any]:
        return {
            "step": step, "alert_id": alert["id"], "actor": actor, "comment": comment, "rule": alert["rule"], "key": alert["key"],
            "user": alert["user"], "severity": alert["severity"], "count": alert["count"], "status": alert["status"],
        }


def _number(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return default
    return int(value)

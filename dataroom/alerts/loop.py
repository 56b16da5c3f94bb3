"""The running room's alert evaluation: every ``DATAROOM_ALERT_INTERVAL_S`` seconds, off the query path.

One evaluation scans the audit records added since the last one (:class:`AlertScanner`, which
folds every hit into the alert lifecycle) and, when ``DATAROOM_AUDIT_BUCKET`` is set, offers the
audit shipper's backlog to the rules (``policies/alerts/shipping.rego``): a shipper behind by more
than ``DATAROOM_AUDIT_SHIP_MAX_LAG_S`` is an alert. The review service runs :class:`AlertLoop` in a
thread, so ``dataroom alerts list`` shows an attack within one interval without anyone scanning.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dataroom.alerts.config import ALERT_ENTRYPOINT, load_config
from dataroom.alerts.scanner import AlertScanner, _iso
from dataroom.settings import Settings

if TYPE_CHECKING:
    from dataroom.audit.anchor import ShipStatus

log = logging.getLogger("dataroom.alerts")


def shipping_status(settings: Settings) -> "ShipStatus | None":
    """The audit shipper's backlog (checkpoints signed, not yet anchored), or None without an audit bucket.

    Read from the local checkpoint file and the shipper's place in it: no call to the bucket.
    """
    if not settings.audit_bucket:
        return None
    from dataroom.audit.anchor import AnchorTarget, Shipper
    from dataroom.audit.log import AuditLog

    audit = AuditLog.from_settings(settings)
    try:
        return Shipper(audit, AnchorTarget(settings.audit_bucket, settings.audit_anchor_prefix), client=None).status()
    finally:
        audit.close()


def shipping_json(settings: Settings) -> dict[str, Any] | None:
    """:func:`shipping_status` for health outputs: backlog, age of the oldest unshipped item, the limit."""
    status = shipping_status(settings)
    if status is None:
        return None
    return {
        "backlog": status.backlog,
        "oldest_unshipped": status.oldest_unshipped,
        "lag_s": round(status.lag_s, 1),
        "max_lag_s": settings.audit_ship_max_lag_s,
        "behind": status.backlog > 0 and status.lag_s > settings.audit_ship_max_lag_s,
    }


def check_shipping(scanner: AlertScanner) -> list[dict[str, Any]]:
    """Offer the shipper's backlog to the rules; hits go to the lifecycle (an alert's count: the backlog)."""
    settings = scanner.settings
    status = shipping_status(settings)
    if status is None:
        return []
    stream = settings.audit_file.name
    event = {"kind": "shipping", "stream": stream, "backlog": status.backlog, "lag_s": round(status.lag_s, 1),
             "oldest_unshipped": status.oldest_unshipped, "error": status.error}
    config = {**load_config(settings), "audit_shipping": {"max_lag_s": settings.audit_ship_max_lag_s}}
    found = scanner.bundle.evaluate(ALERT_ENTRYPOINT, {"event": event, "context": {}, "config": config}) or []
    now = _iso(scanner.clock())
    hits = [
        {"alert_id": str(uuid.uuid4()), "raised_at": now, "event_at": now, "seq": None, "decision_id": None, "user": None, "project_id": None,
         **a, "count": status.backlog, "weight": 0}
        for a in found
    ]
    scanner.store.observe(hits)
    return hits


def evaluate_once(scanner: AlertScanner) -> list[dict[str, Any]]:
    """One evaluation: new audit records, then the shipper's backlog; returns the new hits worth logging."""
    raised = scanner.scan().alerts
    return raised + check_shipping(scanner)


@dataclass
class AlertLoop:
    """Evaluates every ``interval_s`` seconds in a daemon thread until :meth:`stop`."""

    settings: Settings
    interval_s: float
    scanner: AlertScanner | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    evaluations: int = 0

    def start(self) -> "AlertLoop":
        if self.scanner is None:
            self.scanner = AlertScanner(self.settings)
        self._thread = threading.Thread(target=self._run, name="dataroom-alerts", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        assert self.scanner is not None
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                raised = evaluate_once(self.scanner)
                if raised:
                    log.warning("%d new alert(s): %s", len(raised), "; ".join(str(a.get("message")) for a in raised[:5]))
            except Exception:  # an evaluation problem must not stop the loop (nor the service running it)
                log.exception("alert evaluation failed")
            self.evaluations += 1
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

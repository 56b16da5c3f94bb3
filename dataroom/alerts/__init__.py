"""Alerts over the audit stream (Rego rules in ``policies/alerts/``), and their lifecycle.

* :mod:`dataroom.alerts.config` — thresholds: defaults overlaid with ``$DATAROOM_HOME/alerts.toml``;
* :mod:`dataroom.alerts.scanner` — the incremental scan of the audit log that raises alerts;
* :mod:`dataroom.alerts.lifecycle` — alerts as a security team works them: deduplicated by key,
  growing in count and severity while open, open → acknowledged → resolved, each step audited;
* :mod:`dataroom.alerts.loop` — the running room's continuous evaluation (every
  ``DATAROOM_ALERT_INTERVAL_S`` seconds) and the audit shipper's backlog check.

``from dataroom.alerts import AlertScanner, load_config, ...`` keeps working for every caller.
"""

from dataroom.alerts.config import (
    ALERT_ENTRYPOINT,
    ALERT_POLICY_DIR,
    DEFAULT_CONFIG,
    GRACE_MARGIN_S,
    MAX_LISTED_DECISIONS,
    PENDING_RETENTION_S,
    UNKNOWN_USER,
    alerts_dir,
    config_file,
    load_config,
)
from dataroom.alerts.scanner import AlertLog, AlertScanner, ScanResult

__all__ = [
    "ALERT_ENTRYPOINT",
    "ALERT_POLICY_DIR",
    "DEFAULT_CONFIG",
    "GRACE_MARGIN_S",
    "MAX_LISTED_DECISIONS",
    "PENDING_RETENTION_S",
    "UNKNOWN_USER",
    "AlertLog",
    "AlertScanner",
    "ScanResult",
    "alerts_dir",
    "config_file",
    "load_config",
]

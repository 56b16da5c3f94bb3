"""Alert thresholds: the defaults, overlaid with ``$DATAROOM_HOME/alerts.toml``, checked on load."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from dataroom.rego import POLICY_ROOT
from dataroom.settings import Settings

ALERT_POLICY_DIR = POLICY_ROOT / "alerts"
ALERT_ENTRYPOINT = "dataroom.alerts.main"
UNKNOWN_USER = "(unknown)"  # a completion whose decision the scanner never saw

DEFAULT_CONFIG: dict[str, Any] = {
    "dedupe_s": 3600,  # the same alert key is raised at most once per this many seconds
    "denied_burst": {"count": 5, "window_s": 600},
    "volume": {"sigma": 3.0, "min_history": 5, "min_rows": 1000, "max_rows": 500_000},
    "new_pii": {"days": 30},
    # `count` refusals with one of `reason_codes` for one user within `window_s` seconds
    "limit_refusals": {"count": 3, "window_s": 600, "reason_codes": ["memory_limit", "time_limit", "row_limit"]},
    # an allowed query without a completion record `grace_s` seconds after its decision;
    # unset: the query time limit (settings.query_timeout_s) plus GRACE_MARGIN_S
    "never_completed": {"grace_s": None},
    # one attempt (a decision with one of `reason_codes`) is medium; `repeat_count` within `window_s` is high
    "denied_functions": {
        "repeat_count": 2,
        "window_s": 3600,
        "reason_codes": ["sql_in_string", "session_state_function", "file_function"],
    },
    # model monitoring (policies/alerts/monitoring.rego, evaluated by `dataroom monitor run` per scored window):
    # windows of fewer than min_n rows are not judged; a segment with fewer than min_reference_n rows in the
    # reference period is compared with all segments' reference instead of its own
    "monitoring": {"min_n": 20, "r2_min": 0.3, "rmse_ratio_max": 2.0, "drift_p_value": 0.001, "drift_min_statistic": 0.2, "min_reference_n": 100},
}
GRACE_MARGIN_S = 60.0
PENDING_RETENTION_S = 7 * 86400  # a query that never completed is forgotten this long after its decision
MAX_LISTED_DECISIONS = 10  # decision ids named in one alert message (the most recent)


def alerts_dir(settings: Settings) -> Path:
    return settings.home / "alerts"


def config_file(settings: Settings) -> Path:
    return settings.home / "alerts.toml"


def load_config(settings: Settings) -> dict[str, Any]:
    """Defaults overlaid with ``$DATAROOM_HOME/alerts.toml`` (same keys, e.g. ``[denied_burst] count = 3``).

    ``never_completed.grace_s`` left unset becomes ``settings.query_timeout_s + GRACE_MARGIN_S``.
    """
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
                if not isinstance(value, dict):
                    raise ValueError(f"alert configuration {path}: {key} is a table ([{key}]), not a value")
                unknown = set(value) - set(config[key])
                if unknown:
                    raise ValueError(f"alert configuration {path}: unknown setting(s) {sorted(unknown)} in [{key}]")
                for name, item in value.items():
                    _check_type(path, f"{key}.{name}", config[key][name], item)
                config[key].update(value)
            else:
                _check_type(path, key, config[key], value)
                config[key] = value
    if config["never_completed"]["grace_s"] is None:
        config["never_completed"]["grace_s"] = float(settings.query_timeout_s) + GRACE_MARGIN_S
    return config


def _check_type(path: Path, name: str, default: Any, value: Any) -> None:
    if isinstance(default, list):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        expected = "a list of strings"
    else:  # numbers (None: a number with a computed default)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
        expected = "a non-negative number"
    if not ok:
        raise ValueError(f"alert configuration {path}: {name} must be {expected}, not {value!r}")

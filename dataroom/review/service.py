"""How the Hub runs the review service: the ``JupyterHub.services`` entry and the access role.

Pass both to the Hub configuration's extension point::

    from dataroom.review.service import review_service, review_role
    build_hub_config(options, catalog, extra_services=[review_service(options.home, port)],
                     extra_roles=[review_role()])

Only the ``security`` group gets ``access:services!service=review`` from the Hub; the service
checks the group again on every request (Hub group and catalog group), so a mistake in either
place still ends in 403.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from dataroom.registry import SECURITY_GROUP
from dataroom.review.server import DEFAULT_PORT, DEFAULT_SERVICE_NAME


def review_service(
    home: Path,
    port: int = DEFAULT_PORT,
    *,
    name: str = DEFAULT_SERVICE_NAME,
    python: str = sys.executable,
    pid_dir: Path | None = None,
    cwd: Path | None = None,
    scan_interval: float | None = None,
    monitor_interval: float = 3600.0,
    log_level: str = "INFO",
) -> dict[str, Any]:
    """A hub-managed service entry (the Hub starts, stops and proxies it under /services/<name>/)."""
    environment = {"DATAROOM_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    if pid_dir is not None:
        environment["DATAROOM_REVIEW_PID_FILE"] = str(pid_dir / f"service-{name}.pid")
    interval = [] if scan_interval is None else ["--scan-interval", str(scan_interval)]  # None: $DATAROOM_ALERT_INTERVAL_S
    entry: dict[str, Any] = {
        "name": name,
        "url": f"http://127.0.0.1:{port}",
        "command": [
            python, "-m", "dataroom.review", *interval, "--monitor-interval", str(monitor_interval), "--log-level", log_level,
        ],
        "environment": environment,
        "oauth_no_confirm": True,
        "display": True,
        "info": {"description": "Security review: query log, approvals, alerts, audit chain"},
        # not a JupyterHub key: dataroom.hub.config.load_hub_config() passes these from the Hub's environment
        "pass_environment": ["DATAROOM_"],
    }
    if cwd is not None:  # the launcher stops leftovers by pid only for processes working in its state dir
        entry["cwd"] = str(cwd)
    return entry


def review_role(name: str = DEFAULT_SERVICE_NAME, groups: tuple[str, ...] = (SECURITY_GROUP,)) -> dict[str, Any]:
    """The role letting ``groups`` (by default only security) reach the review service."""
    return {
        "name": f"{name}-access",
        "description": "May open the security review service (the service re-checks the security group)",
        "scopes": [f"access:services!service={name}"],
        "groups": list(groups),
    }

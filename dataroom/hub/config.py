"""JupyterHub configuration for the data room, built from the catalog.

:func:`build_hub_config` returns the configuration as plain JSON-able data (traitlets sections);
:func:`write_hub_config` writes it as ``hub_config.json`` beside a two-line
``jupyterhub_config.py`` that loads it with :func:`load_hub_config`. Secrets stay out of the
files: the broker's data credentials (``AWS_*``) and settings (``DATAROOM_*``) are passed from
the Hub's environment to the broker process when the Hub starts (``pass_environment``).

What it sets up:

* the Hub on ``ip:port`` (127.0.0.1 by default), its database, cookie secret, pid files and the
  proxy's API port under ``state_dir``;
* login: JupyterHub's ``SharedPasswordAuthenticator``: every catalog user may log in with the
  shared demo password (no admin users);
* Hub groups from the catalog (``data-scientists``, ``security``), always both;
* the ``broker`` as a hub-managed service (``command``), listening on ``127.0.0.1:broker_port``
  under ``/services/broker/``, and a role granting the catalog users
  ``access:services!service=broker`` (the policy still decides every query);
* :class:`dataroom.hub.spawner.DataRoomSpawner`: a clean environment holding only
  ``DATAROOM_BROKER_URL`` and the server's Hub token, whose scopes include the broker's
  (``server_token_scopes``), the example notebooks copied in, downloads and exports disabled
  (:mod:`dataroom.hub.no_download`, loaded on the command line, user config files ignored);
* isolation (``HubOptions.isolation``, the default as root): every server runs as its user's own
  system account (``dataroom-<user>``) and every hub-managed service (broker, review) as the
  service account (``dataroom``, JupyterHub's ``user`` key of a service); without it the servers
  run as the Hub's own OS user (``--allow-root`` if that is root).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from dataroom.broker import DEFAULT_SERVICE_NAME
from dataroom.catalog import Catalog
from dataroom.hub.accounts import SERVICE_ACCOUNT, USER_ACCOUNT_PREFIX

HUB_GROUPS = ("data-scientists", "security")
BROKER_URL_ENV = "DATAROOM_BROKER_URL"
BROKER_PASS_ENVIRONMENT = ("DATAROOM_", "AWS_")
SPAWN_ENV_KEEP = ["PATH", "LANG", "LC_ALL", "TZ"]
CONFIG_JSON = "hub_config.json"
CONFIG_PY = "jupyterhub_config.py"
NO_DOWNLOAD_ARG = "--ServerApp.jpserver_extensions=dataroom.hub.no_download=True"  # see dataroom.hub.no_download


def default_notebooks_dir() -> Path | None:
    """``notebooks/`` of the source checkout this package runs from, if there is one."""
    candidate = Path(__file__).resolve().parents[2] / "notebooks"
    return candidate if candidate.is_dir() else None


@dataclass
class HubOptions:
    """Where the Hub runs and keeps its state. Ports of 0 are not allowed here: pick them first."""

    state_dir: Path
    home: Path
    demo_password: str
    port: int = 8000
    hub_port: int = 8081
    proxy_api_port: int = 8001
    broker_port: int = 8765
    ip: str = "127.0.0.1"
    proxy_command: list[str] = field(default_factory=lambda: ["configurable-http-proxy"])
    notebooks_dir: Path | None = field(default_factory=default_notebooks_dir)
    python: str = sys.executable
    as_root: bool = field(default_factory=lambda: os.geteuid() == 0)
    #: one OS account per user and the service account for the services (needs root); off only
    #: by the explicit choice of ``dataroom up --insecure-single-user``
    isolation: bool = field(default_factory=lambda: os.geteuid() == 0)
    service_account: str = SERVICE_ACCOUNT
    account_prefix: str = USER_ACCOUNT_PREFIX
    log_level: str = "INFO"

    @property
    def hub_url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    def broker_url(self, service_name: str = DEFAULT_SERVICE_NAME) -> str:
        """The broker's direct URL (what notebooks use: no proxy hop on the data path)."""
        return f"http://127.0.0.1:{self.broker_port}/services/{service_name}/"

    @property
    def pid_dir(self) -> Path:
        return self.state_dir / "pids"

    @property
    def proxy_pid_file(self) -> Path:
        return self.state_dir / "proxy.pid"

    @property
    def hub_pid_file(self) -> Path:
        return self.state_dir / "jupyterhub.pid"

    @property
    def users_dir(self) -> Path:
        return self.state_dir / "users"


def broker_service(options: HubOptions, name: str = DEFAULT_SERVICE_NAME) -> dict[str, Any]:
    """The broker as a hub-managed service entry of ``JupyterHub.services``."""
    return {
        "name": name,
        "url": f"http://127.0.0.1:{options.broker_port}",
        "command": [options.python, "-m", "dataroom.broker", "--log-level", options.log_level],
        "cwd": str(options.state_dir),
        "display": False,
        "environment": {
            "DATAROOM_HOME": str(options.home),
            "DATAROOM_BROKER_PID_FILE": str(options.pid_dir / f"service-{name}.pid"),
            "PYTHONUNBUFFERED": "1",
        },
        # not a JupyterHub key: load_hub_config() fills these from the Hub's environment at start
        "pass_environment": list(BROKER_PASS_ENVIRONMENT),
    }


def build_hub_config(
    options: HubOptions,
    catalog: Catalog,
    *,
    extra_services: Iterable[dict[str, Any]] = (),
    extra_roles: Iterable[dict[str, Any]] = (),
    broker_name: str = DEFAULT_SERVICE_NAME,
) -> dict[str, Any]:
    """The data room's JupyterHub configuration (traitlets sections as plain data).

    Extension point: ``extra_services`` are appended to ``JupyterHub.services`` as given (each a
    JupyterHub service dict: ``name``, ``url``, ``command``, ``environment``, ``oauth_client_allowed_scopes`` ...;
    a service may also list ``pass_environment`` prefixes of Hub environment variables to pass
    through at start), and ``extra_roles`` to ``JupyterHub.load_roles``. The security review UI is
    meant to be added this way, e.g.::

        build_hub_config(options, catalog,
            extra_services=[{"name": "review", "url": "http://127.0.0.1:8766",
                             "command": [sys.executable, "-m", "dataroom.review"],
                             "oauth_no_confirm": True}],
            extra_roles=[{"name": "review-user", "scopes": ["access:services!service=review"],
                          "groups": ["security"]}])
    """
    people = {name: user for name, user in sorted(catalog.users.items()) if not user.is_service_principal}
    users = sorted(people)  # service principals never log in (no shared-password login as svc-monitor)
    groups: dict[str, dict[str, Any]] = {g: {"users": []} for g in HUB_GROUPS}
    for name, user in people.items():
        for group in user.groups:
            groups.setdefault(group, {"users": []})["users"].append(name)
    broker_scope = f"access:services!service={broker_name}"
    services = [broker_service(options, broker_name), *(dict(s) for s in extra_services)]
    if options.isolation:  # every process the Hub starts for a service runs as the service account
        for service in services:
            if service.get("command"):
                service.setdefault("user", options.service_account)
    roles = [
        {
            "name": "dataroom-user",
            "description": "Data room users may call the broker; the policy decides each query",
            "scopes": [broker_scope],
            "users": users,
        },
        *extra_roles,
    ]
    state = options.state_dir
    login_note = "Data room demo: log in as " + ", ".join(users) + " with the shared password printed by `dataroom up`."
    return {
        "JupyterHub": {
            "bind_url": f"http://{options.ip}:{options.port}",
            "hub_ip": "127.0.0.1",
            "hub_port": options.hub_port,
            "db_url": f"sqlite:///{state / 'jupyterhub.sqlite'}",
            "cookie_secret_file": str(state / "jupyterhub_cookie_secret"),
            "pid_file": str(options.hub_pid_file),
            "authenticator_class": "jupyterhub.authenticators.shared.SharedPasswordAuthenticator",
            "spawner_class": "dataroom.hub.spawner.DataRoomSpawner",
            "load_groups": groups,
            "load_roles": roles,
            "services": services,
            "cleanup_servers": True,
            "cleanup_proxy": True,
            "log_level": {"WARNING": "WARN"}.get(options.log_level, options.log_level),
            "template_vars": {"announcement_login": login_note},
        },
        "ConfigurableHTTPProxy": {
            "api_url": f"http://127.0.0.1:{options.proxy_api_port}",
            "command": list(options.proxy_command),
            "pid_file": str(options.proxy_pid_file),
        },
        "SharedPasswordAuthenticator": {
            "user_password": options.demo_password,
            "allowed_users": users,
        },
        "DataRoomSpawner": {
            "cmd": [options.python, "-m", "jupyterhub.singleuser"],
            "args": [*(["--allow-root"] if options.as_root and not options.isolation else []), NO_DOWNLOAD_ARG],
            "disable_user_config": True,  # no config file in the user's home can take the no-download extension out
            "isolate": options.isolation,
            "account_prefix": options.account_prefix,
            "env_keep": list(SPAWN_ENV_KEEP),
            "environment": {BROKER_URL_ENV: options.broker_url(broker_name)},
            "server_token_scopes": ["users:activity!user", "access:servers!server", broker_scope],
            "home_dir_template": str(options.users_dir / "{username}"),
            "notebooks_dir": str(options.notebooks_dir) if options.notebooks_dir else "",
            "pid_dir": str(options.pid_dir),
            "default_url": "/lab",
            "start_timeout": 120,
            "http_timeout": 90,
        },
    }


def write_hub_config(config: dict[str, Any], state_dir: Path) -> Path:
    """Write ``hub_config.json`` and the ``jupyterhub_config.py`` that loads it; returns the latter."""
    state_dir.mkdir(parents=True, exist_ok=True)
    json_path = state_dir / CONFIG_JSON
    fd = os.open(json_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the demo password
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh, indent=2)
    py_path = state_dir / CONFIG_PY
    fd = os.open(py_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(
            "# Generated by `dataroom up` from hub_config.json (see dataroom/hub/config.py).\n"
            "from dataroom.hub.config import load_hub_config\n\n"
            f"load_hub_config(c, {str(json_path)!r})  # noqa: F821 (c is traitlets' config object)\n"
        )
    return py_path


def load_hub_config(c: Any, json_path: str | Path, environ: dict[str, str] | None = None) -> None:
    """Merge ``hub_config.json`` into traitlets config ``c``, passing environment through to services."""
    from traitlets.config import Config

    environ = dict(os.environ if environ is None else environ)
    data = json.loads(Path(json_path).read_text())
    for service in data.get("JupyterHub", {}).get("services", []):
        prefixes = tuple(service.pop("pass_environment", ()) or ())
        if prefixes:
            passed = {k: v for k, v in environ.items() if k.startswith(prefixes)}
            service["environment"] = {**passed, **service.get("environment", {})}
    c.merge(Config(data))

"""Start the data room's JupyterHub (with proxy and broker) and stop everything it started.

:class:`DataRoomHub` closes the room's files to its users (with ``HubOptions.isolation``: the
service account, file modes, a check that the unprivileged accounts can run this installation;
see :mod:`dataroom.hub.isolation`), writes the configuration, starts ``python -m jupyterhub`` in
its own session with umask 077, waits until the Hub and the broker answer, and on
:meth:`~DataRoomHub.stop` asks the Hub
to shut down (SIGTERM: it stops the user servers, the broker and the proxy), then stops by pid
whatever is still alive from the pid files it knows (proxy, broker, user servers), so that a
proxy left behind cannot block the next start.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any, Iterable

import requests

from dataroom.broker import DEFAULT_SERVICE_NAME
from dataroom.catalog import Catalog, load_catalog
from dataroom.hub.accounts import Account, AccountError, ensure_account
from dataroom.hub.config import HubOptions, build_hub_config, write_hub_config
from dataroom.hub.isolation import installation_problems, own_tree, secure_state_dir
from dataroom.hub.logs import HUB_LOG, failure_report, fatal_start_error, log_to_file, new_log, prepare_log_dir

PROXY_EXECUTABLE = "configurable-http-proxy"
PASSWORD_FILE = "demo-password"
HUB_UMASK = 0o077  # whatever the Hub, its services and servers create is private to its owner


class HubStartError(RuntimeError):
    """The Hub (or its broker) did not come up; the message carries the end of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def find_proxy() -> str | None:
    """configurable-http-proxy: on PATH, or in ``node_modules/.bin`` of the source checkout."""
    found = shutil.which(PROXY_EXECUTABLE)
    if found:
        return found
    local = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / PROXY_EXECUTABLE
    return str(local) if local.exists() else None


def install_proxy(prefix: Path) -> str:
    """Install configurable-http-proxy with npm under ``prefix``; returns its path."""
    npm = shutil.which("npm")
    if npm is None:
        raise HubStartError("configurable-http-proxy is missing and npm is not installed: install Node.js, then `npm install configurable-http-proxy`")
    prefix.mkdir(parents=True, exist_ok=True)
    subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(prefix), "configurable-http-proxy@^5"], check=True)
    return str(prefix / "node_modules" / ".bin" / PROXY_EXECUTABLE)


def demo_password(state_dir: Path, given: str | None = None) -> str:
    """The shared demo password: given, or remembered in ``state_dir``, or a new random one."""
    path = state_dir / PASSWORD_FILE
    if given:
        return given
    if path.exists():
        return path.read_text().strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password)
    return password


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def stop_pid(pid: int, timeout: float = 10.0) -> bool:
    """SIGTERM, wait, then SIGKILL one process by pid; True if it had to be stopped."""
    if pid <= 1 or pid == os.getpid() or not pid_alive(pid):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


class DataRoomHub:
    """One running data room Hub: ``start()``, ``stop()``, or use it as a context manager."""

    def __init__(
        self,
        options: HubOptions,
        catalog: Catalog | None = None,
        *,
        extra_services: Iterable[dict[str, Any]] = (),
        extra_roles: Iterable[dict[str, Any]] = (),
        env: dict[str, str] | None = None,
        log: IO[bytes] | int | None = None,
        log_dir: Path | None = None,
    ) -> None:
        """``log``: where the Hub's output goes (default: this terminal). ``log_dir``: instead, one file
        per component there (``hub.log``, ``<service>.log``; see :mod:`dataroom.hub.logs`)."""
        self.options = options
        self.catalog = catalog or load_catalog(options.home / "catalog.toml")
        self.extra_services = list(extra_services)
        self.extra_roles = list(extra_roles)
        self.env = dict(os.environ if env is None else env)
        self.log = log
        self.log_dir = log_dir
        self.proc: subprocess.Popen | None = None
        self.config_file: Path | None = None
        self.service_account: Account | None = None

    # -- addresses -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.options.hub_url

    @property
    def broker_url(self) -> str:
        return self.options.broker_url(DEFAULT_SERVICE_NAME)

    @property
    def broker_proxy_url(self) -> str:
        return f"{self.url}/services/{DEFAULT_SERVICE_NAME}/"

    # -- life cycle ----------------------------------------------------------------------------
    def start(self, timeout: float = 90.0) -> "DataRoomHub":
        opts = self.options
        opts.state_dir.mkdir(parents=True, exist_ok=True)
        self._stop_leftovers()  # a previous run killed hard must not block this one
        if opts.isolation:
            self.service_account = self.isolate()
        config = build_hub_config(opts, self.catalog, extra_services=self.extra_services, extra_roles=self.extra_roles)
        log = self.log
        if self.log_dir is not None:
            config = self._logs_to_files(config)
            log = open(self.log_dir / HUB_LOG, "ab")  # noqa: SIM115 - handed to the Hub, closed below
        self.config_file = write_hub_config(config, opts.state_dir)
        env = dict(self.env)
        env["PATH"] = os.pathsep.join([str(Path(opts.python).parent), env.get("PATH", os.defpath)])
        env["DATAROOM_HOME"] = str(opts.home)
        try:
            self.proc = subprocess.Popen(
                [opts.python, "-m", "jupyterhub", "-f", str(self.config_file)],
                cwd=opts.state_dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT if log is not None else None,
                start_new_session=True,  # Ctrl-C reaches us; we stop the Hub ourselves, once
                umask=HUB_UMASK,
            )
        finally:
            if log is not self.log and log is not None:
                log.close()  # the Hub holds its own descriptor
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _logs_to_files(self, config: dict[str, Any]) -> dict[str, Any]:
        """Fresh log files (the last run's kept as ``.1``); each managed service writes its own."""
        assert self.log_dir is not None
        prepare_log_dir(self.log_dir)
        new_log(self.log_dir / HUB_LOG)
        account = self.service_account
        owner = (account.uid, account.gid) if account is not None else None
        hub = config["JupyterHub"]
        hub["services"] = [
            log_to_file(service, new_log(self.log_dir / f"{service['name']}.log", owner)) if service.get("command") else service
            for service in hub.get("services", [])
        ]
        return config

    def isolate(self) -> Account:
        """Give the room's files to the service account and lock the hub state; check that the
        unprivileged accounts can run this installation. Returns the service account."""
        opts = self.options
        if os.geteuid() != 0:
            raise HubStartError("giving each user's server its own OS account needs root: run `dataroom up` as root (or, knowingly, --insecure-single-user)")
        try:
            service = ensure_account(opts.service_account, "data room services (broker, review)")
        except AccountError as exc:
            raise HubStartError(str(exc)) from exc
        own_tree(opts.home, service)
        secure_state_dir(opts.state_dir, opts.users_dir, opts.pid_dir, service)
        rwx = os.R_OK | os.W_OK | os.X_OK
        needs = [(opts.home, rwx), (opts.state_dir, os.X_OK), (opts.pid_dir, rwx), (opts.users_dir, os.X_OK)]
        problems = installation_problems(opts.python, service, needs)
        if problems:
            raise HubStartError(
                f"the broker and the users' servers run as unprivileged accounts, and account {service.name!r}:\n  - "
                + "\n  - ".join(problems)
                + "\nKeep the checkout (with its venv), $DATAROOM_HOME and the hub state directory where other accounts can "
                "traverse (not under /root or another 0700 directory), and build the venv on an interpreter outside /root "
                "(`make setup` does)."
            )
        return service

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        checks = {"hub": f"{self.url}/hub/api/", "broker": f"{self.broker_url}health"}
        pending = dict(checks)
        while pending:
            if self.proc is not None and self.proc.poll() is not None:
                raise HubStartError(f"JupyterHub exited with code {self.proc.returncode} during start-up{self._log_tail()}")
            if time.monotonic() > deadline:
                raise HubStartError(f"{', '.join(pending)} did not answer within {timeout:.0f} s{self._log_tail()}")
            fatal = fatal_start_error(self.log_dir) if self.log_dir is not None else None
            if fatal is not None:  # no need to wait out the timeout
                raise HubStartError(f"the room cannot start ({fatal}){self._log_tail()}")
            for name, url in list(pending.items()):
                try:
                    if requests.get(url, timeout=2).status_code == 200:
                        del pending[name]
                except requests.RequestException:
                    pass
            if pending:
                time.sleep(0.2)

    def _log_tail(self, lines: int = 40) -> str:
        if self.log_dir is not None:
            return "\n" + failure_report(self.log_dir)
        name = getattr(self.log, "name", None)
        if not isinstance(name, str) or not os.path.exists(name):
            return ""
        tail = Path(name).read_text(errors="replace").splitlines()[-lines:]
        return "\n--- hub log ---\n" + "\n".join(tail)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait(self) -> int:
        assert self.proc is not None
        return self.proc.wait()

    def pid_files(self) -> list[Path]:
        """Pid files of what the Hub started: proxy, broker (services), user servers."""
        opts = self.options
        files = [opts.proxy_pid_file]
        if opts.pid_dir.is_dir():
            files += sorted(opts.pid_dir.glob("*.pid"))
        return files

    def stop(self, timeout: float = 30.0) -> list[int]:
        """Stop the Hub (and through it everything it started); returns pids that had to be killed here."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self._stop_leftovers()

    def _stop_leftovers(self) -> list[int]:
        stopped = []
        hub_pid = _read_pid(self.options.hub_pid_file)
        if hub_pid and (self.proc is None or hub_pid != self.proc.pid) and _is_our_hub(hub_pid, self.options.state_dir):
            if stop_pid(hub_pid, 15):
                stopped.append(hub_pid)
        for path in self.pid_files():
            pid = _read_pid(path)
            if pid and _runs_in(pid, self.options.state_dir) and stop_pid(pid):
                stopped.append(pid)
            path.unlink(missing_ok=True)
        # A component still starting when the Hub stopped (a start-up that failed fast) has no pid
        # file yet, and would write one and run on: whatever works in the state directory is ours.
        for pid in _processes_in(self.options.state_dir):
            if stop_pid(pid):
                stopped.append(pid)
        for path in self.pid_files():
            path.unlink(missing_ok=True)
        self.options.hub_pid_file.unlink(missing_ok=True)
        return stopped

    def __enter__(self) -> "DataRoomHub":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _is_our_hub(pid: int, state_dir: Path) -> bool:
    """Only a jupyterhub process whose config lives in ``state_dir`` (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return "jupyterhub" in cmdline and str(state_dir) in cmdline


def _runs_in(pid: int, state_dir: Path) -> bool:
    """Whether ``pid`` works in ``state_dir`` (the Hub, proxy, broker and user servers all do),
    so that a pid file outliving its process never stops an unrelated one."""
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return False
    return cwd == state_dir.resolve() or state_dir.resolve() in cwd.parents


def _processes_in(state_dir: Path) -> list[int]:
    """Processes working in ``state_dir``, except this one and its ancestors (a shell started there)."""
    spared, pid = set(), os.getpid()
    while pid > 1 and pid not in spared:
        spared.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])  # the parent's pid
        except (OSError, IndexError, ValueError):
            break
    pids = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return [pid for pid in pids if pid not in spared and _runs_in(pid, state_dir)]


def python_has_jupyterhub(python: str = sys.executable) -> bool:
    return subprocess.run([python, "-c", "import jupyterhub, jupyter_server, ipykernel"], capture_output=True).returncode == 0

"""Helpers of the hub tests (fixtures in conftest.py): start and stop `dataroom up`, log users in,
call the broker, read the audit log. Real processes and real HTTP throughout; nothing is mocked."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from dataroom.audit import AuditLog
from dataroom.hub.launcher import free_port, pid_alive, stop_pid
from dataroom.hub.rest import HubUser, Kernel

REPO = Path(__file__).resolve().parents[2]
NODE_BIN = REPO / "node_modules" / ".bin"
PASSWORD = "demo-password-for-tests"
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "AKIADATAROOMTESTKEY1", "AWS_SECRET_ACCESS_KEY": "dataroom-test-secret-never-in-notebooks"}
MAX_ROWS = 50_000


def _require_proxy() -> None:
    if shutil.which("configurable-http-proxy", path=f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}") is None:
        pytest.fail("configurable-http-proxy is not installed: run `npm install` (make setup)")


@dataclass
class RunningRoom:
    proc: subprocess.Popen
    hub_url: str
    broker_url: str
    home: Path
    state_dir: Path
    log_path: Path

    @property
    def broker_proxy_url(self) -> str:
        return f"{self.hub_url}/services/broker/"

    @property
    def audit(self) -> AuditLog:
        return AuditLog(self.home / "audit" / "audit.jsonl")

    def records(self) -> list[dict[str, Any]]:
        return list(self.audit.records())

    def decision(self, decision_id: str) -> dict[str, Any]:
        found = [r for r in self.records() if r.get("type") == "decision" and r.get("decision_id") == decision_id]
        assert len(found) == 1, f"expected one decision record {decision_id}, found {len(found)}"
        return found[0]

    def completion(self, decision_id: str, timeout: float = 0.0) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.records() if r.get("type") == "completion" and r.get("decision_id") == decision_id]
            if found or time.monotonic() >= deadline:
                return found[0] if found else None
            time.sleep(0.2)

    def pid(self, name: str) -> int:
        return int((self.state_dir / "pids" / f"{name}.pid").read_text())

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def start_up(
    tmp: Path,
    home: Path,
    extra_env: dict[str, str] | None = None,
    timeout: float = 120.0,
    *,
    args: tuple[str, ...] = (),
    uid: int | None = None,
) -> RunningRoom:
    """`dataroom up` in a subprocess with fresh ports (as ``uid`` if given, with ``args``); returns
    once it printed its banner."""
    _require_proxy()
    state = tmp / "hub-state"
    log_path = tmp / "up.log"
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DATAROOM_HOME": str(home),
        "PYTHONUNBUFFERED": "1",
        **FAKE_AWS,
        **(extra_env or {}),
    }
    cmd = [sys.executable, "-m", "dataroom.cli", "up", "--port", str(port), "--state-dir", str(state), "--password", PASSWORD, *args]
    as_user = {} if uid is None else {"user": uid, "group": pwd.getpwuid(uid).pw_gid, "extra_groups": []}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp, **as_user)
    deadline = time.monotonic() + timeout
    broker_url = None
    while broker_url is None:
        text = log_path.read_text(errors="replace")
        match = re.search(r"Broker \(API\):\s+(\S+)", text)
        if match:
            broker_url = match.group(1)
        elif proc.poll() is not None or time.monotonic() > deadline:
            stop_up_process(proc, state)
            pytest.fail(f"`dataroom up` did not come up (exit {proc.returncode}):\n{text[-4000:]}")
        else:
            time.sleep(0.2)
    return RunningRoom(proc, f"http://127.0.0.1:{port}", broker_url, home, state, log_path)


def stop_up_process(proc: subprocess.Popen, state: Path, timeout: float = 60.0) -> int | None:
    """Ctrl-C (SIGINT) to `dataroom up`, wait; then stop by pid whatever its pid files still name."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    leftovers = []
    for path in [state / "jupyterhub.pid", state / "proxy.pid", *sorted((state / "pids").glob("*.pid"))]:
        try:
            pid = int(path.read_text())
        except (OSError, ValueError):
            continue
        if pid_alive(pid):
            leftovers.append(pid)
            stop_pid(pid)
    return proc.returncode if not leftovers else None


@dataclass
class LoggedIn:
    user: HubUser
    token: str


def login(room: RunningRoom, name: str) -> LoggedIn:
    user = HubUser.login(room.hub_url, name, PASSWORD)
    return LoggedIn(user, user.new_token(note=f"tests {uuid.uuid4().hex[:6]}"))


def broker_get(room: RunningRoom, path: str, token: str | None = None, via_proxy: bool = False) -> requests.Response:
    base = room.broker_proxy_url if via_proxy else room.broker_url
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.get(base + path, headers=headers, timeout=60)


def broker_query(room: RunningRoom, project: str, sql: str, token: str | None = None, via_proxy: bool = False, **kwargs: Any) -> requests.Response:
    base = room.broker_proxy_url if via_proxy else room.broker_url
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.post(base + "v1/query", json={"project": project, "sql": sql}, headers=headers, timeout=kwargs.pop("timeout", 60), **kwargs)


def kernel_json(kernel: Kernel, code: str) -> Any:
    """Run ``code`` in the kernel; it must print one JSON document as its last line of output."""
    result = kernel.execute(code).raise_for_error()
    return json.loads(result.stdout.strip().splitlines()[-1])

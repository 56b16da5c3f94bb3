"""A quiet, helpful start (issue 17 item 1): `dataroom up` prints a short banner, the components'
logs are in files under the state directory, and a failed start shows the relevant lines and a
hint, then exits non-zero. Uses the package's running room; the failure test starts one more
`dataroom up` that cannot bind its port (it fails within seconds)."""

from __future__ import annotations

import io
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import requests
from hub_support import NODE_BIN, PASSWORD, RunningRoom, broker_query

from dataroom.hub.logs import LogFollower, failure_report, log_to_file, new_log
from tests.support.reachable_tmp import reachable_tmp

MAX_BANNER_LINES = 15


def test_up_prints_a_short_banner_and_nothing_else(room: RunningRoom, tokens: dict[str, str]) -> None:
    # requests of every kind have been made by now (other tests, and these): none reaches the terminal
    assert broker_query(room, "remediation-acme", "SELECT 1 AS one", token=tokens["alice"]).status_code == 200
    assert requests.get(f"{room.hub_url}/hub/no-such-page", timeout=10).status_code == 404  # the proxy's red 404s
    lines = [line for line in room.log_path.read_text(errors="replace").splitlines() if line.strip()]
    assert len(lines) <= MAX_BANNER_LINES, "\n".join(lines)
    text = "\n".join(lines)
    assert f"Data room is up:  {room.hub_url}" in text
    assert "alice, bob, mallory, sam (security), with the shared password" in text
    assert f"Shared password:  {PASSWORD}" in text
    assert f"Logs:             {room.state_dir / 'logs'}/ (broker.log, hub.log, review.log)" in text
    assert "Ctrl-C" in text
    assert "[I " not in text and "[ConfigProxy]" not in text and " 404 " not in text


def test_component_logs_are_files_in_the_state_directory(room: RunningRoom, tokens: dict[str, str]) -> None:
    logs = room.state_dir / "logs"
    hub, broker, review = (logs / name for name in ("hub.log", "broker.log", "review.log"))
    assert "JupyterHub" in hub.read_text(errors="replace")
    assert "ConfigProxy" in hub.read_text(errors="replace") or "proxy" in hub.read_text(errors="replace").lower()
    assert "data room broker 'broker'" in broker.read_text(errors="replace")
    assert "review" in review.read_text(errors="replace")
    service = pwd.getpwnam("dataroom")
    for path, owner in ((hub, 0), (broker, service.pw_uid), (review, service.pw_uid)):
        info = path.stat()
        assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == owner, path
    assert stat.S_IMODE(logs.stat().st_mode) == 0o711 and logs.stat().st_uid == 0
    # a request the broker served is in its log, not on the terminal
    broker_query(room, "remediation-acme", "SELECT 2 AS two", token=tokens["bob"])
    assert "v1/query" in broker.read_text(errors="replace")


def test_a_failed_start_shows_the_relevant_lines_and_a_hint(demo_template: Path) -> None:
    with reachable_tmp("up-fails") as tmp, socket.socket() as taken:
        home = tmp / "home"
        shutil.copytree(demo_template, home)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DATAROOM_HOME": str(home)}
        cmd = [sys.executable, "-m", "dataroom.cli", "up", "--port", str(port), "--state-dir", str(tmp / "state"), "--password", PASSWORD]
        done = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True, timeout=180)
        assert done.returncode != 0
        out = done.stdout + done.stderr
        assert "the data room did not start" in out
        assert "--- relevant log lines ---" in out and "hub |" in out
        assert "hint: a port is taken: choose another with --port" in out
        assert f"full logs: {tmp / 'state' / 'logs'}/" in out
        assert "Traceback" not in done.stderr.split("--- relevant log lines ---")[0]
        assert len(out.splitlines()) <= 40
        assert not list((tmp / "state" / "pids").glob("*.pid"))  # what started was stopped


def test_failure_report_picks_errors_and_a_hint(tmp_path: Path) -> None:
    (tmp_path / "hub.log").write_text("[I 10:00 JupyterHub app] starting\n" * 50 + "[E 10:01 JupyterHub app] Failed to bind: Address already in use\n")
    (tmp_path / "broker.log").write_text("[I broker] fine\nTraceback (most recent call last):\nModuleNotFoundError: no module x\n")
    report = failure_report(tmp_path)
    assert "hub | [E 10:01 JupyterHub app] Failed to bind: Address already in use" in report
    assert "broker | Traceback (most recent call last):" in report
    assert "hint: a port is taken" in report  # the first matching hint
    assert report.count("starting") <= 5


def test_verbose_follows_every_log_file(tmp_path: Path) -> None:
    out = io.StringIO()
    follower = LogFollower(tmp_path, out)
    new_log(tmp_path / "hub.log")
    (tmp_path / "hub.log").write_text("one\ntw")
    assert follower.poll() == 1
    with (tmp_path / "hub.log").open("a") as fh:
        fh.write("o\n")
    (tmp_path / "broker.log").write_text("ready\n")
    assert follower.poll() == 2
    assert out.getvalue().splitlines() == ["    hub | one", " broker | ready", "    hub | two"]  # a partial line waits for its end
    new_log(tmp_path / "hub.log")  # a new run: the old file kept as .1, the new one followed from its start
    (tmp_path / "hub.log").write_text("again\n")
    follower.poll()
    assert out.getvalue().splitlines()[-1] == "    hub | again"
    assert (tmp_path / "hub.log.1").read_text() == "one\ntwo\n"


def test_a_service_command_writes_everything_to_its_file(tmp_path: Path) -> None:
    log = new_log(tmp_path / "svc.log")
    service = log_to_file({"name": "svc", "command": [sys.executable, "-c", "import sys; print('out'); sys.exit('import failed early')"]}, log)
    done = subprocess.run(service["command"], env={**os.environ, **service["environment"]}, capture_output=True, text=True)
    assert done.returncode == 1 and done.stdout == "" and done.stderr == ""
    assert log.read_text() == "out\nimport failed early\n"

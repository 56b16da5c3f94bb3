"""`dataroom up` without root: refused, unless the user asks for no isolation by name and is told so.

Run as ``nobody`` (a real unprivileged account) from a root test process.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_support import NODE_BIN, login, start_up, stop_up_process

from tests.support.reachable_tmp import reachable_tmp

NOBODY = pwd.getpwnam("nobody")


@pytest.fixture
def nobodys_dir() -> Iterator[Path]:
    """A directory ``nobody`` owns, below one it can traverse."""
    with reachable_tmp("no-root") as tmp:
        work = tmp / "work"
        work.mkdir()
        os.chown(work, NOBODY.pw_uid, NOBODY.pw_gid)
        yield work


def as_nobody(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, user=NOBODY.pw_uid, group=NOBODY.pw_gid, extra_groups=[], capture_output=True, text=True, timeout=120)


def test_up_without_root_refuses_and_names_the_flag(nobodys_dir: Path) -> None:
    env = {"PATH": f"{NODE_BIN}:{os.defpath}", "HOME": str(nobodys_dir), "DATAROOM_HOME": str(nobodys_dir / "home")}
    state = nobodys_dir / "state"
    done = as_nobody([sys.executable, "-m", "dataroom.cli", "up", "--state-dir", str(state)], nobodys_dir, env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "needs root" in done.stderr and "--insecure-single-user" in done.stderr
    assert not state.exists() and not (nobodys_dir / "home").exists()  # refused before touching anything


def test_up_with_insecure_single_user_warns_and_runs_servers_as_the_hubs_own_account(nobodys_dir: Path, demo_template: Path) -> None:
    home = nobodys_dir / "home"
    shutil.copytree(demo_template, home)
    for path in [home, *home.rglob("*")]:
        os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    room = start_up(nobodys_dir, home, {"HOME": str(nobodys_dir)}, args=("--insecure-single-user",), uid=NOBODY.pw_uid)
    try:
        alice = login(room, "alice")
        alice.user.start_server()
        uids = {name: int(Path(f"/proc/{room.pid(name)}/status").read_text().split("Uid:")[1].split()[0]) for name in ("server-alice", "service-broker")}
        alice.user.stop_server()
    finally:
        stop_up_process(room.proc, room.state_dir)
    log = room.log_path.read_text()
    assert log.count("WARNING: --insecure-single-user: NO ISOLATION") == 2  # at start, and again under the banner
    assert "Every user's notebook server runs as nobody" in log
    assert "Isolation:        NONE" in log
    assert uids == {"server-alice": NOBODY.pw_uid, "service-broker": NOBODY.pw_uid}

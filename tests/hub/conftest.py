"""A real data room for the hub tests: `dataroom up` (JupyterHub, configurable-http-proxy, the broker).

One data room is started per test package run (``scope="package"``) with fresh ports and
directories (below one the room's unprivileged accounts can reach: `dataroom up` runs as root,
with isolation), and stopped with Ctrl-C (SIGINT) at the end; anything still alive is then stopped
by pid. The hub's environment deliberately holds AWS credentials and DATAROOM_* paths, so that the
tests can show they reach the broker and never a user's server.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest
from hub_support import MAX_ROWS, LoggedIn, RunningRoom, login, start_up, stop_up_process

from dataroom.hub.rest import Kernel
from tests.support.reachable_tmp import reachable_tmp


@pytest.fixture(scope="package")
def room(demo_template: Path) -> Iterator[RunningRoom]:
    with reachable_tmp("hub") as tmp:
        home = tmp / "home"
        shutil.copytree(demo_template, home)
        limits = {"DATAROOM_QUERY_TIMEOUT_S": "120", "DATAROOM_MAX_ROWS": str(MAX_ROWS), "DATAROOM_WORKER_MEMORY_LIMIT": "1GiB"}
        running = start_up(tmp, home, {**limits, "DATAROOM_ENGINE_TEST_HOOKS": "1"})  # hooks: the crash-containment test
        yield running
        stop_up_process(running.proc, running.state_dir)


@pytest.fixture(scope="package")
def alice(room: RunningRoom) -> Iterator[LoggedIn]:
    """Alice logged in through the login form, her server started."""
    logged = login(room, "alice")
    logged.user.start_server()
    yield logged
    logged.user.stop_server()


@pytest.fixture
def alice_kernel(alice: LoggedIn) -> Iterator[Kernel]:
    kernel = alice.user.start_kernel(alice.token)
    yield kernel
    kernel.shutdown()


@pytest.fixture(scope="package")
def tokens(room: RunningRoom) -> dict[str, str]:
    """A Hub token per demo user (their full permissions, hence the broker scope)."""
    return {name: login(room, name).token for name in ("alice", "bob", "mallory", "sam")}



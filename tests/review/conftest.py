"""Fixtures for the registry, hypotheses, evidence, alerts and review UI tests."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w
from click.testing import CliRunner

from dataroom.pipeline import QueryService
from dataroom.registry import Registry, dispose_engines
from dataroom.settings import Settings
from tests.support.reachable_tmp import reachable_tmp

# Extra catalog users: a second security reviewer and a second scientist, so that segregation of
# duties can be exercised with someone who *is* allowed to approve.
EXTRA_USERS = {
    "sasha": {"groups": ["security"], "email": "sasha@dataroom.example"},
    "carol": {"groups": ["data-scientists"], "email": "carol@dataroom.example"},
}


@pytest.fixture(autouse=True)
def _close_registry_engines():
    yield
    dispose_engines()


REGISTRY_SUITE = ("test_registry_projects", "test_hypothesis_api", "test_hypothesis_phases", "test_releases")
"""Modules whose tests run twice: on SQLite and on a real PostgreSQL server (issue 12)."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__.rsplit(".", 1)[-1] in REGISTRY_SUITE and "registry_backend" in metafunc.fixturenames:
        metafunc.parametrize("registry_backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def registry_backend(request: pytest.FixtureRequest) -> str:
    """Where the registry lives: SQLite in the home (default) or a fresh PostgreSQL database."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def home(dataroom_home: Path, registry_backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo home with two extra catalog users (sasha: security, carol: data-scientists)."""
    if registry_backend == "postgresql":
        monkeypatch.setenv("DATAROOM_REGISTRY_URL", request.getfixturevalue("postgres_url"))
    catalog_file = dataroom_home / "catalog.toml"
    data = tomllib.loads(catalog_file.read_text())
    data["users"].update(EXTRA_USERS)
    catalog_file.write_text(tomli_w.dumps(data))
    return dataroom_home


@pytest.fixture
def svc(home: Path):
    service = QueryService(Settings())
    yield service
    service.close()


@pytest.fixture
def registry(svc: QueryService) -> Registry:
    return svc.registry


@pytest.fixture
def invoke(home: Path):
    """Run a click command in-process; returns the click Result."""
    runner = CliRunner()

    def run(command, *args: str):
        return runner.invoke(command, list(args), catch_exceptions=False)

    return run


# -- a real JupyterHub with the review service, shared by the test_review_* modules ---------------
import os  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import requests  # noqa: E402

REVIEW_PASSWORD = "review-demo-password-for-tests"


@dataclass
class ReviewRoom:
    hub: object
    home: Path
    hub_url: str
    review_url: str  # through the Hub's proxy, as a browser sees it
    log_path: Path
    password: str = REVIEW_PASSWORD

    def login(self, name: str):
        from dataroom.hub.rest import HubUser

        return HubUser.login(self.hub_url, name, self.password)

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="package")
def review_room(demo_template: Path):
    """JupyterHub + proxy + broker + the review service, started with the hub's own launcher
    (dataroom.hub.launcher.DataRoomHub) and its extension point for extra services and roles.

    Roles: the security group may reach the review service (review_role, as in production);
    carol additionally holds the access scope, so that the service's *own* group check is
    exercised too (she is not in the security group and must still get 403).
    """
    from dataroom.hub.launcher import find_proxy

    proxy = find_proxy()
    if proxy is None:
        pytest.fail("configurable-http-proxy is not installed: run `npm install` (make setup)")
    with reachable_tmp("review-hub") as tmp:  # the broker and review run as the service account: it must reach home
        yield from _review_room(demo_template, tmp, proxy)


def _review_room(demo_template: Path, tmp: Path, proxy: str) -> Iterator[ReviewRoom]:
    from dataroom.hub.config import HubOptions
    from dataroom.hub.launcher import DataRoomHub, free_port
    from dataroom.review.service import review_role, review_service

    home = tmp / "home"
    shutil.copytree(demo_template, home)
    catalog_file = home / "catalog.toml"
    data = tomllib.loads(catalog_file.read_text())
    data["users"].update(EXTRA_USERS)
    catalog_file.write_text(tomli_w.dumps(data))
    state = tmp / "hub-state"
    options = HubOptions(
        state_dir=state,
        home=home,
        demo_password=REVIEW_PASSWORD,
        port=free_port(),
        hub_port=free_port(),
        proxy_api_port=free_port(),
        broker_port=free_port(),
        proxy_command=[proxy],
    )
    review_port = free_port()
    service = review_service(home, review_port, pid_dir=options.pid_dir, cwd=state, scan_interval=0)
    roles = [review_role(), {"name": "review-access-carol", "scopes": ["access:services!service=review"], "users": ["carol"]}]
    log_path = tmp / "hub.log"
    env = {**os.environ, "PATH": f"{Path(proxy).parent}{os.pathsep}{os.environ.get('PATH', '')}", "DATAROOM_HOME": str(home)}
    with log_path.open("wb") as log:
        hub = DataRoomHub(options, extra_services=[service], extra_roles=roles, env=env, log=log)
        hub.start()
        try:
            health = f"http://127.0.0.1:{review_port}/services/review/health"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if requests.get(health, timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("review service did not answer:\n" + log_path.read_text(errors="replace")[-4000:])
                time.sleep(0.2)
            # These tests write the room in-process as root while the services (the service account)
            # read it. As in a room in use, the broker writes the audit log first (an anonymous
            # request, refused and audited), so that root appends to the service account's log
            # instead of creating one the review service could not read (README: "Where the room runs").
            anonymous = requests.post(f"{hub.broker_url}v1/query", json={}, timeout=30)
            assert anonymous.status_code == 401 and (home / "audit" / "audit.jsonl").exists(), anonymous.text
            yield ReviewRoom(hub, home, options.hub_url, f"{options.hub_url}/services/review/", log_path)
        finally:
            hub.stop()

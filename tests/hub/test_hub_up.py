"""`dataroom up` starts everything and Ctrl-C stops everything; the Hub configuration it builds."""

from __future__ import annotations

import shutil
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_support import login, start_up

from dataroom.catalog import load_catalog
from dataroom.hub.config import HubOptions, build_hub_config, load_hub_config
from dataroom.hub.launcher import pid_alive
from tests.support.reachable_tmp import reachable_tmp


@pytest.fixture
def reachable_tmp_path() -> Iterator[Path]:
    with reachable_tmp("hub-up") as tmp:
        yield tmp


def test_ctrl_c_stops_the_hub_proxy_broker_and_user_servers(demo_template: Path, reachable_tmp_path: Path) -> None:
    home = reachable_tmp_path / "home"
    shutil.copytree(demo_template, home)
    room = start_up(reachable_tmp_path, home)
    try:
        bob = login(room, "bob")
        bob.user.start_server()
        pids = {
            "hub": int((room.state_dir / "jupyterhub.pid").read_text()),
            "proxy": int((room.state_dir / "proxy.pid").read_text()),
            "broker": room.pid("service-broker"),
            "bob's server": room.pid("server-bob"),
        }
        assert all(pid_alive(pid) for pid in pids.values())
    finally:
        room.proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
        code = room.proc.wait(90)
    assert code == 0, room.log_tail()
    assert [name for name, pid in pids.items() if pid_alive(pid)] == []
    assert "stopped." in room.log_path.read_text()
    assert list((room.state_dir / "pids").glob("*.pid")) == []
    port = int(room.hub_url.rsplit(":", 1)[1])
    with socket.socket() as s:  # nothing listens there any more: the next start is not blocked
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as node and tornado do (TIME_WAIT is fine)
        s.bind(("127.0.0.1", port))
        s.listen()


@pytest.fixture
def options(tmp_path: Path) -> HubOptions:
    return HubOptions(state_dir=tmp_path / "state", home=tmp_path / "home", demo_password="pw-123456789", port=9000, broker_port=9100)


def test_config_from_the_catalog(demo_template: Path, options: HubOptions) -> None:
    catalog = load_catalog(demo_template / "catalog.toml")
    config = build_hub_config(options, catalog)
    hub = config["JupyterHub"]
    assert hub["bind_url"] == "http://127.0.0.1:9000"
    assert set(hub["load_groups"]) == {"data-scientists", "security"}
    assert config["SharedPasswordAuthenticator"]["allowed_users"] == ["alice", "bob", "mallory", "sam"]
    [broker] = hub["services"]
    assert broker["name"] == "broker" and broker["url"] == "http://127.0.0.1:9100" and broker["command"][1:3] == ["-m", "dataroom.broker"]
    spawner = config["DataRoomSpawner"]
    assert spawner["environment"] == {"DATAROOM_BROKER_URL": "http://127.0.0.1:9100/services/broker/"}
    assert "access:services!service=broker" in spawner["server_token_scopes"]
    assert not [k for k in spawner["env_keep"] if k.startswith(("AWS", "DATAROOM", "PYTHON"))]
    assert hub["load_roles"][0]["scopes"] == ["access:services!service=broker"]


def test_extra_services_and_roles_extend_the_hub(demo_template: Path, options: HubOptions) -> None:
    catalog = load_catalog(demo_template / "catalog.toml")
    review = {"name": "review", "url": "http://127.0.0.1:9200", "command": ["review"], "pass_environment": ["REVIEW_"]}
    role = {"name": "review-user", "scopes": ["access:services!service=review"], "groups": ["security"]}
    config = build_hub_config(options, catalog, extra_services=[review], extra_roles=[role])
    assert [s["name"] for s in config["JupyterHub"]["services"]] == ["broker", "review"]
    assert config["JupyterHub"]["load_roles"][-1] == role


def test_loading_passes_environment_to_services_only_at_start(demo_template: Path, options: HubOptions, tmp_path: Path) -> None:
    from traitlets.config import Config

    from dataroom.hub.config import write_hub_config

    catalog = load_catalog(demo_template / "catalog.toml")
    config_py = write_hub_config(build_hub_config(options, catalog), tmp_path / "cfg")
    c = Config()
    load_hub_config(c, config_py.with_name("hub_config.json"), environ={"AWS_SECRET_ACCESS_KEY": "s3cret", "DATAROOM_MAX_ROWS": "10", "HOME": "/root"})
    [broker] = c.JupyterHub.services
    assert broker["environment"]["AWS_SECRET_ACCESS_KEY"] == "s3cret" and broker["environment"]["DATAROOM_MAX_ROWS"] == "10"
    assert "HOME" not in broker["environment"] and "pass_environment" not in broker
    assert "s3cret" not in config_py.with_name("hub_config.json").read_text()
    assert c.DataRoomSpawner.environment == {"DATAROOM_BROKER_URL": "http://127.0.0.1:9100/services/broker/"}

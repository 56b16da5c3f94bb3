"""How isolation is configured and applied, without a Hub: the config, file ownership, the checks."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from dataroom.catalog import load_catalog
from dataroom.hub.accounts import SERVICE_ACCOUNT, Account, AccountError, ensure_account, user_account_name
from dataroom.hub.config import NO_DOWNLOAD_ARG, HubOptions, build_hub_config
from dataroom.hub.isolation import installation_problems, own_tree, prepare_home, write_new_file


@pytest.fixture(scope="module")
def service() -> Account:
    return ensure_account(SERVICE_ACCOUNT, "data room services (broker, review)")


def options(tmp_path: Path, **kwargs) -> HubOptions:
    return HubOptions(state_dir=tmp_path / "state", home=tmp_path / "home", demo_password="pw-123456789", port=9000, broker_port=9100, **kwargs)


def test_isolated_config_runs_services_as_the_service_account_and_servers_unprivileged(demo_template: Path, tmp_path: Path) -> None:
    catalog = load_catalog(demo_template / "catalog.toml")
    review = {"name": "review", "url": "http://127.0.0.1:9200", "command": ["review"]}
    external = {"name": "external", "url": "http://127.0.0.1:9300"}  # not started by the Hub: no user
    config = build_hub_config(options(tmp_path, isolation=True, as_root=True), catalog, extra_services=[review, external])
    assert [s.get("user") for s in config["JupyterHub"]["services"]] == [SERVICE_ACCOUNT, SERVICE_ACCOUNT, None]
    spawner = config["DataRoomSpawner"]
    assert spawner["isolate"] is True and spawner["args"] == [NO_DOWNLOAD_ARG]  # no --allow-root: servers are not root
    assert spawner["home_dir_template"] == str(tmp_path / "state" / "users" / "{username}")
    assert "user" not in review  # the caller's dict is left alone

    insecure = build_hub_config(options(tmp_path, isolation=False, as_root=True), catalog)
    assert "user" not in insecure["JupyterHub"]["services"][0]
    assert insecure["DataRoomSpawner"]["isolate"] is False and insecure["DataRoomSpawner"]["args"] == ["--allow-root", NO_DOWNLOAD_ARG]


def test_account_names_follow_the_hub_user_and_refuse_what_useradd_would(tmp_path: Path) -> None:
    assert user_account_name("alice") == "dataroom-alice"
    for bad in ("Alice Smith", "a/b", "x" * 40):
        with pytest.raises(AccountError):
            user_account_name(bad)


def test_own_tree_gives_everything_to_the_account_and_never_follows_a_link(tmp_path: Path, service: Account) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("root's file")
    outside.chmod(0o644)
    home = tmp_path / "home"
    (home / "audit").mkdir(parents=True)
    (home / "audit" / "audit.jsonl").write_text("{}\n")  # as root would leave it: root-owned, 0644
    (home / "registry.sqlite-wal").write_bytes(b"")
    (home / "audit" / "link").symlink_to(outside)

    own_tree(home, service)

    for path in [home, home / "audit", home / "audit" / "audit.jsonl", home / "registry.sqlite-wal"]:
        info = path.stat()
        assert (info.st_uid, info.st_gid) == (service.uid, service.gid), path
        assert stat.S_IMODE(info.st_mode) == (0o700 if path.is_dir() else 0o600), path
    assert (home / "audit" / "link").lstat().st_uid == service.uid
    assert outside.stat().st_uid == 0 and stat.S_IMODE(outside.stat().st_mode) == 0o644  # the link's target untouched


def test_a_users_home_is_private_and_root_writes_nothing_through_a_planted_link(tmp_path: Path, service: Account) -> None:
    home = tmp_path / "users" / "x"
    home.parent.mkdir()
    prepare_home(home, service)
    assert (home.stat().st_uid, stat.S_IMODE(home.stat().st_mode)) == (service.uid, 0o700)

    target = tmp_path / "elsewhere.ipynb"
    (home / "planted.ipynb").symlink_to(target)  # what a user could leave in place of a notebook
    assert write_new_file(home / "planted.ipynb", b"notebook", service) is False
    assert not target.exists()
    assert write_new_file(home / "fresh.ipynb", b"notebook", service) is True
    fresh = (home / "fresh.ipynb").stat()
    assert (fresh.st_uid, stat.S_IMODE(fresh.st_mode)) == (service.uid, 0o600)


def test_the_installation_check_names_what_the_account_cannot_reach(tmp_path: Path, service: Account) -> None:
    python = sys.executable
    reachable = tmp_path / "reachable"
    reachable.mkdir()
    assert installation_problems(python, service, []) == []
    # pytest's tmp_path lies below /tmp/pytest-of-root (0700): exactly what an unreachable home looks like
    problems = installation_problems(python, service, [(reachable, os.R_OK | os.X_OK)])
    assert problems == [f"cannot read {reachable}"]


def test_with_isolation_every_room_file_must_live_in_the_home_the_service_account_owns(tmp_path: Path) -> None:
    from dataroom.cli.up import room_files_outside_home
    from dataroom.settings import Settings

    home = (tmp_path / "home").resolve()
    assert room_files_outside_home(Settings(home=home), home) == []
    settings = Settings(home=home, audit_path=tmp_path / "logs" / "audit.jsonl", registry_url=f"sqlite:///{tmp_path}/r.sqlite")
    assert room_files_outside_home(settings, home) == [
        f"DATAROOM_AUDIT_PATH={tmp_path / 'logs' / 'audit.jsonl'}",
        f"DATAROOM_REGISTRY_URL={tmp_path / 'r.sqlite'}",
    ]

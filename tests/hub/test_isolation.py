"""Each user's server runs as an OS account of its own and can open none of the room's files.

The room is the one `dataroom up` (run as root) started for this package (conftest.py). Alice's
real kernel tries to read every file of $DATAROOM_HOME, the Hub's database and secrets, the
broker's environment and bob's home, to write into the data and to signal the broker: each
attempt must end in PermissionError, while her queries through the broker still work.
"""

from __future__ import annotations

import json
import os
import pwd
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_support import RunningRoom, kernel_json, login

from dataroom.hub.accounts import SERVICE_ACCOUNT, user_account_name
from dataroom.hub.rest import Kernel

COUNT = 'import json, dataroom; print(json.dumps(dataroom.connect(project="remediation-acme").sql("SELECT count(*) AS n FROM acme.findings")["n"].to_list()))'

ATTEMPTS = """
import json, os

def read(path):
    with open(path, "rb") as fh:
        fh.read(1)

def write(path):
    with open(path, "wb") as fh:
        fh.write(b"planted")

actions = {"read": read, "list": os.listdir, "write": write, "signal": lambda pid: os.kill(pid, 0)}
outcomes = {}
for name, (kind, target) in json.loads(TARGETS).items():
    try:
        actions[kind](target)
        outcomes[name] = "succeeded"
    except Exception as exc:
        outcomes[name] = type(exc).__name__
print(json.dumps(outcomes))
"""


def status(pid: int) -> dict[str, str]:
    """Fields of /proc/<pid>/status (Uid, Gid, Groups, NoNewPrivs ...)."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def real_uid(pid: int) -> int:
    return int(status(pid)["Uid"].split()[0])


@pytest.fixture(scope="module")
def bob_pid(room: RunningRoom) -> Iterator[int]:
    """Bob's server running beside alice's (so that his home exists and holds his notebooks)."""
    bob = login(room, "bob")
    bob.user.start_server()
    yield room.pid("server-bob")
    bob.user.stop_server()


def test_alice_can_open_none_of_the_room_files_and_still_queries_through_the_broker(room: RunningRoom, alice, alice_kernel: Kernel, bob_pid: int) -> None:
    assert kernel_json(alice_kernel, COUNT) == [2000]  # the broker path answers; the audit log and head exist now

    home, state = room.home, room.state_dir
    parquet = sorted(home.glob("data/**/*.parquet"))
    assert len(parquet) >= 5
    targets: dict[str, tuple[str, object]] = {f"read {p}": ("read", str(p)) for p in sorted(home.rglob("*")) if p.is_file()}
    named = {
        "catalog": ("read", home / "catalog.toml"),
        "audit log": ("read", home / "audit" / "audit.jsonl"),
        "audit head": ("read", home / "audit" / "audit.jsonl.head"),
        "registry": ("read", home / "registry.sqlite"),
        "hub database": ("read", state / "jupyterhub.sqlite"),
        "cookie secret": ("read", state / "jupyterhub_cookie_secret"),
        "hub config (demo password)": ("read", state / "hub_config.json"),
        "room home listing": ("list", home),
        "hub state listing": ("list", state),
        "bob's home": ("list", state / "users" / "bob"),
        "bob's notebook": ("read", state / "users" / "bob" / "remediation_by_tenant.ipynb"),
        "plant into the data": ("write", parquet[0].parent / "planted.parquet"),
        "overwrite a parquet file": ("write", parquet[0]),
    }
    for name, (_, path) in named.items():
        must_exist = Path(path).parent if name == "plant into the data" else Path(path)
        assert must_exist.exists(), f"{name}: {must_exist} does not exist, the attempt would prove nothing"
    targets.update({name: (kind, str(path)) for name, (kind, path) in named.items()})
    for service in ("broker", "review"):
        pid = room.pid(f"service-{service}")
        targets[f"{service} environment"] = ("read", f"/proc/{pid}/environ")
        targets[f"signal the {service}"] = ("signal", pid)
    targets["signal bob's server"] = ("signal", bob_pid)
    targets["signal the hub"] = ("signal", int((state / "jupyterhub.pid").read_text()))

    outcomes = kernel_json(alice_kernel, f"TARGETS = {json.dumps(json.dumps(targets))}\n{ATTEMPTS}")
    assert set(outcomes) == set(targets)
    assert {name: outcome for name, outcome in outcomes.items() if outcome != "PermissionError"} == {}
    assert not (parquet[0].parent / "planted.parquet").exists()

    assert kernel_json(alice_kernel, COUNT) == [2000]  # and still answers afterwards


def test_every_process_runs_as_the_account_designed_for_it(room: RunningRoom, alice, alice_kernel: Kernel, bob_pid: int) -> None:
    service = pwd.getpwnam(SERVICE_ACCOUNT)
    alice_account = pwd.getpwnam(user_account_name("alice"))
    bob_account = pwd.getpwnam(user_account_name("bob"))
    kernel = kernel_json(
        alice_kernel,
        "import json, os; print(json.dumps({'pid': os.getpid(), 'ids': [os.getuid(), os.geteuid(), os.getgid(), os.getegid()], "
        "'groups': os.getgroups(), 'home': os.environ['HOME'], 'cwd': os.getcwd(), "
        "'nnp': [l.split()[1] for l in open('/proc/self/status') if l.startswith('NoNewPrivs')][0]}))",
    )
    alice_home = room.state_dir / "users" / "alice"
    assert kernel["ids"] == [alice_account.pw_uid, alice_account.pw_uid, alice_account.pw_gid, alice_account.pw_gid]
    assert kernel["groups"] == [] and kernel["nnp"] == "1"
    assert kernel["home"] == kernel["cwd"] == str(alice_home)

    uids = {
        "hub": real_uid(int((room.state_dir / "jupyterhub.pid").read_text())),
        "broker": real_uid(room.pid("service-broker")),
        "review": real_uid(room.pid("service-review")),
        "alice's server": real_uid(room.pid("server-alice")),
        "alice's kernel": real_uid(kernel["pid"]),
        "bob's server": real_uid(bob_pid),
    }
    assert uids == {
        "hub": 0,
        "broker": service.pw_uid,
        "review": service.pw_uid,
        "alice's server": alice_account.pw_uid,
        "alice's kernel": alice_account.pw_uid,
        "bob's server": bob_account.pw_uid,
    }
    assert len({0, service.pw_uid, alice_account.pw_uid, bob_account.pw_uid}) == 4
    for pid in (room.pid("server-alice"), bob_pid):
        fields = status(pid)
        assert fields["Groups"] == "" and fields["NoNewPrivs"] == "1"
        assert len(set(fields["Uid"].split())) == 1  # real, effective, saved and filesystem uid alike
    for pid in (room.pid("service-broker"), room.pid("service-review")):
        assert status(pid)["Groups"] in ("", str(service.pw_gid))  # at most its own group


def test_the_room_files_belong_to_the_service_account_and_the_hub_state_to_root(room: RunningRoom, alice, bob_pid: int) -> None:
    service = pwd.getpwnam(SERVICE_ACCOUNT)
    wrong = {}
    for path in [room.home, *room.home.rglob("*")]:
        info = path.lstat()
        expected = 0o700 if stat.S_ISDIR(info.st_mode) else 0o600
        if stat.S_ISLNK(info.st_mode):
            continue
        if (info.st_uid, info.st_gid) != (service.pw_uid, service.pw_gid) or stat.S_IMODE(info.st_mode) & ~expected:
            wrong[str(path)] = (info.st_uid, oct(stat.S_IMODE(info.st_mode)))
    assert wrong == {}

    def owner_mode(path: Path) -> tuple[int, str]:
        info = path.stat()
        return info.st_uid, oct(stat.S_IMODE(info.st_mode))

    state = room.state_dir
    assert owner_mode(state) == (0, "0o711") and owner_mode(state / "users") == (0, "0o711")
    for name in ("jupyterhub.sqlite", "jupyterhub_cookie_secret", "hub_config.json", "jupyterhub_config.py", "proxy.pid", "jupyterhub.pid"):
        assert owner_mode(state / name) == (0, "0o600"), name
    assert owner_mode(state / "pids") == (service.pw_uid, "0o700")
    for user in ("alice", "bob"):
        assert owner_mode(state / "users" / user) == (pwd.getpwnam(user_account_name(user)).pw_uid, "0o700")


def test_the_review_service_reads_the_audit_log_as_the_service_account(room: RunningRoom, alice, alice_kernel: Kernel) -> None:
    kernel_json(alice_kernel, COUNT)
    sam = login(room, "sam")
    chain = sam.user.http.get(f"{room.hub_url}/services/review/chain", timeout=60)
    assert chain.status_code == 200 and "audit chain OK" in chain.text
    assert real_uid(room.pid("service-review")) == pwd.getpwnam(SERVICE_ACCOUNT).pw_uid
    assert os.stat(room.home / "audit" / "audit.jsonl").st_uid == pwd.getpwnam(SERVICE_ACCOUNT).pw_uid

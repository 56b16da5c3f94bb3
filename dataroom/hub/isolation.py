"""Who owns which room file, with which mode, so that a user's notebook can open none of them.

Applied by the launcher at every start when the Hub runs as root (``HubOptions.isolation``):

* ``$DATAROOM_HOME`` (data, catalog, audit log and head, registry, alerts, cache) and any room
  file configured outside it belong to the service account: directories 0700, files 0600. Given
  back at every start, so that a file root created meanwhile (a SQLite journal, a new audit file)
  does not lock the broker out.
* The hub state directory belongs to root: 0711 (so that users can reach their homes below it),
  every file in it 0600 (hub database, cookie secret, configuration, demo password, pid files),
  every directory 0700, except ``users/`` (root, 0711) with one 0700 home per user account, and
  the pid directory, which the services write their pid files to (service account, 0700).

Everything here works on file descriptors opened without following symbolic links: a link
planted in a directory an account owns never makes root change or write another file.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from dataroom.hub.accounts import Account

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
TRAVERSE_ONLY = 0o711
_NOFOLLOW = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class IsolationError(RuntimeError):
    """The room cannot be closed to its users as configured; the message says what to change."""


def _own(path: Path, uid: int, gid: int, dir_mode: int, file_mode: int) -> None:
    """chown/chmod one directory entry through an O_NOFOLLOW descriptor (links: owner only)."""
    try:
        fd = os.open(path, _NOFOLLOW)
    except OSError:  # a symbolic link (ELOOP), socket or vanished entry: never follow it
        if os.path.lexists(path):
            os.chown(path, uid, gid, follow_symlinks=False)
        return
    try:
        mode = dir_mode if stat.S_ISDIR(os.fstat(fd).st_mode) else file_mode
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def own_tree(root: Path, account: Account) -> None:
    """Give ``root`` (a directory or a file) and everything below it to ``account``: 0700 / 0600."""
    _own(root, account.uid, account.gid, PRIVATE_DIR, PRIVATE_FILE)
    if not root.is_dir() or root.is_symlink():
        return
    for parent, dirs, files in os.walk(root, followlinks=False):
        for name in [*dirs, *files]:
            _own(Path(parent) / name, account.uid, account.gid, PRIVATE_DIR, PRIVATE_FILE)


def secure_state_dir(state_dir: Path, users_dir: Path, pid_dir: Path, service: Account) -> None:
    """Root owns the hub state (0711 dir, 0600 files, 0700 dirs); ``users_dir`` 0711; ``pid_dir`` the service's."""
    for directory in (state_dir, users_dir, pid_dir):
        directory.mkdir(parents=True, exist_ok=True)
    _own(state_dir, 0, 0, TRAVERSE_ONLY, PRIVATE_FILE)
    for entry in state_dir.iterdir():
        if entry == users_dir:
            _own(entry, 0, 0, TRAVERSE_ONLY, PRIVATE_FILE)
        elif entry == pid_dir:
            own_tree(entry, service)
        else:
            _own(entry, 0, 0, PRIVATE_DIR, PRIVATE_FILE)


def prepare_home(home: Path, account: Account) -> None:
    """``home`` exists, belongs to ``account`` and is 0700 (a home left by another owner is handed over whole)."""
    home.mkdir(mode=PRIVATE_DIR, exist_ok=True)
    if home.lstat().st_uid != account.uid:
        own_tree(home, account)
    else:
        _own(home, account.uid, account.gid, PRIVATE_DIR, PRIVATE_FILE)


def write_new_file(path: Path, data: bytes, account: Account | None) -> bool:
    """Create ``path`` with ``data`` for ``account`` unless something (even a dangling link) is there already."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_FILE)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as fh:
        if account is not None:
            os.fchown(fh.fileno(), account.uid, account.gid)
        fh.write(data)
    return True


_PROBE = """
import json, os, sys
problems = []
try:
    import dataroom, jupyterhub
except Exception as exc:
    problems.append(f"cannot import the data room from {sys.executable}: {exc}")
for path, mode in json.loads(sys.argv[1]):
    if not os.access(path, mode):
        problems.append(f"cannot {'write' if mode & os.W_OK else 'read' if mode & os.R_OK else 'reach'} {path}")
print(json.dumps({"python": [sys.version, sys.base_prefix], "problems": problems}))
"""


def installation_problems(python: str, account: Account, paths: Iterable[tuple[Path, int]]) -> list[str]:
    """What ``account`` cannot do that the room needs: run ``python`` as root does, import the
    project, and access each path with its ``os.access`` mode. Empty when all is well."""
    args = [python, "-I", "-c", _PROBE, json.dumps([(str(p), mode) for p, mode in paths])]
    env = {"PATH": os.defpath, "LANG": "C.UTF-8"}
    try:
        done = subprocess.run(args, user=account.uid, group=account.gid, extra_groups=[], env=env, cwd="/", capture_output=True, text=True, timeout=120)
    except OSError as exc:
        return [f"cannot run {python}: {exc}"]
    if done.returncode != 0:
        return [f"cannot run {python}: {(done.stderr or done.stdout).strip()[-500:]}"]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    own = [sys.version, sys.base_prefix]
    if Path(python).resolve() != Path(sys.executable).resolve():
        mine = subprocess.run([python, "-I", "-c", "import sys, json; print(json.dumps([sys.version, sys.base_prefix]))"], capture_output=True, text=True)
        own = json.loads(mine.stdout) if mine.returncode == 0 else own
    problems = list(report["problems"])
    if report["python"] != own:
        problems.insert(0, f"{python} is another Python for it ({report['python'][1]}) than for root ({own[1]}): the interpreter the venv is built on is out of its reach")
    return problems

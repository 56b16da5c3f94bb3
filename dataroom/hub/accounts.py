"""Operating-system accounts of the data room, and becoming one of them for good.

When ``dataroom up`` runs as root, two kinds of unprivileged system accounts keep users apart:

* the **service account** (``dataroom``): the broker and the review service run as it, and it owns
  every room file ($DATAROOM_HOME: data, catalog, audit log, registry, alerts);
* one **user account** per hub user (``dataroom-<user>``), created on the user's first spawn:
  their notebook server and kernels run as it, with no supplementary groups and
  ``no_new_privs`` (a setuid program cannot hand privileges back).

Accounts are created with ``useradd --system``: no password, no login shell, no home of their own
(the spawner gives each server its home directory). Creation is idempotent and tolerates another
process creating the same account at the same time.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SERVICE_ACCOUNT = "dataroom"
USER_ACCOUNT_PREFIX = "dataroom-"
NO_HOME = "/nonexistent"
PR_SET_NO_NEW_PRIVS = 38
_SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin"
_ACCOUNT_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")  # what useradd accepts without --badname
_USERADD_EXISTS = 9
_USERADD_LOCKED = (1, 10)  # cannot update /etc/passwd or /etc/group: another useradd holds the lock


class AccountError(RuntimeError):
    """An account could not be named, created or used; the message says what to do."""


@dataclass(frozen=True)
class Account:
    """A system account as the processes started for it see it."""

    name: str
    uid: int
    gid: int

    @classmethod
    def lookup(cls, name: str) -> Account | None:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return None
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid)


def user_account_name(hub_user: str, prefix: str = USER_ACCOUNT_PREFIX) -> str:
    """The system account of a hub user (``alice`` → ``dataroom-alice``)."""
    name = f"{prefix}{hub_user}"
    if not _ACCOUNT_NAME.match(name):
        raise AccountError(
            f"hub user {hub_user!r} cannot have a system account named {name!r}: account names are at most "
            "32 characters of a-z, 0-9, '_' and '-'; rename the user in the catalog"
        )
    return name


def ensure_account(name: str, comment: str, *, timeout: float = 30.0) -> Account:
    """The system account ``name`` (with a group of the same name), created with ``useradd`` if missing."""
    found = Account.lookup(name)
    if found is not None:
        return found
    useradd = shutil.which("useradd", path=_SBIN_PATH)
    if useradd is None:
        raise AccountError("useradd is not installed (Debian: apt-get install passwd): it creates the data room's accounts")
    cmd = [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", NO_HOME, "--shell", _nologin(), "--comment", comment, name]
    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run(cmd, capture_output=True, text=True)
        found = Account.lookup(name)
        if found is not None:  # created here, or by a concurrent useradd (exit 9)
            return found
        if done.returncode not in _USERADD_LOCKED or time.monotonic() > deadline:
            raise AccountError(f"could not create system account {name!r} (useradd exit {done.returncode}): {done.stderr.strip()}")
        time.sleep(0.2)


def _nologin() -> str:
    return shutil.which("nologin", path=_SBIN_PATH) or "/bin/false"


def become(account: Account, cwd: str | Path | None = None) -> Callable[[], None]:
    """A ``preexec_fn`` turning the child into ``account`` for good before it runs anything.

    Drops every supplementary group, sets real/effective/saved gid and uid, sets
    ``no_new_privs`` (prctl), then changes into ``cwd``. Any failure aborts the start.
    """
    libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the child should not dlopen after fork
    prctl = libc.prctl
    uid, gid, directory = account.uid, account.gid, None if cwd is None else str(cwd)

    def preexec() -> None:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        if prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(errno)}")
        if directory is not None:
            os.chdir(directory)

    return preexec

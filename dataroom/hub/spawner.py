"""The local spawner: one notebook server process per user, as that user's own OS account.

JupyterHub's :class:`~jupyterhub.spawner.LocalProcessSpawner` starts the server; this subclass
maps the hub user to a system account (``alice`` → ``dataroom-alice``, created with ``useradd``
on the first spawn, see :mod:`dataroom.hub.accounts`) and starts the server as it: no
supplementary groups, ``no_new_privs``, in its own 0700 home (``home_dir_template``, in the hub
state directory), which is also ``HOME``. The room's files belong to the service account and
are closed to it (:mod:`dataroom.hub.isolation`).

A spawned server's environment is built from a whitelist (``env_keep``: PATH, locale) plus
``environment`` (``DATAROOM_BROKER_URL``) plus what JupyterHub adds (``JUPYTERHUB_*``,
including the server's ``JUPYTERHUB_API_TOKEN``) and ``HOME``/``USER``/``SHELL``. Nothing else
of the Hub's environment reaches it: no ``DATAROOM_HOME``, catalog or audit paths, no ``AWS_*``.

With ``isolate`` off (``dataroom up --insecure-single-user``) the servers run as the Hub's own OS
user: no isolation at all, for a single-user demo without root. Production spawns each server in
its own pod (KubeSpawner); the environment rules stay the same.

Each server gets the example notebooks (``notebooks_dir``, never overwriting the user's copies)
and leaves a pid file in ``pid_dir`` while it runs, so that the launcher can stop anything the
Hub left behind.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Bool, Unicode

from dataroom.hub.accounts import USER_ACCOUNT_PREFIX, Account, become, ensure_account, user_account_name
from dataroom.hub.isolation import PRIVATE_DIR, prepare_home, write_new_file


class DataRoomSpawner(LocalProcessSpawner):
    notebooks_dir = Unicode("", config=True, help="Directory of notebooks copied into each user's directory at spawn")
    pid_dir = Unicode("", config=True, help="Directory for one <user>.pid file per running server")
    home_dir_template = Unicode("/tmp/{username}", config=True, help="Each user's home ({username}: the hub user)")
    isolate = Bool(True, config=True, help="Run each server as its user's own system account (needs root)")
    account_prefix = Unicode(USER_ACCOUNT_PREFIX, config=True, help="System account name = prefix + hub user name")

    _account: Account | None = None

    @property
    def home_dir(self) -> str:
        return self.home_dir_template.format(username=self.user.name)

    @property
    def account_name(self) -> str:
        return user_account_name(self.user.name, self.account_prefix)

    def _pid_file(self) -> Path | None:
        if not self.pid_dir:
            return None
        suffix = f"-{self.name}" if self.name else ""
        return Path(self.pid_dir) / f"server-{self.user.name}{suffix}.pid"

    def prepare_home(self) -> Path:
        """The user's home, owned by their account (created with the account on first spawn)."""
        home = Path(self.home_dir)
        if self.isolate:
            self._account = ensure_account(self.account_name, f"data room user {self.user.name}")
            prepare_home(home, self._account)
        else:
            home.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        return home

    def copy_notebooks(self) -> list[Path]:
        """Copy ``notebooks_dir/*.ipynb`` into the user's home (existing copies are kept)."""
        copied = []
        if self.notebooks_dir and Path(self.notebooks_dir).is_dir():
            for notebook in sorted(Path(self.notebooks_dir).glob("*.ipynb")):
                target = Path(self.home_dir) / notebook.name
                if write_new_file(target, notebook.read_bytes(), self._account):
                    copied.append(target)
        return copied

    async def start(self):
        await asyncio.to_thread(self.prepare_home)  # useradd may take a moment: not on the Hub's loop
        self.copy_notebooks()
        result = await super().start()
        pid_file = self._pid_file()
        if pid_file is not None:
            pid_file.parent.mkdir(parents=True, exist_ok=True)
            pid_file.write_text(str(self.pid))
        return result

    def make_preexec_fn(self, name: str) -> Callable[[], None]:
        if self.isolate:
            assert self._account is not None, "prepare_home() runs first"
            return become(self._account, self.home_dir)
        home = self.home_dir
        return lambda: os.chdir(home)

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        env["USER"] = self.account_name if self.isolate else self.user.name
        env["HOME"] = self.home_dir
        env["SHELL"] = "/bin/bash"
        return env

    async def stop(self, now: bool = False) -> None:
        await super().stop(now=now)
        pid_file = self._pid_file()
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)

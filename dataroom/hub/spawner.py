"""The local spawner: one notebook server process per user, with a clean environment.

A spawned server's environment is built from a whitelist (``env_keep``: PATH, locale) plus
``environment`` (``DATAROOM_BROKER_URL``) plus what JupyterHub adds (``JUPYTERHUB_*``,
including the server's ``JUPYTERHUB_API_TOKEN``). Nothing else of the Hub's environment reaches
it: no ``DATAROOM_HOME``, catalog or audit paths, no ``AWS_*`` credentials.

Local default only: the servers run as the Hub's own OS user (``SimpleLocalProcessSpawner``),
in ``home_dir_template`` directories. That is a demo set-up, not isolation: a user's code runs
with the Hub's file permissions. Production spawns each server in its own container
(KubeSpawner) where the data files and the broker's credentials do not exist; the environment
rules stay the same.

Each server gets the example notebooks (``notebooks_dir``, not overwriting the user's copies)
and leaves a pid file in ``pid_dir`` while it runs, so that the launcher can stop anything the
Hub left behind.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Unicode


class DataRoomSpawner(SimpleLocalProcessSpawner):
    notebooks_dir = Unicode("", config=True, help="Directory of notebooks copied into each user's directory at spawn")
    pid_dir = Unicode("", config=True, help="Directory for one <user>.pid file per running server")

    def _pid_file(self) -> Path | None:
        if not self.pid_dir:
            return None
        suffix = f"-{self.name}" if self.name else ""
        return Path(self.pid_dir) / f"server-{self.user.name}{suffix}.pid"

    def copy_notebooks(self) -> list[Path]:
        """Copy ``notebooks_dir/*.ipynb`` into the user's directory (existing copies are kept)."""
        home = Path(self.home_dir)
        home.mkdir(parents=True, exist_ok=True)
        copied = []
        if self.notebooks_dir and Path(self.notebooks_dir).is_dir():
            for notebook in sorted(Path(self.notebooks_dir).glob("*.ipynb")):
                target = home / notebook.name
                if not target.exists():
                    shutil.copyfile(notebook, target)
                    copied.append(target)
        return copied

    async def start(self):
        self.copy_notebooks()
        result = await super().start()
        pid_file = self._pid_file()
        if pid_file is not None:
            pid_file.parent.mkdir(parents=True, exist_ok=True)
            pid_file.write_text(str(self.pid))
        return result

    async def stop(self, now: bool = False) -> None:
        await super().stop(now=now)
        pid_file = self._pid_file()
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)

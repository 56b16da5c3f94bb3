"""A real PostgreSQL server for the tests: Debian's ``postgresql`` binaries, one per test session.

``initdb`` into a fresh directory and ``postgres`` on a free loopback port, as an unprivileged OS
account when the tests run as root (PostgreSQL refuses to run as root). Each test gets its own
database (``CREATE DATABASE``), dropped afterwards. ``make setup`` installs the package.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SERVER_ACCOUNT = "postgres"  # created by Debian's postgresql-common; the server runs as it when we are root
SUPERUSER = "dataroom"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine; the message says how to install them."""


def server_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<major>/bin`` with ``initdb`` and ``postgres``."""
    candidates = sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if (Path(p) / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not candidates:
        raise PostgresUnavailable("PostgreSQL server binaries not found: run `make setup` (apt-get install postgresql)")
    return candidates[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _demote() -> list[str]:
    """The command prefix that runs the server as an unprivileged account (nothing when not root)."""
    if os.geteuid() != 0:
        return []
    account = pwd.getpwnam(SERVER_ACCOUNT)
    return ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--clear-groups", "--"]


@dataclass
class PostgresServer:
    """A running server: ``url(database)`` gives a SQLAlchemy URL for one of its databases."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    _counter: Iterator[int] = itertools.count(1)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname=postgres", autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self, prefix: str = "t") -> str:
        name = f"{prefix}_{os.getpid()}_{next(self._counter)}"
        self.admin(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a throw-away server (fsync off: the data dies with the test session) and stop it after."""
    bin_dir = server_bin_dir()
    root = Path(tempfile.mkdtemp(prefix="dataroom-pg-"))
    try:
        data, sockets, log_path = root / "data", root / "run", root / "server.log"
        sockets.mkdir()
        log_path.touch()
        if os.geteuid() == 0:
            account = pwd.getpwnam(SERVER_ACCOUNT)
            for path in (root, sockets, log_path):
                os.chown(path, account.pw_uid, account.pw_gid)
        subprocess.run(
            [*_demote(), str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, cwd=root,
        )
        port = _free_port()
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [
                    *_demote(), str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sockets),
                    "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                    "-c", "full_page_writes=off", "-c", "max_connections=200",
                ],
                stdout=log, stderr=subprocess.STDOUT, cwd=root,
            )
        server = PostgresServer(port=port, process=process, log_path=log_path)
        try:
            _wait_ready(server)
            yield server
        finally:
            process.terminate()  # SIGTERM: smart shutdown; the tests' connections are closed by then
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(server: PostgresServer, timeout: float = 60) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"PostgreSQL exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            server.admin("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not accept connections:\n{server.log_tail()}") from None
            time.sleep(0.1)

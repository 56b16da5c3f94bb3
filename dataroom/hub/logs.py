"""The room's component logs: one file each under ``<state>/logs``, not the terminal.

``dataroom up`` used to stream ~150 lines of Hub, proxy and service logs. Now the Hub (with its
proxy and the users' servers, which inherit its output) writes ``hub.log``, and each hub-managed
service (broker, review) its own ``<name>.log``: its command is wrapped in ``sh -c 'exec ... >>
log 2>&1'`` so that even an import error before Python logging starts lands in the file. The
previous run's files are kept as ``*.log.1``. Files are 0600: the Hub's are root's, a service's
belong to the service account (its SQL and user names are not for the users). ``--verbose``
follows every file on the terminal (:class:`LogFollower`); a failed start shows the relevant
lines and a hint (:func:`failure_report`).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

LOG_DIR = "logs"
HUB_LOG = "hub.log"
LOG_DIR_MODE = 0o711  # the service account opens its own file; nobody lists the directory
LOG_FILE_MODE = 0o600
_WRAP = 'exec "$0" "$@" >>"$DATAROOM_SERVICE_LOG" 2>&1'

_RELEVANT = re.compile(r"(^\[[EC] |\b(ERROR|CRITICAL|Traceback|Exception|Error|error|refused|denied|failed|Failed)\b)")
# Start-up failures no component recovers from: waiting for the room to answer would only wait
# out the timeout (a taken port may even accept connections and never answer them).
FATAL_AT_START = re.compile(r"EADDRINUSE|[Aa]ddress already in use")
HINTS = [
    (FATAL_AT_START, "a port is taken: choose another with --port (or stop what listens there)"),
    (re.compile(r"Failed to stop proxy|proxy.*(?:running|exited)"), "a proxy left by an earlier run may hold the port: stop it by its pid (see `ps`) and start again"),
    (re.compile(r"Permission denied|PermissionError"), "an account cannot reach a file: keep the checkout, $DATAROOM_HOME and --state-dir where other accounts can traverse (README, \"Where the room runs\")"),
    (re.compile(r"CatalogError|catalog"), "the catalog may be invalid: check $DATAROOM_HOME/catalog.toml (`dataroom tables -p PROJECT` says what is wrong)"),
    (re.compile(r"ModuleNotFoundError|ImportError"), "the installation is incomplete: run `make setup`"),
]
GENERIC_HINT = "run again with --verbose to watch every component start"


def fatal_start_error(log_dir: Path) -> str | None:
    """The first log line that says the room cannot start, if any."""
    for path in sorted(log_dir.glob("*.log")):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        found = FATAL_AT_START.search(text)
        if found:
            start = text.rfind("\n", 0, found.start()) + 1
            end = text.find("\n", found.end())
            return f"{path.stem} | {text[start : end if end >= 0 else len(text)][:300]}"
    return None


def rotate(path: Path) -> None:
    """Keep the previous run's file as ``<name>.1``."""
    if path.exists():
        path.replace(path.with_name(path.name + ".1"))


def new_log(path: Path, owner: tuple[int, int] | None = None) -> Path:
    """An empty 0600 log file (the last one kept as ``.1``), owned by ``owner`` (uid, gid) if given."""
    rotate(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, LOG_FILE_MODE)
    try:
        if owner is not None:
            os.fchown(fd, *owner)
    finally:
        os.close(fd)
    return path


def prepare_log_dir(log_dir: Path) -> Path:
    log_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(log_dir, LOG_DIR_MODE)
    return log_dir


def log_to_file(service: dict[str, Any], log_path: Path) -> dict[str, Any]:
    """``service`` (a JupyterHub service dict with a ``command``) writing its output to ``log_path``."""
    return {
        **service,
        "command": ["/bin/sh", "-c", _WRAP, *service["command"]],
        "environment": {**(service.get("environment") or {}), "DATAROOM_SERVICE_LOG": str(log_path)},
    }


def failure_report(log_dir: Path, max_lines: int = 25) -> str:
    """What to show when the room did not start: the relevant lines of each log, the Hub's last
    lines, the files' place and a hint."""
    files = sorted(log_dir.glob("*.log"), key=lambda p: (p.name != HUB_LOG, p.name))
    shown: list[str] = []
    text = ""
    for path in files:
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        text += "\n".join(lines) + "\n"
        relevant = [line for line in lines if _RELEVANT.search(line)]
        if path.name == HUB_LOG:
            relevant = relevant[-8:] + [line for line in lines[-5:] if line not in relevant[-8:]]
        else:
            relevant = relevant[-6:]
        shown += [f"  {path.stem} | {line[:300]}" for line in relevant]
    shown = shown[-max_lines:]
    hint = next((h for pattern, h in HINTS if pattern.search(text)), GENERIC_HINT)
    parts = ["--- relevant log lines ---", *shown] if shown else ["(the logs are empty)"]
    parts += [f"full logs: {log_dir}/ ({', '.join(p.name for p in files)})", f"hint: {hint}"]
    return "\n".join(parts)


class LogFollower:
    """Follows the log files of a directory (``tail -F`` of each), writing new lines to ``out``
    prefixed by the component's name; for ``dataroom up --verbose``."""

    def __init__(self, log_dir: Path, out: TextIO | None = None, interval: float = 0.2) -> None:
        self.log_dir = log_dir
        self.out = out or sys.stdout
        self.interval = interval
        self._stop = threading.Event()
        self._offsets: dict[Path, int] = {}
        self._partial: dict[Path, str] = {}
        self._thread = threading.Thread(target=self._run, name="dataroom-log-follower", daemon=True)

    def start(self) -> "LogFollower":
        self._thread.start()
        return self

    def poll(self) -> int:
        """Write what was appended since the last poll; returns the number of lines written."""
        written = 0
        for path in sorted(self.log_dir.glob("*.log")):
            try:
                size = path.stat().st_size
                offset = self._offsets.get(path, 0)
                if size < offset:  # rotated or truncated: from the start
                    offset = 0
                if size == offset:
                    continue
                with path.open("rb") as fh:
                    fh.seek(offset)
                    data = fh.read(size - offset)
            except OSError:
                continue
            self._offsets[path] = offset + len(data)
            text = self._partial.pop(path, "") + data.decode(errors="replace")
            lines = text.split("\n")
            if lines[-1]:
                self._partial[path] = lines[-1]
            for line in lines[:-1]:
                self.out.write(f"{path.stem:>7} | {line}\n")
                written += 1
        if written:
            self.out.flush()
        return written

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.poll()

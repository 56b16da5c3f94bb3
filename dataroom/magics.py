"""IPython extension: ``%load_ext dataroom`` → ``%%sql`` (cell) and ``%sql`` (line) magics.

::

    %load_ext dataroom
    %sql --project remediation-acme          # connect (or use dataroom.connect(project=...))

    %%sql -o by_severity
    SELECT severity, avg(remediation_days) AS days FROM acme.findings GROUP BY 1

    %sql SELECT count(*) AS n FROM acme.findings
    %sql --tables                            # what the project may see

Options (before the SQL): ``-p/--project NAME`` (default: the connection's project),
``-o/--out VAR`` (also store the DataFrame in ``VAR``), ``-q/--quiet`` (no progress line),
``--tables`` (list the project's tables). The result is a ``polars.DataFrame``. A query that
runs longer than a second shows a progress line (elapsed time, then bytes received). A denied
query shows the policy's reasons instead of a stack trace; interrupting the kernel cancels the
query on the broker and shows one line (``QueryInterrupted``); notes about the result (columns a
``*`` left out, duplicate names made unique) follow it.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, magics_class

PROGRESS_AFTER_S = 1.0
PROGRESS_EVERY_S = 0.5


class UsageError(ValueError):
    def _render_traceback_(self) -> list[str]:
        return [f"UsageError: {self}", "usage: %sql [-p PROJECT] [-o VAR] [-q] [--tables] [SQL]"]


@dataclass
class Options:
    project: str | None = None
    out: str | None = None
    quiet: bool = False
    tables: bool = False
    sql: str = ""


def _split(text: str) -> tuple[str, str]:
    head, _, tail = text.strip().partition(" ")
    return head, tail.strip()


def parse_line(line: str) -> Options:
    """Leading options, then the SQL verbatim (never re-tokenised: quotes in SQL are kept)."""
    opts = Options()
    rest = line.strip()
    while rest.startswith("-"):
        head, rest = _split(rest)
        name, eq, value = head.partition("=")
        if name in ("-q", "--quiet"):
            opts.quiet = True
        elif name == "--tables":
            opts.tables = True
        elif name in ("-p", "--project", "-o", "--out"):
            if not eq:
                if not rest:
                    raise UsageError(f"{name} needs a value")
                value, rest = _split(rest)
            if name in ("-p", "--project"):
                opts.project = value
            elif value.isidentifier():
                opts.out = value
            else:
                raise UsageError(f"{value!r} is not a Python variable name")
        else:
            raise UsageError(f"unknown option {name}")
    opts.sql = rest
    return opts


class Progress:
    """A status line for long queries: in the notebook (updated display) or on stderr."""

    def __init__(self, label: str, enabled: bool = True) -> None:
        self.label = label
        self.enabled = enabled
        self.started = time.monotonic()
        self.received: tuple[int, int | None] | None = None
        self._handle: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Progress":
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="dataroom-progress", daemon=True)
            self._thread.start()
        return self

    def bytes(self, got: int, total: int | None) -> None:
        self.received = (got, total)

    def text(self) -> str:
        elapsed = time.monotonic() - self.started
        if self.received is None:
            return f"⏳ {self.label}: running for {elapsed:.1f} s (decided, audited, executing in the broker)"
        got, total = self.received
        of = f" of {total / 1e6:.1f} MB" if total else " MB"
        return f"⏳ {self.label}: receiving {got / 1e6:.1f}{of} after {elapsed:.1f} s"

    def _show(self, text: str) -> None:
        if _in_kernel():
            from IPython.display import display

            status = _Status(text)
            if self._handle is None:
                self._handle = display(status, display_id=True)
            else:
                self._handle.update(status)
        else:
            print("\r" + text, end="", file=sys.stderr, flush=True)
            self._handle = True

    def _run(self) -> None:
        if self._stop.wait(PROGRESS_AFTER_S):
            return
        while not self._stop.is_set():
            self._show(self.text())
            self._stop.wait(PROGRESS_EVERY_S)

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._handle is not None:
            elapsed = time.monotonic() - self.started
            final = f"✓ {self.label}: done in {elapsed:.1f} s" if exc_type is None else f"✗ {self.label}: stopped after {elapsed:.1f} s"
            if _in_kernel():
                self._handle.update(_Status(final))
            else:
                print("\r" + final, file=sys.stderr, flush=True)


class _Status:
    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        import html

        return f"<pre style='margin:0'>{html.escape(self.text)}</pre>"


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


@magics_class
class DataRoomMagics(Magics):
    @line_cell_magic
    def sql(self, line: str, cell: str | None = None) -> Any:
        """Run SQL through the data room broker; see ``dataroom.magics`` for the options."""
        from dataroom import client

        opts = parse_line(line)
        if cell is not None:
            opts.sql = (opts.sql + "\n" + cell).strip()
        room = client.default_connection()
        if room is None:
            room = client.connect(project=opts.project)
        elif opts.project and room.project is None:
            room.project = opts.project
        project = opts.project or room.project
        if opts.tables:
            return room.tables(project)
        if not opts.sql:
            if opts.project:
                room.project = opts.project
                return None
            raise UsageError("no SQL given")
        with Progress(f"query on {project}", enabled=not opts.quiet) as progress:
            frame = room.sql(opts.sql, project=project, progress=progress.bytes)
        if opts.out:
            self.shell.user_ns[opts.out] = frame
        return frame


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext dataroom``."""
    ipython.register_magics(DataRoomMagics)

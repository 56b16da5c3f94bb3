"""The notebook client without a kernel: configuration errors, magic option parsing, progress."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dataroom.client import NotConfigured, connect
from dataroom.magics import Progress, UsageError, parse_line


def test_connect_outside_a_data_room_server_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATAROOM_BROKER_URL", raising=False)
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    with pytest.raises(NotConfigured, match="DATAROOM_BROKER_URL"):
        connect("remediation-acme")
    monkeypatch.setenv("DATAROOM_BROKER_URL", "http://127.0.0.1:9/services/broker/")
    with pytest.raises(NotConfigured, match="JUPYTERHUB_API_TOKEN"):
        connect("remediation-acme")


def test_importing_dataroom_stays_light() -> None:
    code = "import sys, dataroom; print(sorted(m for m in ('polars', 'pyarrow', 'duckdb', 'requests', 'IPython', 'dataroom.client') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


@pytest.mark.parametrize(
    ("line", "project", "out", "sql"),
    [
        ("SELECT 'a -p b' FROM t", None, None, "SELECT 'a -p b' FROM t"),
        ("-p remediation-acme -o df SELECT 1", "remediation-acme", "df", "SELECT 1"),
        ("--project=remediation-acme --out=df", "remediation-acme", "df", ""),
        ("-q SELECT \"quoted name\" FROM t", None, None, 'SELECT "quoted name" FROM t'),
    ],
)
def test_magic_options_leave_the_sql_verbatim(line: str, project: str | None, out: str | None, sql: str) -> None:
    opts = parse_line(line)
    assert (opts.project, opts.out, opts.sql) == (project, out, sql)


@pytest.mark.parametrize("line", ["-o 1bad SELECT 1", "--frobnicate SELECT 1", "-p"])
def test_bad_magic_options_are_usage_errors(line: str) -> None:
    with pytest.raises(UsageError):
        parse_line(line)


def test_progress_reports_elapsed_time_then_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    progress = Progress("query on p")
    assert "running for" in progress.text()
    progress.bytes(5_000_000, 10_000_000)
    assert "receiving 5.0 of 10.0 MB" in progress.text()

"""Hostile input at the CLI: any bytes, any text, any size — a documented exit code and one audit record.

Property-based (Hypothesis) over the ``dataroom query`` command in-process, plus real
subprocesses with argv bytes that are not UTF-8 (what a shell passes through unchanged).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataroom.redaction import original_bytes

from dataroom.audit import AuditLog
from dataroom.cli.query import query

DOCUMENTED_BAD_INPUT_EXITS = {0, 2, 3}  # 1 would be an internal error: never the answer to input

nasty_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=4),  # lone surrogates
    st.builds(lambda a, b: a + "\x00" + b, st.text(max_size=10), st.text(max_size=10)),
    st.builds(lambda n: "SELECT " + "(" * n + "1" + ")" * n, st.integers(0, 3000)),
    st.builds(lambda n: "SELECT " + "[" * n + "1" + "]" * n, st.integers(0, 3000)),
    st.builds(lambda n: "SELECT 1 -- " + "x" * n, st.sampled_from([10, 99_990, 100_001, 300_000])),
    st.builds(lambda s: "SELECT 1 -- " + s.decode("utf-8", "surrogateescape"), st.binary(min_size=1, max_size=8)),
)
names = st.one_of(st.sampled_from(["alice", "remediation-acme", "mallory", ""]), nasty_text)


def decisions(home: Path) -> list[dict]:
    return [r for r in AuditLog(home / "audit" / "audit.jsonl").records() if r["type"] == "decision"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(user=names, project=names, sql=nasty_text)
def test_any_input_gets_a_documented_exit_and_one_record(dataroom_home: Path, user: str, project: str, sql: str) -> None:
    before = len(decisions(dataroom_home))
    result = CliRunner().invoke(query, ["--user", user, "--project", project, "--format", "json", sql], catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in DOCUMENTED_BAD_INPUT_EXITS, result.output
    assert "Traceback" not in result.output
    after = decisions(dataroom_home)
    assert len(after) == before + 1
    stored = after[-1]["input"]
    assert stored["sql"] == sql or stored["sql_sha256"] == hashlib.sha256(original_bytes(sql)).hexdigest()
    assert len(stored["sql"]) <= 4097
    assert AuditLog(dataroom_home / "audit" / "audit.jsonl").verify().ok


def run_cli(home: Path, *argv: bytes) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATAROOM_HOME": str(home)}
    return subprocess.run([sys.executable.encode(), b"-m", b"dataroom.cli", *argv], capture_output=True, env=env, timeout=120)


def test_invalid_utf8_bytes_from_a_shell_are_bad_input_and_audited(dataroom_home: Path) -> None:
    """The red team's example: ``SELECT 1 -- \\xff\\xfe`` printed a traceback and left no record."""
    out = run_cli(dataroom_home, b"query", b"-u", b"alice", b"-p", b"remediation-acme", b"SELECT 1 -- \xff\xfe")
    assert out.returncode == 2, out.stderr
    assert b"Traceback" not in out.stderr and b"[bad_input]" in out.stderr
    (record,) = decisions(dataroom_home)
    assert record["outcome"] == "invalid"
    assert record["input"]["sql_sha256"] == hashlib.sha256(b"SELECT 1 -- \xff\xfe").hexdigest()
    assert b"nanobind" not in out.stderr


def test_invalid_utf8_in_user_and_project_is_bad_input(dataroom_home: Path) -> None:
    out = run_cli(dataroom_home, b"query", b"-u", b"ali\xffce", b"-p", b"remedi\xc3ation", b"SELECT 1")
    assert out.returncode == 2 and b"Traceback" not in out.stderr
    assert len(decisions(dataroom_home)) == 1

"""``dataroom query`` exit codes, output formats and audit records, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dataroom.audit import AuditLog, attempts

DATAROOM = [sys.executable, "-m", "dataroom.cli"]


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATAROOM_HOME": str(home)}
    return subprocess.run(DATAROOM + list(args), capture_output=True, text=True, env=env, timeout=120)


def last_attempt(home: Path) -> dict:
    return attempts(AuditLog(home / "audit" / "audit.jsonl").records())[-1]


def test_allowed_query_prints_result_and_exits_0(dataroom_home: Path) -> None:
    out = cli(dataroom_home, "query", "--user", "alice", "--project", "remediation-acme", "--format", "json",
              "SELECT severity, count(*) AS n FROM acme.findings GROUP BY severity ORDER BY severity")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["columns"] == ["severity", "n"]
    assert sum(r["n"] for r in doc["rows"]) == 2000
    record = last_attempt(dataroom_home)
    assert record["outcome"] == "allowed" and record["completion"]["rows"] == 4
    assert record["input"]["user"]["name"] == "alice" and record["input"]["project_id"] == "remediation-acme"


def test_csv_and_table_formats(dataroom_home: Path) -> None:
    csv = cli(dataroom_home, "query", "-u", "alice", "-p", "remediation-acme", "--format", "csv", "SELECT 1 AS a, 'x' AS b")
    assert csv.returncode == 0 and csv.stdout.splitlines() == ["a,b", "1,x"]
    table = cli(dataroom_home, "query", "-u", "alice", "-p", "remediation-acme", "SELECT 1 AS a")
    assert table.returncode == 0 and "shape: (1, 1)" in table.stdout


def test_denied_query_exits_3_with_reasons(dataroom_home: Path) -> None:
    out = cli(dataroom_home, "query", "-u", "alice", "-p", "remediation-acme", "--format", "json", "SELECT analyst_email FROM acme.findings")
    assert out.returncode == 3
    assert "acme.findings.analyst_email is PII" in out.stderr
    doc = json.loads(out.stdout)
    assert doc["decision"]["reasons"][0]["code"] == "pii_column"
    assert last_attempt(dataroom_home)["outcome"] == "denied"


@pytest.mark.parametrize(
    "user, project, sql, code",
    [
        ("alice", "remediation-acme", "SELEC cvss FROM acme.findings", "parse_error"),
        ("nobody", "remediation-acme", "SELECT 1", "unknown_user"),
        ("alice", "remediation-acme", "   -- just a comment", "parse_error"),
    ],
)
def test_bad_input_exits_2_and_is_audited(dataroom_home: Path, user: str, project: str, sql: str, code: str) -> None:
    out = cli(dataroom_home, "query", "-u", user, "-p", project, sql)
    assert out.returncode == 2, out.stderr
    assert f"[{code}]" in out.stderr
    record = last_attempt(dataroom_home)
    assert record["outcome"] == "invalid" and record["input"]["sql"] == sql


def test_mallory_in_no_project_is_denied(dataroom_home: Path) -> None:
    out = cli(dataroom_home, "query", "-u", "mallory", "-p", "remediation-acme", "SELECT count(*) FROM acme.findings")
    assert out.returncode == 3 and "[project_not_available]" in out.stderr


def test_unknown_project_and_foreign_project_answer_alike(dataroom_home: Path) -> None:
    """No existence oracle: a project that does not exist looks like one you may not use."""
    sql = "SELECT count(*) FROM globex.findings"
    foreign = cli(dataroom_home, "query", "-u", "mallory", "-p", "remediation-acme", "--format", "json", sql)
    unknown = cli(dataroom_home, "query", "-u", "mallory", "-p", "remediation-acmf", "--format", "json", sql)
    assert foreign.returncode == unknown.returncode == 3

    def shape(out: subprocess.CompletedProcess) -> dict:
        decision = json.loads(out.stdout)["decision"]
        return {k: v for k, v in decision.items() if k != "decision_id"} | {
            "reasons": [(r["code"], r["message"].replace("remediation-acmf", "remediation-acme")) for r in decision["reasons"]]
        }

    assert shape(foreign) == shape(unknown)
    assert [r["code"] for r in json.loads(unknown.stdout)["decision"]["reasons"]] == ["project_not_available"]


def test_internal_error_exits_1_and_is_audited(dataroom_home: Path) -> None:
    """Table data missing on disk: allowed by policy, fails to execute (exit 1), audited as failed."""
    import shutil

    shutil.rmtree(dataroom_home / "data" / "acme" / "assets")
    out = cli(dataroom_home, "query", "-u", "alice", "-p", "remediation-acme", "SELECT count(*) FROM acme.findings")
    assert out.returncode == 1 and "cannot open table data" in out.stderr
    record = last_attempt(dataroom_home)
    assert record["outcome"] == "allowed" and record["completion"]["status"] == "failed"


def test_audit_show_filters_and_verify(dataroom_home: Path) -> None:
    cli(dataroom_home, "query", "-u", "alice", "-p", "remediation-acme", "SELECT 1")
    cli(dataroom_home, "query", "-u", "alice", "-p", "remediation-acme", "SELECT analyst_name FROM acme.findings")
    cli(dataroom_home, "query", "-u", "bob", "-p", "remediation-acme", "SELECT 2")
    denied = cli(dataroom_home, "audit", "show", "--decision", "denied")
    assert denied.returncode == 0 and len(denied.stdout.splitlines()) == 1 and "analyst_name" in denied.stdout
    bob = cli(dataroom_home, "audit", "show", "--user", "bob", "--json")
    assert [json.loads(line)["sql"] for line in bob.stdout.splitlines()] == ["SELECT 2"]
    ok = cli(dataroom_home, "audit", "verify")
    assert ok.returncode == 0 and "5 records verified" in ok.stdout  # 3 decisions + 2 completions
    log = dataroom_home / "audit" / "audit.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    broken = cli(dataroom_home, "audit", "verify")
    assert broken.returncode == 1 and "seq=1" in broken.stdout


def test_rego_policy_tests_pass_via_cli(dataroom_home: Path) -> None:
    out = cli(dataroom_home, "policy", "test")
    assert out.returncode == 0, out.stdout
    assert "PASS query/main_test.rego::test_allow_plain_aggregate" in out.stdout


def test_csv_writes_nested_values_as_json_text(dataroom_home: Path) -> None:
    """Lists and structs used to crash CSV output with a traceback (exit 1)."""
    out = cli(dataroom_home, "query", "-u", "alice", "-p", "remediation-acme", "--format", "csv",
              "SELECT list(severity ORDER BY severity) AS l, {'n': count(*)} AS s FROM acme.findings WHERE cvss > 9.9")
    assert out.returncode == 0, out.stderr
    header, row = out.stdout.splitlines()
    assert header == "l,s" and '{""n"": ' in row


@pytest.mark.parametrize(
    "env, sql, code",
    [
        ({"DATAROOM_QUERY_TIMEOUT_S": "1", "DATAROOM_KILL_GRACE_S": "1"},
         "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r", "time_limit"),
        ({"DATAROOM_WORKER_MEMORY_LIMIT": "512MiB"},
         "SELECT length(string_agg(a.finding_id, ',')) AS n FROM acme.findings a, acme.findings b, acme.findings c", "memory_limit"),
        ({"DATAROOM_MAX_ROWS": "10"}, "SELECT cvss FROM acme.findings", "row_limit"),
    ],
)
def test_limits_are_refusals_with_their_code(dataroom_home: Path, env: dict, sql: str, code: str) -> None:
    """Stopped by a limit: exit 3 with the limit's code (never an internal error), recorded as such."""
    full_env = {**os.environ, "DATAROOM_HOME": str(dataroom_home), **env}
    out = subprocess.run(DATAROOM + ["query", "-u", "alice", "-p", "remediation-acme", sql], capture_output=True, text=True, env=full_env, timeout=120)
    assert out.returncode == 3, out.stderr
    assert out.stderr.startswith("refused (decision") and f"[{code}]" in out.stderr
    assert "nanobind" not in out.stderr and "Traceback" not in out.stderr
    completion = last_attempt(dataroom_home)["completion"]
    assert completion["status"] == "refused" and completion["reason_code"] == code


def test_errors_that_name_files_come_back_without_the_path(dataroom_home: Path) -> None:
    """A missing Parquet directory makes an error that names it; the user sees <path>, the audit the truth."""
    import shutil

    shutil.rmtree(dataroom_home / "data" / "acme" / "findings")
    out = cli(dataroom_home, "query", "-u", "alice", "-p", "remediation-acme", "--format", "json", "SELECT count(*) FROM acme.findings")
    assert out.returncode == 1
    assert str(dataroom_home) not in out.stdout + out.stderr and "/data/acme" not in out.stdout + out.stderr
    assert "<path>" in out.stderr
    assert str(dataroom_home) in last_attempt(dataroom_home)["completion"]["error"]


CLI_STORAGE_CORPUS = [
    ("SELECT severity, count(*) AS n FROM acme.findings GROUP BY 1", 0),
    ("SELECT * FROM acme.findings LIMIT 3", 0),
    ("SELECT analyst_email FROM acme.findings", 3),
    ("SELECT current_setting('allowed_paths') AS p", 3),
    ("SELECT * FROM read_parquet('{home}/data/acme/findings/part-000.parquet')", 3),
    ("SELECT json_serialize_plan('SELECT * FROM read_parquet(''{home}/data/acme/findings/part-000.parquet'')', optimize := true)", 3),
    ("SELECT CAST(severity AS INTEGER) AS s FROM acme.findings", 2),
    ("SELEC 1", 2),
    ("SELECT * FROM acme.nothing_here", 2),  # a name that does not exist is bad input (issue 17)
]


def test_no_cli_output_names_a_storage_location(dataroom_home: Path) -> None:
    """Allowed, denied, invalid: nothing on stdout or stderr names the data room's home or its files."""
    for sql, code in CLI_STORAGE_CORPUS:
        out = cli(dataroom_home, "query", "-u", "alice", "-p", "remediation-acme", "--format", "json", sql.format(home=dataroom_home))
        assert out.returncode == code, (sql, out.stderr)
        text = out.stdout + out.stderr
        for marker in (str(dataroom_home), "/data/acme", "cache/visible", "part-000"):
            assert marker not in text, (sql, text[:500])
    tables = cli(dataroom_home, "tables", "-p", "remediation-acme")
    assert tables.returncode == 0 and str(dataroom_home) not in tables.stdout + tables.stderr

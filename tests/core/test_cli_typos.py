"""A typo is bad input, not an attack (issue 17 item 3), run as the real `dataroom` CLI.

A table or column that does not exist exits 2 with a "did you mean" drawn only from what the
user may see, is audited as ``invalid`` and raises no denied-query alert; a withheld column stays
a denial (exit 3) naming its rule; what looks like probing the engine stays a denial; ``SELECT *``
says on stderr which columns it left out.
"""

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


def query(home: Path, sql: str, *extra: str, project: str = "remediation-acme") -> subprocess.CompletedProcess:
    return cli(home, "query", "-u", "alice", "-p", project, *extra, sql)


def records(home: Path) -> list[dict]:
    return attempts(AuditLog(home / "audit" / "audit.jsonl").records())


@pytest.mark.parametrize(
    ("sql", "suggestion"),
    [
        ("SELECT severty FROM acme.findings", "did you mean severity?"),
        ("SELECT f.remediaton_days FROM acme.findings f", "did you mean remediation_days"),
        ("SELECT count(*) FROM acme.findngs", "did you mean acme.findings?"),
        ("SELECT count(*) FROM findings", "did you mean acme.findings?"),
    ],
)
def test_a_typo_is_bad_input_with_a_suggestion(dataroom_home: Path, sql: str, suggestion: str) -> None:
    out = query(dataroom_home, sql)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("bad input") and suggestion in out.stderr
    assert "Traceback" not in out.stderr
    [record] = records(dataroom_home)
    assert record["outcome"] == "invalid" and record["input"]["sql"] == sql
    assert suggestion in json.dumps(record["result"]["reasons"])


def test_suggestions_never_name_a_withheld_column(dataroom_home: Path) -> None:
    # one letter off analyst_email (PII): the closest visible name is not suggested either
    out = query(dataroom_home, "SELECT analyst_emial FROM acme.findings")
    assert out.returncode == 2, out.stderr
    assert "analyst_email" not in out.stderr and "analyst_name" not in out.stderr
    assert "did you mean" not in out.stderr
    # a quasi-identifier withheld in a multi-tenant project is no suggestion there either
    out = cli(dataroom_home, "query", "-u", "alice", "-p", "remediation-benchmark", "SELECT asset_hostnam FROM acme.findings")
    assert out.returncode == 2, out.stderr
    assert "asset_hostname" not in out.stderr


def test_a_withheld_column_stays_a_denial_naming_the_rule(dataroom_home: Path) -> None:
    out = query(dataroom_home, "SELECT analyst_email FROM acme.findings")
    assert out.returncode == 3
    assert "[pii_column]" in out.stderr
    # a typo beside a withheld column does not launder the denial into bad input
    out = query(dataroom_home, "SELECT severty, analyst_email FROM acme.findings")
    assert out.returncode == 3 and "[pii_column]" in out.stderr
    assert [r["outcome"] for r in records(dataroom_home)] == ["denied", "denied"]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT filename FROM acme.findings",  # a virtual column naming storage
        "SELECT * FROM information_schema.columns",
        "SELECT * FROM __source_acme_findings",
        "SELECT * FROM memory.acme.findings",
        'SELECT * FROM "acme.findings; --"',
        "SHOW TABLES",
    ],
)
def test_probing_the_engine_is_not_a_typo(service, sql: str) -> None:
    from dataroom.pipeline import Outcome

    outcome = service.run("alice", "remediation-acme", sql)
    assert outcome.outcome is Outcome.DENIED, outcome.summary()
    assert not any("did you mean" in r.message for r in outcome.reasons)


def test_a_table_of_another_project_is_no_typo_and_no_suggestion(dataroom_home: Path) -> None:
    out = query(dataroom_home, "SELECT count(*) FROM globex.findngs")
    assert out.returncode == 2
    assert "globex.findings" not in out.stderr  # not the project's: never suggested
    out = query(dataroom_home, "SELECT count(*) FROM globex.findings")
    assert out.returncode == 3 and "[table_not_in_project]" in out.stderr


def test_typos_raise_no_denied_query_alert_but_denials_do(dataroom_home: Path) -> None:
    (dataroom_home / "alerts.toml").write_text("[denied_burst]\ncount = 2\nwindow_s = 600\n")
    for sql in ("SELECT severty FROM acme.findings", "SELECT cvs FROM acme.findings", "SELECT * FROM acme.findngs"):
        assert query(dataroom_home, sql).returncode == 2
    scan = cli(dataroom_home, "alerts", "scan", "--json")
    assert scan.returncode == 0, scan.stderr
    assert "denied_burst" not in scan.stdout
    for _ in range(2):
        assert query(dataroom_home, "SELECT analyst_email FROM acme.findings").returncode == 3
    scan = cli(dataroom_home, "alerts", "scan", "--json")
    assert scan.returncode == 0, scan.stderr
    assert "denied_burst" in scan.stdout


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_select_star_says_which_columns_it_left_out(dataroom_home: Path, fmt: str) -> None:
    out = query(dataroom_home, "SELECT * FROM acme.findings LIMIT 2", "--format", fmt)
    assert out.returncode == 0, out.stderr
    warning = [line for line in out.stderr.splitlines() if line.startswith("warning: * left out withheld columns")]
    assert len(warning) == 1
    assert "acme.findings.analyst_email (PII is never visible in the data room)" in warning[0]
    assert "acme.findings.analyst_name" in warning[0]
    assert "analyst_email" not in out.stdout.split("withheld_columns")[0] if fmt == "json" else "analyst_email" not in out.stdout
    if fmt == "json":
        doc = json.loads(out.stdout)
        assert {w["column"] for w in doc["decision"]["withheld_columns"]} == {"analyst_email", "analyst_name"}

"""Which engine serves a project: approved with its scope in the registry, else the deployment default."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from dataroom.audit import attempts
from dataroom.cli.project import project as project_cli
from dataroom.engines.base import engine_of
from dataroom.pipeline import Outcome, QueryService
from dataroom.registry.service import RegistryError
from dataroom.settings import Settings


def _propose(service: QueryService, project_id: str, **kwargs) -> None:
    service.registry.propose(
        "alice", project_id, justification="remediation on the cluster", tenants=["acme"], tables=["acme.findings"], **kwargs
    )


def test_engine_is_requested_approved_and_read_on_every_query(service: QueryService) -> None:
    _propose(service, "acme-spark", engine="spark")
    assert service.project_for("acme-spark").engine == "spark"
    approved = service.registry.approve("sam", "acme-spark", justification="large data", engine="duckdb")  # the approver decides
    assert approved.engine == "duckdb" and service.project_for("acme-spark").engine == "duckdb"
    _propose(service, "acme-default")
    service.registry.approve("sam", "acme-default", justification="ok")
    assert service.project_for("acme-default").engine is None
    assert engine_of(service.project_for("acme-default"), "spark") == "spark"
    assert engine_of(service.project_for("acme-spark"), "spark") == "duckdb"


def test_an_unknown_engine_is_refused_with_a_clear_error(service: QueryService) -> None:
    with pytest.raises(RegistryError, match="unknown engine 'presto'"):
        _propose(service, "acme-presto", engine="presto")


def test_cli_propose_and_approve_take_the_engine(dataroom_home) -> None:
    runner = CliRunner()
    r = runner.invoke(
        project_cli,
        ["propose", "acme-cli", "--as", "alice", "--tenant", "acme", "--table", "acme.findings", "--days", "30", "--engine", "spark", "--justification", "cluster"],
    )
    assert r.exit_code == 0, r.output
    assert "engine: spark" in r.output
    r = runner.invoke(project_cli, ["approve", "acme-cli", "--as", "sam", "--justification", "ok", "--engine", "flink"])
    assert r.exit_code == 2 and "flink" in r.output
    r = runner.invoke(project_cli, ["approve", "acme-cli", "--as", "sam", "--justification", "ok"])
    assert r.exit_code == 0 and "engine: spark" in r.output


def test_a_spark_project_runs_on_spark_in_a_duckdb_room(dataroom_home, spark_remote: str) -> None:
    svc = QueryService(Settings(home=dataroom_home, default_engine="duckdb", spark_remote=spark_remote))
    try:
        _propose(svc, "acme-spark", engine="spark")
        svc.registry.approve("sam", "acme-spark", justification="large data")
        on_spark = svc.run("alice", "acme-spark", "SELECT severity, count(*) AS n FROM acme.findings GROUP BY severity")
        on_duckdb = svc.run("alice", "remediation-acme", "SELECT severity, count(*) AS n FROM acme.findings GROUP BY severity")
        assert on_spark.outcome is Outcome.ALLOWED and on_duckdb.outcome is Outcome.ALLOWED
        assert sorted(on_spark.table.to_pylist(), key=str) == sorted(on_duckdb.table.to_pylist(), key=str)
        records = {a["decision_id"]: a["completion"] for a in attempts(svc.audit.records())}
        assert records[on_spark.decision_id]["engine"] == "spark" and "engine" not in records[on_duckdb.decision_id]
    finally:
        svc.close()

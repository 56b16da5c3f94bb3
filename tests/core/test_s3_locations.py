"""Tables on ``s3://``: credentials from an assumed role (STS, ExternalId), data through a real
moto server on loopback."""

from __future__ import annotations

import tomllib
from pathlib import Path

import boto3
import pytest
import requests
import tomli_w
from moto.server import ThreadedMotoServer

from dataroom.pipeline import Outcome, QueryService
from dataroom.settings import Settings
from tests.support.opa_server import free_port

BUCKET = "prod-findings"
TRUST = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}'


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch):
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    yield f"http://127.0.0.1:{port}"
    requests.post(f"http://127.0.0.1:{port}/moto-api/reset", timeout=10)  # moto keeps state per process
    server.stop()


@pytest.fixture
def s3_home(dataroom_home: Path, moto_endpoint: str) -> tuple[Path, str]:
    """The demo data uploaded to S3 and the catalog pointed at it; the local copies removed."""
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    catalog_path = dataroom_home / "catalog.toml"
    catalog = tomllib.loads(catalog_path.read_text())
    for name, table in catalog["tables"].items():
        local = dataroom_home / table["location"]
        for part in sorted(local.glob("*.parquet")):
            s3.upload_file(str(part), BUCKET, f"{table['location'].removeprefix('data/')}/{part.name}")
        table["location"] = f"s3://{BUCKET}/{table['location'].removeprefix('data/')}"
    catalog_path.write_text(tomli_w.dumps(catalog))
    import shutil

    shutil.rmtree(dataroom_home / "data")
    iam = boto3.client("iam", endpoint_url=moto_endpoint, region_name="us-east-1")
    role = iam.create_role(RoleName="dataroom-prod-read", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    return dataroom_home, role


def test_query_over_s3_through_assumed_role(s3_home, moto_endpoint: str) -> None:
    home, role = s3_home
    settings = Settings(aws_role_arn=role, aws_external_id="dataroom-ext-id", aws_endpoint_url=moto_endpoint)
    svc = QueryService(settings)
    try:
        outcome = svc.run("alice", "remediation-acme", "SELECT severity, count(*) AS n FROM acme.findings GROUP BY 1 ORDER BY 1")
        assert outcome.outcome is Outcome.ALLOWED, outcome.summary()
        assert sum(outcome.table.column("n").to_pylist()) == 2000
        star = svc.run("alice", "remediation-acme", "SELECT * FROM acme.findings f JOIN reference.cve c USING (cve_id) LIMIT 3")
        assert star.outcome is Outcome.ALLOWED and "analyst_email" not in star.table.column_names
        from dataroom.storage import S3Access

        creds = S3Access(settings).credentials()  # what the execution worker does with these settings
        assert creds.access_key != "testing" and creds.session_token, "data is read with the assumed role's credentials"
    finally:
        svc.close()


def test_a_checked_text_over_s3_reruns_on_the_unprofiled_connection(s3_home, moto_endpoint: str) -> None:
    """The Arrow datasets of ``s3://`` tables belong to a connection: the session's unprofiled one has them too."""
    from dataroom.catalog import load_catalog
    from dataroom.engines.duckdb_session import Session
    from dataroom.engines.supervisor import SupervisedEngine
    from dataroom.storage import S3Access

    home, role = s3_home
    settings = Settings(aws_role_arn=role, aws_external_id="dataroom-ext-id", aws_endpoint_url=moto_endpoint, threads=1)
    catalog = load_catalog(home / "catalog.toml")
    session = Session(SupervisedEngine(settings, catalog).session_spec(catalog.projects["remediation-acme"]), S3Access(settings))
    try:
        sql = "SELECT severity, count(*) AS n FROM acme.findings GROUP BY 1 ORDER BY 1"
        first = session.execute(sql, max_rows=100, timeout_s=30)
        session.prepare_reruns()
        assert session._relations[sql].rebound  # bound on the unprofiled connection, not left on the checked path
        assert session.execute(sql, max_rows=100, timeout_s=30).equals(first)
    finally:
        session.close()


def test_unassumable_role_is_a_clear_error_and_audited(s3_home, moto_endpoint: str) -> None:
    home, _ = s3_home
    settings = Settings(aws_role_arn="not-an-arn", aws_endpoint_url=moto_endpoint)
    svc = QueryService(settings)
    try:
        outcome = svc.run("alice", "remediation-acme", "SELECT count(*) FROM acme.findings")
        last = list(svc.audit.records())[-1]
    finally:
        svc.close()
    assert outcome.outcome is Outcome.ERROR and "cannot assume role" in outcome.error
    assert last["type"] == "completion" and last["status"] == "failed"

"""Anchoring in an Object Lock bucket (a moto server on loopback): ship, outage and drain, and verify --anchor.

moto 5.2.5 enforces Object Lock on a versioned delete (AccessDenied) but, unlike AWS, lets a
compliance-mode retention be shortened; that part is not tested here.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from dataroom.audit import GENESIS_HASH, AuditLog, canonical_json, record_hash
from dataroom.audit.anchor import AnchorTarget, Shipper, s3_client, verify_anchor
from dataroom.audit.checkpoints import make_checkpoint, record_leaf
from dataroom.audit.keys import load_or_create_signing_key
from dataroom.audit.merkle import Frontier
from tests.support.moto import moto_server, use_fake_credentials

_names = itertools.count()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def target(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> AnchorTarget:
    use_fake_credentials(monkeypatch)
    bucket = f"audit-anchor-{next(_names)}"
    client = s3_client(endpoint, "us-east-1")
    client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    client.put_object_lock_configuration(
        Bucket=bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}}
    )
    return AnchorTarget(bucket, "room-1")


def _log(path: Path, n: int, start: int = 0) -> AuditLog:
    log = AuditLog(path, checkpoint_every=10**6, checkpoint_interval_s=0)
    for i in range(start, start + n):
        log.append({"type": "decision", "decision_id": f"d{i}", "timestamp": f"2026-11-30T00:00:{i:02d}+00:00", "input": {"sql": f"SELECT {i}"}})
        if i % 4 == 3:
            log.checkpoint()
    log.close()
    return log


def test_ship_then_verify_against_the_anchor(tmp_path: Path, target: AnchorTarget, endpoint: str) -> None:
    client = s3_client(endpoint, "us-east-1")
    log = _log(tmp_path / "audit.jsonl", 10)
    shipper = Shipper(log, target, client, retention_days=1)
    assert shipper.status().backlog == 4  # genesis, 4, 8, 10
    status = shipper.ship_once()
    assert (status.shipped_now, status.backlog, status.shipped_size, status.error) == (4, 0, 10, None)
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=target.bucket)["Contents"])
    assert keys == [
        "room-1/audit/checkpoints/000000000000.json", "room-1/audit/checkpoints/000000000004.json", "room-1/audit/checkpoints/000000000008.json",
        "room-1/audit/checkpoints/000000000010.json", "room-1/audit/segments/000000000000-000000000004.jsonl",
        "room-1/audit/segments/000000000004-000000000008.jsonl", "room-1/audit/segments/000000000008-000000000010.jsonl",
    ]
    head = client.head_object(Bucket=target.bucket, Key=keys[-1])
    assert head["ObjectLockMode"] == "COMPLIANCE" and head["ObjectLockRetainUntilDate"]
    assert shipper.ship_once().shipped_now == 0  # nothing new
    result = verify_anchor(log, target, client)
    assert result.ok and (result.anchored_checkpoints, result.anchored_records) == (4, 10), result.describe()

    # an anchored object cannot be deleted (a delete marker hides nothing: the version stays)
    version = client.list_object_versions(Bucket=target.bucket, Prefix=keys[-1])["Versions"][0]["VersionId"]
    with pytest.raises(ClientError) as refused:
        client.delete_object(Bucket=target.bucket, Key=keys[-1], VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_a_local_rollback_that_verifies_locally_is_caught_by_the_anchor(tmp_path: Path, target: AnchorTarget, endpoint: str) -> None:
    """Log and checkpoint file rolled back together to an earlier signed state: locally it looks like a crash."""
    client = s3_client(endpoint, "us-east-1")
    log = _log(tmp_path / "audit.jsonl", 10)
    Shipper(log, target, client).ship_once()
    lines = log.path.read_text().splitlines()
    log.path.write_text("".join(line + "\n" for line in lines[:6]))
    log.checkpoint_path.write_text("".join(line + "\n" for line in log.checkpoint_path.read_text().splitlines()[:2]))  # genesis, 4
    log.head_path.write_text(json.dumps({"seq": 5, "hash": json.loads(lines[5])["hash"]}).ljust(128))
    assert log.verify().ok  # the documented limit of a local verifier
    result = verify_anchor(log, target, client)
    assert not result.ok and result.missing_locally == (6, 9)
    assert "records seq 6..9 are anchored but missing locally" in result.describe()


def test_an_insider_recomputing_and_resigning_the_log_is_caught_by_the_anchor(tmp_path: Path, target: AnchorTarget, endpoint: str) -> None:
    """Whoever holds the key can rewrite and re-sign everything locally; the anchored bytes still differ."""
    client = s3_client(endpoint, "us-east-1")
    log = _log(tmp_path / "audit.jsonl", 10)
    Shipper(log, target, client).ship_once()
    records = [json.loads(line) for line in log.path.read_text().splitlines()]
    records[3]["input"]["sql"] = "SELECT 'nothing to see'"
    key = load_or_create_signing_key(log.key_path, log.public_key_path)  # the insider reads the key
    prev, frontier, cps, lines = GENESIS_HASH, Frontier(), [], []
    cps.append(make_checkpoint(stream="audit", frontier=frontier, last_hash=prev, offset=0, timestamp="2026-11-30T00:00:00+00:00", reason="genesis", key=key))
    offset = 0
    for seq, record in enumerate(records):
        record = {k: v for k, v in record.items() if k != "hash"} | {"prev_hash": prev}
        record["hash"] = prev = record_hash(record)
        line = canonical_json(record) + "\n"
        lines.append(line)
        offset += len(line.encode())
        frontier.push(record_leaf(prev))
    cps.append(make_checkpoint(stream="audit", frontier=frontier, last_hash=prev, offset=offset, timestamp="2026-11-30T00:01:00+00:00", reason="shutdown", key=key))
    log.path.write_text("".join(lines))
    log.checkpoint_path.write_text("".join(canonical_json(cp) + "\n" for cp in cps))
    log.head_path.write_text(json.dumps({"seq": 9, "hash": prev}).ljust(128))
    assert log.verify().ok  # re-signed with the real key: nothing local can tell
    result = verify_anchor(log, target, client)
    assert not result.ok and result.first_difference == 3
    assert "record seq 3 differs from its anchored copy: the local chain was recomputed from there on" in result.describe()


def test_records_added_after_the_fact_are_named(tmp_path: Path, target: AnchorTarget, endpoint: str) -> None:
    client = s3_client(endpoint, "us-east-1")
    log = _log(tmp_path / "audit.jsonl", 8)
    Shipper(log, target, client).ship_once()
    log.append({"type": "decision", "decision_id": "alibi", "timestamp": "2026-01-01T00:00:00+00:00", "input": {}})  # dated months back
    log.append({"type": "decision", "decision_id": "honest", "input": {}, "timestamp": "2999-01-01T00:00:00+00:00"})
    log.close()
    result = verify_anchor(log, target, client)
    assert not result.ok and result.backdated == [8] and "added after the fact" in result.describe()


def test_an_outage_queues_and_then_drains(tmp_path: Path, target: AnchorTarget, endpoint: str) -> None:
    log = _log(tmp_path / "audit.jsonl", 6)
    naps: list[float] = []
    down = Shipper(log, target, s3_client("http://127.0.0.1:9", "us-east-1"), attempts=3, backoff_s=0.01, sleep=naps.append)
    status = down.ship_once()
    assert status.shipped_now == 0 and status.backlog == 3 and "after 3 attempts" in (status.error or "")
    assert naps == [0.01, 0.02]  # exponential backoff between attempts
    assert status.oldest_unshipped is not None and status.lag_s > 0
    log = _log(tmp_path / "audit.jsonl", 2, start=6)  # the room goes on writing meanwhile
    assert down.status().backlog == 4
    up = Shipper(log, target, s3_client(endpoint, "us-east-1"))
    drained = up.ship_once()
    assert (drained.shipped_now, drained.backlog, drained.shipped_size) == (4, 0, 8)
    assert verify_anchor(log, target, s3_client(endpoint, "us-east-1")).ok


def test_the_shipper_refuses_to_anchor_a_tampered_segment(tmp_path: Path, target: AnchorTarget, endpoint: str) -> None:
    log = _log(tmp_path / "audit.jsonl", 8)
    lines = log.path.read_text().splitlines()
    del lines[2]
    log.path.write_text("".join(line + "\n" for line in lines))
    status = Shipper(log, target, s3_client(endpoint, "us-east-1")).ship_once()
    assert status.shipped_now == 1 and "does not match checkpoint of 4 records" in (status.error or "")  # only the genesis went


def test_cli_ship_and_verify_anchor(dataroom_home: Path, target: AnchorTarget, endpoint: str) -> None:
    env = {**os.environ, "DATAROOM_HOME": str(dataroom_home), "DATAROOM_AWS_ENDPOINT_URL": endpoint, "DATAROOM_AUDIT_BUCKET": target.bucket}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dataroom.cli", *args], capture_output=True, text=True, env=env, timeout=120)

    assert cli("query", "-u", "alice", "-p", "remediation-acme", "SELECT 1").returncode == 0
    shipped = cli("audit", "ship", "--json")
    assert shipped.returncode == 0, shipped.stderr
    assert json.loads(shipped.stdout) | {"oldest_unshipped": None, "lag_s": 0} == {
        "shipped_size": 2, "backlog": 0, "oldest_unshipped": None, "lag_s": 0, "shipped_now": 2, "error": None}
    ok = cli("audit", "verify", "--anchor", f"s3://{target.bucket}/audit")
    assert ok.returncode == 0 and "anchor OK: 2 anchored checkpoint(s) covering 2 record(s)" in ok.stdout, ok.stdout + ok.stderr
    log = dataroom_home / "audit" / "audit.jsonl"
    log.write_text(log.read_text().splitlines()[0] + "\n")
    (dataroom_home / "audit" / "audit.jsonl.head").unlink()
    broken = cli("audit", "verify", "--anchor", f"s3://{target.bucket}/audit")
    assert broken.returncode == 1 and "missing locally" in broken.stdout

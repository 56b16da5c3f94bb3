"""Checkpoints signed by an AWS KMS key (a moto server on loopback): nothing private on the machine, same verification.

moto 5.2.5 has no Ed25519 key spec, so the KMS key is ECC_NIST_P256 (ECDSA_SHA_256), as AWS offers too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from dataroom.audit import AuditLog
from dataroom.audit.checkpoints import read_checkpoints
from dataroom.audit.keys import KMS_ALGORITHM, load_public_keys
from dataroom.audit.proofs import build_proofs, check_proof
from dataroom.settings import Settings
from tests.support.moto import moto_server, use_fake_credentials


@pytest.fixture(scope="module")
def kms_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def kms_key(kms_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    use_fake_credentials(monkeypatch)
    kms = boto3.client("kms", endpoint_url=kms_endpoint, region_name="us-east-1")
    return kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY", Description="dataroom audit checkpoints")["KeyMetadata"]["Arn"]


def test_checkpoints_signed_in_kms_verify_and_catch_tampering(tmp_path: Path, kms_endpoint: str, kms_key: str) -> None:
    settings = Settings(home=tmp_path, aws_endpoint_url=kms_endpoint, audit_kms_key_id=kms_key, audit_checkpoint_interval_s=0)
    log = AuditLog.from_settings(settings)
    for i in range(5):
        log.append({"type": "decision", "decision_id": f"d{i}", "input": {"sql": f"SELECT {i}"}})
    log.close()
    assert not log.key_path.exists()  # no private key on the machine
    cps = [cp for _, cp in read_checkpoints(log.checkpoint_path).checkpoints]
    assert [(cp["size"], cp["alg"]) for cp in cps] == [(0, KMS_ALGORITHM), (5, KMS_ALGORITHM)]
    (kid,) = load_public_keys(log.public_key_path)  # the KMS key's public half, published
    assert {cp["key_id"] for cp in cps} == {kid}
    result = log.verify()
    assert result.ok and result.key_ids == (kid,), result.describe()

    proof = build_proofs(log, ["d3"])["d3"]
    assert isinstance(proof, dict) and check_proof(proof, load_public_keys(log.public_key_path)).ok

    cps[1]["size"] = 4  # a checkpoint altered without KMS
    log.checkpoint_path.write_text("".join(json.dumps(cp) + "\n" for cp in cps))
    assert log.verify().kind == "checkpoint_bad_signature"

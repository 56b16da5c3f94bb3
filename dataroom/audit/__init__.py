"""The audit log: hash-chained records, RFC 6962 Merkle checkpoints signed with Ed25519, and their verifier.

* :mod:`~dataroom.audit.log` — :class:`AuditLog` (append, records, checkpoint); :mod:`~dataroom.audit.records` the record shapes;
* :mod:`~dataroom.audit.group_commit` — one fsync for the decision records of queries arriving at once;
* :mod:`~dataroom.audit.merkle` — RFC 6962 tree heads, inclusion and consistency proofs;
* :mod:`~dataroom.audit.keys` — the writer's Ed25519 key and its published public key;
* :mod:`~dataroom.audit.checkpoints` — the signed checkpoint lines;
* :mod:`~dataroom.audit.verify` — chain, head and checkpoint verification (:class:`VerifyResult`);
* :mod:`~dataroom.audit.proofs` — inclusion proofs an auditor checks with the public key alone;
* :mod:`~dataroom.audit.anchor` — shipping to the Object Lock bucket, and verifying against it;
* :mod:`~dataroom.audit.registry_events` — registry writes in their own stream, and the rows checked against it.
"""

from dataroom.audit.log import (
    GENESIS_HASH,
    AuditLog,
    attempts,
    canonical_json,
    decision_record,
    fold_attempt,
    new_decision_id,
    record_hash,
    utc_now,
)
from dataroom.audit.verify import VerifyResult

__all__ = [
    "GENESIS_HASH",
    "AuditLog",
    "VerifyResult",
    "attempts",
    "canonical_json",
    "decision_record",
    "fold_attempt",
    "new_decision_id",
    "record_hash",
    "utc_now",
]

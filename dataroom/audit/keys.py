"""The writer's checkpoint key: Ed25519 in a file private to the writer's account, or an AWS KMS key.

The private key (PKCS#8 PEM) is created 0600 with ``O_EXCL`` the first time a writer needs it, by
default beside the log as ``audit.jsonl.key``; when root creates it (an administrator's CLI) it is
handed to the owner of the log's directory, the broker's service account. The public key is
published beside the log as ``audit.jsonl.pub`` and copied into every evidence export; a verifier
that must not trust the machine pins it (``DATAROOM_AUDIT_PUBLIC_KEY`` / ``--public-key``).

In production the key can instead be an asymmetric KMS key (``DATAROOM_AUDIT_KMS_KEY_ID``): the
private half never leaves KMS, the writer only calls ``kms:Sign``. KMS (and moto) offer no
Ed25519 key spec that moto 5.2.5 accepts, so a KMS key is ECC_NIST_P256 and checkpoints say
``"alg": "ECDSA-P256-SHA256"``; verifiers accept both algorithms, each with its own key type.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from typing import Any, Protocol, Union

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

log = logging.getLogger(__name__)

ALGORITHM = "Ed25519"
KMS_ALGORITHM = "ECDSA-P256-SHA256"
ALGORITHMS = (ALGORITHM, KMS_ALGORITHM)
PublicKey = Union[Ed25519PublicKey, ec.EllipticCurvePublicKey]


def algorithm_of(public: PublicKey) -> str:
    return ALGORITHM if isinstance(public, Ed25519PublicKey) else KMS_ALGORITHM


def key_id(public: PublicKey) -> str:
    """First 16 hex digits of SHA-256 over the public key (raw Ed25519, else DER): how checkpoints name their key."""
    if isinstance(public, Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        raw = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def hand_to_directory_owner(path: Path) -> None:
    """Root created ``path`` in a directory the broker's account owns: give it to that account."""
    if os.geteuid() != 0:
        return
    owner = os.stat(path.parent)
    if owner.st_uid != 0:
        os.chown(path, owner.st_uid, owner.st_gid, follow_symlinks=False)


def write_private_file(path: Path, data: bytes) -> bool:
    """Create ``path`` 0600 with ``data`` unless it exists (never follows a planted link); True if created."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return False
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    hand_to_directory_owner(path)
    return True


class Signer(Protocol):
    key_id: str
    alg: str

    @property
    def public(self) -> PublicKey: ...

    def sign(self, message: bytes) -> str: ...


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 key held in a file."""

    private: Ed25519PrivateKey
    key_id: str
    alg: str = ALGORITHM

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private.sign(message)).decode()


class KmsSigningKey:
    """An asymmetric KMS key (ECC_NIST_P256, SIGN_VERIFY): signing is a ``kms:Sign`` call, nothing private is local."""

    alg = KMS_ALGORITHM

    def __init__(self, client: Any, kms_key_id: str) -> None:
        self.client, self.kms_key_id = client, kms_key_id
        public = serialization.load_der_public_key(client.get_public_key(KeyId=kms_key_id)["PublicKey"])
        if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
            raise ValueError(f"KMS key {kms_key_id} is not an ECC_NIST_P256 signing key")
        self._public = public
        self.key_id = key_id(public)

    @property
    def public(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def sign(self, message: bytes) -> str:
        signature = self.client.sign(KeyId=self.kms_key_id, Message=message, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
        return base64.b64encode(signature).decode()


def kms_signer(kms_key_id: str, public_path: Path, region: str, endpoint_url: str | None) -> KmsSigningKey:
    """The KMS signer; publishes its public key beside the log when it is missing."""
    import boto3

    signer = KmsSigningKey(boto3.client("kms", region_name=region, endpoint_url=endpoint_url), kms_key_id)
    if not public_path.exists():
        write_private_file(public_path, public_pem(signer.public))
    return signer


def load_or_create_signing_key(key_path: Path, public_path: Path) -> SigningKey:
    """The writer's key, created on first use; (re)publishes the public key when it is missing."""
    if not key_path.exists():
        fresh = Ed25519PrivateKey.generate()
        pem = fresh.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        write_private_file(key_path, pem)  # loses a race gracefully: the winner's key is read below
    private = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError(f"{key_path} is not an Ed25519 private key")
    kid = key_id(private.public_key())
    if not public_path.exists():
        write_private_file(public_path, public_pem(private.public_key()))
    elif kid not in _ids_in(public_path):  # a new key for a log signed before (the old key file is gone): rotate, published
        log.warning("audit: signing with a new key %s; appended to the published keys in %s (pinned verifiers must add it)", kid, public_path)
        with open(public_path, "ab") as fh:
            fh.write(public_pem(private.public_key()))
    return SigningKey(private, kid)


def _ids_in(path: Path) -> set[str]:
    try:
        return set(load_public_keys(path))
    except (FileNotFoundError, ValueError):
        return set()


def load_public_keys(path: Path) -> dict[str, PublicKey]:
    """Every public key (PEM blocks: Ed25519 or EC P-256) in ``path``, by key id: a file may hold a rotated set."""
    text = path.read_bytes()
    keys: dict[str, PublicKey] = {}
    for block in text.split(b"-----END PUBLIC KEY-----"):
        if b"-----BEGIN PUBLIC KEY-----" not in block:
            continue
        public = serialization.load_pem_public_key(block[block.index(b"-----BEGIN PUBLIC KEY-----") :] + b"-----END PUBLIC KEY-----\n")
        if not isinstance(public, (Ed25519PublicKey, ec.EllipticCurvePublicKey)):
            raise ValueError(f"{path} holds a key that is neither Ed25519 nor EC P-256")
        keys[key_id(public)] = public
    if not keys:
        raise ValueError(f"{path} holds no PEM public key")
    return keys


def signature_ok(public: PublicKey, message: bytes, signature: str, alg: str | None = None) -> bool:
    """Does ``signature`` verify ``message`` under ``public`` (and is ``alg`` that key's algorithm)?"""
    if alg is not None and alg != algorithm_of(public):
        return False
    try:
        raw = base64.b64decode(signature, validate=True)
        if isinstance(public, Ed25519PublicKey):
            public.verify(raw, message)
        else:
            public.verify(raw, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True

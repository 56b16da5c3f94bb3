"""The writer's Ed25519 checkpoint key: created once, private to the writer's account, public key published.

The private key (PKCS#8 PEM) is created 0600 with ``O_EXCL`` the first time a writer needs it, by
default beside the log as ``audit.jsonl.key``; when root creates it (an administrator's CLI) it is
handed to the owner of the log's directory, the broker's service account. The public key is
published beside the log as ``audit.jsonl.pub`` and copied into every evidence export; a verifier
that must not trust the machine pins it (``DATAROOM_AUDIT_PUBLIC_KEY`` / ``--public-key``).
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "Ed25519"


def key_id(public: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 over the raw public key: how checkpoints name their key."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> bytes:
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


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    key_id: str

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private.sign(message)).decode()


def load_or_create_signing_key(key_path: Path, public_path: Path) -> SigningKey:
    """The writer's key, created on first use; (re)publishes the public key when it is missing."""
    if not key_path.exists():
        fresh = Ed25519PrivateKey.generate()
        pem = fresh.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        write_private_file(key_path, pem)  # loses a race gracefully: the winner's key is read below
    private = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError(f"{key_path} is not an Ed25519 private key")
    if not public_path.exists():
        write_private_file(public_path, public_pem(private.public_key()))
    return SigningKey(private, key_id(private.public_key()))


def load_public_keys(path: Path) -> dict[str, Ed25519PublicKey]:
    """Every Ed25519 public key (PEM blocks) in ``path``, by key id: a file may hold a rotated set."""
    text = path.read_bytes()
    keys: dict[str, Ed25519PublicKey] = {}
    for block in text.split(b"-----END PUBLIC KEY-----"):
        if b"-----BEGIN PUBLIC KEY-----" not in block:
            continue
        public = serialization.load_pem_public_key(block[block.index(b"-----BEGIN PUBLIC KEY-----") :] + b"-----END PUBLIC KEY-----\n")
        if not isinstance(public, Ed25519PublicKey):
            raise ValueError(f"{path} holds a key that is not Ed25519")
        keys[key_id(public)] = public
    if not keys:
        raise ValueError(f"{path} holds no PEM public key")
    return keys


def signature_ok(public: Ed25519PublicKey, message: bytes, signature: str) -> bool:
    try:
        public.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True

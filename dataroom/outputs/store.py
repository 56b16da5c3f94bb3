"""Content-addressed, read-only files for release objects under ``$DATAROOM_HOME/releases``.

``submitted/<sha256>`` holds what a request carried, ``released/<sha256>`` what two reviewers
released. Files are written once (temporary file, fsync, mode 0444, rename) and never rewritten;
every read checks the bytes against their name, so a file changed on disk is refused, not served.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

_HEX = re.compile(r"^[0-9a-f]{64}$")
READ_ONLY = 0o444


class StoreError(RuntimeError):
    """An object is missing or its bytes no longer match their SHA-256 (say so without paths)."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ReleaseStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, area: str, digest: str) -> Path:
        if area not in ("submitted", "released") or not _HEX.match(digest):
            raise StoreError("not a release object name")
        return self.root / area / digest

    def put(self, area: str, data: bytes) -> str:
        """Store ``data`` under its SHA-256 in ``area`` (once); returns the hex digest."""
        digest = sha256_hex(data)
        path = self._path(area, digest)
        if path.exists():
            self.read(area, digest)  # the same name must hold the same bytes
            return digest
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{digest}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, READ_ONLY)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return digest

    def read(self, area: str, digest: str) -> bytes:
        """The bytes stored as ``digest``; StoreError if missing or not matching their hash."""
        path = self._path(area, digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise StoreError(f"release object {digest[:12]}… is missing from the store") from exc
        if sha256_hex(data) != digest:
            raise StoreError(f"release object {digest[:12]}… no longer matches its SHA-256: it was changed on disk and is not served")
        return data

    def release(self, digest: str) -> str:
        """Copy a submitted object to the released area (verified on both sides); returns its digest."""
        return self.put("released", self.read("submitted", digest))

"""Temporary directories the data room's unprivileged accounts can reach.

As root, `dataroom up` runs the broker as the service account and every notebook server as its
user's account, so $DATAROOM_HOME and the hub state must lie below directories others may
traverse. pytest's own temporary directories sit below /tmp/pytest-of-root, which is 0700 (and
pytest resets it), so hub tests make theirs here: 0711, removed afterwards.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def reachable_tmp(prefix: str) -> Iterator[Path]:
    """A new directory others may traverse (not list), removed with all it holds at the end."""
    path = Path(tempfile.mkdtemp(prefix=f"dataroom-{prefix}-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)

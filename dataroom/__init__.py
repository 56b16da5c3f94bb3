"""Secured data room: governed, audited DuckDB/Polars access to production Parquet from JupyterHub.

In a data room notebook: ``dataroom.connect(project=...)`` (see :mod:`dataroom.client`) and
``%load_ext dataroom`` for the ``%%sql`` magic (see :mod:`dataroom.magics`). Both are imported
lazily, so ``import dataroom`` stays light.
"""

from __future__ import annotations

from typing import Any


def connect(project: str | None = None, **kwargs: Any):
    """Connect to the data room broker; see :func:`dataroom.client.connect`."""
    from dataroom.client import connect as _connect

    return _connect(project, **kwargs)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext dataroom``: the ``%%sql`` and ``%sql`` magics (see :mod:`dataroom.magics`)."""
    from dataroom.magics import load_ipython_extension as _load

    _load(ipython)

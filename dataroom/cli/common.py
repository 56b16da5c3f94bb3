"""Helpers shared by the CLI modules: settings, the query service, result rendering."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
import polars as pl
import pyarrow as pa

from dataroom.catalog import CatalogError
from dataroom.pipeline import QueryService
from dataroom.settings import Settings


def service() -> QueryService:
    """The query service for the current settings; a bad catalog is a usage error (exit 2)."""
    try:
        return QueryService(Settings())
    except CatalogError as exc:
        raise click.UsageError(str(exc)) from exc


def render(table: pa.Table, fmt: str, extra: dict[str, Any] | None = None) -> str:
    """The result as text; any shape DuckDB returns renders (see :mod:`dataroom.frames`)."""
    from dataroom.frames import csv_text, to_polars

    if fmt == "csv":
        return csv_text(table)
    frame = to_polars(table)
    if fmt == "json":
        return json.dumps({**(extra or {}), "columns": frame.columns, "rows": frame.rows(named=True)}, default=str, indent=2)
    with pl.Config(tbl_rows=50, tbl_cols=30, fmt_str_lengths=60, tbl_hide_dataframe_shape=False):
        return str(frame)


def echo_err(message: str) -> None:
    click.echo(message, err=True)


def exit_with(code: int) -> None:
    sys.exit(code)

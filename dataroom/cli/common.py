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


def _flat_for_csv(table: pa.Table) -> pa.Table:
    """CSV has no nested values: lists, structs and maps become JSON text in their cell."""
    for i, field in enumerate(table.schema):
        if pa.types.is_nested(field.type):
            cells = [None if v is None else json.dumps(v, default=str) for v in table.column(i).to_pylist()]
            table = table.set_column(i, pa.field(field.name, pa.string()), pa.array(cells, pa.string()))
    return table


def render(table: pa.Table, fmt: str, extra: dict[str, Any] | None = None) -> str:
    if fmt == "csv":
        return pl.from_arrow(_flat_for_csv(table)).write_csv()
    frame = pl.from_arrow(table)
    if fmt == "json":
        return json.dumps({**(extra or {}), "columns": frame.columns, "rows": frame.rows(named=True)}, default=str, indent=2)
    with pl.Config(tbl_rows=50, tbl_cols=30, fmt_str_lengths=60, tbl_hide_dataframe_shape=False):
        return str(frame)


def echo_err(message: str) -> None:
    click.echo(message, err=True)


def exit_with(code: int) -> None:
    sys.exit(code)

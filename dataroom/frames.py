"""Query results (Arrow tables) as Polars frames and as CSV: every shape DuckDB returns renders.

One conversion for both front doors, the ``dataroom query`` CLI and the notebook client, so a
result that renders in one renders in the other. Polars cannot hold everything Arrow can:
duplicate column names (a self-join's ``a.id, b.id``), intervals with months, unions. Those are
converted here instead of failing after the query was allowed, ran and was audited; CSV cells
cannot hold nested values or bytes, so those become JSON text (bytes as DuckDB writes blobs).
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import pyarrow as pa

from dataroom.result_names import renamed_columns, renamed_note, with_unique_names

__all__ = ["csv_text", "notes", "to_polars"]

_INTERVAL = pa.struct([("months", pa.int32()), ("days", pa.int32()), ("nanoseconds", pa.int64())])


def to_polars(table: pa.Table) -> pl.DataFrame:
    """``table`` as a Polars frame: names made unique as DuckDB does, types Polars lacks converted
    (an interval becomes a struct of months, days and nanoseconds; a union its values as JSON text).

    The frame keeps the result's batches as its chunks, as DuckDB's own ``.pl()`` does: joining
    them into one would copy every column (1M rows x 6: 4 of the conversion's 11 ms).
    """
    table = with_unique_names(table)
    if all(_polars_imports(f.type) for f in table.schema):
        return pl.from_arrow(table, rechunk=False)  # type: ignore[return-value]
    columns = [_polars_ready(table.column(i), table.schema.field(i)) for i in range(table.num_columns)]
    return pl.DataFrame(columns)


def csv_text(table: pa.Table) -> str:
    """``table`` as CSV: nested values (lists, structs, maps, unions, intervals) as JSON text in
    their cell, bytes as DuckDB writes blobs (``\\xAA``)."""
    table = with_unique_names(table)
    fields = []
    arrays = []
    for i, field in enumerate(table.schema):
        column = table.column(i)
        if _needs_text(field.type):
            column = pa.chunked_array([_text_cells(column)], pa.string())
            field = pa.field(field.name, pa.string())
        fields.append(field)
        arrays.append(column)
    return to_polars(pa.Table.from_arrays(arrays, schema=pa.schema(fields))).write_csv()


def notes(table: pa.Table) -> list[str]:
    """What a person should know about the result's shape (renamed duplicate columns)."""
    note = renamed_note(renamed_columns(table.schema) or renamed_columns(with_unique_names(table).schema))
    return [note] if note else []


def _polars_imports(kind: pa.DataType) -> bool:
    """Whether Polars imports ``kind``: not an interval or a union at any depth (Polars 2.1 panics
    on an interval inside a list rather than raising)."""
    if pa.types.is_interval(kind) or pa.types.is_union(kind):
        return False
    if isinstance(kind, pa.BaseExtensionType):
        return _polars_imports(kind.storage_type)
    if pa.types.is_map(kind):
        return _polars_imports(kind.key_type) and _polars_imports(kind.item_type)
    if pa.types.is_struct(kind):
        return all(_polars_imports(kind.field(i).type) for i in range(kind.num_fields))
    if hasattr(kind, "value_type"):  # list, large_list, fixed_size_list, list_view, dictionary
        return _polars_imports(kind.value_type)
    return True


def _polars_ready(column: pa.ChunkedArray, field: pa.Field) -> pl.Series:
    if _polars_imports(field.type):
        return pl.Series(field.name, column)
    if pa.types.is_interval(field.type):  # as Polars' own POLARS_IMPORT_INTERVAL_AS_STRUCT does
        cells = [None if v is None else {"months": v.months, "days": v.days, "nanoseconds": v.nanoseconds} for v in column.to_pylist()]
        return pl.Series(field.name, pa.array(cells, _INTERVAL))
    return pl.Series(field.name, _text_cells(column), dtype=pl.String)


def _needs_text(kind: pa.DataType) -> bool:
    return (
        pa.types.is_nested(kind)
        or pa.types.is_union(kind)
        or pa.types.is_interval(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_fixed_size_binary(kind)
        or pa.types.is_binary_view(kind)
        or isinstance(kind, pa.ExtensionType)
        or isinstance(kind, pa.BaseExtensionType)
    )


def _text_cells(column: pa.ChunkedArray) -> pa.Array:
    """One text cell per value: strings as they are, bytes as a blob literal, the rest as JSON."""
    if isinstance(column.type, pa.BaseExtensionType):
        column = pa.chunked_array([c.storage for c in column.chunks], column.type.storage_type)
    values = column.to_pylist()
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type) or pa.types.is_fixed_size_binary(column.type) or pa.types.is_binary_view(column.type):
        return pa.array([None if v is None else _blob(v) for v in values], pa.string())
    return pa.array([None if v is None else json.dumps(_jsonable(v), ensure_ascii=False, default=str) for v in values], pa.string())


def _jsonable(value: Any) -> Any:
    """Arrow's Python values as JSON values: a map (a list of key/value tuples) becomes an object."""
    if isinstance(value, list):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
            if all(isinstance(k, str) for k, _ in value):
                return {k: _jsonable(v) for k, v in value}
            return [[_jsonable(k), _jsonable(v)] for k, v in value]
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray)):
        return _blob(bytes(value))
    if isinstance(value, pa.MonthDayNano):
        return {"months": value.months, "days": value.days, "nanoseconds": value.nanoseconds}
    return value


def _blob(data: bytes) -> str:
    """Bytes as DuckDB writes a BLOB: printable ASCII as is, everything else ``\\xHH``."""
    return "".join(chr(b) if 32 <= b < 127 and b != 92 else f"\\x{b:02X}" for b in data)

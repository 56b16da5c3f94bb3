"""The engine's last step under an output policy: keep the supported groups, then the query's
own DISTINCT, ORDER BY and LIMIT, so that neither a sort nor a limit reveals a suppressed group.

Runs in the execution worker over the groups the rewritten statement returned
(:mod:`dataroom.outputs.aggregation`), on a connection of its own that holds nothing else.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

SUPPORT_ROWS = "__dr_rows"  # the rows behind a group (aggregation.py adds it)
SUPPORT_TENANTS = "__dr_tenants"  # the tenants behind a group
GROUPS = "__dr_groups"  # the relation the finish step reads


@dataclass(frozen=True)
class Finish:
    """The step the engine runs over the groups: keep those with support, then DISTINCT/ORDER/LIMIT.

    ``sql`` reads ``__dr_groups`` whose first ``outputs`` columns are renamed ``c0, c1, …``; it is
    written here from the parse tree's ORDER BY/LIMIT parts only (no user text), so it cannot
    read anything but the groups.
    """

    sql: str
    outputs: int
    min_rows: int
    min_tenants: int

    def to_dict(self) -> dict[str, Any]:
        return {"sql": self.sql, "outputs": self.outputs, "min_rows": self.min_rows, "min_tenants": self.min_tenants}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Finish":
        return cls(str(data["sql"]), int(data["outputs"]), int(data["min_rows"]), int(data["min_tenants"]))

    @property
    def support_condition(self) -> str:
        return f"({SUPPORT_ROWS} IS NULL OR ({SUPPORT_ROWS} >= {self.min_rows} AND {SUPPORT_TENANTS} >= {self.min_tenants}))"


def finish_groups(groups: pa.Table, finish: Finish) -> tuple[pa.Table, int]:
    """Keep the groups with support, then the query's DISTINCT/ORDER/LIMIT; returns (result, suppressed).

    Runs in the engine worker on a connection of its own that holds nothing but the groups.
    """
    names = groups.column_names
    renamed = groups.rename_columns([f"c{i}" if i < finish.outputs else n for i, n in enumerate(names)])
    rows, tenants = renamed.column(SUPPORT_ROWS), renamed.column(SUPPORT_TENANTS)
    supported = pc.or_kleene(pc.is_null(rows), pc.and_(pc.greater_equal(rows, finish.min_rows), pc.greater_equal(tenants, finish.min_tenants)))
    suppressed = groups.num_rows - pc.sum(pc.cast(supported, "int64")).as_py() if groups.num_rows else 0
    con = _finish_connection()
    con.register(GROUPS, renamed)
    try:
        result = con.sql(finish.sql).to_arrow_table()
    finally:
        con.unregister(GROUPS)
    return result.rename_columns(names[: finish.outputs]), int(suppressed)


@functools.cache
def _finish_connection() -> duckdb.DuckDBPyConnection:
    """One connection per worker for the finish step: no data, no files (opening one costs ~50 ms)."""
    return duckdb.connect(config={"enable_external_access": False, "threads": 1})

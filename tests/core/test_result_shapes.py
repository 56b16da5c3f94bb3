"""Every result renders (issue 17 item 9): a corpus of result shapes through `dataroom query` in
every format, run as the real CLI. The notebook client's side is tests/hub/test_client_result_shapes.py.

Duplicate names (a repeated column, a self-join), nested structs, lists, maps and intervals,
empty results, 1,000 columns, unicode names: none crashes, duplicates are made unique the way
DuckDB's own ``.pl()`` does and a note says so, and CSV cells hold nested values as JSON.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from dataroom.frames import csv_text, to_polars
from dataroom.result_names import renamed_columns, unique_names, with_unique_names

DATAROOM = [sys.executable, "-m", "dataroom.cli"]
WIDE = "SELECT " + ", ".join(f"cvss + {i} AS c{i}" for i in range(1000)) + " FROM acme.findings LIMIT 2"
WIDE_DUPLICATES = "SELECT " + ", ".join(["cvss"] * 1000) + " FROM acme.findings LIMIT 2"

SHAPES = {
    "repeated_column": ("SELECT severity, severity FROM acme.findings LIMIT 3", ["severity", "severity_1"]),
    "self_join": ("SELECT a.cvss, b.cvss, a.cvss FROM acme.findings a JOIN acme.findings b USING (finding_id) LIMIT 3", ["cvss", "cvss_1", "cvss_2"]),
    "case_and_collision": ('SELECT cvss AS a, cvss AS "A", cvss AS a_1 FROM acme.findings LIMIT 1', ["a", "A_1", "a_1_1"]),
    "nested": (
        "SELECT {'score': cvss, 'tags': [severity]} AS s, [cvss, cvss] AS l, map([severity], [cvss]) AS m, "
        "remediated_at - detected_at AS took, [remediated_at - detected_at] AS tooks FROM acme.findings LIMIT 2",
        ["s", "l", "m", "took", "tooks"],
    ),
    "empty": ("SELECT severity, cvss FROM acme.findings WHERE false", ["severity", "cvss"]),
    "empty_nested": ("SELECT [cvss] AS l, severity, severity FROM acme.findings WHERE false", ["l", "severity", "severity_1"]),
    "wide": (WIDE, [f"c{i}" for i in range(1000)]),
    "wide_duplicates": (WIDE_DUPLICATES, ["cvss"] + [f"cvss_{i}" for i in range(1, 1000)]),
    "unicode": ('SELECT severity AS "Schweregrad ✓", cvss AS "重要度", cvss AS "重要度" FROM acme.findings LIMIT 2', ["Schweregrad ✓", "重要度", "重要度_1"]),
}

# how many columns each shape renames (the others: none)
RENAMED = {"repeated_column": 1, "self_join": 2, "case_and_collision": 2, "empty_nested": 1, "wide_duplicates": 999, "unicode": 1}


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATAROOM_HOME": str(home)}
    return subprocess.run(DATAROOM + list(args), capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_shape_renders_in_every_format(dataroom_home: Path, shape: str, fmt: str) -> None:
    sql, names = SHAPES[shape]
    out = cli(dataroom_home, "query", "-u", "alice", "-p", "remediation-acme", "--format", fmt, sql)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Traceback" not in out.stderr and "Error" not in out.stderr
    renamed = RENAMED.get(shape, 0)
    if fmt == "json":
        doc = json.loads(out.stdout)
        assert doc["columns"] == names
        json.dumps(doc["rows"])  # plain JSON all the way down
        assert len(doc["renamed_columns"]) == renamed
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(out.stdout)))
        assert rows[0] == names
        if shape == "nested":
            cells = dict(zip(rows[0], rows[1]))
            assert json.loads(cells["s"])["tags"] in (["low"], ["medium"], ["high"], ["critical"])
            assert len(json.loads(cells["l"])) == 2
            assert list(json.loads(cells["m"]).values()) == [json.loads(cells["s"])["score"]]
            assert set(json.loads(cells["took"])) == {"months", "days", "nanoseconds"}
            assert set(json.loads(cells["tooks"])[0]) == {"months", "days", "nanoseconds"}
    else:
        assert "shape:" in out.stdout
    note = [line for line in out.stderr.splitlines() if line.startswith("note: duplicate result column names")]
    assert len(note) == (1 if renamed else 0), out.stderr


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["a", "a", "a", "a_1"], ["a", "a_1", "a_2", "a_1_1"]),
        (["a", "A", "b", "b", "b_1"], ["a", "A_1", "b", "b_1", "b_1_1"]),
        (["x", "y"], ["x", "y"]),
        ([], []),
    ],
)
def test_unique_names_match_duckdbs_own_dataframes(names: list[str], expected: list[str]) -> None:
    assert unique_names(names) == expected
    if names:
        sql = "SELECT " + ", ".join(f'{i} AS "{n}"' for i, n in enumerate(names))
        assert duckdb.sql(sql).pl().columns == expected  # DuckDB's own .pl() is the reference


def test_renaming_is_recorded_in_the_schema_and_survives_ipc() -> None:
    table = with_unique_names(duckdb.sql("SELECT 1 AS d_year, 2 AS d_year").to_arrow_table())
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    back = pa.ipc.open_stream(sink.getvalue()).read_all()
    assert back.column_names == ["d_year", "d_year_1"]
    assert renamed_columns(back.schema) == [{"column": "d_year_1", "original": "d_year"}]


@pytest.mark.parametrize(
    "expr",
    ["INTERVAL 3 DAY", "[INTERVAL 1 DAY]", "{'i': INTERVAL 1 MONTH}", "union_value(n := 2)", "'\\xAA'::BLOB", "'1'::BIGNUM", "MAP {1: 2}", "NULL::GEOMETRY", "'101'::BIT", "[1, 2]::INTEGER[2]"],
)
def test_types_polars_lacks_still_convert(expr: str) -> None:
    """Types a governed query may not produce today (denied functions) but the conversion must not crash on."""
    table = duckdb.sql(f"SELECT {expr} AS v, {expr} AS v").to_arrow_table()
    frame = to_polars(table)
    assert frame.columns == ["v", "v_1"] and frame.height == 1
    str(frame)
    json.dumps(frame.rows(named=True), default=str)
    assert csv_text(table).splitlines()[0] == "v,v_1"


def test_a_result_nested_past_arrows_limit_is_bad_input(dataroom_home: Path) -> None:
    """63 nested lists: DuckDB computes it, Arrow cannot carry it (64 levels). Exit 2, not an internal error."""
    sql = "SELECT " + "[" * 63 + "1" + "]" * 63 + " AS deep"
    out = cli(dataroom_home, "query", "-u", "alice", "-p", "remediation-acme", sql)
    assert out.returncode == 2, out.stderr
    assert "cannot be returned as Arrow" in out.stderr and "Traceback" not in out.stderr
    ok = cli(dataroom_home, "query", "-u", "alice", "-p", "remediation-acme", "--format", "csv", "SELECT " + "[" * 30 + "1" + "]" * 30 + " AS deep")
    assert ok.returncode == 0 and json.loads(ok.stdout.splitlines()[1]) == json.loads("[" * 30 + "1" + "]" * 30)


def test_the_frame_keeps_the_results_batches_as_chunks() -> None:
    """As DuckDB's own ``.pl()``: the worker's batches become the frame's chunks, not one copy."""
    batches = [pa.record_batch({"n": [1, 2], "s": ["a", "b"]}), pa.record_batch({"n": [3], "s": ["c"]})]
    frame = to_polars(pa.Table.from_batches(batches))
    assert frame.n_chunks("all") == [2, 2]
    assert frame.to_dict(as_series=False) == {"n": [1, 2, 3], "s": ["a", "b", "c"]}

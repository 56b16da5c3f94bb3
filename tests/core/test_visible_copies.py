"""Visible-column copies keep the source's layout, and never more than the visible columns.

A file whose columns are exactly the visible ones is copied byte for byte (so a project scans
what a raw query scans); anything else is rewritten with the source's codec and row groups. The
attacker's angle: a file that holds one column more than the catalog lists (unclassified, so
PII) must never be byte-copied, whatever its other columns are.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataroom.engines.visible_copies import visible_copy

ROWS = 5_000


def write(path: Path, columns: dict[str, list], *, compression: str = "snappy", row_group_size: int = 1_000) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path, compression=compression, row_group_size=row_group_size)
    return str(path)


@pytest.fixture
def source(tmp_path: Path) -> str:
    return write(tmp_path / "src" / "part-0.parquet", {"id": list(range(ROWS)), "city": [f"c{i % 7}" for i in range(ROWS)]})


def test_all_columns_visible_is_a_byte_copy(tmp_path: Path, source: str) -> None:
    [copy] = visible_copy("t.x", [source], ["id", "city"], tmp_path / "cache")
    assert Path(copy).read_bytes() == Path(source).read_bytes()
    assert Path(copy).stat().st_mode & 0o777 == 0o600


def test_column_names_compare_without_case(tmp_path: Path) -> None:
    upper = write(tmp_path / "src" / "upper.parquet", {"ID": [1, 2], "City": ["a", "b"]})
    [copy] = visible_copy("t.x", [upper], ["id", "city"], tmp_path / "cache")
    assert Path(copy).read_bytes() == Path(upper).read_bytes()


def test_a_withheld_column_is_dropped_and_the_layout_kept(tmp_path: Path, source: str) -> None:
    [copy] = visible_copy("t.x", [source], ["id"], tmp_path / "cache")
    meta = pq.ParquetFile(copy).metadata
    assert meta.schema.to_arrow_schema().names == ["id"]
    assert meta.row_group(0).column(0).compression == "SNAPPY"  # the source's codec, not a default
    assert meta.row_group(0).num_rows == 1_000  # the source's row groups
    assert pq.read_table(copy).column("id").to_pylist() == list(range(ROWS))


def test_zstd_sources_stay_zstd(tmp_path: Path) -> None:
    src = write(tmp_path / "src" / "z.parquet", {"id": [1, 2, 3], "secret": ["a", "b", "c"]}, compression="zstd")
    [copy] = visible_copy("t.x", [src], ["id"], tmp_path / "cache")
    assert pq.ParquetFile(copy).metadata.row_group(0).column(0).compression == "ZSTD"


@pytest.mark.parametrize(
    "columns",
    [
        {"id": [1, 2], "city": ["a", "b"], "email": ["x@y", "z@w"]},  # one column more than the catalog lists
        {"id": [1, 2], "email": ["x@y", "z@w"]},  # as many columns, but not the same ones
        {"id": [1, 2], "ID": [3, 4], "city": ["a", "b"]},  # a name repeated in another case
    ],
    ids=["extra column", "same count other column", "case duplicate"],
)
def test_a_file_with_any_other_column_is_never_byte_copied(tmp_path: Path, columns: dict) -> None:
    src = write(tmp_path / "src" / "p.parquet", columns)
    try:
        [copy] = visible_copy("t.x", [src], ["id", "city"], tmp_path / "cache")
    except Exception:
        return  # refusing the file is as good: nothing was copied
    assert Path(copy).read_bytes() != Path(src).read_bytes()
    names = pq.ParquetFile(copy).metadata.schema.to_arrow_schema().names
    assert "email" not in names and len(names) == len({n.lower() for n in names})

"""The 22 TPC-H queries through the governed path, at scale factor 0.01, against raw DuckDB.

Real analytic SQL (correlated subqueries, EXISTS, self-joins, CTEs, LIMIT over ties) is where an
analysis, a rewrite or an engine guard would break first. The benchmark (``benchmarks/bench_tpch.py``)
times these queries; this test holds what it assumes: the 17 that read no withheld column are
allowed and return exactly raw DuckDB's results over the original files, and the five that read a
phone number or an address are denied by the PII rule, naming the column, and never execute.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from benchmarks.bench_tpch import PROJECT, SCHEMA, USER, generate, same_result
from benchmarks.tpch_queries import QUERIES, TABLES, qualified
from dataroom.pipeline import Outcome, QueryService
from dataroom.settings import Settings

DENIED = {2: "s_address", 10: "c_address", 15: "s_address", 20: "s_address", 22: "c_phone"}


@pytest.fixture(scope="module")
def tpch(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("tpch") / "home"
    generate(home, 0.01)
    service = QueryService(Settings(home=home))
    raw = duckdb.connect()
    raw.execute(f"CREATE SCHEMA {SCHEMA}")
    for table in TABLES:
        raw.execute(f"CREATE VIEW {SCHEMA}.{table} AS SELECT * FROM read_parquet('{home}/data/{table}/*.parquet')")
    yield service, raw
    service.close()
    raw.close()


@pytest.mark.parametrize("number", sorted(QUERIES))
def test_tpch_query_through_the_room(tpch, number: int) -> None:
    service, raw = tpch
    sql = qualified(QUERIES[number], SCHEMA)
    outcome = service.run(USER, PROJECT, sql)
    if number in DENIED:
        assert outcome.outcome is Outcome.DENIED, outcome.summary()
        assert {r.code for r in outcome.reasons} == {"pii_column"}
        assert any(DENIED[number] in r.message for r in outcome.reasons)
        assert outcome.result is None
        return
    assert outcome.outcome is Outcome.ALLOWED, outcome.summary()
    expected = raw.sql(sql).to_arrow_table()
    assert expected.num_rows > 0, f"Q{number} returned no rows at this scale: the comparison would be empty"
    assert same_result(outcome.table, expected) is None

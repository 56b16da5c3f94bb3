"""The analysis learns a text's statement kinds and parse errors from one parse when it can.

``analyse`` asks DuckDB for the parse tree first (``json_serialize_sql``, which serializes only
SELECT statements) and parses again only for anything else. These cases pin what the policy
sees for each kind of text, so that the shortcut can never turn a write, a second statement or
an unparsable text into a single analysable read.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dataroom.analysis import analyse
from dataroom.catalog import load_catalog


@pytest.fixture(scope="module")
def catalog(demo_template: Path):
    return load_catalog(demo_template / "catalog.toml")  # read only


@pytest.mark.parametrize(
    ("sql", "kinds", "parse_error"),
    [
        ("SELECT severity FROM acme.findings", ["SELECT"], None),
        ("SELECT severity FROM acme.findings;", ["SELECT"], None),
        ("DESCRIBE acme.findings", ["SELECT"], None),
        ("SELECT 1; SELECT 2", ["SELECT", "SELECT"], None),
        ("SELECT 1; DROP TABLE acme.findings", ["SELECT", "DROP"], None),
        ("DROP TABLE acme.findings", ["DROP"], None),
        ("EXPLAIN SELECT 1", ["EXPLAIN"], None),
        ("COPY acme.findings TO '/tmp/out.csv'", ["COPY"], None),
        ("PIVOT acme.findings ON severity", ["MULTI"], None),
        ("", [], "the query text holds no SQL statement"),
        (" ; ; ", [], "the query text holds no SQL statement"),
        ("-- only a comment", [], "the query text holds no SQL statement"),
    ],
)
def test_statement_kinds(catalog, sql: str, kinds: list[str], parse_error: str | None) -> None:
    facts = analyse(sql, catalog)
    assert facts.statement_kinds == kinds
    assert facts.parse_error == parse_error
    if kinds != ["SELECT"]:
        assert facts.tables == [] and facts.columns == []  # nothing analysed: the policy denies it as it is


def test_an_unparsable_text_says_why(catalog) -> None:
    facts = analyse("SELEC severity FROM acme.findings", catalog)
    assert facts.statement_kinds == []
    assert facts.parse_error is not None and "syntax error" in facts.parse_error


def test_a_single_read_is_analysed(catalog) -> None:
    facts = analyse("SELECT severity, count(*) FROM acme.findings GROUP BY 1", catalog)
    assert facts.statement_kinds == ["SELECT"] and facts.parse_error is None
    assert facts.tables == ["acme.findings"]
    assert {(c.table, c.column) for c in facts.columns} == {("acme.findings", "severity")}

"""DuckDB's parse tree as JSON (``json_serialize_sql``): parsing, printing and walking it.

The output-policy rewrite (:mod:`dataroom.outputs.aggregation`) edits these trees; fragments it
grafts in are parsed by DuckDB too (cached), never assembled by hand.
"""

from __future__ import annotations

import functools
import json
import threading
from typing import Any, Iterator

import duckdb


class Parser:
    """One DuckDB connection per thread, only for the parser and the aggregate function list."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._aggregates: frozenset[str] | None = None

    def connection(self) -> duckdb.DuckDBPyConnection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = duckdb.connect(config={"enable_external_access": False, "threads": 1})
            self._local.con = con
        return con

    def tree(self, sql: str) -> dict:
        raw = self.connection().execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0]
        return json.loads(raw)

    def sql(self, tree: dict) -> str:
        return self.connection().execute("SELECT json_deserialize_sql(?::JSON)", [json.dumps(tree)]).fetchall()[0][0]

    def aggregates(self) -> frozenset[str]:
        if self._aggregates is None:
            rows = self.connection().execute("SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type = 'aggregate'").fetchall()
            self._aggregates = frozenset(r[0].lower() for r in rows) | {"count_star"}
        return self._aggregates

    def expression(self, text: str) -> dict:
        """The parse tree of one expression, taken from ``SELECT <text>`` (a fresh copy: callers edit it)."""
        return json.loads(self._fragment(f"SELECT {text}", "select_list"))

    def table_ref(self, text: str) -> dict:
        return json.loads(self._fragment(f"SELECT * FROM {text}", "from_table"))

    @functools.lru_cache(maxsize=512)  # the same few fragments recur in every rewrite
    def _fragment(self, sql: str, part: str) -> str:
        node = self.tree(sql)["statements"][0]["node"][part]
        return json.dumps(node[0] if part == "select_list" else node)


PARSER = Parser()


def walk(value: Any) -> Iterator[dict]:
    """Every dict in a parse tree, parents before children."""
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk(v)


def expressions(node: dict) -> Iterator[dict]:
    """The expressions a SELECT node evaluates itself (not those of its FROM's subqueries)."""
    for key in ("select_list", "where_clause", "group_expressions", "having", "qualify"):
        yield from walk(node.get(key))
    for modifier in node.get("modifiers") or []:
        yield from walk(modifier)
    yield from join_conditions(node.get("from_table"))


def join_conditions(ref: dict | None) -> Iterator[dict]:
    if ref and ref.get("type") == "JOIN":
        yield from walk(ref.get("condition"))
        yield from join_conditions(ref.get("left"))
        yield from join_conditions(ref.get("right"))


def functions(node: dict) -> Iterator[dict]:
    return (e for e in expressions(node) if e.get("class") == "FUNCTION")


def is_aggregate_node(node: dict) -> bool:
    if node.get("group_expressions") or node.get("group_sets") or node.get("aggregate_handling") == "FORCE_AGGREGATES":
        return True
    aggregates = PARSER.aggregates()
    return any(
        e.get("class") == "FUNCTION" and e.get("function_name", "").lower() in aggregates
        for key in ("select_list", "having")
        for e in walk(node.get(key))
    )


def strip_locations(value: Any) -> Any:
    """A copy without source positions and aliases, for comparing expressions structurally."""
    if isinstance(value, dict):
        return {k: strip_locations(v) for k, v in value.items() if k not in ("query_location", "query_location_length", "alias")}
    if isinstance(value, list):
        return [strip_locations(v) for v in value]
    return value


def constant_int(expression: dict | None) -> int | None:
    if expression and expression.get("class") == "CONSTANT":
        literal = expression.get("literal") or {}
        if literal.get("kind") in ("INTEGER", "BIGINT", "HUGEINT", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER"):
            return int(literal["text"])
    return None

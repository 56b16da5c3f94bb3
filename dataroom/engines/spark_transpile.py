"""Users write one dialect: a decided DuckDB statement as Spark SQL (sqlglot).

Catalog tables are ``<schema>.<table>``; a Spark Connect session holds the project's tables as
temporary views, which have no schema, so ``acme.findings`` is the view ``acme__findings``
(aliased ``findings``, as DuckDB lets a query say ``findings.cvss``) and column references
qualified with the schema lose it. Whatever sqlglot cannot express in Spark is refused with a
clear message (``ErrorLevel.RAISE``), never approximated.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

from dataroom.engines.errors import SqlError

VIEW_SEPARATOR = "__"


def view_name(table_name: str) -> str:
    """The temporary view that holds catalog table ``schema.table`` in a Spark session."""
    schema, _, table = table_name.lower().partition(".")
    return f"{schema}{VIEW_SEPARATOR}{table}"


def to_spark(sql: str, tables: Iterable[str]) -> str:
    """``sql`` (DuckDB dialect, one decided statement) as Spark SQL over the project's views."""
    known = {t.lower() for t in tables}
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
        if len(statements) != 1:
            raise SqlError("the Spark engine runs exactly one statement", "SparkTranspile")
        tree = statements[0]
        for table in list(tree.find_all(exp.Table)):
            qualified = f"{table.db}.{table.name}".lower()
            if table.db and not table.catalog and qualified in known:
                alias = table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table.name))
                table.replace(exp.Table(this=exp.to_identifier(view_name(qualified)), alias=alias))
        for column in tree.find_all(exp.Column):
            if column.args.get("db") is not None and f"{column.db}.{column.table}".lower() in known:
                column.set("db", None)  # acme.findings.cvss → findings.cvss (the view's alias)
        return tree.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SqlError(f"this statement cannot be run on the project's Spark engine: {first}", "SparkTranspile") from None

"""Spark's own guard: independent of the policy, what a Spark session may run.

Two checks, both before anything executes, both refusing as ``engine_guard``:

* :func:`check_text` — the Spark SQL is exactly one query (no command, no DDL, no ``SET``, no
  function registration) and every relation it names is one of the project's views or a CTE of
  the statement itself: no ``parquet.`path``` or other file source, no catalog table, no table
  function; and no name or string holds a line break (which could forge a line of the plan text).
* :func:`check_plan` — Spark's *analyzed logical plan* of the statement (``EXPLAIN EXTENDED``):
  only known read operators; every scan (``Relation``) lies inside one of the project's views;
  every view is the project's and exposes only the table's visible columns; the scans are Parquet
  (no JDBC or other source); no UDF, Java reflection or file-name functions anywhere. Anything
  the parser does not recognise is refused (fail closed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from dataroom.engines.errors import EngineRefusal, SqlError

# Logical operators a read may consist of (Spark 4's names in the analyzed plan).
READ_OPERATORS = frozenset(
    {
        "Project", "Filter", "Aggregate", "Sort", "GlobalLimit", "LocalLimit", "Limit", "Offset", "Tail",
        "SubqueryAlias", "View", "Relation", "Join", "Union", "Distinct", "Deduplicate", "Intersect", "Except",
        "Window", "Expand", "Generate", "OneRowRelation", "LocalRelation", "WithCTE", "CTERelationDef", "CTERelationRef",
        "Sample", "WithWindowDefinition", "Pivot", "Unpivot", "ResolvedHint", "RepartitionByExpression", "Subquery",
    }
)
# Expressions that run user code, reach the JVM or name storage: refused wherever they appear.
FORBIDDEN_EXPRESSIONS = re.compile(
    r"\b(PythonUDF|ScalaUDF|ScalaUDAF|HiveSimpleUDF|HiveGenericUDF|HiveGenericUDTF|HiveUDAFFunction|ArrowEvalPython|"
    r"BatchEvalPython|reflect|java_method|try_reflect|CallMethodViaReflection|StaticInvoke\(class java|"
    r"input_file_name|input_file_block_start|input_file_block_length|_metadata)\b",
    re.IGNORECASE,
)
_NODE = re.compile(r"^(?P<indent>[ :|+\-]*)(?P<name>'?[A-Za-z][A-Za-z0-9]*)")
_VIEW = re.compile(r"^View \(`(?P<name>[^`]+)`, \[(?P<columns>[^\]]*)\]\)")
_RELATION = re.compile(r"^Relation (?:[^\[]*)\[(?P<columns>[^\]]*)\] (?P<format>\w+)\s*$")
_ATTRIBUTE_ID = re.compile(r"#\d+L?$")
ANALYSIS_ERROR = "org.apache.spark.sql.AnalysisException: "  # how EXPLAIN reports a statement Spark cannot analyse

REFUSED = "the Spark engine's guard refused the statement"


def _refuse(why: str) -> EngineRefusal:
    return EngineRefusal("engine_guard", f"{REFUSED}: {why}")


def check_text(spark_sql: str, views: Mapping[str, list[str]]) -> None:
    """One query over the project's views only (``views``: view name → its visible columns)."""
    try:
        statements = [s for s in sqlglot.parse(spark_sql, read="spark") if s is not None]
    except SqlglotError:
        raise _refuse("it cannot be read as one Spark SQL query") from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise _refuse("only one read-only query may run")
    tree = statements[0]
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            raise _refuse("table functions and file sources are not available")
        name = table.name.lower()
        if table.db or table.catalog or (name not in views and name not in ctes):
            raise _refuse(f"{table.sql(dialect='spark')} is not one of the project's tables")
    for node in tree.find_all(exp.Identifier, exp.Literal):
        if any(c in str(node.this) for c in "\n\r"):  # a line break in a name or string could forge a line of the plan text
            raise _refuse("names and strings with line breaks are not available on Spark")
    if FORBIDDEN_EXPRESSIONS.search(spark_sql):
        raise _refuse("user-defined functions, Java reflection and file metadata are not available")


def analyzed_plan(explain_extended: str) -> str:
    """The '== Analyzed Logical Plan ==' section of ``EXPLAIN EXTENDED`` output (without its schema line)."""
    match = re.search(r"== Analyzed Logical Plan ==\n(.*?)\n== Optimized Logical Plan ==", explain_extended, re.DOTALL)
    if match is None:
        raise _refuse("Spark did not describe the statement's plan")
    lines = match.group(1).splitlines()
    if lines and lines[0].startswith(ANALYSIS_ERROR):  # the user's SQL is wrong for Spark: bad input, nothing runs
        raise SqlError(lines[0].removeprefix(ANALYSIS_ERROR).rstrip(";").strip(), "AnalysisException")
    # A query's section starts with its result's schema (names the user chose), then the root
    # node; a command's starts with its root node, its children indented. Only a first line
    # followed by another unindented one is a schema line; the plan then has exactly one root.
    if len(lines) >= 2 and lines[0][:1] not in ("", " ", ":", "+") and lines[1][:1] not in ("", " ", ":", "+"):
        lines = lines[1:]
    if not lines or any(line[:1] not in (" ", ":", "+") for line in lines[1:]):
        raise _refuse("Spark described a plan the guard cannot read")
    return "\n".join(lines)


def check_plan(explain_extended: str, views: Mapping[str, list[str]]) -> None:
    """Refuse unless the analyzed plan is a read of the project's views over their visible columns."""
    plan = analyzed_plan(explain_extended)
    if not plan.strip():
        raise _refuse("Spark did not describe the statement's plan")
    if FORBIDDEN_EXPRESSIONS.search(plan):
        raise _refuse("user-defined functions, Java reflection and file metadata are not available")
    ancestors: list[tuple[int, str | None]] = []  # (indent, the project view it opens or None)
    for line in plan.splitlines():
        match = _NODE.match(line)
        if match is None:
            raise _refuse("Spark described a plan the guard cannot read")
        indent, name = len(match.group("indent")), match.group("name")
        body = line[indent:]
        while ancestors and ancestors[-1][0] >= indent:
            ancestors.pop()
        if name.startswith("'") or name not in READ_OPERATORS:
            raise _refuse(f"the plan contains {name.lstrip(chr(39))}, which is not a read of the project's tables")
        opened = None
        if name == "View":
            view = _VIEW.match(body)
            if view is None or view.group("name").lower() not in views:
                raise _refuse("the plan reads a view that is not one of the project's tables")
            opened = view.group("name").lower()
            exposed = {_ATTRIBUTE_ID.sub("", c.strip()).lower() for c in view.group("columns").split(",") if c.strip()}
            withheld = exposed - {c.lower() for c in views[opened]}
            if withheld:
                raise _refuse(f"the plan reads {len(withheld)} column(s) withheld from the project")
        elif name == "Relation":
            relation = _RELATION.match(body)
            if relation is None or relation.group("format").lower() != "parquet":
                raise _refuse("the plan reads a source that is not the project's Parquet data")
            if not any(v is not None for _, v in ancestors):
                raise _refuse("the plan reads data outside the project's tables")
        ancestors.append((indent, opened))

"""SQL analysis: what a query statement would touch, read from DuckDB's own parser.

DuckDB parses the text (``json_serialize_sql`` for the parse tree of a read statement, and
``extract_statements`` for the kinds of anything else), so there is no second SQL dialect to
drift from DuckDB.
The walk over the tree resolves every column reference against the catalog tables in the query.

Resolution over-approximates on purpose (fail closed): an unqualified name that matches a column
of *any* catalog table in the query counts as a reference to each of them, and a name that is
neither a catalog column nor something the query itself defines (an alias, a CTE, a lambda
parameter) is reported as unresolved, which the policy denies.

Every function the query calls is listed in ``facts.functions`` for the policy's allow-list
(``policies/query/functions.rego``): scalar, aggregate and window functions, operators the parser
turns into functions (``+``, ``||``, ``~~`` for LIKE), functions the parser generates for syntax
(``[1, 2]`` is ``list_value``, ``EXTRACT`` is ``date_part``), table functions (also in
``facts.table_functions``), method calls (``cvss.round()`` is ``round`` over column ``cvss``) and
the SQL value functions DuckDB binds a bare name to (``current_schema``, ``user``). A call written
with a schema or catalog (``main.current_setting``) is listed with that qualification, so it never
matches the allow-list by accident.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator

import duckdb

from dataroom.catalog import Catalog, Table

# Parse-tree keys that name the clause a nested expression belongs to (used in reasons).
_CLAUSES = {
    "select_list": "select",
    "where_clause": "where",
    "condition": "join",
    "using_columns": "join",
    "group_expressions": "group by",
    "having": "having",
    "qualify": "qualify",
    "modifiers": "order by",
    "aggregates": "pivot",
    "pivots": "pivot",
    "partitions": "window",
    "orders": "order by",
}
_FILE_HINTS = ("/", "\\", ":", ".parquet", ".csv", ".json", ".txt", ".db", ".duckdb", ".gz", "*")

# Bare names DuckDB's binder turns into a function call when no column of that name is in scope
# (ExpressionBinder::GetSQLValueFunctionName): `SELECT current_schema` calls current_schema().
SQL_VALUE_FUNCTIONS = {
    "current_catalog": "current_catalog",
    "current_date": "current_date",
    "current_role": "current_role",
    "current_schema": "current_schema",
    "current_time": "get_current_time",
    "current_timestamp": "get_current_timestamp",
    "current_user": "current_user",
    "localtime": "current_localtime",
    "localtimestamp": "current_localtimestamp",
    "session_user": "session_user",
    "user": "user",
}
# Schemas and catalogs that hold functions or objects in every DuckDB session. A call qualified by
# one of these (or by a catalog schema) is a catalog lookup, never a method call on a column.
_BUILTIN_NAMESPACES = {"main", "pg_catalog", "information_schema", "system", "temp", "memory"}


@dataclass(frozen=True)
class ColumnFact:
    table: str
    column: str
    classification: str
    tenant: str | None
    clause: str


@dataclass(frozen=True)
class StarFact:
    """A ``*``, ``t.*``, ``COLUMNS(...)`` or whole-row reference; expands over visible columns only."""

    relation: str | None
    kind: str  # star | columns | whole_row | describe | summarize
    clause: str


@dataclass
class QueryFacts:
    """Everything the policy needs to know about one SQL text (the ``facts`` of the policy input)."""

    statement_kinds: list[str] = field(default_factory=list)
    parse_error: str | None = None
    tables: list[str] = field(default_factory=list)  # catalog tables referenced
    unknown_tables: list[str] = field(default_factory=list)  # not in the catalog (and not a CTE)
    file_reads: list[str] = field(default_factory=list)  # FROM 'file.parquet' replacement scans
    table_functions: list[str] = field(default_factory=list)
    columns: list[ColumnFact] = field(default_factory=list)
    unresolved_columns: list[str] = field(default_factory=list)
    stars: list[StarFact] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)  # every function called (see the module docstring)
    tenants: list[str] = field(default_factory=list)
    parameters: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (built by hand: ``dataclasses.asdict`` costs more than the analysis)."""
        doc = dict(vars(self))
        doc["columns"] = [dict(vars(c)) for c in self.columns]
        doc["stars"] = [dict(vars(s)) for s in self.stars]
        for key in ("statement_kinds", "tables", "unknown_tables", "file_reads", "table_functions", "unresolved_columns", "functions", "tenants"):
            doc[key] = list(doc[key])
        return doc


class _Parser:
    """One DuckDB connection per thread, used only to run the parser (no data, no files)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def connection(self) -> duckdb.DuckDBPyConnection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = duckdb.connect(config={"enable_external_access": False, "threads": 1})
            self._local.con = con
        return con


_PARSER = _Parser()


def analyse(sql: str, catalog: Catalog) -> QueryFacts:
    """Analyse ``sql`` against ``catalog``; never raises for bad SQL (it lands in ``parse_error``)."""
    facts = QueryFacts()
    # The parse tree first: DuckDB serializes SELECT statements only, so a tree of one statement
    # is the common case (one parse); anything else is parsed again to learn its kinds or error.
    try:
        tree = json.loads(_PARSER.connection().execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0])
    except duckdb.Error:
        tree = {"error": True}
    if not tree.get("error") and len(tree["statements"]) == 1:
        facts.statement_kinds = ["SELECT"]
        _Resolver(catalog, facts).run(tree["statements"])
        return facts
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        facts.parse_error = _first_line(exc)
        return facts
    facts.statement_kinds = [s.type.name for s in statements]
    if not statements:
        facts.parse_error = "the query text holds no SQL statement"
    elif facts.statement_kinds == ["SELECT"]:  # a read DuckDB cannot serialize (the policy denies it unanalysed)
        facts.parse_error = tree.get("error_message", "the statement cannot be analysed")
    return facts  # else the policy denies anything but a single read statement; nothing more to learn


def _qualified_name(function: dict) -> str:
    """``catalog.schema.name`` as written (lower case), or the bare name of an unqualified call."""
    path = (function.get("qualified_name") or {}).get("path")
    if not path:
        path = [function.get("catalog"), function.get("schema"), function.get("function_name", "?")]
    return ".".join(str(p).lower() for p in path if p)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@dataclass
class _Relation:
    table: Table | None  # None for CTEs, subqueries and table functions


class _Resolver:
    """Walks a parse tree once, collecting raw references, then resolves them against the catalog."""

    def __init__(self, catalog: Catalog, facts: QueryFacts) -> None:
        self.catalog = catalog
        self.facts = facts
        self.cte_names: set[str] = set()
        self.relations: dict[str, _Relation] = {}  # alias or table name -> relation
        self.defined: set[str] = set()  # names the query defines: aliases, CTE columns, lambda params
        self.column_refs: list[tuple[list[str], str]] = []
        self.scope: dict[str, Table] = {}
        self.namespaces = _BUILTIN_NAMESPACES | {t.schema_name.lower() for t in catalog.tables.values()}
        self.table_function_nodes: set[int] = set()  # ids of the FUNCTION nodes of table functions

    def run(self, statements: list[dict]) -> None:
        for node, _ in self._nodes(statements, "select"):
            self._collect_definitions(node)
        for node, clause in self._nodes(statements, "select"):
            self._collect_reference(node, clause)
        self._resolve_columns()
        f = self.facts
        f.tables = sorted(self.scope)
        f.tenants = sorted({t.tenant for t in self.scope.values() if t.tenant})
        f.unknown_tables = sorted(set(f.unknown_tables))
        f.file_reads = sorted(set(f.file_reads))
        f.table_functions = sorted(set(f.table_functions))
        f.functions = sorted(set(f.functions))
        f.unresolved_columns = sorted(set(f.unresolved_columns))
        f.columns = sorted(set(f.columns), key=lambda c: (c.table, c.column, c.clause))

    def _nodes(self, value: Any, clause: str) -> Iterator[tuple[dict, str]]:
        """Every dict in the tree with the clause it sits in."""
        stack: list[tuple[Any, str]] = [(value, clause)]
        while stack:
            item, where = stack.pop()
            if isinstance(item, dict):
                yield item, where
                if item.get("class") == "WINDOW":
                    where = "window"
                elif item.get("type") == "PIVOT":
                    where = "pivot"
                for key, child in item.items():
                    if isinstance(child, (dict, list)):
                        stack.append((child, _CLAUSES.get(key, where)))
            elif isinstance(item, list):
                stack.extend((child, where) for child in item)

    def _collect_definitions(self, node: dict) -> None:
        alias = node.get("alias")
        if isinstance(alias, str) and alias:
            self.defined.add(alias.lower())
        for name in node.get("column_name_alias") or []:
            self.defined.add(str(name).lower())
        for name in node.get("unpivot_names") or []:
            self.defined.add(str(name).lower())
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            for entry in cte_map.get("map") or []:
                self.cte_names.add(str(entry.get("key", "")).lower())
                for name in (entry.get("value") or {}).get("aliases") or []:
                    self.defined.add(str(name).lower())
        if node.get("class") == "LAMBDA":
            for _, names in self._column_names(node.get("lhs")):
                self.defined.update(n.lower() for n in names)
        if node.get("type") == "PIVOT":
            for pivot in node.get("pivots") or []:
                for entry in pivot.get("entries") or []:
                    for value in entry.get("values") or []:
                        if isinstance(value, dict) and "value" in value:
                            self.defined.add(str(value["value"]).lower())
                    literal = ((entry.get("star_expr") or {}).get("literal") or {}).get("text")
                    if literal is not None:
                        self.defined.add(str(literal).lower())
                    if entry.get("alias"):
                        self.defined.add(str(entry["alias"]).lower())

    def _column_names(self, node: Any) -> Iterator[tuple[dict, list[str]]]:
        for item, _ in self._nodes(node, "select"):
            if item.get("class") == "COLUMN_REF":
                yield item, [str(n) for n in item.get("column_names") or []]

    def _collect_reference(self, node: dict, clause: str) -> None:
        kind = node.get("type")
        cls = node.get("class")
        if kind == "BASE_TABLE":
            self._table_ref(node)
        elif kind == "TABLE_FUNCTION":
            function = node.get("function") or {}
            self.table_function_nodes.add(id(function))
            self.facts.table_functions.append(_qualified_name(function))
            if node.get("alias"):
                self.relations[node["alias"].lower()] = _Relation(None)
        elif kind == "SUBQUERY" and cls is None and node.get("alias"):
            self.relations[node["alias"].lower()] = _Relation(None)
        elif kind == "SHOW_REF":
            show = str(node.get("show_type", "SHOW")).lower()
            self.facts.stars.append(StarFact(None, "summarize" if show == "summary" else "describe", clause))
            if not node.get("query"):
                self.facts.unknown_tables.append(str(node.get("table_name") or "SHOW TABLES"))
        elif cls == "COLUMN_REF":
            self.column_refs.append(([str(n) for n in node.get("column_names") or []], clause))
        elif cls == "STAR":
            relation = node.get("relation_name") or None
            self.facts.stars.append(StarFact(relation.lower() if relation else None, "columns" if node.get("columns") else "star", clause))
        elif "function_name" in node:  # FUNCTION and WINDOW expressions, the calls of table functions
            self._function_call(node, clause)
        elif cls == "PARAMETER":
            self.facts.parameters += 1
        if kind == "JOIN":
            for name in node.get("using_columns") or []:
                self.column_refs.append(([str(name)], "join"))

    def _function_call(self, node: dict, clause: str) -> None:
        """Record a call; ``x.f()`` on a column ``x`` is a method call: ``f`` over column ``x``.

        DuckDB binds ``q.f()`` as the catalog function ``f`` of schema ``q`` when that exists, and
        otherwise as ``f(q)``. A qualifier that names no namespace of the session is a column
        (its reference is resolved like any other); anything else is recorded fully qualified.
        """
        qualifier = [str(p) for p in (node.get("catalog"), node.get("schema")) if p]
        path = (node.get("qualified_name") or {}).get("path") or []
        method_call = (
            qualifier
            and id(node) not in self.table_function_nodes
            and len(path) <= 3  # a.b.c.f(): DuckDB's own reading of four parts is not a column path
            and not any(q.lower() in self.namespaces for q in qualifier)
        )
        if method_call:
            self.column_refs.append((qualifier, clause))
            self.facts.functions.append(str(node.get("function_name", "?")).lower())
        else:
            self.facts.functions.append(_qualified_name(node))

    def _table_ref(self, node: dict) -> None:
        catalog_name = str(node.get("catalog_name") or "")
        schema = str(node.get("schema_name") or "")
        name = str(node.get("table_name") or "")
        alias = str(node.get("alias") or "").lower()
        if not schema and not catalog_name and name.lower() in self.cte_names:
            self.relations[alias or name.lower()] = _Relation(None)
            return
        qualified = ".".join(p for p in (catalog_name, schema, name) if p)
        if not schema and any(h in name.lower() for h in _FILE_HINTS):
            self.facts.file_reads.append(name)
            return
        table = self.catalog.table(f"{schema}.{name}") if schema and not catalog_name else None
        if table is None:
            self.facts.unknown_tables.append(qualified)
            return
        self.scope[table.name] = table
        self.relations[alias or table.table_name] = _Relation(table)
        if not alias:
            self.relations[table.name] = _Relation(table)

    def _candidates(self, column: str) -> list[Table]:
        return [t for t in self.scope.values() if column in t.columns]

    def _add(self, table: Table, column: str, clause: str) -> None:
        self.facts.columns.append(
            ColumnFact(table.name, column, table.classification(column).value, table.tenant, clause)
        )

    def _resolve_columns(self) -> None:
        for names, clause in self.column_refs:
            lowered = [n.lower() for n in names]
            if not lowered:
                continue
            if len(lowered) == 1:
                self._resolve_name(lowered[0], lowered, clause)
            elif not self._resolve_qualified(lowered, clause):
                self._resolve_struct_field(lowered, clause)

    def _resolve_qualified(self, names: list[str], clause: str) -> bool:
        """``alias.col``, ``schema.table.col``: resolve against that relation when it is a catalog table."""
        for width in (2, 1):  # schema.table.col before alias.col
            if len(names) <= width:
                continue
            qualifier = ".".join(names[:width])
            relation = self.relations.get(qualifier)
            if relation is None:
                continue
            column = names[width]
            if relation.table is None:  # a CTE or subquery: fall back to name matching
                self._resolve_name(column, names, clause)
            elif column in relation.table.columns:
                self._add(relation.table, column, clause)
            else:
                self.facts.unresolved_columns.append(".".join(names))
            return True
        return False

    def _resolve_struct_field(self, names: list[str], clause: str) -> None:
        """``s.field`` where ``s`` is no relation: a struct column (or alias) and its field.

        Both ends are matched against catalog columns (over-approximation); it is unresolved only
        if neither matches and the first name is nothing the query defines.
        """
        matched = False
        for candidate in {names[0], names[-1]}:
            for table in self._candidates(candidate):
                self._add(table, candidate, clause)
                matched = True
        if not matched and names[0] not in self.defined:
            self.facts.unresolved_columns.append(".".join(names))

    def _resolve_name(self, column: str, names: list[str], clause: str) -> None:
        matched = False
        for table in self._candidates(column):
            self._add(table, column, clause)
            matched = True
        if len(names) == 1 and column in self.relations:  # whole-row reference: SELECT f FROM t f
            relation = self.relations[column]
            self.facts.stars.append(StarFact(relation.table.name if relation.table else column, "whole_row", clause))
            matched = True
        if not matched and len(names) == 1 and column in SQL_VALUE_FUNCTIONS:
            # No catalog column of that name: DuckDB calls the function (an alias of the same
            # name in some other scope does not matter: listing the call is the safe side).
            self.facts.functions.append(SQL_VALUE_FUNCTIONS[column])
            matched = True
        if not matched and column not in self.defined:
            self.facts.unresolved_columns.append(".".join(names))

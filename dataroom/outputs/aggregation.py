"""Aggregation constraints: every released group is backed by enough rows and enough tenants.

A project's output policy (``min_rows``, ``min_tenants``; on by default for multi-tenant
projects) says how many source rows and how many tenants must stand behind each row of a
result. The support is computed *with* the query, never by a second one that could disagree:
the statement is rewritten through DuckDB's own parse tree (``json_serialize_sql`` /
``json_deserialize_sql``) so that each output group carries two more aggregates, its row count
and its distinct-tenant count. The engine then keeps only the groups that meet the policy and
applies the query's own DISTINCT, ORDER BY and LIMIT to them (:class:`Finish`), so a LIMIT or a
sort can never reveal a group that was suppressed.

How each source row knows its tenant: a tenant's table is one relation (``acme.findings``), so a
base table contributes its tenant as a constant (one bit per tenant of the project), and
row-level subqueries, CTEs and UNION ALL branches pass a ``__dr_tenant`` column up to the
aggregate. When rows can be repeated before they are counted (joins, a table or CTE read twice,
``unnest``), rows are counted by identity instead (the session's identity views give each
Parquet row its file and row number), so duplication never inflates the support.

What cannot be rewritten soundly is refused with advice (the policy turns :attr:`OutputPlan.problem`
into a denial): row-level output, nested aggregates, subquery expressions, window functions over
groups, UNION/INTERSECT/EXCEPT without ALL, joins between two tenants' tables. Which aggregate
functions may be used is the policy's call (``policies/query/output.rego``), from
:attr:`OutputPlan.aggregates`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import duckdb

from dataroom.catalog import Catalog, Project
from dataroom.engines.duckdb_session import IDENTITY_SCHEMA, identity_view_name
from dataroom.outputs.finish import GROUPS, SUPPORT_ROWS, SUPPORT_TENANTS, Finish
from dataroom.outputs.parse_tree import PARSER, constant_int, expressions, functions, is_aggregate_node, strip_locations, walk
from dataroom.outputs.policy import OutputPolicy

TENANT = "__dr_tenant"  # a row's tenant, carried up from the base table
ROW = "__dr_row"  # a row's identity within its base table (counting by identity only)
ORDER_KEY = "__dr_order_{}"
SET_RETURNING = {"unnest", "unlist"}


@dataclass
class OutputPlan:
    """What the policy is told (:meth:`facts`) and what the engine runs (``groups_sql`` + ``finish``)."""

    policy: OutputPolicy
    problem: str | None = None  # why the support cannot be computed, and what to write instead
    aggregates: list[str] = field(default_factory=list)  # aggregate functions the statement calls
    groups_sql: str | None = None
    finish: Finish | None = None
    counting: str = "rows"  # rows | identity

    def facts(self) -> dict[str, Any]:
        return {"policy": self.policy.to_dict(), "problem": self.problem, "aggregates": sorted(set(self.aggregates)), "counting": self.counting}


class Unsupported(Exception):
    """A construct whose support cannot be computed soundly; the message says what to write instead."""


# -- the rewrite -----------------------------------------------------------------------------------
@dataclass
class _Tag:
    """How a relation's rows name their tenant (and identity): SQL expressions, or None if untagged."""

    tenant: str | None
    row: str | None = None
    relation: str | None = None  # the alias whose star (``alias.*`` or ``*``) would show hidden columns
    hidden: tuple[str, ...] = ()  # columns this relation adds that the user's stars must not see


class _Rewriter:
    def __init__(self, catalog: Catalog, policy: OutputPolicy, tenants: list[str]) -> None:
        self.catalog = catalog
        self.policy = policy
        # Each tenant is one bit: a group's tenant count is bit_count(bit_or(...)), which DuckDB
        # aggregates in parallel (count(DISTINCT ...) over strings cost several times the query).
        self.tenant_bits = {t: 1 << i for i, t in enumerate(sorted(tenants))}
        self.aggregates: list[str] = []
        self.identity = False  # count rows by identity (set by _needs_identity before rewriting)

    # The statement --------------------------------------------------------------------------
    def plan(self, sql: str) -> OutputPlan:
        if len(self.tenant_bits) > 63:
            raise Unsupported("the output policy counts at most 63 tenants per project")
        tree = PARSER.tree(sql)
        if tree.get("error"):
            raise ValueError(tree.get("error_message", "unparseable"))  # the analysis already denies it
        statements = tree["statements"]
        if len(statements) != 1:
            raise ValueError("one statement")
        root = statements[0]["node"]
        self.identity = self._needs_identity(root)
        if root["type"] == "SET_OPERATION_NODE":
            finish = self._set_operation_top(root, {})
        elif root["type"] == "SELECT_NODE":
            finish = self._aggregate_top(root, {})
        else:
            raise Unsupported(f"a {root['type'].lower().replace('_', ' ')} cannot be checked against the output policy: write one SELECT … GROUP BY")
        return OutputPlan(
            self.policy,
            aggregates=self.aggregates,
            groups_sql=PARSER.sql(tree),
            finish=finish,
            counting="identity" if self.identity else "rows",
        )

    def _needs_identity(self, root: dict) -> bool:
        """Could a source row be counted twice? A join other than on a reference table's key, a
        tenant table or CTE read twice, a set-returning function."""
        seen: dict[str, int] = {}
        for node in walk(root):
            kind = node.get("type")
            if kind == "JOIN" and not self._key_join(node):
                return True
            if kind == "BASE_TABLE":
                schema, name = (node.get("schema_name") or "").lower(), node.get("table_name", "").lower()
                table = self.catalog.tables.get(f"{schema}.{name}")
                if table is not None and not table.tenant:
                    continue  # reference data repeats nothing by being read twice (its joins are checked)
                seen[f"{schema}.{name}"] = seen.get(f"{schema}.{name}", 0) + 1
                if seen[f"{schema}.{name}"] > 1:
                    return True
            if node.get("class") == "FUNCTION" and node.get("function_name", "").lower() in SET_RETURNING:
                return True
        return False

    def _key_join(self, join: dict) -> bool:
        """A join that matches each row of one side with at most one row of the other: the other
        is a local reference table joined on the whole of its catalog key (checked unique when its
        copy is built), with equalities only (``USING (key)`` or ``ON x = alias.key AND ...``)."""
        if join.get("ref_type") != "REGULAR":
            return False
        for side in (join.get("right"), join.get("left")):
            if not side or side.get("type") != "BASE_TABLE" or side.get("sample"):
                continue
            table = self.catalog.tables.get(f"{(side.get('schema_name') or '').lower()}.{side.get('table_name', '').lower()}")
            if table is None or table.tenant or table.is_remote or not table.unique:
                continue
            alias = (side.get("alias") or side["table_name"]).lower()
            if set(table.unique) <= {c.lower() for c in join.get("using_columns") or []}:
                return True
            if set(table.unique) <= _equated_columns(join.get("condition"), alias):
                return True
        return False

    def _ctes(self, node: dict, outer: dict[str, _Tag]) -> dict[str, _Tag]:
        """Tag the CTEs a node defines (each must be row-level); returns the names in scope."""
        scope = dict(outer)
        for entry in (node.get("cte_map") or {}).get("map") or []:
            value = entry["value"]
            if value.get("materialized") not in (None, "CTE_MATERIALIZE_DEFAULT", "CTE_MATERIALIZE_ALWAYS", "CTE_MATERIALIZE_NEVER"):
                raise Unsupported("this CTE form cannot be checked against the output policy")
            if value.get("key_targets") or value.get("payload_aggregates"):
                raise Unsupported("recursive CTEs cannot be checked against the output policy: write the query without them")
            name = entry["key"].lower()
            if name in _cte_references(value["query_node"]):
                raise Unsupported("recursive CTEs cannot be checked against the output policy: write the query without them")
            scope[name] = self._row_level(value["query_node"], scope, where=f"CTE {entry['key']}")
        return scope

    # Top level: the aggregate -------------------------------------------------------------
    def _set_operation_top(self, node: dict, ctes: dict[str, _Tag]) -> Finish:
        if node.get("setop_type") != "UNION" or not node.get("setop_all"):
            raise Unsupported(
                f"{node.get('setop_type', 'a set operation')} without ALL merges rows of different groups, so their support "
                "cannot be counted: combine aggregates with UNION ALL"
            )
        ctes = self._ctes(node, ctes)
        finishes = [self._aggregate_top(child, ctes, branch=True) for child in _set_children(node)]
        outputs = finishes[0].outputs
        return self._finish(node, outputs, hidden_orders=[], set_operation=True)

    def _aggregate_top(self, node: dict, ctes: dict[str, _Tag], branch: bool = False) -> Finish:
        if node["type"] != "SELECT_NODE":
            raise Unsupported("nested set operations cannot be checked against the output policy: use one UNION ALL of aggregates")
        ctes = self._ctes(node, ctes)
        if not is_aggregate_node(node):
            raise Unsupported(
                "the project's output policy releases aggregates only, and this query returns rows: "
                "aggregate them, e.g. SELECT cve_id, count(*) AS n … GROUP BY cve_id"
            )
        self._check_expressions(node, aggregate=True)
        tag = self._source(node, ctes)
        _exclude_from_stars(node, tag)
        self.aggregates += [f["function_name"].lower() for f in functions(node) if f["function_name"].lower() in PARSER.aggregates()]
        outputs = len(node["select_list"])
        hidden_orders: list[tuple[int, dict]] = []
        if not branch:
            hidden_orders = self._order_keys(node)
        modifiers = node.get("modifiers") or []
        if branch and modifiers:
            raise Unsupported("ORDER BY, LIMIT or DISTINCT inside a UNION ALL branch cannot be checked: put them after the last branch")
        node["modifiers"] = []
        for i, (_, expression) in enumerate(hidden_orders):
            node["select_list"].append({**copy.deepcopy(expression), "alias": ORDER_KEY.format(i)})
        node["select_list"] += self._support(tag)
        if branch:
            return Finish("", outputs, self.policy.min_rows, self.policy.min_tenants)
        node["_modifiers"] = modifiers  # removed again by _finish
        return self._finish(node, outputs, hidden_orders)

    def _support(self, tag: _Tag) -> list[dict]:
        if tag.tenant is None:  # only reference data: not a tenant's rows, no constraint
            return [PARSER.expression(f"NULL::BIGINT AS {SUPPORT_ROWS}"), PARSER.expression(f"NULL::BIGINT AS {SUPPORT_TENANTS}")]
        rows = f"count(DISTINCT ({tag.tenant}, {tag.row}))" if self.identity else "count(*)"
        return [PARSER.expression(f"{rows} AS {SUPPORT_ROWS}"), PARSER.expression(f"bit_count(bit_or({tag.tenant})) AS {SUPPORT_TENANTS}")]

    def _order_keys(self, node: dict) -> list[tuple[int, dict]]:
        """ORDER BY terms that are not output columns become hidden columns of the groups."""
        hidden: list[tuple[int, dict]] = []
        select = node["select_list"]
        aliases = {e.get("alias", "").lower(): i for i, e in enumerate(select) if e.get("alias")}
        shapes = [strip_locations(e) for e in select]
        for modifier in node.get("modifiers") or []:
            if modifier["type"] != "ORDER_MODIFIER":
                continue
            for term in modifier["orders"]:
                expression = term["expression"]
                position = constant_int(expression)
                names = expression.get("column_names") if expression.get("class") == "COLUMN_REF" else None
                if expression.get("class") == "STAR":  # ORDER BY ALL
                    term["_all"] = True
                elif position is not None:
                    term["_output"] = position - 1
                elif names and len(names) == 1 and names[0].lower() in aliases:
                    term["_output"] = aliases[names[0].lower()]
                elif strip_locations(expression) in shapes:
                    term["_output"] = shapes.index(strip_locations(expression))
                elif node.get("aggregate_handling") == "FORCE_AGGREGATES" and not any(
                    e.get("class") == "FUNCTION" and e.get("function_name", "").lower() in PARSER.aggregates() for e in walk(expression)
                ):
                    raise Unsupported("with GROUP BY ALL, ORDER BY an output column (by name or position)")
                else:
                    term["_hidden"] = len(hidden)
                    hidden.append((len(hidden), expression))
        return hidden

    def _finish(self, node: dict, outputs: int, hidden_orders: list, set_operation: bool = False) -> Finish:
        modifiers = node.pop("_modifiers", None) if not set_operation else node.get("modifiers") or []
        if set_operation:
            node["modifiers"] = []
        distinct, orders, limit = False, [], ""
        for modifier in modifiers or []:
            kind = modifier["type"]
            if kind == "DISTINCT_MODIFIER":
                if modifier.get("distinct_on_targets"):
                    raise Unsupported("DISTINCT ON cannot be checked against the output policy: use GROUP BY")
                distinct = True
            elif kind == "ORDER_MODIFIER":
                for term in modifier["orders"]:
                    direction = {"ASCENDING": " ASC", "DESCENDING": " DESC"}.get(term["type"], "")
                    nulls = {"NULLS_FIRST": " NULLS FIRST", "NULLS_LAST": " NULLS LAST"}.get(term["null_order"], "")
                    if term.get("_all") or term["expression"].get("class") == "STAR":
                        orders += [f"c{i}{direction}{nulls}" for i in range(outputs)]
                        continue
                    if "_output" in term:
                        index = term["_output"]
                    elif "_hidden" in term:
                        index = None
                    else:  # a set operation's ORDER BY names output columns
                        index = _set_order_output(term["expression"], outputs)
                    if index is not None and not 0 <= index < outputs:
                        raise Unsupported("ORDER BY position is out of range")
                    column = f"c{index}" if index is not None else ORDER_KEY.format(term["_hidden"])
                    orders.append(f"{column}{direction}{nulls}")
            elif kind == "LIMIT_MODIFIER":
                count, offset = modifier.get("limit"), modifier.get("offset")
                values = [(constant_int(count), count), (constant_int(offset), offset)]
                if any(v is None and raw is not None for v, raw in values):
                    raise Unsupported("LIMIT and OFFSET must be plain numbers under the output policy")
                if values[0][0] is not None:
                    limit += f" LIMIT {values[0][0]}"
                if values[1][0] is not None:
                    limit += f" OFFSET {values[1][0]}"
            else:
                raise Unsupported(f"{kind.replace('_MODIFIER', '').lower()} cannot be checked against the output policy")
        columns = ", ".join(f"c{i}" for i in range(outputs))
        finish = Finish("", outputs, self.policy.min_rows, self.policy.min_tenants)
        order_by = f" ORDER BY {', '.join(orders)}" if orders else ""
        sql = f"SELECT {'DISTINCT ' if distinct else ''}{columns} FROM {GROUPS} WHERE {finish.support_condition}{order_by}{limit}"
        return Finish(sql, outputs, self.policy.min_rows, self.policy.min_tenants)

    # Checks shared by every level ------------------------------------------------------------
    def _check_expressions(self, node: dict, aggregate: bool) -> None:
        if node.get("sample"):
            raise Unsupported("USING SAMPLE cannot be checked against the output policy")
        if node.get("qualify"):
            raise Unsupported("QUALIFY cannot be checked against the output policy: filter groups with HAVING")
        for e in expressions(node):
            if e.get("class") == "SUBQUERY":
                raise Unsupported(
                    "subquery expressions (scalar, IN, EXISTS) cannot be checked against the output policy: "
                    "join the data in the FROM clause or run two queries"
                )
            if aggregate and e.get("class") == "WINDOW":
                raise Unsupported(
                    "window functions over groups would see groups the output policy suppresses: "
                    "compute them in the notebook on the result"
                )

    # Sources: tag every relation with its tenant -------------------------------------------
    def _source(self, node: dict, ctes: dict[str, _Tag]) -> _Tag:
        tags = self._tags(node, node.get("from_table"), ctes)
        tenant = [t for t in tags if t.tenant is not None]
        if len(tenant) > 1:
            raise Unsupported(
                "a join of two tenant tables cannot be checked against the output policy: "
                "aggregate each table separately, or join tenant tables in a single-tenant project"
            )
        return tenant[0] if tenant else _Tag(None)

    def _tags(self, node: dict, ref: dict | None, ctes: dict[str, _Tag]) -> list[_Tag]:
        if ref is None or ref.get("type") == "EMPTY":
            return []
        kind = ref["type"]
        if ref.get("sample"):
            raise Unsupported("TABLESAMPLE cannot be checked against the output policy")
        if kind == "JOIN":
            return self._tags(node, ref["left"], ctes) + self._tags(node, ref["right"], ctes)
        if kind == "BASE_TABLE":
            return [self._base_table(node, ref, ctes)]
        if kind == "SUBQUERY":
            inner = ref["subquery"]["node"]
            tag = self._row_level(inner, ctes, where="a subquery")
            if tag.tenant is None:
                return [tag]
            alias = ref.get("alias") or ""
            prefix = f"{_quote(alias)}." if alias else ""
            return [_Tag(prefix + TENANT, prefix + ROW if self.identity else None, alias, self._hidden())]
        raise Unsupported(f"{kind.lower().replace('_', ' ')} in FROM cannot be checked against the output policy")

    def _base_table(self, node: dict, ref: dict, ctes: dict[str, _Tag]) -> _Tag:
        schema, name = (ref.get("schema_name") or "").lower(), ref["table_name"].lower()
        alias = ref.get("alias") or ref["table_name"]
        if not schema and name in ctes:
            if ctes[name].tenant is None:
                return ctes[name]
            return _Tag(f"{_quote(alias)}.{TENANT}", f"{_quote(alias)}.{ROW}" if self.identity else None, alias, self._hidden())
        table = self.catalog.tables.get(f"{schema}.{name}")
        if table is None or not table.tenant:
            return _Tag(None)  # reference data (or a name the analysis already refused)
        if table.tenant not in self.tenant_bits:
            raise Unsupported(f"table {table.name} belongs to a tenant outside the project")
        tenant = f"{self.tenant_bits[table.tenant]}::UBIGINT"
        if not self.identity:
            return _Tag(tenant)
        # Read the same rows through the session's identity view: they keep it through joins and unnest.
        numbered = PARSER.table_ref(f"{IDENTITY_SCHEMA}.{_quote(identity_view_name(table.schema_name, table.table_name))} AS {_quote(alias)}")
        numbered["column_name_alias"] = ref.get("column_name_alias") or []
        ref.clear()
        ref.update(numbered)
        _unqualify_columns(node, schema, name, alias)
        return _Tag(tenant, f"{_quote(alias)}.{ROW}", alias, (ROW,))

    def _hidden(self) -> tuple[str, ...]:
        return (TENANT, ROW) if self.identity else (TENANT,)

    def _tenant_neutral(self, node: dict) -> Any:
        """A branch's parse tree with tenant tables' schemas (and all positions and aliases) blanked."""
        shape = strip_locations(node)
        for ref in walk(shape):
            if ref.get("type") == "BASE_TABLE":
                table = self.catalog.tables.get(f"{(ref.get('schema_name') or '').lower()}.{ref.get('table_name', '').lower()}")
                if table is not None and table.tenant:
                    ref["schema_name"], ref["qualified_name"] = "<tenant>", None
            elif ref.get("class") == "COLUMN_REF" and len(ref.get("column_names") or []) >= 3:
                ref["column_names"] = ["<tenant>", *ref["column_names"][1:]]
        return shape

    def _row_level(self, node: dict, ctes: dict[str, _Tag], where: str) -> _Tag:
        """Tag a row-level query (subquery, CTE, UNION ALL branch): add ``__dr_tenant`` (and ``__dr_row``)."""
        if node["type"] == "SET_OPERATION_NODE":
            if node.get("setop_type") != "UNION" or not node.get("setop_all"):
                raise Unsupported(f"{node.get('setop_type', 'a set operation')} without ALL in {where} cannot be checked against the output policy: use UNION ALL")
            if node.get("modifiers"):
                raise Unsupported(f"ORDER BY/LIMIT on a UNION ALL in {where} cannot be checked against the output policy")
            children = _set_children(node)
            shapes = [self._tenant_neutral(child) for child in children]
            tags = [self._row_level(child, ctes, where) for child in children]
            tagged = [t.tenant is not None for t in tags]
            if any(tagged) and not all(tagged):
                raise Unsupported(f"{where} mixes tenant rows with other rows in one UNION ALL; keep reference data in a join")
            if any(tagged) and any(shape != shapes[0] for shape in shapes):
                # A label or a filter of one tenant's branch ('acme' AS t, WHERE false) would let a
                # supported group say something about that tenant alone, or two queries be subtracted.
                raise Unsupported(
                    f"the branches of the UNION ALL in {where} must be the same query over each tenant's table "
                    "(no per-tenant labels, columns or filters): write SELECT <columns> FROM <tenant>.<table> the same way for every tenant"
                )
            return _Tag(TENANT, ROW if self.identity else None) if all(tagged) else _Tag(None)
        if node["type"] != "SELECT_NODE":
            raise Unsupported(f"{where} cannot be checked against the output policy")
        ctes = self._ctes(node, ctes)
        if is_aggregate_node(node):
            raise Unsupported(
                f"nested aggregates ({where} aggregates, and so does the query around it) cannot be checked against the output "
                "policy: aggregate once, and compute further on the released result in the notebook"
            )
        for modifier in node.get("modifiers") or []:
            if modifier["type"] == "DISTINCT_MODIFIER":
                raise Unsupported(f"DISTINCT in {where} changes how rows are counted: use count(DISTINCT …) in the aggregate")
        self._check_expressions(node, aggregate=False)
        tag = self._source(node, ctes)
        _exclude_from_stars(node, tag)
        if tag.tenant is not None:
            node["select_list"].append(PARSER.expression(f"{tag.tenant} AS {TENANT}"))
            if self.identity:
                node["select_list"].append(PARSER.expression(f"{tag.row} AS {ROW}"))
        return _Tag(TENANT, ROW if self.identity else None) if tag.tenant is not None else _Tag(None)


def _exclude_from_stars(node: dict, tag: _Tag) -> None:
    """The user's ``*`` and ``alias.*`` never show the columns the rewrite added to a relation."""
    if not tag.hidden:
        return
    for item in node["select_list"]:
        for star in walk(item):
            if star.get("class") != "STAR" or (star.get("relation_name") or "").lower() not in ("", (tag.relation or "").lower()):
                continue
            if star.get("columns") and star.get("expr") is not None:
                raise Unsupported("COLUMNS(<pattern>) cannot be checked against the output policy: name the columns")
            star["exclude_list"] = list(star.get("exclude_list") or []) + [c for c in tag.hidden if c not in (star.get("exclude_list") or [])]


def _equated_columns(condition: dict | None, alias: str) -> set[str]:
    """Columns of ``alias`` that a join condition (equalities joined by AND) sets equal to a column
    of another relation; empty when the condition is anything else."""
    if condition is None:
        return set()
    if condition.get("class") == "CONJUNCTION" and condition.get("type") == "CONJUNCTION_AND":
        found: set[str] = set()
        for child in condition.get("children") or []:
            found |= _equated_columns(child, alias)
        return found
    if condition.get("class") != "COMPARISON" or condition.get("type") != "COMPARE_EQUAL":
        return set()
    sides = [condition.get("left") or {}, condition.get("right") or {}]
    names = [s.get("column_names") if s.get("class") == "COLUMN_REF" else None for s in sides]
    if not all(n and len(n) == 2 for n in names):
        return set()
    mine = [n for n in names if n[0].lower() == alias]
    theirs = [n for n in names if n[0].lower() != alias]
    return {mine[0][1].lower()} if len(mine) == 1 and len(theirs) == 1 else set()


def _set_children(node: dict) -> list[dict]:
    children = node.get("children")
    if children:
        return children
    return [c for c in (node.get("left"), node.get("right")) if c]


def _set_order_output(expression: dict, outputs: int) -> int:
    position = constant_int(expression)
    if position is not None:
        return position - 1
    raise Unsupported("after UNION ALL, ORDER BY output positions (ORDER BY 1, 2)")


def _cte_references(node: dict) -> set[str]:
    return {n["table_name"].lower() for n in walk(node) if n.get("type") == "BASE_TABLE" and not n.get("schema_name")}


def _unqualify_columns(node: dict, schema: str, table: str, alias: str) -> None:
    """``acme.findings.col`` → ``alias.col`` once ``acme.findings`` is replaced by a numbered subquery."""
    for e in expressions(node):
        names = e.get("column_names") if e.get("class") == "COLUMN_REF" else None
        if names and len(names) >= 3 and names[0].lower() == schema and names[1].lower() == table:
            e["column_names"] = [alias, *names[2:]]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def plan_output(sql: str, catalog: Catalog, project: Project) -> OutputPlan | None:
    """The project's output plan for ``sql``; None when the project has no output policy.

    Never raises for user input: what cannot be rewritten comes back as :attr:`OutputPlan.problem`.
    """
    policy = OutputPolicy.for_project(project)
    if policy is None:
        return None
    rewriter = _Rewriter(catalog, policy, list(project.tenants))
    try:
        return rewriter.plan(sql)
    except Unsupported as exc:
        return OutputPlan(policy, problem=str(exc), aggregates=rewriter.aggregates)
    except (ValueError, KeyError, TypeError, IndexError, duckdb.Error) as exc:
        return OutputPlan(policy, problem=f"the statement cannot be checked against the output policy ({type(exc).__name__})")

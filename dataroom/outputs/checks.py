"""Output checks: the checker's report that goes with every release request.

Tables get ACRO's statistical disclosure control rules as far as an aggregate allows, plus ours:

* ``threshold`` (ACRO ``MinimumThresholdCheck``, run through :class:`acro.sdcchecks.SDCChecks` on the
  table's count columns, threshold 10 from ACRO's ``default.yaml``): a count below the threshold is
  a cell that may need suppressing. A table without a count column cannot be checked: ``review``.
* ``dominance`` (ACRO ``NKCheck`` n=2, k=0.9 and ``PPercentCheck`` p=0.1): both need each cell's
  contributors, which ACRO takes from the microdata it tabulates itself. A released aggregate does
  not carry them, so a table with magnitude columns (sums, means) gets ``review`` naming the rule
  for the reviewer, who sees the queries behind it. (Running ACRO's table functions would need the
  raw rows inside the checker: the broker holds no such copy.)
* ``rounding`` (ACRO's ``round`` mitigation, base 5): advisory, lists counts that are not multiples.
* ``sensitive_columns`` (ours): a column named like a PII or quasi-identifier column of the
  project's tables fails; a name that contains one (``min(asset_ip)``) is for review.
* ``identifying_values`` (ours): values that look like e-mail addresses, IPv4/IPv6 or MAC addresses fail.
* ``single_tenant`` (ours, multi-tenant projects): a cell holding a tenant's name keys a row backed
  by that tenant alone: fail.
* ``support`` (ours): the audited queries linked to the request carry the broker's aggregation
  constraints (``output_policy`` in their completion records: ``min_rows``, ``min_tenants``,
  ``suppressed``); without them the support of the object is unknown and says so (``review``).

Figures and text get the checks that apply (values, tenants, support) and a ``review`` note that a
picture's numbers cannot be checked automatically. Status: ``fail`` if any check fails, else
``review`` if any asks for it, else ``pass``; ``info`` never changes it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl

from dataroom.outputs.objects import check_text, decode_table

MAX_CELLS_REPORTED = 50
SEVERITY = {"pass": 0, "info": 0, "review": 1, "fail": 2}
COUNT_COLUMN = re.compile(r"^(n|count|cnt|freq|frequency|rows|num|count_star\(\)|count\(.*\)|n_\w+|num_\w+|\w+_count|\w+_n|count_\w+)$", re.I)
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
IPV6 = re.compile(r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*")  # candidates; ipaddress decides
MAC = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}(?![0-9A-Fa-f:])")


@dataclass
class CheckContext:
    """What the checker knows about the request's project and the queries behind the object."""

    project_id: str
    multi_tenant: bool = False
    tenants: list[str] = field(default_factory=list)
    sensitive_columns: dict[str, str] = field(default_factory=dict)  # column name → pii | quasi_identifier
    queries: list[dict[str, Any]] = field(default_factory=list)  # {decision_id, outcome, status, output_policy}


@dataclass
class Check:
    code: str
    status: str  # pass | info | review | fail
    message: str
    cells: list[list[Any]] = field(default_factory=list)  # [row, column] of the cells concerned (first 50)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "status": self.status, "message": self.message, "cells": self.cells[:MAX_CELLS_REPORTED]}


@lru_cache(maxsize=1)
def acro_risk_appetite() -> dict[str, Any]:
    """ACRO's default SDC parameters (threshold 10, n-k 2/0.9, p-ratio 0.1, round base 5), from its own file."""
    import acro
    import yaml

    with open(Path(acro.__file__).with_name("default.yaml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def acro_threshold_mask(counts: pl.DataFrame) -> tuple[str, str, pl.DataFrame]:
    """ACRO's ``MinimumThresholdCheck`` over a table of counts: (status, summary, mask of cells below)."""
    from acro.sdcchecks import SDCChecks, SDCEvidence

    pdf = counts.to_pandas()
    evidence = SDCEvidence(interim_tables={"count_table": pdf})
    status, summary, mask = SDCChecks(acro_risk_appetite()).check_min_threshold("table", evidence, SimpleNamespace(model_type="table"))
    return status, summary.strip(), pl.from_pandas(mask.fillna(True).astype(bool))


def check_object(kind: str, data: bytes, context: CheckContext) -> dict[str, Any]:
    """The checker's report for one object: ``{"status", "checks": [...], "rules": {...}}``."""
    checks: list[Check] = []
    if kind == "table":
        table = decode_table(data)
        checks += table_checks(table, context)
        checks += value_checks(_string_cells(table), context)
    elif kind == "text":
        text = check_text(data, "the text")
        checks.append(Check("manual", "review", "text: the checker scans it for identifying values; a reviewer reads it"))
        checks += value_checks([(i + 1, "line", line) for i, line in enumerate(text.splitlines())], context)
    else:
        checks.append(Check("manual", "review", "figure: plotted numbers cannot be checked automatically; a reviewer checks every bar, point and label"))
    checks.append(support_check(context))
    status = max((c.status for c in checks), key=lambda s: SEVERITY[s], default="pass")
    status = "pass" if status == "info" else status
    rules = acro_risk_appetite()
    return {
        "status": status,
        "checks": [c.to_dict() for c in checks],
        "rules": {k: rules[k] for k in ("safe_threshold", "safe_nk_n", "safe_nk_k", "safe_pratio_p", "safe_round_base")},
    }


def count_columns(table: pl.DataFrame) -> list[str]:
    return [c for c, t in table.schema.items() if t.is_integer() and COUNT_COLUMN.match(c.strip())]


def table_checks(table: pl.DataFrame, context: CheckContext) -> list[Check]:
    out: list[Check] = []
    rules = acro_risk_appetite()
    counts = count_columns(table)
    if counts:
        status, summary, mask = acro_threshold_mask(table.select(counts))
        cells = [[i, c] for c in counts for i, flagged in enumerate(mask[c].to_list()) if flagged]
        message = f"ACRO MinimumThresholdCheck (threshold {rules['safe_threshold']}) on {', '.join(counts)}: {summary}"
        out.append(Check("threshold", "fail" if cells else "pass", message, cells))
        base = int(rules["safe_round_base"])
        unrounded = [[i, c] for c in counts for i, v in enumerate(table[c].to_list()) if v is not None and v % base]
        if unrounded:
            out.append(Check("rounding", "info", f"{len(unrounded)} count(s) are not multiples of {base}: ACRO's rounding mitigation would round them", unrounded))
    else:
        out.append(Check("threshold", "review", f"no count column (n, count, ..._count): the checker cannot tell whether any row is backed by fewer than {rules['safe_threshold']} records"))
    magnitudes = [c for c, t in table.schema.items() if t.is_numeric() and c not in counts]
    if magnitudes:
        out.append(
            Check(
                "dominance",
                "review",
                f"magnitude column(s) {', '.join(magnitudes)}: ACRO's dominance rules (n-k {rules['safe_nk_n']}/{rules['safe_nk_k']}, "
                f"p-ratio {rules['safe_pratio_p']}) need each cell's contributors, which an aggregate does not carry: check in the "
                "linked queries that no cell is dominated by one or two contributors",
            )
        )
    out.append(column_check(table.columns, context))
    return out


def column_check(columns: list[str], context: CheckContext) -> Check:
    exact, contains = [], []
    for col in columns:
        name = col.strip().lower()
        if name in context.sensitive_columns:
            exact.append(f"{col} ({context.sensitive_columns[name]})")
            continue
        tokens = set(re.split(r"\W+", name))
        hit = sorted(tokens & set(context.sensitive_columns))
        if hit:
            contains.append(f"{col} (mentions {', '.join(hit)})")
    if exact:
        return Check("sensitive_columns", "fail", "column(s) named like PII or quasi-identifier columns: " + "; ".join(exact))
    if contains:
        return Check("sensitive_columns", "review", "column(s) derived from PII or quasi-identifier columns: " + "; ".join(contains))
    return Check("sensitive_columns", "pass", "no column is named like a PII or quasi-identifier column")


def _string_cells(table: pl.DataFrame) -> list[tuple[int, str, str]]:
    cells = []
    for col, dtype in table.schema.items():
        if dtype == pl.String:
            cells += [(i, col, v) for i, v in enumerate(table[col].to_list()) if v]
    cells += [(-1, "header", col) for col in table.columns]  # a header can carry a value too
    return cells


def _looks_identifying(value: str) -> str | None:
    if EMAIL.search(value):
        return "an e-mail address"
    for match in IPV4.findall(value):
        try:
            ipaddress.IPv4Address(match)
            return "an IPv4 address"
        except ValueError:
            continue
    for match in IPV6.findall(value):
        try:
            ipaddress.IPv6Address(match)
            return "an IPv6 address"
        except ValueError:
            continue
    if MAC.search(value):
        return "a MAC address"
    return None


def value_checks(cells: list[tuple[int, str, str]], context: CheckContext) -> list[Check]:
    flagged, kinds = [], set()
    tenant_cells = []
    tenants = {t.lower() for t in context.tenants}
    for row, col, value in cells:
        what = _looks_identifying(value)
        if what:
            flagged.append([row, col])
            kinds.add(what)
        if context.multi_tenant and value.strip().lower() in tenants:
            tenant_cells.append([row, col])
    out = [
        Check("identifying_values", "fail", f"{len(flagged)} cell(s) hold {', '.join(sorted(kinds))}", flagged)
        if flagged
        else Check("identifying_values", "pass", "no cell looks like an e-mail, IP or MAC address")
    ]
    if context.multi_tenant:
        out.append(
            Check("single_tenant", "fail", f"{len(tenant_cells)} cell(s) name a tenant: such a row is backed by that tenant alone (multi-tenant project)", tenant_cells)
            if tenant_cells
            else Check("single_tenant", "pass", "no cell names a tenant")
        )
    return out


def support_check(context: CheckContext) -> Check:
    """Whether the queries behind the object ran under the broker's aggregation constraints."""
    threshold = int(acro_risk_appetite()["safe_threshold"])
    if not context.queries:
        return Check("support", "review", "support unknown: no audited query is linked to this object; the reviewer cannot see where it came from")
    unknown, weak, suppressed = [], [], 0
    for q in context.queries:
        policy = q.get("output_policy")
        if not isinstance(policy, dict):
            unknown.append(q["decision_id"])
            continue
        suppressed += _count(policy.get("suppressed"))
        if _count(policy.get("min_rows")) < threshold or (context.multi_tenant and _count(policy.get("min_tenants")) < 2):
            weak.append(q["decision_id"])
    if unknown:
        return Check("support", "review", f"support unknown for {len(unknown)} of {len(context.queries)} linked queries (no aggregation-constraint facts in their audit records): " + ", ".join(unknown[:10]))
    if weak:
        return Check("support", "review", f"{len(weak)} linked queries ran with constraints below {threshold} rows" + (" or 2 tenants" if context.multi_tenant else "") + ": " + ", ".join(weak[:10]))
    return Check("support", "pass", f"every linked query ran under the aggregation constraints ({suppressed} group(s) suppressed by the broker)")


def _count(value: Any) -> int:
    """An audit fact as a number (a malformed one counts as 0: the check then asks for review)."""
    if isinstance(value, dict):
        value = value.get("rows", 0)
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0

"""The SQL a monitoring run sends through the pipeline, and what comes back.

Everything heavy happens in the engine: a year of 10M-row tenants never travels through Python
row by row. Per segment (tenant) there is **one** scan, grouped by window (``date_trunc('week')``)
with ``GROUPING SETS``: one row of sums per window for the performance metrics (the linear
model's prediction is SQL: ``intercept + Σ coef·feature``) plus one row per window, column and bin
for the drift histograms. Before that, one query over the reference period fixes each monitored
column's bins. Column names come from the registry, which checked them against the catalog.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dataroom.monitoring.drift import Bins

DEFAULT_BINS = 20
MAX_JOINT_CELLS = 400  # bins per window when grouping by every column's bin at once (two columns of 20)
SUMS = ("n", "sy", "syy", "sse", "sae")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _num(value: float) -> str:
    return f"({float(value)!r})"


def prediction_sql(linear: dict[str, Any], features: list[str]) -> str:
    """A linear model's prediction as a SQL expression."""
    terms = [_num(linear["intercept"])] + [f"{_num(c)} * {_ident(f)}" for c, f in zip(linear["coef"], features)]
    return " + ".join(terms)


def reference_bins_sql(tables: list[str], columns: list[str], time_column: str, start: dt.date, end: dt.date) -> str:
    """The 0.5 % and 99.5 % quantiles of each column over the reference period, all segments together."""
    cols = ", ".join(_ident(c) for c in columns)
    where = f"{_ident(time_column)} >= TIMESTAMP '{start.isoformat()}' AND {_ident(time_column)} < TIMESTAMP '{end.isoformat()}'"
    union = " UNION ALL ".join(f"SELECT {cols} FROM {t} WHERE {where}" for t in tables)
    aggs = ", ".join(
        f"quantile_cont({_ident(c)}, 0.005) AS {_ident(c + '__lo')}, quantile_cont({_ident(c)}, 0.995) AS {_ident(c + '__hi')}" for c in columns
    )
    return f"SELECT count(*) AS n, {aggs} FROM ({union}) AS reference"


def joint_bins(bins: dict[str, Bins]) -> bool:
    """Group by every column's bin at once (one hash aggregate: the fastest) while that stays small:
    at most :data:`MAX_JOINT_CELLS` cells per window; otherwise one grouping set per column."""
    cells = 1
    for b in bins.values():
        cells *= b.count
    return cells <= MAX_JOINT_CELLS


def window_sql(
    table: str,
    linear: dict[str, Any],
    features: list[str],
    target: str,
    time_column: str,
    bins: dict[str, Bins],
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> str:
    """One scan of a segment's table: per-window sums, and per-window bin counts of each column.

    With :func:`joint_bins` the scan groups by (window, every column's bin): each row is a cell with
    its count and sums, and the per-window sums and each column's counts are its margins. Otherwise
    ``GROUPING SETS`` give one row of sums per window plus one row per window, column and bin.
    """
    y, t = _ident(target), _ident(time_column)
    bin_cols = []
    for i, (column, b) in enumerate(bins.items()):
        bin_cols.append(
            f"least(greatest(CAST(floor(({_ident(column)} - {_num(b.lo)}) / {_num(b.width)}) AS INTEGER), 0), {b.count - 1}) AS b{i}"
        )
    not_null = " AND ".join(f"{_ident(c)} IS NOT NULL" for c in [target, time_column, *features])
    if since is not None:
        not_null += f" AND {t} >= TIMESTAMP '{since.isoformat()}'"
    if until is not None:
        not_null += f" AND {t} < TIMESTAMP '{until.isoformat()}'"
    inner = (
        f"SELECT date_trunc('week', {t}) AS w, {y} AS y, {prediction_sql(linear, features)} AS p, {', '.join(bin_cols)} "
        f"FROM {table} WHERE {not_null}"
    )
    bin_names = ", ".join(f"b{i}" for i in range(len(bins)))
    grouping = f"w, {bin_names}" if joint_bins(bins) else "GROUPING SETS (" + ", ".join(["(w)", *(f"(w, b{i})" for i in range(len(bins)))]) + ")"
    return (
        f"SELECT w, {bin_names}, count(*) AS n, sum(y) AS sy, sum(y * y) AS syy, sum((y - p) * (y - p)) AS sse, sum(abs(y - p)) AS sae "
        f"FROM ({inner}) AS scored GROUP BY {grouping} ORDER BY w"
    )


@dataclass
class SegmentWindows:
    """What one segment's scan returned: per window the sums and each column's bin counts."""

    sums: dict[dt.date, dict[str, float]] = field(default_factory=dict)
    counts: dict[str, dict[dt.date, np.ndarray]] = field(default_factory=dict)


def time_span_sql(table: str, time_column: str) -> str:
    """The first and last time of a table (to split a scan whose result would be too large)."""
    return f"SELECT min({_ident(time_column)}) AS first, max({_ident(time_column)}) AS last FROM {table}"


def parse_windows(rows: list[dict[str, Any]], columns: list[str], bins: dict[str, Bins]) -> SegmentWindows:
    out = SegmentWindows(counts={c: {} for c in columns})
    joint = joint_bins(bins)
    for row in rows:
        w = row["w"]
        start = w.date() if isinstance(w, dt.datetime) else w
        if joint:  # a cell: its sums go to the window, its count to each column's bin
            sums = out.sums.setdefault(start, {k: 0.0 for k in SUMS})
            for k in SUMS:
                sums[k] += float(row[k] or 0.0)
            for i, column in enumerate(columns):
                counts = out.counts[column].setdefault(start, np.zeros(bins[column].count))
                counts[int(row[f"b{i}"])] += int(row["n"])
            continue
        set_bins = [(i, c) for i, c in enumerate(columns) if row[f"b{i}"] is not None]
        if not set_bins:
            sums = out.sums.setdefault(start, {k: 0.0 for k in SUMS})
            for k in SUMS:
                sums[k] += float(row[k] or 0.0)
            continue
        i, column = set_bins[0]
        counts = out.counts[column].setdefault(start, np.zeros(bins[column].count))
        counts[int(row[f"b{i}"])] += int(row["n"])
    return out


def metrics(sums: dict[str, float]) -> dict[str, float | int | None]:
    """n, R², RMSE and MAE of the model's predictions from the window's sums."""
    n = int(sums["n"])
    if n == 0:
        return {"n": 0, "r2": None, "rmse": None, "mae": None}
    sst = sums["syy"] - sums["sy"] * sums["sy"] / n
    r2 = 1.0 - sums["sse"] / sst if sst > 1e-12 else None
    return {
        "n": n,
        "r2": None if r2 is None else round(r2, 6),
        "rmse": round(math.sqrt(max(sums["sse"], 0.0) / n), 6),
        "mae": round(sums["sae"] / n, 6),
    }


def add_sums(parts: list[dict[str, float]]) -> dict[str, float]:
    total = {k: 0.0 for k in SUMS}
    for p in parts:
        for k in total:
            total[k] += p[k]
    return total

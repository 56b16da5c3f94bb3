"""Governed vs raw DuckDB on the same Parquet, same machine, same run.

    python benchmarks/bench_query.py [--rows 10000000] [--repeat 11]

Prints, per scan-aggregate query, the median time through the data room pipeline (analysis +
policy + durable audit + a supervised execution worker reading the visible-column copies) and
on raw DuckDB in this process reading the original Parquet files with the same thread count,
memory limit and Parquet metadata cache, and
their ratio (governed and raw runs interleaved, so that machine noise hits both alike). In the
same turns, the session floor: the DuckDB session a worker holds, queried in this process without
governance (what the room's views over its copies and restricted file access cost by themselves;
governed/floor is what the governance and the worker add). Then the
fixed overhead of a trivial query (back to back, with a new text each time, and each run right after a
raw scan) and the cost of each pipeline step alone. Demo data is generated once under
``benchmarks/.data`` (10M findings per tenant by default: about a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_support import (  # noqa: E402
    Interleaved,
    demo_home,
    interleaved_medians_ms,
    interleaved_turns_ms,
    let_the_spare_worker_start,
    median_ms,
    ratio_interval,
)

from dataroom.analysis import analyse  # noqa: E402
from dataroom.audit import AuditLog  # noqa: E402
from dataroom.engines.duckdb_session import Session  # noqa: E402
from dataroom.engines.results import ResultWriter  # noqa: E402
from dataroom.pipeline import Outcome, QueryService  # noqa: E402
from dataroom.settings import Settings  # noqa: E402

QUERIES = {
    "severity aggregate": "SELECT severity, count(*) AS n, avg(remediation_days) AS days FROM {findings} GROUP BY severity",
    "per-CVSS regression": "SELECT round(cvss) AS c, regr_slope(remediation_days, cvss) AS slope, regr_r2(remediation_days, cvss) AS r2 FROM {findings} GROUP BY 1",
    "filtered count": "SELECT count(*) FROM {findings} WHERE cvss >= 9.0 AND remediation_days > 30",
    "join reference": "SELECT year(c.published_at) AS y, avg(f.remediation_days) AS days FROM {findings} f JOIN {cve} c USING (cve_id) GROUP BY 1",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="findings rows per tenant")
    parser.add_argument("--repeat", type=int, default=11, help="timed runs per query and side (their median; fewer than 11 moves by several per cent)")
    parser.add_argument("--trivial-repeat", type=int, default=500)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    home = demo_home("rows", args.rows)
    audit_dir = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    settings = Settings(
        home=home, audit_path=audit_dir / "audit.jsonl", threads=os.cpu_count() or 2, memory_limit="8GB", worker_memory_limit="10GiB"
    )
    svc = QueryService(settings)
    raw = duckdb.connect(config={"threads": settings.threads, "memory_limit": settings.memory_limit})
    raw.execute("SET parquet_metadata_cache = true")  # as the room's sessions do (bench_tpch.py likewise)
    raw_names = {"findings": f"read_parquet('{home}/data/acme/findings/*.parquet')", "cve": f"read_parquet('{home}/data/reference/cve/*.parquet')"}
    governed_names = {"findings": "acme.findings", "cve": "reference.cve"}

    for template in QUERIES.values():  # once untimed: the session's worker, and its spare, start before any timing
        svc.run("alice", "remediation-acme", template.format(**governed_names))
    let_the_spare_worker_start()
    # The session floor: the DuckDB database a worker holds (views over the visible-column copies,
    # external access limited to them, configuration locked), queried in this process as the
    # worker queries it (a text's reruns unprofiled, the result written as Arrow IPC), with no
    # governance and no process boundary. What the room's DuckDB set-up costs by itself.
    floor_session = Session(svc.engine.session_spec(svc.project_for("remediation-acme")))

    def session_floor(sql: str) -> None:
        writer = ResultWriter()
        floor_session.execute_into(sql, writer, max_rows=settings.max_rows, timeout_s=600)
        result = writer.finish()
        if result.fd is not None:  # a large result's memfd (these scans return a few rows, in memory)
            os.close(result.fd)
        floor_session.prepare_reruns()  # as the worker does once it has answered

    print(f"\nscan-aggregate queries over acme.findings ({args.rows:,} rows), median of {args.repeat}, threads={settings.threads}")
    print(f"{'query':<22} {'raw ms':>9} {'governed ms':>12} {'ratio':>7} {'90% interval':>14}   {'floor ms':>9} {'floor/raw':>10} {'governed/floor':>15}")
    ratios: dict[str, float] = {}
    intervals: dict[str, tuple[float, float]] = {}  # bootstrap, over the neighbouring pairs (bench_support.ratio_interval)
    floor_ratios: dict[str, float] = {}
    over_floor: dict[str, float] = {}
    for name, template in QUERIES.items():
        governed_sql = template.format(**governed_names)
        raw_sql = template.format(**raw_names)

        def governed() -> None:
            outcome = svc.run("alice", "remediation-acme", governed_sql)
            assert outcome.outcome is Outcome.ALLOWED, outcome.summary()

        session_floor(governed_sql)  # its first (profiled) run, untimed, as the governed side's
        governed_ms, raw_ms, floor_ms = interleaved_turns_ms(
            [governed, lambda: raw.sql(raw_sql).to_arrow_table(), lambda: session_floor(governed_sql)], args.repeat
        )
        runs = Interleaved(governed_ms, raw_ms)
        g, r = runs.medians
        f = statistics.median(floor_ms)
        ratios[name], floor_ratios[name], over_floor[name] = runs.ratio, f / r, g / f
        low, high = intervals[name] = ratio_interval([runs])
        print(f"{name:<22} {r:>9.1f} {g:>12.1f} {g / r:>6.2f}x {f'{low:.2f}-{high:.2f}':>14}   {f:>9.1f} {f / r:>9.3f}x {g / f:>14.3f}x")
    floor_session.close()
    print("floor: the room's DuckDB session alone, in this process (views over the copies, external access limited to")
    print("       them, reruns unprofiled), without governance or the worker; governed/floor is what those two add")

    n = args.trivial_repeat
    trivial = "SELECT 1 AS x"
    governed_trivial, raw_trivial = interleaved_medians_ms(lambda: svc.run("alice", "remediation-acme", trivial), lambda: raw.sql(trivial).to_arrow_table(), n)
    # Distinct texts: no analysis or decision can be reused (what a first-time query pays).
    counter = iter(range(10**9))
    governed_fresh, raw_fresh = interleaved_medians_ms(
        lambda: svc.run("alice", "remediation-acme", f"SELECT {next(counter)} AS x"), lambda: raw.sql(trivial).to_arrow_table(), n
    )
    # The same trivial query, each run right after a raw scan (the filtered count) that had both
    # cores busy: what the fixed cost becomes at the moment a scan's governed path pays it.
    scan_sql = QUERIES["filtered count"].format(**raw_names)
    governed_after_scan, raw_after_scan = map(
        statistics.median,
        interleaved_turns_ms(
            [lambda: svc.run("alice", "remediation-acme", trivial), lambda: raw.sql(trivial).to_arrow_table()],
            n // 3,
            before=lambda: raw.sql(scan_sql).to_arrow_table(),
        ),
    )
    catalog = svc.catalog
    analysis = median_ms(lambda: analyse("SELECT severity, count(*) FROM acme.findings WHERE cvss > 5 GROUP BY 1", catalog), n)
    facts = analyse("SELECT severity, count(*) FROM acme.findings WHERE cvss > 5 GROUP BY 1", catalog)
    policy_input = svc.policy_input("alice", ["data-scientists"], svc.project_for("remediation-acme"), facts, "remediation-acme")
    inner = getattr(svc.policy, "inner", svc.policy)
    decision_miss = median_ms(lambda: inner.decide(policy_input), n)
    decision_hit = median_ms(lambda: svc.policy.decide(policy_input), n)
    # The engine guard alone, in a session like a worker's: the statement check before execution
    # and the check of the executed plan's profile after it (no second planning).
    session = Session(svc.engine.session_spec(svc.project_for("remediation-acme")))
    guarded = QUERIES["join reference"].format(**governed_names)
    session.execute(guarded, max_rows=10**6, timeout_s=600)
    guard = median_ms(lambda: (session.check(guarded), session.check_executed_plan()), n)
    session.close()
    log = AuditLog(audit_dir / "bench-append.jsonl")
    record = {"type": "decision", "decision_id": "x", "input": policy_input, "result": {"allow": True, "reasons": []}}
    append = median_ms(lambda: log.append(record), n)
    append_lazy = median_ms(lambda: log.append(record, durable=False), n)
    print(f"\ntrivial query ({trivial!r}), median of {n}")
    print(f"  raw DuckDB                         {raw_trivial:7.3f} ms")
    print(f"  through the data room              {governed_trivial:7.3f} ms")
    print(f"  fixed overhead, same text          {governed_trivial - raw_trivial:7.3f} ms   (analysis and decision reused; goal <= 1.5 ms)")
    print(f"  fixed overhead, new text each time {governed_fresh - raw_fresh:7.3f} ms")
    print(f"  fixed overhead, same text, each run right after a raw scan {governed_after_scan - raw_after_scan:7.3f} ms   (median of {n // 3})")
    print(f"  of which: analysis                 {analysis:7.3f} ms")
    print(f"            policy decision, miss    {decision_miss:7.3f} ms   (goal <= 0.8 ms)")
    print(f"            policy decision, hit     {decision_hit:7.3f} ms   (goal <= 0.3 ms)")
    print(f"            engine guard             {guard:7.3f} ms   (statement check + executed plan's profile, join query)")
    print(f"            durable audit append     {append:7.3f} ms   (the decision record: written and fsync'd)")
    print(f"            completion append        {append_lazy:7.3f} ms   (written; durable with the next fsync)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "fixed_overhead_ms": governed_trivial - raw_trivial,
                    "fixed_overhead_new_text_ms": governed_fresh - raw_fresh,
                    "fixed_overhead_after_scan_ms": governed_after_scan - raw_after_scan,
                    "analysis_ms": analysis,
                    "policy_ms": {"miss": decision_miss, "hit": decision_hit},
                    "audit_append_ms": {"durable": append, "completion": append_lazy},
                    "guard_ms": guard,
                    "ratios": ratios,
                    "ratio_intervals": intervals,
                    "session_floor_ratios": floor_ratios,
                    "governed_over_session_floor": over_floor,
                },
                indent=2,
            )
        )
    svc.close()


if __name__ == "__main__":
    main()

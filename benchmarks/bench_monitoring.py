"""Model monitoring vs one raw DuckDB scan-aggregate of the same tables, same machine, same run.

    python benchmarks/bench_monitoring.py [--rows 10000000] [--repeat 3]

Monitors the demo model ``remediation-days-linear`` over the demo timeline (64 weekly windows)
for three tenants of ``--rows`` findings each: every query through the data room pipeline as the
monitor's service principal (analysis, policy, durable audit, supervised execution workers),
then the metrics, drift tests and Rego alert rules in Python. Next to it, interleaved: one raw
DuckDB query in this process that scans the same Parquet files and aggregates per tenant and week
(count and the sums R²/RMSE need), with the same thread count. Then the per-decision cost of the
quarantine rule: the query policy with and without ``quarantine.rego`` on the same input, and the
registry read that fills ``quarantines``. Demo data is generated once under ``benchmarks/.data``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_support import demo_home, interleaved_medians_ms, median_ms  # noqa: E402

from dataroom.analysis import analyse  # noqa: E402
from dataroom.demo_data import TENANTS  # noqa: E402
from dataroom.monitoring.demo import register_demo_model  # noqa: E402
from dataroom.monitoring.runner import MonitorRunner  # noqa: E402
from dataroom.pipeline import QueryService  # noqa: E402
from dataroom.policy import QUERY_POLICY_DIR  # noqa: E402
from dataroom.rego import PolicyBundle  # noqa: E402
from dataroom.settings import Settings  # noqa: E402




def policy_without_quarantine(tmp: Path) -> PolicyBundle:
    """The query policy as it was before quarantine.rego: the same files minus that rule."""
    target = tmp / "query"
    shutil.copytree(QUERY_POLICY_DIR, target)
    for f in target.glob("quarantine*.rego"):
        f.unlink()
    main = target / "main.rego"
    text = main.read_text().replace("import data.dataroom.query.quarantine\n", "").replace(" | quarantine.reasons(req)", "")
    main.write_text(text.replace("found := (((((statements", "found := ((((statements").replace("tenancy.reasons(req))", "tenancy.reasons(req)", 1))
    return PolicyBundle(target, ["dataroom.query.main"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="findings rows per tenant")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--decisions", type=int, default=500)
    args = parser.parse_args()

    data = demo_home("timeline-rows", args.rows)
    tmp = Path(tempfile.mkdtemp(prefix="bench-monitoring-"))
    settings = Settings(
        home=data, audit_path=tmp / "audit.jsonl", registry_url=f"sqlite:///{tmp / 'registry.sqlite'}",
        threads=os.cpu_count() or 2, memory_limit="8GB", worker_memory_limit="10GiB",
    )
    model = register_demo_model(settings)
    svc = QueryService(settings)
    runner = MonitorRunner(svc)
    raw = duckdb.connect(config={"threads": settings.threads, "memory_limit": settings.memory_limit})
    files = ", ".join(f"'{data}/data/{t}/findings/*.parquet'" for t in TENANTS)
    raw_sql = (
        f"SELECT split_part(filename, '/', -3) AS tenant, date_trunc('week', detected_at) AS w, count(*) AS n, "
        f"sum(remediation_days) AS sy, sum(remediation_days * remediation_days) AS syy, sum(cvss) AS sx "
        f"FROM read_parquet([{files}], filename = true) GROUP BY ALL"
    )
    reports = []

    def monitor() -> None:
        reports.append(runner.run_model(model))

    m, r = (x / 1000 for x in interleaved_medians_ms(monitor, lambda: raw.sql(raw_sql).to_arrow_table(), args.repeat))
    first = reports[0]
    print(f"\nmonitoring {model.name} over {len({w['window_start'] for w in first.windows})} weekly windows x {len(TENANTS)} tenants "
          f"of {args.rows:,} findings ({len(first.windows)} tenant-weeks, {len(first.decision_ids)} governed queries), "
          f"median of {args.repeat}, threads={settings.threads}")
    print(f"  raw DuckDB scan-aggregate of the same tables  {r:8.2f} s")
    print(f"  monitoring run on the governed path           {m:8.2f} s   ({m / r:.2f}x; goal <= 3x)")
    print(f"  the model's first run (+ the reference query that fixes its bins) {first.duration_s:.2f} s ({first.duration_s / r:.2f}x)")
    raised = sorted(f"{a['segment']} {a['kind']} from {a['window_start']}" for a in first.alerts)
    print(f"  alerts of the first run: {', '.join(raised) or 'none'}")

    # per-decision cost of the quarantine rule (policy only, then the registry read)
    facts = analyse("SELECT count(*) FROM initech.findings", svc.catalog)
    project = svc.project_for("remediation-benchmark")
    with_input = svc.policy_input("alice", ["data-scientists"], project, facts, "remediation-benchmark")
    empty_input = {**with_input, "quarantines": []}
    old = policy_without_quarantine(tmp)
    n = args.decisions
    before = median_ms(lambda: old.evaluate("dataroom.query.main", empty_input), n)
    after_empty = median_ms(lambda: svc.policy.decide(empty_input), n)
    after_active = median_ms(lambda: svc.policy.decide(with_input), n)
    read = median_ms(lambda: svc.registry.quarantines("remediation-benchmark"), n)
    print(f"\nquery decision cost, median of {n} (active quarantines in the project: {len(with_input['quarantines'])})")
    print(f"  policy without quarantine.rego              {before:7.3f} ms")
    print(f"  policy with it, no quarantine               {after_empty:7.3f} ms")
    print(f"  policy with it, tenant quarantined (denied) {after_active:7.3f} ms")
    print(f"  registry read of the project's quarantines  {read:7.3f} ms   (once per query, in policy_input)")
    svc.close()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

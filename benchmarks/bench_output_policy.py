"""What aggregation constraints cost: the same aggregate with and without the output policy.

    python benchmarks/bench_output_policy.py [--rows 10000000] [--repeat 5]

Runs each aggregate over all three tenants' findings (``rows`` per tenant) through the governed
path twice, interleaved: in ``remediation-benchmark`` (output policy: each group backed by 10 rows
and 2 tenants, support computed with the query) and in ``remediation-by-tenant`` (same tables, no
output policy), and prints the medians and their ratio, with raw DuckDB on the original Parquet
for reference. The goal (issue 11) is at most 1.2x the unconstrained aggregate.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_support import demo_home, interleaved_medians_ms, median_ms  # noqa: E402

from dataroom.demo_data import DEMO_PROJECT, TENANTS, demo_catalog_toml  # noqa: E402
from dataroom.pipeline import Outcome, QueryService  # noqa: E402
from dataroom.settings import Settings  # noqa: E402

CONSTRAINED = "remediation-benchmark"
ALL = " UNION ALL ".join(f"SELECT * FROM {{{t}}}" for t in TENANTS)
QUERIES = {
    "severity aggregate (4 groups)": f"SELECT severity, count(*) AS n, avg(remediation_days) AS days FROM ({ALL}) GROUP BY severity",
    "per-CVE aggregate (many groups)": f"SELECT cve_id, count(*) AS n, avg(remediation_days) AS days FROM ({ALL}) GROUP BY cve_id",
    "regression by CVSS band": f"SELECT round(cvss) AS c, regr_slope(remediation_days, cvss) AS slope FROM ({ALL}) GROUP BY 1",
    "join reference.cve on its key": f"SELECT year(c.published_at) AS y, avg(f.remediation_days) AS days FROM ({ALL}) f JOIN {{cve}} c USING (cve_id) GROUP BY 1",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="findings rows per tenant")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    home = demo_home("rows", args.rows)
    work = Path(tempfile.mkdtemp(prefix="bench-output-"))
    catalog = home / "catalog-current.toml"  # today's demo projects over the generated data
    catalog.write_text(demo_catalog_toml())
    settings = Settings(
        home=home,
        catalog_path=catalog,
        registry_url=f"sqlite:///{work / 'registry.sqlite'}",
        audit_path=work / "audit.jsonl",
        threads=os.cpu_count() or 2,
        memory_limit="8GB",
        worker_memory_limit="10GiB",
    )
    svc = QueryService(settings)
    raw = duckdb.connect(config={"threads": settings.threads, "memory_limit": settings.memory_limit})
    raw_names = {t: f"read_parquet('{home}/data/{t}/findings/*.parquet')" for t in TENANTS}
    raw_names["cve"] = f"read_parquet('{home}/data/reference/cve/*.parquet')"
    governed_names = {t: f"{t}.findings" for t in TENANTS} | {"cve": "reference.cve"}

    def governed(project: str, sql: str):
        def run():
            outcome = svc.run("alice", project, sql)
            if outcome.outcome is not Outcome.ALLOWED:
                raise SystemExit(f"{project}: {outcome.outcome.value}: {outcome.reasons or outcome.error}")
            return outcome

        return run

    print(f"\naggregates over 3 tenants x {args.rows:,} findings, median of {args.repeat} (interleaved), threads={settings.threads}")
    print(f"{'query':38} {'constrained':>12} {'unconstrained':>14} {'ratio':>6} {'raw':>9} {'suppressed':>11}")
    for name, template in QUERIES.items():
        sql = template.format(**governed_names)
        constrained, unconstrained = interleaved_medians_ms(governed(CONSTRAINED, sql), governed(DEMO_PROJECT, sql), args.repeat)
        raw_ms = median_ms(lambda: raw.sql(template.format(**raw_names)).to_arrow_table(), max(3, args.repeat // 2))
        suppression = governed(CONSTRAINED, sql)().result.suppression
        print(
            f"{name:38} {constrained:10.1f}ms {unconstrained:12.1f}ms {constrained / unconstrained:5.2f}x {raw_ms:7.1f}ms "
            f"{suppression.suppressed:>5}/{suppression.groups}"
        )
    svc.close()


if __name__ == "__main__":
    main()

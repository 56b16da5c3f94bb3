"""Governed vs raw Spark (Spark Connect) on the same Parquet, same server, same run; and vs DuckDB.

    python benchmarks/bench_spark.py [--rows 10000000] [--repeat 5]

Starts pyspark's own local Spark Connect server (dataroom/engines/spark_local.py) and prints, per
scan-aggregate query of bench_query.py, the median time through the data room on the Spark engine
(analysis + policy + durable audit + transpile + Spark's guard: EXPLAIN of the analyzed plan +
the query over the project's views + Arrow back) and of the same Spark SQL on a raw session of
the same server over the original Parquet (governed and raw interleaved), their ratio, and the
governed DuckDB engine's median on the same data for comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_query import QUERIES  # noqa: E402
from benchmarks.bench_support import demo_home, interleaved_medians_ms, median_ms  # noqa: E402

from dataroom.engines.spark_local import local_connect_server  # noqa: E402
from dataroom.engines.spark_transpile import to_spark  # noqa: E402
from dataroom.pipeline import Outcome, QueryService  # noqa: E402
from dataroom.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="findings rows per tenant")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    home = demo_home("rows", args.rows)
    audit_dir = Path(tempfile.mkdtemp(prefix="bench-spark-audit-"))
    with local_connect_server(master="local[2]", driver_memory=args.driver_memory, shuffle_partitions=4) as url:
        from pyspark.sql.connect.session import SparkSession

        base = dict(home=home, registry_url=f"sqlite:///{audit_dir / 'registry.sqlite'}", threads=2, memory_limit="4GB", worker_memory_limit="6GiB", spark_remote=url, query_timeout_s=600)
        spark_svc = QueryService(Settings(**base, default_engine="spark", audit_path=audit_dir / "spark" / "audit.jsonl"))
        duck_svc = QueryService(Settings(**base, default_engine="duckdb", audit_path=audit_dir / "duckdb" / "audit.jsonl"))
        raw = SparkSession.builder.remote(url).create()
        raw.read.parquet(str(home / "data" / "acme" / "findings")).createOrReplaceTempView("acme__findings")
        raw.read.parquet(str(home / "data" / "reference" / "cve")).createOrReplaceTempView("reference__cve")
        names = {"findings": "acme.findings", "cve": "reference.cve"}

        print(f"\nscan-aggregate queries over acme.findings ({args.rows:,} rows), median of {args.repeat}, local[2]")
        print(f"{'query':<22} {'raw Spark ms':>13} {'governed Spark ms':>18} {'ratio':>7} {'governed DuckDB ms':>19}")
        figures: dict[str, dict[str, float]] = {}
        for name, template in QUERIES.items():
            sql = template.format(**names)
            raw_sql = to_spark(sql, names.values())

            def governed(svc: QueryService = spark_svc, sql: str = sql) -> None:
                outcome = svc.run("alice", "remediation-acme", sql)
                assert outcome.outcome is Outcome.ALLOWED, outcome.summary()

            g, r = interleaved_medians_ms(governed, lambda: raw.sql(raw_sql).toArrow(), args.repeat)
            d = median_ms(lambda: governed(duck_svc), args.repeat)
            figures[name] = {"raw_spark_ms": r, "governed_spark_ms": g, "ratio": g / r, "governed_duckdb_ms": d}
            print(f"{name:<22} {r:>13.1f} {g:>18.1f} {g / r:>6.2f}x {d:>19.1f}")
        trivial_g, trivial_r = interleaved_medians_ms(
            lambda: spark_svc.run("alice", "remediation-acme", "SELECT 1 AS x"), lambda: raw.sql("SELECT 1 AS x").toArrow(), 20
        )
        print(f"{'trivial query':<22} {trivial_r:>13.1f} {trivial_g:>18.1f} {trivial_g / trivial_r:>6.2f}x")
        figures["trivial"] = {"raw_spark_ms": trivial_r, "governed_spark_ms": trivial_g}
        raw.stop()
        spark_svc.close()
        duck_svc.close()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

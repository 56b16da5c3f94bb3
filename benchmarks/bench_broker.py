"""Broker benchmark: a real data room (JupyterHub, proxy, broker) on loopback, against raw DuckDB.

Prints
  1. transfer: 1M rows x 6 columns, broker → polars.DataFrame in the client, as a ratio to local
     DuckDB ``.pl()`` on the same query over the same Parquet (goal ≤ 2x);
  2. added latency: median round trip of a trivial query through the broker minus the same query
     through the in-process pipeline (``QueryService.run``), over loopback (goal ≤ 10 ms).

Usage: ``python benchmarks/bench_broker.py [--rows 1000000] [--repeat 5] [--trivial 200]``
(configurable-http-proxy must be on PATH or in ./node_modules/.bin).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import polars as pl

from dataroom.client import connect
from dataroom.demo_data import generate
from dataroom.hub.config import HubOptions
from dataroom.hub.launcher import DataRoomHub, find_proxy, free_port
from dataroom.hub.rest import HubUser

COLUMNS = "finding_id, asset_id, cvss, severity, detected_at, remediation_days"
TRIVIAL = "SELECT 1 AS one"
PASSWORD = "benchmark-password"


def interleaved(fns, repeat: int) -> tuple[list[float], list[object]]:
    """Median seconds of each function, run in turns (so that each sees the same machine load)."""
    results = [fn() for fn in fns]  # warm-up
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            started = time.perf_counter()
            results[i] = fn()
            times[i].append(time.perf_counter() - started)
    return [statistics.median(t) for t in times], results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--trivial", type=int, default=200)
    args = parser.parse_args()

    proxy = find_proxy()
    if proxy is None:
        sys.exit("configurable-http-proxy not found: run `npm install` (make setup)")
    with tempfile.TemporaryDirectory(prefix="dataroom-bench-") as tmp:
        os.chmod(tmp, 0o711)  # as root the broker runs as the service account, which must reach the home
        home, state = Path(tmp) / "home", Path(tmp) / "hub"
        print(f"generating {args.rows:,} findings per tenant ...", flush=True)
        generate(home, rows=args.rows)
        os.environ["DATAROOM_HOME"] = str(home)
        options = HubOptions(
            state_dir=state,
            home=home,
            demo_password=PASSWORD,
            port=free_port(),
            hub_port=free_port(),
            proxy_api_port=free_port(),
            broker_port=free_port(),
            proxy_command=[proxy],
            notebooks_dir=None,
            log_level="WARNING",
        )
        with (Path(tmp) / "hub.log").open("wb") as log, DataRoomHub(options, log=log) as hub:
            token = HubUser.login(hub.url, "alice", PASSWORD).new_token(note="benchmark")
            room = connect("remediation-acme", url=hub.broker_url, token=token)
            query = f"SELECT {COLUMNS} FROM acme.findings"

            # 1. transfer: broker → Polars vs local DuckDB .pl(); and, to show where the time goes,
            #    the same query through the pipeline in-process (no HTTP). Run in turns.
            from dataroom.pipeline import QueryService
            from dataroom.settings import Settings

            service = QueryService(Settings(home=home))
            local = duckdb.connect()
            parquet = home / "data" / "acme" / "findings" / "*.parquet"
            (local_s, broker_s, pipeline_s), (local_df, broker_df, _) = interleaved(
                [
                    lambda: local.sql(f"SELECT {COLUMNS} FROM read_parquet('{parquet}')").pl(),
                    lambda: room.sql(query),
                    lambda: service.run("alice", "remediation-acme", query, groups=["data-scientists"], client="benchmark"),
                ],
                args.repeat,
            )
            assert isinstance(broker_df, pl.DataFrame) and broker_df.shape == local_df.shape, (broker_df.shape, local_df.shape)
            mb = broker_df.estimated_size() / 1e6

            # 2. added latency on a trivial query
            in_process = []
            over_http = []
            for _ in range(args.trivial):
                started = time.perf_counter()
                service.run("alice", "remediation-acme", TRIVIAL, groups=["data-scientists"], client="benchmark")
                in_process.append(time.perf_counter() - started)
                started = time.perf_counter()
                room.sql(TRIVIAL)
                over_http.append(time.perf_counter() - started)
            service.close()
            room.close()

    rows, cols = broker_df.shape
    pipeline_ms = statistics.median(in_process) * 1000
    broker_ms = statistics.median(over_http) * 1000
    print(f"\ntransfer of {rows:,} rows x {cols} columns ({mb:.0f} MB in memory), median of {args.repeat}:")
    print(f"  local DuckDB .pl()          {local_s * 1000:8.1f} ms")
    print(f"  broker -> polars (loopback) {broker_s * 1000:8.1f} ms   ratio {broker_s / local_s:.2f}x   (goal <= 2x)")
    print(f"  pipeline alone, in-process {pipeline_s * 1000:8.1f} ms   ({pipeline_s / local_s:.2f}x: decide, audit, execute, result digest; in-process)")
    print(f"  => HTTP transfer + decode  {(broker_s - pipeline_s) * 1000:8.1f} ms")
    print(f"\ntrivial query ({TRIVIAL!r}), median of {args.trivial}:")
    print(f"  in-process pipeline         {pipeline_ms:8.2f} ms")
    print(f"  through the broker          {broker_ms:8.2f} ms")
    print(f"  broker added latency        {broker_ms - pipeline_ms:8.2f} ms   (goal <= 10 ms)")


if __name__ == "__main__":
    main()

"""Broker benchmark: a real data room (JupyterHub, proxy, broker) on loopback, against raw DuckDB.

Prints
  1. transfer: 1M rows x 6 columns, broker → polars.DataFrame in the client, as a ratio to local
     DuckDB ``.pl()`` on the same query over the same Parquet (goal ≤ 1.3x, issue 18), and in the
     same turns the floor of any HTTP design: raw DuckDB serving the query from another process
     (``transfer_floor.py``);
  2. added latency: median round trip of a trivial query through the broker minus the same query
     through the in-process pipeline (``QueryService.run``), over loopback (goal ≤ 3 ms);
  3. the same under load: ``--clients`` (50) concurrent clients, each with its own connection,
     each sending a trivial query every ``--interval-ms`` (1 s: 50 queries a second, as 50 people
     at notebooks would not reach); p50 and p99 of their round trips minus the in-process median
     (goal: p99 ≤ 20 ms). Then the same clients back to back: the broker's throughput when saturated.

Usage: ``python benchmarks/bench_broker.py [--rows 1000000] [--repeat 5] [--trivial 200] [--clients 50] [--json PATH]``
(configurable-http-proxy must be on PATH or in ./node_modules/.bin).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import threading
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

from transfer_floor import FloorServer

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
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients in the load phase")
    parser.add_argument("--per-client", type=int, default=20, help="trivial queries each concurrent client sends")
    parser.add_argument("--interval-ms", type=int, default=1000, help="each concurrent client sends one query per interval")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
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
            local.execute("SET parquet_metadata_cache = true")  # as the room's sessions do
            parquet = home / "data" / "acme" / "findings" / "*.parquet"
            local_sql = f"SELECT {COLUMNS} FROM read_parquet('{parquet}')"
            with FloorServer(local_sql, free_port()) as floor:
                (local_s, broker_s, pipeline_s, floor_s), (local_df, broker_df, _, floor_df) = interleaved(
                    [
                        lambda: local.sql(local_sql).pl(),
                        lambda: room.sql(query),
                        lambda: service.run("alice", "remediation-acme", query, groups=["data-scientists"], client="benchmark"),
                        floor.fetch,
                    ],
                    args.repeat,
                )
            assert floor_df.equals(local_df), "the floor server's result differs from the local one"
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
            # 3. many clients at once: paced as people send queries, then back to back
            paced, _ = concurrent_round_trips(hub.broker_url, token, args.clients, args.per_client, args.interval_ms / 1000)
            saturated, wall = concurrent_round_trips(hub.broker_url, token, args.clients, args.per_client)
            service.close()
            room.close()

    rows, cols = broker_df.shape
    pipeline_ms = statistics.median(in_process) * 1000
    broker_ms = statistics.median(over_http) * 1000
    print(f"\ntransfer of {rows:,} rows x {cols} columns ({mb:.0f} MB in memory), median of {args.repeat}:")
    print(f"  local DuckDB .pl()          {local_s * 1000:8.1f} ms")
    print(f"  broker -> polars (loopback) {broker_s * 1000:8.1f} ms   ratio {broker_s / local_s:.2f}x   (goal <= 1.3x)")
    print(f"  pipeline alone, in-process {pipeline_s * 1000:8.1f} ms   ({pipeline_s / local_s:.2f}x: decide, audit, execute, result digest; in-process)")
    print(f"  => HTTP transfer + decode  {(broker_s - pipeline_s) * 1000:8.1f} ms")
    print(f"  floor: raw DuckDB over HTTP {floor_s * 1000:8.1f} ms   ({floor_s / local_s:.2f}x: the same query served by raw DuckDB in another")
    print("                                          process over loopback, ungoverned; see transfer_floor.py)")
    print(f"\ntrivial query ({TRIVIAL!r}), median of {args.trivial}:")
    print(f"  in-process pipeline         {pipeline_ms:8.2f} ms")
    print(f"  through the broker          {broker_ms:8.2f} ms")
    print(f"  broker added latency        {broker_ms - pipeline_ms:8.2f} ms   (goal <= 3 ms)")
    p50, p99 = percentile(paced, 50) * 1000, percentile(paced, 99) * 1000
    print(f"\n{args.clients} concurrent clients x {args.per_client} trivial queries, each client one every {args.interval_ms} ms:")
    print(f"  round trip p50 / p99        {p50:8.2f} / {p99:.2f} ms")
    print(f"  added latency p50 / p99     {p50 - pipeline_ms:8.2f} / {p99 - pipeline_ms:.2f} ms   (over the single in-process median; goal p99 <= 20 ms)")
    s50, s99 = percentile(saturated, 50) * 1000, percentile(saturated, 99) * 1000
    print(f"the same clients back to back (saturated): {len(saturated) / wall:.0f} queries/s, round trip p50 / p99 {s50:.1f} / {s99:.1f} ms")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "transfer": {"rows": rows, "columns": cols, "local_ms": local_s * 1000, "broker_ms": broker_s * 1000, "ratio": broker_s / local_s,
                                 "floor_ms": floor_s * 1000, "floor_ratio": floor_s / local_s},
                    "trivial": {"in_process_ms": pipeline_ms, "broker_ms": broker_ms, "added_ms": broker_ms - pipeline_ms},
                    "concurrent": {"clients": args.clients, "interval_ms": args.interval_ms, "p50_added_ms": p50 - pipeline_ms, "p99_added_ms": p99 - pipeline_ms},
                    "saturated": {"clients": args.clients, "queries_per_s": len(saturated) / wall, "p50_ms": s50, "p99_ms": s99},
                },
                indent=2,
            )
        )


def concurrent_round_trips(broker_url: str, token: str, clients: int, per_client: int, interval_s: float = 0.0) -> tuple[list[float], float]:
    """Seconds per round trip of ``clients`` threads, each with its own connection, and the wall time.

    ``interval_s`` > 0 paces each client to one query per interval (from a random phase), as
    people at notebooks send them; 0 sends them back to back (the broker saturated).
    """
    rooms = [connect("remediation-acme", url=broker_url, token=token) for _ in range(clients)]
    start = threading.Barrier(clients + 1)
    times: list[float] = []
    errors: list[BaseException] = []

    def client(room, phase: float) -> None:
        try:
            room.sql(TRIVIAL)  # its connection open
            start.wait()
            next_at = time.perf_counter() + phase
            for _ in range(per_client):
                if interval_s:
                    time.sleep(max(0.0, next_at - time.perf_counter()))
                    next_at += interval_s
                started = time.perf_counter()
                room.sql(TRIVIAL)
                times.append(time.perf_counter() - started)
        except BaseException as exc:  # reported below: a benchmark that hides failures measures nothing
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=client, args=(room, random.uniform(0, interval_s))) for room in rooms]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    for room in rooms:
        room.close()
    if errors:
        raise SystemExit(f"{len(errors)} of {clients} clients failed: {errors[0]!r}")
    return times, wall


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


if __name__ == "__main__":
    main()

"""The reviewer's view at scale: `audit show`, the review UI's filtered page, verification rates.

    python benchmarks/bench_audit_view.py [--show-records 100000] [--verify-records 1000000] [--page-records 10000000]

1. ``dataroom audit show`` (last page, 50 attempts) on a generated ``--show-records`` log (decisions
   and their completions, signed checkpoints every 1000 records), end to end as a CLI process:
   the first call (indexes the log, verifies it from scratch, caches both), then warm calls (the
   index and the verification resumed from the last checkpoint); beside it what the same answer
   cost before the index (fold the whole file, verify from scratch).
2. Verification rate over a generated ``--verify-records`` log: from scratch, and resumed from
   the cached checkpoint after 1,000 more records; the index build rate over the same log.
3. A filtered page of the review UI's query log (100 rows, newest first, with the total count)
   over ``--page-records`` records. Generating and indexing 10M JSON records through Python takes
   longer than a benchmark run here, so the index segments are generated directly by DuckDB in the
   indexer's schema (what ``AuditIndex`` writes for a log of that size: one row per attempt,
   decision and completion = 2 records) and the page is asked through ``AuditIndex.page``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dataroom.audit import GENESIS_HASH, AuditLog, attempts, canonical_json, decision_record  # noqa: E402
from dataroom.audit.checkpoints import make_checkpoint, record_leaf  # noqa: E402
from dataroom.audit.index import AuditIndex  # noqa: E402
from dataroom.audit.keys import load_or_create_signing_key  # noqa: E402
from dataroom.audit.merkle import Frontier  # noqa: E402
from dataroom.audit.reader import AuditView  # noqa: E402
from dataroom.audit.vcache import verify_cached  # noqa: E402
from dataroom.querylog import QueryFilter, attempt_row  # noqa: E402

USERS = [f"user{i}" for i in range(50)]
EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def record_pair(i: int) -> list[dict[str, Any]]:
    """A decision (and, when allowed, its completion) shaped like the pipeline's."""
    allowed = i % 10 != 0
    decision = decision_record(
        path="dataroom/query/main",
        input_doc={
            "user": {"name": USERS[i % len(USERS)], "groups": ["data-scientists"]},
            "project_id": f"project-{i % 20}",
            "project": {"id": f"project-{i % 20}", "members": ["alice", "bob"], "tenants": ["acme"], "tables": ["acme.findings"], "status": "approved"},
            "facts": {"tables": ["acme.findings"], "tenants": ["acme" if i % 2 else "globex"], "columns": [{"table": "acme.findings", "column": "cvss", "clause": "select"}]},
            "sql": f"SELECT severity, count(*) FROM acme.findings WHERE cvss > {i % 10} GROUP BY 1",
            "client": "cli",
        },
        allow=allowed,
        reasons=[] if allowed else [{"code": "pii_column", "message": "analyst_email is PII"}],
        outcome="allowed" if allowed else "denied",
        revision="0" * 64,
        labels={"engine": "regopy"},
        metrics={"timer_policy_eval_ms": 0.4},
    )
    decision["timestamp"] = (EPOCH + dt.timedelta(seconds=i)).isoformat(timespec="microseconds")
    if not allowed:
        return [decision]
    return [decision, {"type": "completion", "decision_id": decision["decision_id"], "timestamp": decision["timestamp"], "status": "ok", "rows": i % 1000, "bytes": 8 * (i % 1000),
                       "duration_ms": 3.0, "result_digest": "sha256:" + "0" * 64}]  # fmt: skip


def generate_log(path: Path, records: int, every: int = 1000) -> None:
    """A chained, checkpointed log (no fsync), as the writer would have left it."""
    key = load_or_create_signing_key(path.with_name(path.name + ".key"), path.with_name(path.name + ".pub"))
    frontier, prev, offset, seq, i = Frontier(), GENESIS_HASH, 0, 0, 0
    with path.open("wb") as log, path.with_name(path.name + ".checkpoints").open("w") as cps:

        def checkpoint(reason: str) -> None:
            cps.write(canonical_json(make_checkpoint(stream="audit", frontier=frontier, last_hash=prev, offset=offset, timestamp="2026-11-30T00:00:00+00:00", reason=reason, key=key)) + "\n")

        checkpoint("genesis")
        while seq < records:
            for record in record_pair(i):
                if seq >= records:
                    break
                body = canonical_json({**record, "seq": seq, "prev_hash": prev})
                prev = hashlib.sha256(body.encode()).hexdigest()
                line = (body[:-1] + f',"hash":"{prev}"}}\n').encode()
                log.write(line)
                offset += len(line)
                frontier.push(record_leaf(prev))
                seq += 1
                if seq % every == 0:
                    checkpoint("count")
            i += 1
        if records % every:
            checkpoint("shutdown")
    path.with_name(path.name + ".head").write_text(canonical_json({"seq": records - 1, "hash": prev}).ljust(128))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def timed_cpu(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall, CPU of this process and its children, value): on a shared machine the wall time is mostly waiting."""
    wall, cpu = time.perf_counter(), _cpu()
    value = fn()
    return time.perf_counter() - wall, _cpu() - cpu, value


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def show_cli(path: Path, home: Path) -> tuple[float, float]:
    """(wall, CPU) of one `dataroom audit show` process."""
    env = {**os.environ, "DATAROOM_HOME": str(home), "DATAROOM_AUDIT_PATH": str(path)}
    wall, cpu, out = timed_cpu(lambda: subprocess.run([sys.executable, "-m", "dataroom.cli", "audit", "show", "--limit", "50"], capture_output=True, text=True, env=env, timeout=3600))
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 50, out.stderr[-2000:]
    return wall, cpu


def bench_show(args: argparse.Namespace, work: Path) -> None:
    path = work / "show" / "audit.jsonl"
    path.parent.mkdir(parents=True)
    elapsed, _ = timed(lambda: generate_log(path, args.show_records))
    print(f"generated {args.show_records:,} records ({path.stat().st_size / 1e6:.0f} MB) in {elapsed:.1f} s")
    wall, cpu, _ = timed_cpu(lambda: (AuditLog(path).verify(), [attempt_row(a) for a in attempts(AuditLog(path).records())][-50:]))
    print(f"before the index (fold the whole file + verify from scratch, in process): {wall:.2f} s wall, {cpu:.2f} s CPU")
    cold = show_cli(path, work / "show")
    warm = [show_cli(path, work / "show") for _ in range(args.repeat)]
    print(f"`dataroom audit show` (last page, 50 attempts, CLI process end to end): first call {cold[0]:.2f} s wall / {cold[1]:.2f} s CPU (index + full verification), "
          f"then median {statistics.median(w for w, _ in warm):.2f} s wall (max {max(w for w, _ in warm):.2f}) / {statistics.median(c for _, c in warm):.2f} s CPU over {len(warm)} calls")  # fmt: skip
    python_start = statistics.median(timed_cpu(lambda: subprocess.run([sys.executable, "-c", "import dataroom.cli"], check=True))[1] for _ in range(3))
    print(f"  (of which starting Python and importing dataroom.cli: {python_start:.2f} s CPU); load average {os.getloadavg()[0]:.1f}")


def bench_verify(args: argparse.Namespace, work: Path) -> None:
    path = work / "verify" / "audit.jsonl"
    path.parent.mkdir(parents=True)
    elapsed, _ = timed(lambda: generate_log(path, args.verify_records))
    print(f"\ngenerated {args.verify_records:,} records ({path.stat().st_size / 1e6:.0f} MB) in {elapsed:.1f} s")
    log = AuditLog(path)
    cache = work / "verify" / "verified.json"
    elapsed, cpu, (result, _) = timed_cpu(lambda: verify_cached(log, cache))
    assert result.ok, result.describe()
    print(f"verify from scratch: {result.records:,} records in {elapsed:.2f} s wall = {result.records / elapsed:,.0f} records/s ({cpu:.2f} s CPU = {result.records / cpu:,.0f} records per CPU-second); load average {os.getloadavg()[0]:.1f}")
    appender = AuditLog(path, checkpoint_every=1000)
    for i in range(1000):
        appender.append(record_pair(i)[0])
    appender.close()
    elapsed, cpu, (result, resumed) = timed_cpu(lambda: verify_cached(log, cache))
    assert result.ok and resumed, result.describe()
    print(f"verify resumed from the cached checkpoint after 1,000 more records: {elapsed:.2f} s wall, {cpu:.2f} s CPU (re-hashing {path.stat().st_size / 1e6:.0f} MB of unchanged bytes + the new records)")
    index = AuditIndex(AuditView(path=path), 4096)
    elapsed, cpu, _ = timed_cpu(index.refresh)
    total = sum(index.indexed_records().values())
    print(f"index build: {total:,} records in {elapsed:.1f} s wall = {total / elapsed:,.0f} records/s ({cpu:.1f} s CPU)")


def generate_index(directory: Path, records: int, per_file: int = 1_000_000) -> Path:
    """Index segments for a ``records``-record log (2 records per allowed attempt, 1 per denial), written by DuckDB."""
    import duckdb

    stub = directory / "audit.jsonl"
    stub.parent.mkdir(parents=True)
    stub.write_bytes(b"")
    index_dir = directory / "index" / "file-audit.jsonl"
    index_dir.mkdir(parents=True)
    attempts_n = int(records / 1.9)  # 9 in 10 allowed: 1.9 records per attempt
    con = duckdb.connect()
    segments = []
    for n, start in enumerate(range(0, attempts_n, per_file)):
        end = min(attempts_n, start + per_file)
        name = f"seg-2-{n:016d}.parquet"
        con.execute(
            f"""COPY (SELECT 'attempt' AS kind, 'decision' AS type, 'audit' AS stream, CAST(i * 2 AS BIGINT) AS seq,
                  CASE WHEN i % 10 = 0 THEN NULL ELSE CAST(i * 2 + 1 AS BIGINT) END AS completion_seq, CAST(uuid() AS VARCHAR) AS decision_id,
                  strftime(TIMESTAMP '2026-01-01' + to_seconds(i), '%Y-%m-%dT%H:%M:%S.000000+00:00') AS timestamp,
                  'user' || (i % 50) AS "user", ['data-scientists'] AS groups, 'project-' || (i % 20) AS project_id,
                  [CASE WHEN i % 2 = 0 THEN 'globex' ELSE 'acme' END] AS tenants, ['acme.findings'] AS tables, ['acme.findings.cvss'] AS columns,
                  CASE WHEN i % 10 = 0 THEN 'denied' ELSE 'allowed' END AS decision_outcome,
                  CASE WHEN i % 10 = 0 THEN ['pii_column'] ELSE []::VARCHAR[] END AS reasons, CASE WHEN i % 10 = 0 THEN ['analyst_email is PII'] ELSE []::VARCHAR[] END AS messages,
                  'SELECT severity, count(*) FROM acme.findings WHERE cvss > ' || (i % 10) || ' GROUP BY 1' AS sql, '"cli"' AS client,
                  CASE WHEN i % 10 = 0 THEN NULL ELSE CAST(i % 1000 AS BIGINT) END AS rows, CASE WHEN i % 10 = 0 THEN NULL ELSE CAST(8 * (i % 1000) AS BIGINT) END AS bytes,
                  CASE WHEN i % 10 = 0 THEN NULL ELSE 3.0 END AS duration_ms, CAST(NULL AS VARCHAR) AS result_digest, CASE WHEN i % 10 = 0 THEN NULL ELSE 'ok' END AS completion_status,
                  '0000' AS policy_revision, md5(CAST(i AS VARCHAR)) AS hash, CAST(i * 1800 AS BIGINT) AS "offset", CAST(1200 AS BIGINT) AS length,
                  CAST(NULL AS BIGINT) AS completion_offset, CAST(NULL AS BIGINT) AS completion_length
                FROM range({start}, {end}) t(i)) TO '{index_dir / name}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 65536)"""
        )
        segments.append({"file": name, "level": 2, "start": 0, "end": 0, "records": int((end - start) * 1.9), "_": n})
    st = os.stat(stub)
    state = {"identity": [st.st_dev, st.st_ino], "end": 0, "segments": [{k: v for k, v in s.items() if k != "_"} for s in segments], "records": sum(s["records"] for s in segments)}
    (index_dir / "state.json").write_text(json.dumps(state))
    return stub


def bench_page(args: argparse.Namespace, work: Path) -> None:
    elapsed, stub = timed(lambda: generate_index(work / "page", args.page_records))
    print(f"\ngenerated index segments for a {args.page_records:,}-record log in {elapsed:.1f} s")
    index = AuditIndex(AuditView(path=stub), 4096)
    index.refresh()
    cases = {
        "user + outcome (user10, denied), page 1": QueryFilter.from_args({"user": "user10", "decision": "denied"}),
        "project + SQL text, page 1": QueryFilter.from_args({"project": "project-3", "text": "cvss > 3"}),
        "tenant + reason, page 1": QueryFilter.from_args({"tenant": "globex", "reason": "pii_column"}),
        "time window (one day), page 1": QueryFilter.from_args({"since": "2026-01-02", "until": "2026-01-02"}),
        "no filter, page 1": QueryFilter(),
    }
    for name, flt in cases.items():
        times, cpus, total = [], [], 0
        for _ in range(args.repeat):
            t, c, (rows, total) = timed_cpu(lambda: index.page(flt, limit=100, offset=0))
            times.append(t)
            cpus.append(c)
        print(f"  {name:<40} {total:>10,} matching: median {statistics.median(times) * 1000:7.0f} ms wall (max {max(times) * 1000:5.0f}), {statistics.median(cpus) * 1000:6.0f} ms CPU (DuckDB, 2 threads)")
    flt = cases["user + outcome (user10, denied), page 1"]
    _, total = index.page(flt, limit=1)
    t, c, _ = timed_cpu(lambda: index.page(flt, limit=100, offset=max(0, total - 100)))
    print(f"  {'user + outcome, last page':<40} {total:>10,} matching: {t * 1000:7.0f} ms wall, {c * 1000:6.0f} ms CPU; load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--show-records", type=int, default=100_000)
    parser.add_argument("--verify-records", type=int, default=1_000_000)
    parser.add_argument("--page-records", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=["show", "verify", "page"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-audit-view-") as tmp:
        work = Path(tmp)
        print(f"{os.cpu_count()} CPU(s)")
        for name, fn in (("show", bench_show), ("verify", bench_verify), ("page", bench_page)):
            if args.only in (None, name):
                fn(args, work)


if __name__ == "__main__":
    main()

"""What signed checkpoints cost a query, how fast a log verifies, how fast a policy change replays.

    python benchmarks/bench_audit.py [--repeat 400] [--verify-records 200000] [--replay-decisions 100000]

1. Fixed overhead of a trivial query through the pipeline, in one run, interleaved: the audit log as
   it was before checkpoints (``dataroom/audit.py`` at ``--baseline-rev``, loaded from git) against
   today's (Merkle leaf per append, a signing thread every ``--every`` records). Means are shown
   beside medians: the mean is where an amortised signature would show.
2. The append alone (write + fsync), before and after, and one checkpoint (sign + write + fsync).
3. Verification rate over a generated log (decision records shaped like the pipeline's, a signed
   checkpoint every 1000 records).
4. Policy replay rate (``dataroom policy replay``) over generated decisions whose inputs the
   pipeline computed (a mix of allowed and denied queries, users and projects): every input
   distinct (the worst case: each one evaluated), in one process and over all cores.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dataroom.audit import GENESIS_HASH, AuditLog, canonical_json, decision_record  # noqa: E402
from dataroom.audit.checkpoints import make_checkpoint, record_leaf  # noqa: E402
from dataroom.audit.keys import load_or_create_signing_key  # noqa: E402
from dataroom.audit.merkle import Frontier  # noqa: E402


def baseline_audit_log(rev: str) -> type:
    """``AuditLog`` as it was at ``rev`` (before checkpoints), imported from git into its own module."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:dataroom/audit.py"], capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp(prefix="bench-audit-baseline-")) / "audit_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("audit_baseline", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["audit_baseline"] = module
    spec.loader.exec_module(module)
    return module.AuditLog


def timed_ms(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def interleaved(a: Callable[[], Any], b: Callable[[], Any], repeat: int) -> tuple[list[float], list[float]]:
    a(), b()
    ta, tb = [], []
    for _ in range(repeat):
        ta.append(timed_ms(a))
        tb.append(timed_ms(b))
    return ta, tb


def summary(times: list[float]) -> str:
    return f"median {statistics.median(times):7.3f} ms  mean {statistics.fmean(times):7.3f} ms  p99 {sorted(times)[int(len(times) * 0.99) - 1]:7.3f} ms"


def sample_record(i: int) -> dict[str, Any]:
    """A decision record the size and shape of the pipeline's (policy input with facts)."""
    return decision_record(
        path="dataroom/query/main",
        input_doc={
            "user": {"name": f"user{i % 17}", "groups": ["data-scientists"]},
            "project_id": "remediation-acme",
            "project": {"id": "remediation-acme", "members": ["alice", "bob"], "tenants": ["acme"], "tables": ["acme.findings"], "multi_tenant": False,
                        "status": "approved", "expires": "2027-01-01", "visible_classes": ["internal", "public"]},
            "quarantines": [],
            "facts": {"tables": ["acme.findings"], "tenants": ["acme"], "columns": [{"table": "acme.findings", "column": c, "clause": "select"} for c in ("cvss", "severity")],
                      "functions": ["count"], "statement": "select", "parse_error": None},
            "today": "2026-11-30",
            "sql": f"SELECT severity, count(*) FROM acme.findings WHERE cvss > {i % 10} GROUP BY 1",
            "client": "cli",
        },
        allow=True,
        reasons=[],
        outcome="allowed",
        revision="0" * 64,
        labels={"engine": "regopy"},
        metrics={"timer_policy_eval_ms": 0.4},
    )


def generate_log(path: Path, records: int, every: int = 1000) -> None:
    """A chained, checkpointed log written without fsync (what the writer would have produced)."""
    key = load_or_create_signing_key(path.with_name(path.name + ".key"), path.with_name(path.name + ".pub"))
    frontier, prev, offset = Frontier(), GENESIS_HASH, 0
    import hashlib

    with path.open("wb") as log, path.with_name(path.name + ".checkpoints").open("w") as cps:
        def checkpoint(reason: str) -> None:
            cps.write(canonical_json(make_checkpoint(stream="audit", frontier=frontier, last_hash=prev, offset=offset, timestamp="2026-11-30T00:00:00+00:00", reason=reason, key=key)) + "\n")

        checkpoint("genesis")
        for seq in range(records):
            chained = {**sample_record(seq), "seq": seq, "prev_hash": prev}
            body = canonical_json(chained)
            prev = hashlib.sha256(body.encode()).hexdigest()
            line = (body[:-1] + f',"hash":"{prev}"}}\n').encode()
            log.write(line)
            offset += len(line)
            frontier.push(record_leaf(prev))
            if (seq + 1) % every == 0:
                checkpoint("count")
        if records % every:
            checkpoint("shutdown")
    path.with_name(path.name + ".head").write_text(canonical_json({"seq": records - 1, "hash": prev}).ljust(128))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=400, help="trivial queries per variant")
    parser.add_argument("--every", type=int, default=100, help="checkpoint cadence during the overhead run (records)")
    parser.add_argument("--verify-records", type=int, default=200_000)
    parser.add_argument("--replay-decisions", type=int, default=100_000)
    parser.add_argument("--skip", action="append", default=[], choices=["overhead", "verify", "replay"], help="leave a section out")
    parser.add_argument("--baseline-rev", default="9681e36", help="git revision with the audit log before checkpoints")
    parser.add_argument("--rows", type=int, default=200_000, help="demo data rows (the trivial query reads none)")
    args = parser.parse_args()

    from dataroom.demo_data import generate

    home = ROOT / "benchmarks" / ".data" / f"rows-{args.rows}"
    if not (home / "catalog.toml").exists():
        generate(home, rows=args.rows, files_per_table=8)
    work = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    if "overhead" not in args.skip:
        overhead(args, home, work)
    if "verify" not in args.skip:
        verify_rate(args, work)
    if "replay" not in args.skip:
        replay_rate(args, home, work)


def overhead(args: argparse.Namespace, home: Path, work: Path) -> None:
    from dataroom.pipeline import Outcome, QueryService
    from dataroom.settings import Settings

    Before = baseline_audit_log(args.baseline_rev)

    with_cp = QueryService(Settings(home=home, audit_path=work / "new" / "audit.jsonl", audit_checkpoint_every=args.every, audit_checkpoint_interval_s=60))
    without = QueryService(Settings(home=home, audit_path=work / "old" / "audit.jsonl"))
    without.audit = Before(work / "old" / "audit.jsonl")

    def trivial(svc: QueryService) -> Callable[[], None]:
        def run() -> None:
            assert svc.run("alice", "remediation-acme", "SELECT 1 AS x").outcome is Outcome.ALLOWED

        return run

    old_q, new_q = interleaved(trivial(without), trivial(with_cp), args.repeat)
    print(f"trivial query through the pipeline, {args.repeat} each, interleaved (checkpoint every {args.every} records)")
    print(f"  before checkpoints   {summary(old_q)}")
    print(f"  with checkpoints     {summary(new_q)}")
    print(f"  difference           median {statistics.median(new_q) - statistics.median(old_q):+7.3f} ms  mean {statistics.fmean(new_q) - statistics.fmean(old_q):+7.3f} ms")
    signed = sum(1 for _ in (work / "new" / "audit.jsonl.checkpoints").open())
    print(f"  checkpoints signed during the run: {signed}")
    with_cp.close()
    without.close()

    old_log, new_log = Before(work / "append-old.jsonl"), AuditLog(work / "append-new.jsonl", checkpoint_every=args.every)
    record = sample_record(0)
    old_a, new_a = interleaved(lambda: old_log.append(record), lambda: new_log.append(record), args.repeat * 2)
    print(f"\ndurable append alone, {args.repeat * 2} each, interleaved")
    print(f"  before checkpoints   {summary(old_a)}")
    print(f"  with checkpoints     {summary(new_a)}")
    cp_times = [timed_ms(lambda: new_log.checkpoint("bench", force=True)) for _ in range(50)]
    print(f"  one checkpoint (catch up, sign, write, fsync; off the query path): median {statistics.median(cp_times):.3f} ms")
    new_log.close()


def verify_rate(args: argparse.Namespace, work: Path) -> None:
    path = work / "verify" / "audit.jsonl"
    path.parent.mkdir()
    started = time.perf_counter()
    generate_log(path, args.verify_records)
    print(f"\ngenerated {args.verify_records:,} records ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    result = AuditLog(path).verify()
    elapsed = time.perf_counter() - started
    assert result.ok, result.describe()
    print(f"verify: {result.records:,} records, {result.checkpoints} checkpoints in {elapsed:.2f} s = {result.records / elapsed:,.0f} records/s")



REPLAY_QUERIES = [
    ("alice", "remediation-acme", "SELECT asset_ip, count(*) AS n FROM acme.findings GROUP BY 1"),
    ("alice", "remediation-acme", "SELECT severity, count(*) FROM acme.findings WHERE cvss > 7 GROUP BY 1"),
    ("bob", "remediation-acme", "SELECT f.cve_id, c.published_at FROM acme.findings f JOIN reference.cve c USING (cve_id)"),
    ("alice", "remediation-acme", "SELECT analyst_email FROM acme.findings"),
    ("alice", "remediation-benchmark", "SELECT asset_hostname FROM acme.findings UNION ALL SELECT asset_hostname FROM globex.findings"),
    ("alice", "remediation-benchmark", "SELECT avg(remediation_days) FROM acme.findings UNION ALL SELECT avg(remediation_days) FROM globex.findings"),
    ("bob", "remediation-acme", "SELECT read_text('/etc/passwd')"),
    ("carol", "remediation-acme", "SELECT count(*) FROM globex.findings"),
]


def replay_rate(args: argparse.Namespace, home: Path, work: Path) -> None:
    import os

    from dataroom.analysis import analyse
    from dataroom.pipeline import QueryService
    from dataroom.policy import QUERY_POLICY_DIR
    from dataroom.replay import records_of, replay
    from dataroom.settings import Settings

    svc = QueryService(Settings(home=home, audit_path=work / "replay-src" / "audit.jsonl"))
    templates = []
    for user, project, sql in REPLAY_QUERIES:
        facts = analyse(sql, svc.catalog)
        groups = list(svc.catalog.users[user].groups) if user in svc.catalog.users else []
        doc = svc.policy_input(user, groups, svc.project_for(project), facts, project)
        decision = svc.policy.decide(doc)
        templates.append((doc, decision))
    svc.close()
    import datetime as dt

    def write(path: Path, n: int, distinct: bool) -> int:
        """n decisions; ``distinct``: every policy input differs (worst case), else a quarter's worth of days and users repeat."""
        path.parent.mkdir(parents=True, exist_ok=True)
        allowed = 0
        with path.open("w") as fh:
            for i in range(n):
                doc, decision = templates[i % len(templates)]
                doc = {**doc, "today": (dt.date(2026, 9, 1) + dt.timedelta(days=(i // len(templates)) % 90)).isoformat()}
                if distinct:
                    doc["bench_nonce"] = i
                record = decision_record(
                    path="dataroom/query/main", input_doc={**doc, "sql": f"{i}", "client": "cli"}, allow=decision.allow,
                    reasons=[r.__dict__ for r in decision.reasons], outcome="allowed" if decision.allow else "denied",
                    revision=decision.revision, labels={"engine": "regopy"}, metrics={},
                )
                allowed += decision.allow
                fh.write(canonical_json(record) + "\n")
        return allowed

    for distinct, n in ((True, min(args.replay_decisions, 20_000)), (False, args.replay_decisions)):
        path = work / ("replay-distinct" if distinct else "replay-repeating") / "audit.jsonl"
        allowed = write(path, n, distinct)
        what = "every policy input distinct (worst case)" if distinct else "inputs repeating as in a log (8 queries x 90 days)"
        print(f"\npolicy replay of {n:,} recorded decisions ({allowed:,} allowed), {what}, current policy as candidate")
        for jobs in sorted({1, os.cpu_count() or 1}):
            report = replay(records_of(path), QUERY_POLICY_DIR, jobs=jobs)
            assert report.decisions == n and not any(report.totals().values()), report.totals()
            print(f"  jobs={jobs}: {report.distinct_inputs:,} evaluations, {report.seconds:6.2f} s = {report.rate:8,.0f} decisions/s  (read + evaluate + compare)")


if __name__ == "__main__":
    main()

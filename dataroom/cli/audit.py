"""``dataroom audit``: verify chain and signed checkpoints, list and search query attempts, export evidence, prove records."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dataroom.audit import AuditLog
from dataroom.settings import Settings


@click.group()
def audit() -> None:
    """Inspect the tamper-evident audit log."""


@audit.command()
@click.option("--public-key", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="Trust this public key (PEM) instead of the one published beside the log.")
@click.option("--anchor", "anchor_url", help="Also compare with the checkpoints and segments anchored at s3://bucket/prefix.")
@click.option("--registry/--no-registry", default=True, show_default=True, help="Also check the registry's stream and every registry row against it.")
def verify(public_key: Path | None, anchor_url: str | None, registry: bool) -> None:
    """Check records, chain, head and signed checkpoints of every stream (and the registry); exit 1 and name the first problem if tampered with."""
    from dataroom.audit.reader import AuditView

    settings = Settings()
    log = AuditLog.from_settings(settings)
    if anchor_url is None:
        results = AuditView(settings).verify(public_key=public_key)
        for stream in results:
            click.echo(stream.result.describe() if len(results) == 1 and stream.stream == "audit" else stream.describe())
        if not results:
            click.echo(log.verify(public_key).describe())
        ok = all(r.result.ok for r in results)
    else:
        from dataroom.audit.anchor import AnchorTarget, s3_client, verify_anchor

        try:
            target = AnchorTarget.parse(anchor_url)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc
        client = s3_client(settings.aws_endpoint_url, settings.aws_region)
        view = AuditView(settings)
        logs = [view.log(stream) for stream in view.paths()] or [log]  # every stream, each under prefix/<stream>/
        ok = True
        for stream_log in logs:
            anchored = verify_anchor(stream_log, target, client, public_key or settings.audit_public_key)
            click.echo(anchored.describe() if len(logs) == 1 else f"[stream {stream_log.stream}] {anchored.describe()}")
            ok = ok and anchored.ok
    if registry:
        check = _registry_check(settings, AuditLog(settings.audit_file, key_path=settings.audit_key_path), public_key)
        if check is not None:
            click.echo(check.describe())
            ok = ok and check.ok
    raise SystemExit(0 if ok else 1)


def _registry_check(settings: Settings, log: AuditLog, public_key: Path | None):  # type: ignore[no-untyped-def]
    """The registry's stream and rows, when there is a registry to check."""
    from dataroom.audit.registry_events import STREAM_NAME, verify_registry

    url = settings.registry_database_url
    if not log.path.with_name(STREAM_NAME).exists() and url.startswith("sqlite") and not Path(url.split("///", 1)[-1]).exists():
        return None
    from dataroom.registry.models import Base
    from dataroom.registry.service import engine_for

    if public_key is not None:
        log = AuditLog(log.path, key_path=log.key_path, public_key=public_key)
    from dataroom.audit.reader import AuditView

    view = AuditView(settings, public_key=public_key)
    writers = [view.log(stream) for stream in view.paths() if stream != "audit"]  # each writer's registry.jsonl beside its stream
    return verify_registry(log, engine_for(url), Base.metadata, writers)


@audit.command()
@click.option("--to", "url", help="s3://bucket/prefix (default: s3://$DATAROOM_AUDIT_BUCKET/$DATAROOM_AUDIT_ANCHOR_PREFIX).")
@click.option("--loop", is_flag=True, help="Keep shipping every --interval seconds (run it beside the broker, never in it).")
@click.option("--interval", type=float, default=30.0, show_default=True)
@click.option("--status", "status_only", is_flag=True, help="Only report the backlog.")
@click.option("--json", "as_json", is_flag=True)
def ship(url: str | None, loop: bool, interval: float, status_only: bool, as_json: bool) -> None:
    """Ship signed checkpoints and the segments they close to the Object Lock bucket; exit 1 if a backlog remains."""
    import time

    from dataroom.audit.anchor import AnchorTarget, Shipper, s3_client

    settings = Settings()
    if url is None and not settings.audit_bucket:
        raise click.UsageError("no bucket: give --to s3://bucket/prefix or set DATAROOM_AUDIT_BUCKET")
    target = AnchorTarget.parse(url) if url else AnchorTarget(settings.audit_bucket or "", settings.audit_anchor_prefix)
    shipper = Shipper(AuditLog.from_settings(settings), target, s3_client(settings.aws_endpoint_url, settings.aws_region), settings.audit_retention_days)
    while True:
        status = shipper.status() if status_only else shipper.ship_once()
        if as_json:
            click.echo(json.dumps(status.to_json()))
        else:
            click.echo(
                f"anchored {status.shipped_size} record(s) at s3://{target.bucket}/{target.prefix}; shipped {status.shipped_now} checkpoint(s) now; "
                f"backlog {status.backlog} checkpoint(s), oldest {status.lag_s:.0f} s" + (f"; error: {status.error}" if status.error else "")
            )
        if not loop or status_only:
            raise SystemExit(1 if status.backlog else 0)
        time.sleep(interval)


@audit.command()
def checkpoint() -> None:
    """Sign a checkpoint of the log now (the writer does it every N records / T seconds and at shutdown)."""
    log = AuditLog.from_settings(Settings())
    signed = log.checkpoint("forced", force=True)
    assert signed is not None
    click.echo(f"checkpoint signed: {signed['size']} records, root {signed['root']}, key {signed['key_id']}")
    log.close()


@audit.command()
@click.option("--actor", required=True, help="Who adopts (recorded).")
@click.option("--registry", "registry_rows", is_flag=True, help="Adopt the registry rows its stream has never recorded (a registry older than it).")
def adopt(actor: str, registry_rows: bool) -> None:
    """Sign a log that predates checkpoints, or record registry rows that predate the registry stream; once, after an upgrade."""
    settings = Settings()
    log = AuditLog.from_settings(settings)
    if registry_rows:
        from dataroom.audit.registry_events import adopt_registry
        from dataroom.registry.models import Base
        from dataroom.registry.service import engine_for

        click.echo(f"adopted {adopt_registry(log, engine_for(settings.registry_database_url), Base.metadata, actor)} registry row(s)")
        return
    done = log.adopt(actor)
    log.close()
    click.echo(f"adopted {done['record']['records']} record(s); checkpoint signed by key {done['checkpoint']['key_id']}")


@audit.command()
@click.argument("decision_id")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the proof to this file (default: standard output).")
def prove(decision_id: str, out: Path | None) -> None:
    """Inclusion proof of a query's decision (and completion) record against a signed checkpoint.

    Signs a fresh checkpoint first when the record is newer than the last one (needs the writer's key).
    """
    from dataroom.audit.proofs import ProofError, build_proofs

    try:
        proof = build_proofs(AuditLog.from_settings(Settings()), [decision_id], sign_if_needed=True)[decision_id]
    except ProofError as exc:
        raise click.ClickException(str(exc)) from exc
    if isinstance(proof, str):
        raise click.ClickException(f"no proof for {decision_id}: {proof}")
    text = json.dumps(proof, indent=2, ensure_ascii=False)
    if out is None:
        click.echo(text)
    else:
        out.write_text(text + "\n")
        click.echo(f"proof of {len(proof['entries'])} record(s) against checkpoint of {proof['checkpoint']['size']} records written to {out}")


@audit.command("check-proof")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--public-key", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path), help="The room's public key (PEM) you trust.")
def check_proof_cmd(file: Path, public_key: Path) -> None:
    """Check inclusion proofs offline: a proof file, an evidence.json, or inclusion_proofs.csv/.parquet.

    Needs nothing of the room but its public key. Exit 1 if any proof fails (or there is none).
    """
    from dataroom.audit.keys import load_public_keys
    from dataroom.audit.proofs import check_proof, proofs_in

    try:
        keys = load_public_keys(public_key)
        proofs = proofs_in(file)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    results = [check_proof(p, keys) for p in proofs]
    for r in results:
        click.echo(r.describe())
    failed = sum(not r.ok for r in results)
    click.echo(f"{len(results) - failed} of {len(results)} proof(s) verified with key {', '.join(keys)}")
    raise SystemExit(1 if failed or not results else 0)


@audit.command("public-key")
def public_key_cmd() -> None:
    """Print the published checkpoint public key (PEM) and its key id."""
    from dataroom.audit.keys import load_public_keys

    path = AuditLog.from_settings(Settings()).public_key_path
    try:
        keys = load_public_keys(path)
    except FileNotFoundError:
        raise click.ClickException(f"no public key published at {path} yet: it appears when the first writer signs a checkpoint")
    click.echo(path.read_text().rstrip())
    click.echo(f"# key id(s): {', '.join(keys)}  (published at {path})")


@audit.command()
@click.option("--user", help="Only this user's queries.")
@click.option("--project", help="Only this project's queries.")
@click.option("--decision", type=click.Choice(["allowed", "denied", "invalid", "error"]), help="Only this outcome.")
@click.option("--limit", type=int, default=50, show_default=True, help="Most recent N attempts (0 = all).")
@click.option("--json", "as_json", is_flag=True, help="Flattened attempts as JSON lines.")
def show(limit: int, as_json: bool, **criteria: str | None) -> None:
    """List query attempts, newest last (more filters: `dataroom audit search`)."""
    _list_attempts(criteria, limit, as_json)


@audit.command()
@click.option("--user", help="Only this user's queries.")
@click.option("--project", help="Only this project's queries.")
@click.option("--tenant", help="Only queries touching this tenant.")
@click.option("--decision", type=click.Choice(["allowed", "denied", "invalid", "error"]), help="Only this outcome.")
@click.option("--since", help="From this date or ISO time (inclusive, UTC).")
@click.option("--until", help="Up to this date (inclusive day) or ISO time (exclusive), UTC.")
@click.option("--text", help="Substring of the SQL (case-insensitive).")
@click.option("--table", help="Only queries reading this catalog table.")
@click.option("--reason", help="Only denials with this reason code (e.g. pii_column, cross_tenant).")
@click.option("--limit", type=int, default=100, show_default=True, help="Most recent N matches (0 = all).")
@click.option("--json", "as_json", is_flag=True, help="Flattened attempts as JSON lines.")
def search(limit: int, as_json: bool, **criteria: str | None) -> None:
    """Find query attempts by user, project, tenant, outcome, time, SQL text, table or reason."""
    _list_attempts(criteria, limit, as_json)


def _list_attempts(criteria: dict[str, str | None], limit: int, as_json: bool) -> None:
    """Print the attempts matching ``criteria`` (the review UI's filter), newest last, after verifying what is shown.

    Every stream is verified first, incrementally from its last verified checkpoint; a stream that
    does not verify is re-indexed from its bytes and a warning names its first bad record. One line
    per attempt carries both sequence numbers (``decision+completion``); without filters the other
    records (torn lines, adoptions, alert events) are listed too, so the numbers have no gaps.
    """
    from dataroom.audit.reader import AuditView
    from dataroom.querylog import QueryFilter, QueryLog

    try:
        flt = QueryFilter.from_args(criteria)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    settings = Settings()
    querylog = QueryLog(settings)
    view: AuditView = querylog.view
    broken = [r for r in view.verify(incremental=True) if not r.result.ok]
    for bad in broken:
        _warn_broken(view, bad)
    querylog.refresh(rebuild=[b.stream for b in broken])
    rows, _ = querylog.page(flt, limit=limit, events=not flt.active())
    several = len({r["stream"] for r in rows}) > 1 or any(r["stream"] != "audit" for r in rows)
    for r in reversed(rows):
        if as_json:
            click.echo(json.dumps(r, default=str))
            continue
        seq = f"{r['stream']}:" if several else ""
        seq += f"{r['seq']}" + (f"+{r['completion_seq']}" if r["completion_seq"] is not None else "")
        if r["kind"] == "event":
            click.echo(f"{seq:>11} {r['timestamp'][:19]} [{r['type']}] {r['sql']}")
            continue
        rows_out = f" rows={r['rows']}" if r["rows"] is not None else ""
        reasons = f"  -- {', '.join(r['reasons'])}" if r["reasons"] else ""
        click.echo(f"{seq:>11} {r['timestamp'][:19]} {r['user']:<10} {r['project_id']:<22} {r['outcome'] or '-':<8}{rows_out} {r['decision_id']} {r['sql']!r}{reasons}")
    if broken:
        click.secho(f"WARNING: {len(broken)} audit stream(s) failed verification (see above): what is listed may have been tampered with", fg="red", bold=True, err=True)
        raise SystemExit(1)


def _warn_broken(view, bad) -> None:  # type: ignore[no-untyped-def]
    """A loud warning naming the first bad record and showing its line."""
    result = bad.result
    click.secho(f"WARNING: the audit log does not verify: [stream {bad.stream}] {result.describe()}", fg="red", bold=True, err=True)
    if result.first_bad_line:
        with bad.path.open("rb") as fh:
            for number, line in enumerate(fh, start=1):
                if number == result.first_bad_line:
                    click.secho(f"  first bad record (line {number}): {_brief(line)}", fg="red", err=True)
                    break


def _brief(line: bytes) -> str:
    """A record in one readable line: what a reviewer needs to find it (seq, type, id, user, SQL), else its raw start."""
    text = line.decode("utf-8", "replace").rstrip("\n")
    try:
        record = json.loads(text)
        inp = record.get("input") or {}
        parts = [f"seq {record.get('seq')}", str(record.get("type")), str(record.get("decision_id") or ""), str((inp.get("user") or {}).get("name") or record.get("actor") or ""),
                 str(record.get("timestamp") or "")]  # fmt: skip
        sql = inp.get("sql")
        return " ".join(p for p in parts if p) + (f" sql={sql[:300]!r}" if isinstance(sql, str) else "")
    except (ValueError, AttributeError):
        return text[:400] + (" ..." if len(text) > 400 else "")


@audit.command()
@click.option("--since", required=True, help="Window start: date or ISO time (inclusive, UTC).")
@click.option("--until", required=True, help="Window end: date (inclusive day) or ISO time (exclusive), UTC.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Directory for the evidence files.")
@click.option(
    "--format", "formats", multiple=True, type=click.Choice(["json", "csv", "parquet"]), help="Output formats (repeat; default all three)."
)
def export(since: str, until: str, out_dir: Path, formats: tuple[str, ...]) -> None:
    """Export the auditor's evidence (projects, approvals, hypotheses, transitions, linked queries, chain status).

    Exit 1 when the audit chain does not verify (the files are written all the same).
    """
    from dataroom import evidence
    from dataroom.catalog import CatalogError, load_catalog
    from dataroom.registry import Registry

    settings = Settings()
    try:
        registry = Registry.from_settings(settings, load_catalog(settings.catalog_file))
        collected = evidence.collect(registry, AuditLog.from_settings(settings), since, until, settings)
    except (CatalogError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    digests = evidence.write(collected, out_dir, formats or evidence.FORMATS)
    counts = ", ".join(f"{name}={len(rows)}" for name, rows in collected.sections.items() if name != "chain")
    chains = collected.sections["chain"]
    ok = all(c["ok"] for c in chains)
    click.echo(f"evidence for [{collected.since}, {collected.until}) written to {out_dir}: {len(digests)} file(s) + manifest.json")
    click.echo(f"  {counts}")
    for chain in chains:
        where = f" [{Path(chain['audit_file']).parent.name}]" if len(chains) > 1 else ""
        click.echo(f"  audit chain{where}: {'OK' if chain['ok'] else 'BROKEN at seq ' + str(chain['first_bad_seq']) + ': ' + chain['problem']} ({chain['records']} records)")
    raise SystemExit(0 if ok else 1)

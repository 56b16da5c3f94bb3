"""``dataroom audit``: verify the hash chain, list and search query attempts, export evidence."""

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
def verify() -> None:
    """Check the hash chain; exit 1 and name the first bad record if it was tampered with."""
    result = AuditLog(Settings().audit_file).verify()
    click.echo(result.describe())
    raise SystemExit(0 if result.ok else 1)


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
    """Print the attempts matching ``criteria``: the same filter the review UI applies."""
    from dataroom.querylog import QueryFilter, QueryLog

    try:
        flt = QueryFilter.from_args(criteria)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    rows = flt.apply(QueryLog(Settings().audit_file).rows())
    if limit:
        rows = rows[-limit:]
    for r in rows:
        if as_json:
            click.echo(json.dumps(r, default=str))
            continue
        rows_out = f" rows={r['rows']}" if r["rows"] is not None else ""
        reasons = f"  -- {', '.join(r['reasons'])}" if r["reasons"] else ""
        click.echo(f"{r['seq']:>6} {r['timestamp'][:19]} {r['user']:<10} {r['project_id']:<22} {r['outcome']:<8}{rows_out} {r['decision_id']} {r['sql']!r}{reasons}")


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
        collected = evidence.collect(registry, AuditLog(settings.audit_file), since, until)
    except (CatalogError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    digests = evidence.write(collected, out_dir, formats or evidence.FORMATS)
    counts = ", ".join(f"{name}={len(rows)}" for name, rows in collected.sections.items() if name != "chain")
    chain = collected.sections["chain"][0]
    click.echo(f"evidence for [{collected.since}, {collected.until}) written to {out_dir}: {len(digests)} file(s) + manifest.json")
    click.echo(f"  {counts}")
    click.echo(f"  audit chain: {'OK' if chain['ok'] else 'BROKEN at seq ' + str(chain['first_bad_seq']) + ': ' + chain['problem']} ({chain['records']} records)")
    raise SystemExit(0 if chain["ok"] else 1)

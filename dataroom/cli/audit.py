"""``dataroom audit``: verify the hash chain and list query attempts."""

from __future__ import annotations

import json

import click

from dataroom.audit import AuditLog, attempts
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
@click.option("--json", "as_json", is_flag=True, help="Full records as JSON lines.")
def show(user: str | None, project: str | None, decision: str | None, limit: int, as_json: bool) -> None:
    """List query attempts, newest last."""
    rows = attempts(AuditLog(Settings().audit_file).records())
    rows = [r for r in rows if _matches(r, user, project, decision)]
    if limit:
        rows = rows[-limit:]
    for r in rows:
        if as_json:
            click.echo(json.dumps(r, default=str))
            continue
        completion = r.get("completion") or {}
        outcome = r["outcome"] if r["outcome"] != "allowed" or completion.get("status") != "failed" else "error"
        reasons = "; ".join(x["message"] for x in r["result"]["reasons"])
        rows_out = f" rows={completion['rows']}" if "rows" in completion else ""
        click.echo(
            f"{r['seq']:>6} {r['timestamp'][:19]} {r['input']['user']['name']:<10} "
            f"{r['input']['project_id']:<22} {outcome:<8}{rows_out} {r['input']['sql']!r}"
            + (f"  -- {reasons}" if reasons else "")
        )


def _matches(record: dict, user: str | None, project: str | None, decision: str | None) -> bool:
    inp = record["input"]
    if user and inp["user"]["name"] != user:
        return False
    if project and inp["project_id"] != project:
        return False
    return not decision or record["outcome"] == decision

"""``dataroom release``: list, show, approve, reject and download release requests.

The same rules as the review UI (:mod:`dataroom.registry.releases`): two members of the security
group other than the requester approve, the second approval releases the object immutably, and
only its requester or a security reviewer downloads it, checked against its recorded SHA-256.
Every step is recorded in the registry (and so in the audit evidence).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from dataroom.cli.project import ACTING_AS, open_registry, registry_errors
from dataroom.outputs.releases import ReleaseService
from dataroom.outputs.store import StoreError
from dataroom.registry.releases import APPROVALS_NEEDED, ReleaseInfo
from dataroom.settings import Settings


def _service() -> ReleaseService:
    return ReleaseService.from_settings(Settings(), open_registry())


def describe(r: ReleaseInfo, full: bool = False) -> str:
    lines = [
        f"{r.key} [{r.project_id}] {r.status}  checks={r.checks.get('status')}  approvals={len(r.approvers)}/{APPROVALS_NEEDED}  by {r.requester}",
        f"    {r.title}  ({r.kind}, {r.filename}, {r.size} bytes, sha256 {r.sha256})",
    ]
    if full:
        lines.append(f"    justification: {r.justification}")
        for c in r.checks.get("checks", []):
            cells = f" cells {c['cells'][:8]}" if c.get("cells") else ""
            lines.append(f"    check {c['code']}: {c['status']}: {c['message']}{cells}")
        lines += [f"    query {d}" for d in r.decision_ids] or ["    no linked queries"]
        lines += [f"    {e.at[:19]} {e.kind} by {e.actor}" + (f": {e.note}" if e.note else "") for e in r.events]
        if r.released_sha256:
            lines.append(f"    released {r.released_at} sha256 {r.released_sha256}")
    return "\n".join(lines)


@click.group()
def release() -> None:
    """Release requests: the only way a result leaves the room (two security reviewers decide)."""


@release.command("list")
@ACTING_AS
@click.option("--status", type=click.Choice(["pending", "released", "rejected"]), default=None, help="Only requests in this state.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@registry_errors
def list_releases(acting_as: str, status: str | None, as_json: bool) -> None:
    """Requests you may see (security: all; others: their own), newest first."""
    for r in _service().releases.list(status=status, as_user=acting_as):
        click.echo(json.dumps(r.to_dict(), default=str) if as_json else describe(r))


@release.command()
@ACTING_AS
@click.argument("request_id")
@click.option("--json", "as_json", is_flag=True)
@registry_errors
def show(acting_as: str, request_id: str, as_json: bool) -> None:
    """One request with its checks, linked queries and every step."""
    r = _service().releases.get(request_id, as_user=acting_as)
    click.echo(json.dumps(r.to_dict(), default=str, indent=2) if as_json else describe(r, full=True))


def _decide(acting_as: str, request_id: str, approve: bool, note: str) -> None:
    try:
        r = _service().review(acting_as, request_id, approve=approve, note=note)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(describe(r, full=True))


@release.command()
@ACTING_AS
@click.argument("request_id")
@click.option("--note", default="", help="Why (required when a check failed).")
@registry_errors
def approve(acting_as: str, request_id: str, note: str) -> None:
    """Approve REQUEST_ID (security, not its requester); the second approval releases it."""
    _decide(acting_as, request_id, True, note)


@release.command()
@ACTING_AS
@click.argument("request_id")
@click.option("--note", required=True, help="Why it may not leave the room.")
@registry_errors
def reject(acting_as: str, request_id: str, note: str) -> None:
    """Reject REQUEST_ID (security, not its requester): it never downloads."""
    _decide(acting_as, request_id, False, note)


@release.command()
@ACTING_AS
@click.argument("request_id")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write here [default: the request's file name; - for stdout].")
@registry_errors
def download(acting_as: str, request_id: str, output: Path | None) -> None:
    """Download a released object (its requester or security), checked against its recorded SHA-256."""
    r, data = _service().download(acting_as, request_id, via="cli")
    if output is not None and str(output) == "-":
        sys.stdout.buffer.write(data)
        return
    target = output or Path(r.filename)
    if target.exists():
        raise click.ClickException(f"{target} exists: choose another --output")
    target.write_bytes(data)
    click.echo(f"{r.key}: wrote {target} ({len(data)} bytes, sha256 {r.released_sha256})", err=True)

"""``dataroom project``: propose, approve, reject, revoke, expire and list projects; manage members.

Every command names who is acting (``--as USER`` or ``$DATAROOM_AS``); the registry checks that
user's catalog groups and segregation of duties exactly as the review UI and the broker do.
Exit codes: 0 done, 2 bad request or wrong state, 3 not permitted.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from typing import Any, Callable

import click

from dataroom.catalog import CatalogError, load_catalog
from dataroom.registry import PermissionDenied, ProjectInfo, Registry, RegistryError
from dataroom.settings import Settings

ACTING_AS = click.option(
    "--as",
    "acting_as",
    envvar="DATAROOM_AS",
    required=True,
    metavar="USER",
    help="Catalog user you act as (or $DATAROOM_AS); their catalog groups decide what you may do.",
)


def open_registry() -> Registry:
    """The registry for the current settings (seeded from the catalog on first use)."""
    settings = Settings()
    try:
        return Registry.from_settings(settings, load_catalog(settings.catalog_file))
    except CatalogError as exc:
        raise click.UsageError(str(exc)) from exc


def registry_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn registry refusals into a message on stderr and exit 3 (not permitted) or 2 (bad request)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RegistryError as exc:
            label = "not permitted" if isinstance(exc, PermissionDenied) else "refused"
            click.echo(f"{label}: {exc}", err=True)
            raise SystemExit(3 if isinstance(exc, PermissionDenied) else 2) from exc

    return wrapper


def _expiry(expires: dt.datetime | None, days: int | None) -> dt.date | None:
    if expires is not None and days is not None:
        raise click.UsageError("give --expires or --days, not both")
    if expires is not None:
        return expires.date()
    if days is not None:
        return dt.date.today() + dt.timedelta(days=days)
    return None


def _describe_output_policy(policy: dict | None) -> str:
    if not policy or not policy.get("enabled", True):
        return "off (results are not aggregation-constrained)"
    return f"each result row backed by at least {policy['min_rows']} rows and {policy['min_tenants']} tenant(s)"


def describe(p: ProjectInfo) -> str:
    lines = [
        f"{p.id}  [{p.effective_status}]  requester={p.requester}  expires={p.expires}",
        f"    members: {', '.join(p.members)}",
        f"    tenants: {', '.join(p.tenants)}  multi_tenant={str(p.multi_tenant).lower()}",
        f"    tables: {', '.join(p.tables)}",
        f"    column classes: {', '.join(p.column_classes)}",
        f"    output policy: {_describe_output_policy(p.output_policy)}",
        f"    engine: {p.engine or 'the deployment default'}",
        f"    justification: {p.justification}",
    ]
    if p.decided_by:
        lines.append(f"    {('approved' if p.status in ('approved', 'revoked') else p.status)} by {p.decided_by} at {p.decided_at}: {p.decision_note}")
    if p.revoked_by:
        lines.append(f"    revoked by {p.revoked_by} at {p.revoked_at}: {p.revoke_reason}")
    return "\n".join(lines)


def _scope_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--tenant", "tenants", multiple=True, help="Tenant the project covers (repeat)."),
            click.option("--table", "tables", multiple=True, help="Catalog table <schema>.<table> (repeat)."),
            click.option(
                "--class",
                "column_classes",
                multiple=True,
                type=click.Choice(["public", "internal", "quasi_identifier"]),
                help="Column class the project may see (repeat; default public, internal, quasi_identifier).",
            ),
            click.option("--multi-tenant/--single-tenant", "multi_tenant", default=None, help="Whether queries may mix tenants."),
            click.option("--expires", type=click.DateTime(["%Y-%m-%d"]), help="Last day of the project (YYYY-MM-DD)."),
            click.option("--days", type=click.IntRange(1, 366), help="Project lasts this many days from today."),
            click.option("--min-rows", type=click.IntRange(1), help="Output policy: rows behind every result row (default 10 when on)."),
            click.option("--min-tenants", type=click.IntRange(1), help="Output policy: tenants behind every result row (default 2 for multi-tenant)."),
            click.option(
                "--output-policy/--no-output-policy",
                "output_policy_on",
                default=None,
                help="Aggregation constraint on results (default: on for multi-tenant projects).",
            ),
            click.option(
                "--engine",
                type=click.Choice(["duckdb", "spark"]),
                default=None,
                help="Engine the project's queries run on (default: the deployment's DATAROOM_DEFAULT_ENGINE).",
            ),
        ]
    ):
        func = option(func)
    return func


def _output_policy(min_rows: int | None, min_tenants: int | None, on: bool | None) -> dict | None:
    """The output policy the options ask for; None keeps the default (or the requested one, when approving)."""
    if on is False:
        return {"enabled": False}
    chosen = {k: v for k, v in (("min_rows", min_rows), ("min_tenants", min_tenants)) if v is not None}
    return chosen or ({} if on else None)


@click.group()
def project() -> None:
    """Projects: the approved scope every query runs within."""


@project.command()
@click.argument("project_id")
@ACTING_AS
@_scope_options
@click.option("--member", "members", multiple=True, help="Another catalog user to include (you are always a member).")
@click.option("--description", default="", help="One line: what the project is about.")
@click.option("--justification", required=True, help="Why production data, why this scope (Project Definition).")
@registry_errors
def propose(
    project_id: str, acting_as: str, tenants, tables, column_classes, multi_tenant, expires, days, min_rows, min_tenants, output_policy_on, engine, members, description: str, justification: str
) -> None:
    """Propose PROJECT_ID; it can be queried once a security reviewer approves it."""
    p = open_registry().propose(
        acting_as,
        project_id,
        justification=justification,
        description=description,
        tenants=tenants,
        tables=tables,
        column_classes=column_classes or None,
        multi_tenant=bool(multi_tenant),
        expires=_expiry(expires, days),
        members=members,
        output_policy=_output_policy(min_rows, min_tenants, output_policy_on),
        engine=engine,
    )
    click.echo(f"proposed; awaiting approval by the security group:\n{describe(p)}")


@project.command()
@click.argument("project_id")
@ACTING_AS
@_scope_options
@click.option("--justification", required=True, help="Your written reason for approving this scope.")
@registry_errors
def approve(project_id: str, acting_as: str, tenants, tables, column_classes, multi_tenant, expires, days, min_rows, min_tenants, output_policy_on, engine, justification: str) -> None:
    """Approve PROJECT_ID (security group; never your own or one you would be a member of).

    Scope options override the requested scope; omitted ones keep what was requested.
    """
    p = open_registry().approve(
        acting_as,
        project_id,
        justification=justification,
        tenants=tenants or None,
        tables=tables or None,
        column_classes=column_classes or None,
        multi_tenant=multi_tenant,
        expires=_expiry(expires, days),
        output_policy=_output_policy(min_rows, min_tenants, output_policy_on),
        engine=engine,
    )
    click.echo(f"approved:\n{describe(p)}")


@project.command()
@click.argument("project_id")
@ACTING_AS
@click.option("--reason", required=True, help="What the requester should change.")
@registry_errors
def reject(project_id: str, acting_as: str, reason: str) -> None:
    """Reject a proposed project (security group; never your own)."""
    p = open_registry().reject(acting_as, project_id, reason=reason)
    click.echo(f"rejected:\n{describe(p)}")


@project.command()
@click.argument("project_id")
@ACTING_AS
@click.option("--reason", required=True, help="Why the project stops now.")
@registry_errors
def revoke(project_id: str, acting_as: str, reason: str) -> None:
    """Revoke a project: every query in it is denied from the next one on."""
    p = open_registry().revoke(acting_as, project_id, reason=reason)
    click.echo(f"revoked:\n{describe(p)}")


@project.command()
@click.argument("project_id")
@ACTING_AS
@click.option("--reason", required=True, help="Why the project ends early.")
@click.option("--on", "on", type=click.DateTime(["%Y-%m-%d"]), help="New expiry date (default: yesterday, i.e. now).")
@registry_errors
def expire(project_id: str, acting_as: str, reason: str, on: dt.datetime | None) -> None:
    """Bring a project's expiry forward (security group); queries after it are denied."""
    p = open_registry().expire(acting_as, project_id, reason=reason, on=on.date() if on else None)
    click.echo(f"expiry changed:\n{describe(p)}")


@project.command("list")
@click.option("--status", type=click.Choice(["proposed", "approved", "rejected", "revoked", "expired"]), help="Only this (effective) status.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_projects(status: str | None, as_json: bool) -> None:
    """List projects with their scope and who approved them."""
    for p in open_registry().projects(status):
        click.echo(json.dumps(p.to_dict()) if as_json else describe(p))


@project.command()
@click.argument("project_id")
@click.option("--json", "as_json", is_flag=True, help="The project and its event trail as JSON.")
@registry_errors
def show(project_id: str, as_json: bool) -> None:
    """A project and every recorded change to it."""
    registry = open_registry()
    p = registry.project(project_id)
    events = registry.project_events(project_id)
    if as_json:
        click.echo(json.dumps({"project": p.to_dict(), "events": events}, indent=2))
        return
    click.echo(describe(p))
    click.echo("    history:")
    for e in events:
        subject = f" {e['subject']}" if e["subject"] else ""
        note = f": {e['note']}" if e["note"] else ""
        click.echo(f"      {e['at'][:19]} {e['actor']} {e['kind']}{subject}{note}")


@project.group()
def member() -> None:
    """Add or remove project members (each change is recorded)."""


@member.command("add")
@click.argument("project_id")
@click.argument("user")
@ACTING_AS
@click.option("--note", default="", help="Why this person joins.")
@registry_errors
def member_add(project_id: str, user: str, acting_as: str, note: str) -> None:
    """Add USER to PROJECT_ID (security group; never yourself)."""
    p = open_registry().add_member(acting_as, project_id, user, note=note)
    click.echo(f"{user} added; members: {', '.join(p.members)}")


@member.command("remove")
@click.argument("project_id")
@click.argument("user")
@ACTING_AS
@click.option("--note", default="", help="Why this person leaves.")
@registry_errors
def member_remove(project_id: str, user: str, acting_as: str, note: str) -> None:
    """Remove USER from PROJECT_ID (security, the requester, or USER themselves)."""
    p = open_registry().remove_member(acting_as, project_id, user, note=note)
    click.echo(f"{user} removed; members: {', '.join(p.members) or '(none)'}")

"""``dataroom alerts``: scan the audit log for alerts (Rego rules in policies/alerts) and list them."""

from __future__ import annotations

import json

import click

from dataroom.alerts import GRACE_MARGIN_S, AlertScanner, config_file, load_config
from dataroom.settings import Settings


@click.group()
def alerts() -> None:
    """Alerts over the audit stream: denied-query bursts, unusual volumes, newly classified PII,
    engine crashes, resource-limit bursts, queries that never completed, denied function classes."""


@alerts.command()
@click.option("--json", "as_json", is_flag=True, help="Print new alerts as JSON lines.")
def scan(as_json: bool) -> None:
    """Evaluate the alert rules over audit records added since the last scan (exit 0 either way)."""
    try:
        result = AlertScanner(Settings()).scan()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    for alert in result.alerts:
        click.echo(json.dumps(alert) if as_json else f"[{alert['severity']}] {alert['title']}: {alert['message']}")
    if not as_json:
        click.echo(f"scanned {result.events} new audit record(s) through seq {result.seq}; {len(result.alerts)} new alert(s)")


@alerts.command("list")
@click.option(
    "--rule",
    help="Only this rule (denied_burst, unusual_volume, large_result, new_pii_column, engine_crash, "
    "limit_refusals, never_completed, denied_function_class, model_performance, model_drift).",
)
@click.option("--user", help="Only alerts about this user.")
@click.option("--since", help="Only alerts for events at or after this ISO time (e.g. 2026-01-01).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_alerts(rule: str | None, user: str | None, since: str | None, as_json: bool) -> None:
    """List raised alerts, oldest first (run `alerts scan` first for the newest)."""
    for alert in AlertScanner(Settings()).alerts():
        if (rule and alert["rule"] != rule) or (user and alert.get("user") != user) or (since and alert["event_at"] < since):
            continue
        if as_json:
            click.echo(json.dumps(alert))
        else:
            click.echo(f"{alert['event_at'][:19]} [{alert['severity']}] {alert['rule']}: {alert['message']}")


@alerts.command()
def config() -> None:
    """Show the effective thresholds and where to change them."""
    settings = Settings()
    try:
        effective = load_config(settings)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(f"# thresholds (override in {config_file(settings)})")
    click.echo(f"# never_completed.grace_s defaults to the query time limit (query_timeout_s = {settings.query_timeout_s:g}) + {GRACE_MARGIN_S:g} s")
    click.echo(json.dumps(effective, indent=2))

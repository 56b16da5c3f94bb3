"""``dataroom alerts``: scan the audit log for alerts (Rego rules in policies/alerts), list, acknowledge and resolve them."""

from __future__ import annotations

import functools
import json
from typing import Any, Callable

import click

from dataroom.alerts import GRACE_MARGIN_S, AlertScanner, alerts_dir, config_file, load_config
from dataroom.alerts.loop import check_shipping
from dataroom.alerts.lifecycle import STATUSES, AlertError, AlertForbidden, AlertStore
from dataroom.settings import Settings


@click.group()
def alerts() -> None:
    """Alerts over the audit stream: denied-query bursts, unusual volumes, newly classified PII,
    engine crashes, resource-limit bursts, queries that never completed, denied function classes,
    audit shipping behind. Each alert is open until a security reviewer acknowledges or resolves it."""


@alerts.command()
@click.option("--json", "as_json", is_flag=True, help="Print new alerts as JSON lines.")
def scan(as_json: bool) -> None:
    """Evaluate the alert rules over audit records added since the last scan (exit 0 either way)."""
    try:
        scanner = AlertScanner(Settings())
        result = scanner.scan()
        result.alerts.extend(check_shipping(scanner))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    for alert in result.alerts:
        click.echo(json.dumps(alert) if as_json else f"[{alert['severity']}] {alert['title']}: {alert['message']}")
    if not as_json:
        click.echo(f"scanned {result.events} new audit record(s) through seq {result.seq}; {len(result.alerts)} new alert(s)")


# the same option as the project and hypothesis commands, without importing the registry
ACTING_AS = click.option(
    "--as", "acting_as", envvar="DATAROOM_AS", required=True, metavar="USER",
    help="Catalog user you act as (or $DATAROOM_AS); only the security group acknowledges or resolves.",
)


def _describe(a: dict) -> str:
    who = next((h for h in reversed(a["history"]) if h["step"] in ("acknowledged", "resolved")), None)
    by = f" ({who['step']} by {who['by']} {who['at'][:19]}: {who['comment']})" if who and a["status"] != "open" else ""
    return f"{a['id']} {a['status']} [{a['severity']}] {a['rule']} x{a['count']} last {str(a['last_event_at'] or '')[:19]}: {a['message']}{by}"


def _lifecycle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Refusals on stderr: exit 3 (not permitted), 2 (bad request, unknown alert, wrong state)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AlertError as exc:
            click.echo(f"{'not permitted' if isinstance(exc, AlertForbidden) else 'refused'}: {exc}", err=True)
            raise SystemExit(3 if isinstance(exc, AlertForbidden) else 2) from exc

    return wrapper


@alerts.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only alerts in this state (open: what needs someone now).")
@click.option(
    "--rule",
    help="Only this rule (denied_burst, unusual_volume, large_result, new_pii_column, engine_crash, "
    "limit_refusals, never_completed, denied_function_class, audit_shipping_lag, model_performance, model_drift).",
)
@click.option("--user", help="Only alerts about this user.")
@click.option("--since", help="Only alerts with evidence at or after this ISO time (e.g. 2026-01-01).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (with the full history).")
@_lifecycle_errors
def list_alerts(status: str | None, rule: str | None, user: str | None, since: str | None, as_json: bool) -> None:
    """Alerts, open first (most severe first), then acknowledged, then resolved.

    The running room evaluates the rules every DATAROOM_ALERT_INTERVAL_S seconds; `alerts scan` does it now.
    """
    settings = Settings()
    store = AlertStore(settings)
    store.ingest(alerts_dir(settings) / "alerts.jsonl")  # what the model monitor raised since the last evaluation
    for alert in store.alerts(status):
        if (rule and alert["rule"] != rule) or (user and alert.get("user") != user) or (since and str(alert["last_event_at"] or "") < since):
            continue
        click.echo(json.dumps(alert) if as_json else _describe(alert))


@alerts.command()
@click.argument("alert_id")
@click.option("--json", "as_json", is_flag=True)
@_lifecycle_errors
def show(alert_id: str, as_json: bool) -> None:
    """One alert with every step of its lifecycle (who, when, comment)."""
    alert = AlertStore(Settings()).alert(alert_id)
    if as_json:
        click.echo(json.dumps(alert))
        return
    click.echo(_describe(alert))
    for d in alert["decision_ids"]:
        click.echo(f"    decision {d}")
    for h in alert["history"]:
        click.echo(f"    {h['at'][:19]} {h['step']} by {h['by']} [{h['severity']}, count {h['count']}]: {h['comment']}")


@alerts.command("ack")
@ACTING_AS
@click.argument("alert_id")
@click.option("--comment", "-m", required=True, help="What you checked or are doing about it (recorded).")
@_lifecycle_errors
def acknowledge(acting_as: str, alert_id: str, comment: str) -> None:
    """Acknowledge an open alert (security group only; audited). It opens again if it escalates."""
    alert = AlertStore(Settings()).acknowledge(acting_as, alert_id, comment)
    click.echo(f"acknowledged {alert['id']} [{alert['severity']}] {alert['rule']} x{alert['count']}")


@alerts.command()
@ACTING_AS
@click.argument("alert_id")
@click.option("--comment", "-m", required=True, help="What you found and did (recorded).")
@_lifecycle_errors
def resolve(acting_as: str, alert_id: str, comment: str) -> None:
    """Resolve an open or acknowledged alert (security group only; audited). New evidence opens a new alert."""
    alert = AlertStore(Settings()).resolve(acting_as, alert_id, comment)
    click.echo(f"resolved {alert['id']} [{alert['severity']}] {alert['rule']} x{alert['count']}")


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

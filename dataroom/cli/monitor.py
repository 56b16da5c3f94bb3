"""``dataroom monitor`` (run, status, acknowledge) and ``dataroom model`` (register, list).

``monitor run --json`` prints one JSON document per run (the contract in the README):
``{"model", "windows": [{"segment", "window_start", "n", "r2", "rmse", "mae", "drift"}], "alerts":
[{"segment", "kind", "window_start", "message"}], ...}``; without ``--model`` every registered model
is run and the document is ``{"runs": [<one per model>]}``. Exit codes: 0 it ran (alerts or
not), 2 bad input (unknown model), 1 internal error (a monitoring query refused or failed).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click

from dataroom.cli.project import ACTING_AS, open_registry, registry_errors
from dataroom.registry import NotFound, RegistryError


@click.group()
def monitor() -> None:
    """Model monitoring: per-tenant performance and drift of registered models, on the governed path."""


@monitor.command()
@click.option("--model", "name", help="Only this model (default: every registered model, latest versions).")
@click.option("--json", "as_json", is_flag=True, help="Print the run as one JSON document.")
def run(name: str | None, as_json: bool) -> None:
    """Score every weekly window of every tenant as the monitor's service principal; raise alerts."""
    from dataroom.cli.common import service
    from dataroom.monitoring.runner import MonitorError, MonitorRunner

    svc = service()
    try:
        try:
            reports = MonitorRunner(svc).run(name)
        except NotFound as exc:
            click.echo(f"bad input: {exc}", err=True)
            sys.exit(2)
        except (MonitorError, RegistryError, ValueError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
    finally:
        svc.close()
    if as_json:
        docs = [r.to_dict() for r in reports]
        click.echo(json.dumps(docs[0] if name else {"runs": docs}, default=str))
        return
    if not reports:
        click.echo("no models registered (see `dataroom model register`)")
    for r in reports:
        segments = sorted({w["segment"] for w in r.windows})
        click.echo(f"{r.model.name} v{r.model.version}: {len(r.windows)} window(s) over {', '.join(segments)} in {r.duration_s:.2f} s "
                   f"({len(r.decision_ids)} audited queries as {svc.settings.monitor_user})")
        for a in r.alerts:
            click.echo(f"  ALERT [{a['kind']}] {a['message']}")
        if not r.alerts:
            click.echo("  no new alerts")


@monitor.command()
@click.option("--model", "name", help="Only this model.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document: every model with its windows and alerts.")
@registry_errors
def status(name: str | None, as_json: bool) -> None:
    """Stored monitoring results: each tenant's latest window, and the model's alerts."""
    models = open_registry().models
    chosen = models.models(name)
    if name and not chosen:
        raise NotFound(f"no model {name!r} (see `dataroom model list`)")
    latest = {m.name: m for m in chosen}
    docs = []
    for m in latest.values():
        docs.append({"model": m.to_dict(), "windows": models.results(m.name, m.version), "alerts": [a.to_dict() for a in models.alerts(m.name)]})
    if as_json:
        click.echo(json.dumps({"models": docs}, default=str))
        return
    for doc in docs:
        m = doc["model"]
        click.echo(f"{m['name']} v{m['version']} ({m['hypothesis']}, {m['project_id']}; author {m['author']}): {m['target']} ~ {', '.join(m['features'])}")
        last: dict[str, dict] = {}
        for w in doc["windows"]:
            last[w["segment"]] = w
        for segment, w in sorted(last.items()):
            r2 = "-" if w["r2"] is None else f"{w['r2']:.3f}"
            click.echo(f"  {segment:<10} last week {w['window_start']}  n={w['n']:<6} R²={r2:<7} RMSE={w['rmse']:.2f}  MAE={w['mae']:.2f}")
        for a in doc["alerts"]:
            state = f"acknowledged by {a['acknowledged_by']}" if a["acknowledged_by"] else f"OPEN, quarantines {a['segment']} in {', '.join(a['quarantined_projects'])}"
            click.echo(f"  alert {a['id']} [{a['kind']}] {a['segment']} from {a['window_start']}: {state}")
        if not doc["windows"]:
            click.echo("  not monitored yet: run `dataroom monitor run`")


@monitor.command()
@click.argument("alert")
@ACTING_AS
@click.option("--note", required=True, help="What you checked and what happens next.")
@registry_errors
def acknowledge(alert: str, acting_as: str, note: str) -> None:
    """Acknowledge a monitoring alert (not by the model's author): releases its quarantines."""
    info = open_registry().models.acknowledge(acting_as, alert, note)
    click.echo(f"acknowledged alert {info.id} ({info.kind}, {info.model_name} on {info.segment}); released in {', '.join(info.quarantined_projects)}")


@click.group()
def model() -> None:
    """Registered models (skops files of linear estimators, tied to production hypotheses)."""


@model.command()
@click.argument("name")
@ACTING_AS
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True, help="The estimator as a skops file (skops.io.dump).")
@click.option("--hypothesis", required=True, help="Hypothesis in phase 5A or 5B (H-<n>).")
@click.option("--feature", "features", multiple=True, required=True, help="Feature column, in the estimator's order (repeat).")
@click.option("--target", required=True, help="Target column.")
@click.option("--reference", nargs=2, type=click.DateTime(formats=["%Y-%m-%d"]), required=True, metavar="START END", help="Reference period the model was fitted on (END exclusive).")
@click.option("--table", default="findings", show_default=True, help="Monitored table in each tenant's schema.")
@click.option("--time-column", default="detected_at", show_default=True)
@click.option("--segment", default="tenant", show_default=True)
@click.option("--note", default="")
@registry_errors
def register(name: str, acting_as: str, path: Path, hypothesis: str, features: tuple[str, ...], target: str,
             reference: tuple[dt.datetime, dt.datetime], table: str, time_column: str, segment: str, note: str) -> None:
    """Register NAME (a new version if it exists) for production monitoring."""
    info = open_registry().models.register(
        acting_as, name, path.read_bytes(), hypothesis=hypothesis, features=list(features), target=target,
        reference=(reference[0].date(), reference[1].date()), segment=segment, table=table, time_column=time_column, note=note,
    )
    click.echo(f"registered {info.name} v{info.version} for {info.hypothesis} ({info.project_id}): {info.target} ~ {', '.join(info.features)} over {', '.join(info.tables)}")


@model.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_models(as_json: bool) -> None:
    """Every registered model version."""
    for m in open_registry().models.models():
        if as_json:
            click.echo(json.dumps(m.to_dict(), default=str))
        else:
            click.echo(f"{m.name} v{m.version}  {m.hypothesis} [{m.project_id}] by {m.author} at {m.registered_at[:19]}  "
                       f"{m.target} ~ {', '.join(m.features)}  reference {m.reference_start} .. {m.reference_end}")

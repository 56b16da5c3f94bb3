"""``dataroom query``: run one SQL statement through the governed pipeline, in-process."""

from __future__ import annotations

import json

import click


@click.command()
@click.option("--user", "-u", required=True, help="Who is asking (a catalog user).")
@click.option("--project", "-p", required=True, help="The approved project the query belongs to.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.argument("sql")
def query(user: str, project: str, fmt: str, sql: str) -> None:
    """Analyse, decide, audit and (if allowed) execute SQL.

    Exit codes: 0 executed, 3 denied (policy) or refused (time, memory, row limits), 2 bad input
    (unparseable SQL, a table or column that does not exist: with a suggestion), 1 internal error.
    Every outcome leaves an audit record. Notes about the result (columns a * left out, duplicate
    names made unique) go to stderr, so stdout stays the result.
    """
    from dataroom.cli.common import echo_err, render, service
    from dataroom.result_names import renamed_columns, renamed_note
    from dataroom.pipeline import Outcome

    svc = service()
    try:
        outcome = svc.run(user, project, sql)
    finally:
        svc.close()
    summary = outcome.summary()
    if outcome.outcome is Outcome.ALLOWED and outcome.table is not None:
        renamed = renamed_columns(outcome.table.schema)
        extra = {"decision": summary, "renamed_columns": renamed} if fmt == "json" else None
        text = render(outcome.table, fmt, extra)
        click.echo(text, nl=not text.endswith("\n"))
        if outcome.result and outcome.result.withheld:
            withheld = ", ".join(f"{w.table}.{w.column} ({w.reason})" for w in outcome.result.withheld)
            echo_err(f"warning: * left out withheld columns: {withheld}")
        if outcome.result and outcome.result.suppression and outcome.result.suppression.suppressed:
            echo_err(f"note: {outcome.result.suppression.note()}")
        note = renamed_note(renamed)
        if note:
            echo_err(note)
    else:
        if fmt == "json":
            click.echo(json.dumps({"decision": summary}, indent=2))
        echo_err(f"{outcome.label} (decision {outcome.decision_id}):")
        for reason in outcome.reasons:
            echo_err(f"  - {reason.message} [{reason.code}]")
        if outcome.error:
            echo_err(f"  - {outcome.error}")
    raise SystemExit(outcome.outcome.exit_code)

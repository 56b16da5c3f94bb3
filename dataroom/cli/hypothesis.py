"""``dataroom hypothesis``: register hypotheses and move them through the five phases.

A hypothesis is registered within an approved project at the end of Data Exploration and links
the audit decisions (``decision_id``) that led to it. Entering a production sub-phase (5A
feature-flagged, 5B general) is a request that another person approves with ``hypothesis approve``.
"""

from __future__ import annotations

import json

import click

from dataroom.audit.reader import records as audit_records
from dataroom.cli.project import ACTING_AS, open_registry, registry_errors
from dataroom.registry import HypothesisInfo, Phase, allowed_targets
from dataroom.settings import Settings


def describe(h: HypothesisInfo, full: bool = False) -> str:
    phase = Phase(h.phase).display()
    pending = f"  (awaiting approval to enter {Phase(h.pending_phase).display()}, asked by {h.pending_by})" if h.pending_phase else ""
    lines = [f"{h.key} [{h.project_id}] {phase}{pending}", f"    {h.statement}", f"    author={h.author} registered={h.created_at[:19]} queries={len(h.decision_ids)}"]
    if full:
        for d in h.decision_ids:
            lines.append(f"    query {d}")
        lines.append("    transitions:")
        for t in h.transitions:
            approver = f" approved by {t.approver}" if t.approver and t.outcome == "completed" else (f" rejected by {t.approver}" if t.approver else "")
            src = Phase(t.from_phase).number if t.from_phase else "-"
            lines.append(f"      {t.at[:19]} {src} -> {Phase(t.to_phase).number} by {t.actor}{approver}" + (f": {t.note}" if t.note else ""))
    return "\n".join(lines)


def recent_decisions(user: str, project_id: str, count: int) -> list[str]:
    """The ``count`` most recent allowed decisions of ``user`` in ``project_id``."""
    ids = [
        r["decision_id"]
        for r in audit_records(Settings(), types=("decision",))
        if r.get("outcome") == "allowed" and r["input"]["user"]["name"] == user and r["input"].get("project_id") == project_id
    ]
    return ids[-count:] if count else []


@click.group()
def hypothesis() -> None:
    """Hypotheses: the change tickets that exploration turns into."""


@hypothesis.command()
@ACTING_AS
@click.option("--project", "-p", "project_id", required=True, help="The approved project the hypothesis belongs to.")
@click.option("--query", "-q", "queries", multiple=True, metavar="DECISION_ID", help="Audit decision id that led to it (repeat).")
@click.option("--recent", type=click.IntRange(0, 1000), default=0, help="Also link your N most recent allowed queries in the project.")
@click.option("--note", default="", help="Anything the reviewer should know.")
@click.argument("statement")
@registry_errors
def register(acting_as: str, project_id: str, queries: tuple[str, ...], recent: int, note: str, statement: str) -> None:
    """Register STATEMENT as a hypothesis in a project, linked to the queries that led to it."""
    ids = [*queries, *recent_decisions(acting_as, project_id, recent)]
    h = open_registry().register_hypothesis(acting_as, project_id, statement, ids, note=note)
    click.echo(f"registered:\n{describe(h, full=True)}")


@hypothesis.command("list")
@click.option("--project", "-p", "project_id", help="Only this project's hypotheses.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_hypotheses(project_id: str | None, as_json: bool) -> None:
    """List hypotheses with their phase."""
    for h in open_registry().hypotheses(project_id):
        click.echo(json.dumps(h.to_dict()) if as_json else describe(h))


@hypothesis.command()
@click.argument("hypothesis_id")
@click.option("--json", "as_json", is_flag=True)
@registry_errors
def show(hypothesis_id: str, as_json: bool) -> None:
    """A hypothesis with its linked queries and every phase transition."""
    h = open_registry().hypothesis(hypothesis_id)
    click.echo(json.dumps(h.to_dict(), indent=2) if as_json else describe(h, full=True))


@hypothesis.command()
@click.argument("hypothesis_id")
@ACTING_AS
@click.option("--to", "to_phase", required=True, help="Target phase: a name (functional_implementation) or number (3, 4, 5A, 5B).")
@click.option("--note", default="", help="What was done / why.")
@registry_errors
def advance(hypothesis_id: str, acting_as: str, to_phase: str, note: str) -> None:
    """Move a hypothesis to another phase; production phases wait for someone else's approval."""
    h = open_registry().advance(acting_as, hypothesis_id, to_phase, note=note)
    if h.pending_phase:
        click.echo(f"requested; needs approval by someone other than {h.author} and {h.pending_by}:\n{describe(h)}")
    else:
        nxt = ", ".join(p.number for p in allowed_targets(Phase(h.phase)))
        click.echo(f"moved:\n{describe(h)}\n    next: {nxt}")


@hypothesis.command()
@click.argument("hypothesis_id")
@ACTING_AS
@click.option("--note", required=True, help="What you checked before approving.")
@registry_errors
def approve(hypothesis_id: str, acting_as: str, note: str) -> None:
    """Approve a pending production transition (not its author nor the person who asked)."""
    h = open_registry().decide_phase(acting_as, hypothesis_id, approve=True, note=note)
    click.echo(f"approved:\n{describe(h)}")


@hypothesis.command()
@click.argument("hypothesis_id")
@ACTING_AS
@click.option("--note", required=True, help="Why not (yet).")
@registry_errors
def reject(hypothesis_id: str, acting_as: str, note: str) -> None:
    """Turn down a pending production transition; the hypothesis stays where it is."""
    h = open_registry().decide_phase(acting_as, hypothesis_id, approve=False, note=note)
    click.echo(f"rejected:\n{describe(h)}")


@hypothesis.command()
@click.argument("hypothesis_id")
@ACTING_AS
@click.option("--query", "-q", "queries", multiple=True, required=True, metavar="DECISION_ID", help="Audit decision id (repeat).")
@registry_errors
def link(hypothesis_id: str, acting_as: str, queries: tuple[str, ...]) -> None:
    """Link more audit decisions of the project to a hypothesis."""
    h = open_registry().link_queries(acting_as, hypothesis_id, queries)
    click.echo(describe(h, full=True))

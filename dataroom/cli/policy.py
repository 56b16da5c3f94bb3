"""``dataroom policy test``: run the Rego unit tests; ``dataroom policy replay``: a candidate policy on recorded decisions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dataroom.rego import POLICY_ROOT, PolicyBundle

if TYPE_CHECKING:
    from dataroom.replay import ReplayReport


@click.group()
def policy() -> None:
    """Work with the Rego policies in policies/."""


@policy.command("test")
def test() -> None:
    """Evaluate every test_* rule of every *_test.rego file; exit 1 if any fails."""
    failed = 0
    for directory in sorted(p for p in POLICY_ROOT.iterdir() if p.is_dir()):
        for result in PolicyBundle.run_rego_tests(directory):
            status = "PASS" if result.passed else "FAIL"
            failed += not result.passed
            click.echo(f"{status} {directory.name}/{result.file}::{result.rule}")
    click.echo(f"{'all passed' if not failed else f'{failed} failed'}")
    raise SystemExit(1 if failed else 0)


@policy.command()
@click.option("--candidate", required=True, type=click.Path(file_okay=False, exists=True, path_type=Path), help="Candidate query policy directory (like policies/query).")
@click.option("--since", help="Only decisions from this date or ISO time (UTC).")
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON document.")
@click.option("--examples", type=int, default=3, show_default=True, help="Examples per reason code.")
@click.option("--jobs", type=int, default=None, help="Worker processes when there are many distinct inputs (default: one per CPU; 1 = in this process).")
@click.option("--fail-on-change", is_flag=True, help="Exit 1 if any recorded decision would change (for CI).")
def replay(candidate: Path, since: str | None, as_json: bool, examples: int, jobs: int | None, fail_on_change: bool) -> None:
    """Re-decide the recorded queries with a candidate policy: what would flip, per reason code, with examples."""
    from dataroom.querylog import parse_time
    from dataroom.rego import PolicyError
    from dataroom.replay import records_of
    from dataroom.replay import replay as run_replay
    from dataroom.settings import Settings

    try:
        start = parse_time(since)
        report = run_replay(records_of(Settings()), candidate, start, examples=examples, jobs=jobs)
    except (PolicyError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        _print_report(report)
    changed = any(report.totals().values())
    raise SystemExit(1 if fail_on_change and changed else 0)


def _print_report(report: "ReplayReport") -> None:
    totals = report.totals()
    since = f" since {report.since}" if report.since else ""
    click.echo(f"replayed {report.decisions} recorded decision(s){since} against {report.candidate} (revision {report.candidate_revision[:12]})")
    click.echo(
        f"  allow → deny: {totals['allow_to_deny']}   deny → allow: {totals['deny_to_allow']}   "
        f"still denied, other reasons: {totals['reasons_changed']}   unchanged: {report.unchanged}"
    )
    if report.candidate_errors:
        click.echo(f"  the candidate could not decide {report.candidate_errors} input(s) (counted as deny: candidate_policy_error)")
    click.echo(f"  skipped {report.skipped} decision record(s) the query policy did not make (bad input, broker refusals)")
    for title, flips in (("allow → deny, by the candidate's reason", report.allow_to_deny), ("deny → allow, by the recorded reason", report.deny_to_allow),
                         ("still denied, reasons added (+) or dropped (-)", report.reasons_changed)):
        if not flips:
            continue
        click.echo(f"\n{title}:")
        for code, flip in sorted(flips.items(), key=lambda item: -item[1].count):
            click.echo(f"  {code:<28} {flip.count:>6}")
            for e in flip.examples:
                click.echo(f"      {e['decision_id']}  {(e['timestamp'] or '')[:19]}  {e['user']}  {e['project_id']}  {e['sql'][:80]!r}")
    click.echo(f"\n{report.decisions} decisions ({report.distinct_inputs} distinct inputs) in {report.seconds:.2f} s = {report.rate:,.0f} decisions/s")

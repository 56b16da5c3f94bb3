"""``dataroom infra``: commands for infra engineers, starting with the infra policy check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from infra.stack_files import INFRA_DIR, stack_names

if TYPE_CHECKING:
    from dataroom.infra_check import InfraCheckResult

EXIT_VIOLATIONS = 3
"""Exit status when a stack breaks an infra policy (0: all stacks pass)."""


@click.group()
def infra() -> None:
    """Infrastructure (Pulumi) commands."""


def _print_result(result: InfraCheckResult) -> None:
    verdict = "PASS" if result.allow else "FAIL"
    click.echo(
        f"{verdict} stack {result.stack} ({result.kind}): {result.resource_count} resources, "
        f"{len(result.violations)} violation(s)"
    )
    for v in result.violations:
        click.echo(f"  - [{v.title or v.policy}] {v.resource}: {v.message}")


@infra.command("check")
@click.option(
    "--stack",
    "stacks",
    multiple=True,
    help="Stack to check (Pulumi.<stack>.yaml); repeatable. Default: every stack file.",
)
@click.option(
    "--infra-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=INFRA_DIR,
    show_default=True,
    help="Directory with Pulumi.yaml and the stack files.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the verdicts as JSON.")
@click.pass_context
def check(ctx: click.Context, stacks: tuple[str, ...], infra_dir: Path, as_json: bool) -> None:
    """Build each stack offline (Pulumi mocks) and run the infra policies over its resources.

    Exit status: 0 when every stack passes, 3 when any breaks a policy, 1 when a stack
    cannot be built (the message names the config key to fix).
    """
    # Imported here: Pulumi and the AWS SDK types take a moment to load; other commands need neither.
    from dataroom.infra_check import InfraCheckError, check_stack
    from dataroom.rego import PolicyError

    names = list(stacks) or stack_names(infra_dir)
    if not names:
        raise click.ClickException(f"no Pulumi.<stack>.yaml files in {infra_dir}")
    try:
        results = [check_stack(name, infra_dir) for name in names]
    except (InfraCheckError, PolicyError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps([r.to_json() for r in results], indent=2))
    else:
        for result in results:
            _print_result(result)
    if not all(r.allow for r in results):
        ctx.exit(EXIT_VIOLATIONS)

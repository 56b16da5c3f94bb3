"""``dataroom policy test``: run the Rego unit tests of every policy directory."""

from __future__ import annotations

import click

from dataroom.rego import POLICY_ROOT, PolicyBundle


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

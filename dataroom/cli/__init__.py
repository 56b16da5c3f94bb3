"""``dataroom`` command line: one click group; each sub-command group lives in its own module."""

from __future__ import annotations

import click

from dataroom.cli.audit import audit
from dataroom.cli.catalog import demo_data, projects, tables
from dataroom.cli.infra import infra
from dataroom.cli.policy import policy
from dataroom.cli.query import query


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Secured data room: governed, audited queries over production Parquet."""


for command in (query, audit, demo_data, tables, projects, policy, infra):
    main.add_command(command)

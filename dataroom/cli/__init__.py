"""``dataroom`` command line: one click group; each sub-command group lives in its own module."""

from __future__ import annotations

import click

from dataroom.cli.alerts import alerts
from dataroom.cli.audit import audit
from dataroom.cli.catalog import demo_data, tables
from dataroom.cli.db import db
from dataroom.cli.hypothesis import hypothesis
from dataroom.cli.infra import infra
from dataroom.cli.monitor import model, monitor
from dataroom.cli.policy import policy
from dataroom.cli.project import project
from dataroom.cli.query import query
from dataroom.cli.release import release
from dataroom.cli.up import up


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Secured data room: governed, audited queries over production Parquet."""


for command in (up, query, tables, audit, project, hypothesis, alerts, monitor, model, demo_data, policy, infra, db, release):
    main.add_command(command)

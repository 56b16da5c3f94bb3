"""``dataroom`` command line: one click group; each sub-command group lives in its own module.

Sub-commands are imported only when they run (click's lazy-group pattern), so ``dataroom --help``
and a quick command do not pay for the registry, the engine and the hypothesis modules of every
other command. To add a command: one line in :data:`COMMANDS` — its name, ``module:attribute``,
and the one-line help ``dataroom --help`` shows (a test checks it matches the command's own).
"""

from __future__ import annotations

import importlib

import click

COMMANDS: dict[str, tuple[str, str]] = {
    "alerts": (
        "dataroom.cli.alerts:alerts",
        "Alerts over the audit stream: denied-query bursts, unusual volumes, newly classified PII, engine crashes, "
        "resource-limit bursts, queries that never completed, denied function classes, audit shipping behind.",
    ),
    "audit": ("dataroom.cli.audit:audit", "Inspect the tamper-evident audit log."),
    "db": ("dataroom.cli.db:db", "Registry database schema: upgrade and inspect its migration revision."),
    "demo-data": (
        "dataroom.cli.catalog:demo_data",
        "Write demo Parquet for tenants acme, globex, initech and a catalog under $DATAROOM_HOME, and register the demo "
        "model remediation-days-linear (its hypothesis in phase 5A).",
    ),
    "hypothesis": ("dataroom.cli.hypothesis:hypothesis", "Hypotheses: the change tickets that exploration turns into."),
    "infra": ("dataroom.cli.infra:infra", "Infrastructure (Pulumi) commands."),
    "model": ("dataroom.cli.monitor:model", "Registered models (skops files of linear estimators, tied to production hypotheses)."),
    "monitor": ("dataroom.cli.monitor:monitor", "Model monitoring: per-tenant performance and drift of registered models, on the governed path."),
    "policy": ("dataroom.cli.policy:policy", "Work with the Rego policies in policies/."),
    "project": ("dataroom.cli.project:project", "Projects: the approved scope every query runs within."),
    "query": ("dataroom.cli.query:query", "Analyse, decide, audit and (if allowed) execute SQL."),
    "release": ("dataroom.cli.release:release", "Release requests: the only way a result leaves the room (two security reviewers decide)."),
    "tables": ("dataroom.cli.catalog:tables", "List a project's tables with each column's classification and visibility."),
    "up": ("dataroom.cli.up:up", "Start the data room: JupyterHub on 127.0.0.1 with the broker, demo users and notebooks."),
}


class LazyGroup(click.Group):
    """A group whose sub-commands are imported on first use; ``--help`` lists them without importing."""

    def __init__(self, *args: object, lazy: dict[str, tuple[str, str]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module_name, attribute = self.lazy[cmd_name][0].split(":")
            command = getattr(importlib.import_module(module_name), attribute)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in self.commands or name not in self.lazy:
                command = self.get_command(ctx, name)
                if command is None or command.hidden:
                    continue
                rows.append((name, command.get_short_help_str(limit)))
            else:
                rows.append((name, click.Command(name, help=self.lazy[name][1]).get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Secured data room: governed, audited queries over production Parquet."""

"""``dataroom demo-data`` and ``dataroom tables``: the catalog side (projects: ``dataroom project``)."""

from __future__ import annotations

import click

from dataroom import demo_data as demo
from dataroom.catalog import CatalogError, load_catalog
from dataroom.engine import visible_columns, withheld_columns
from dataroom.settings import Settings


def _catalog():
    try:
        return load_catalog(Settings().catalog_file)
    except CatalogError as exc:
        raise click.UsageError(str(exc)) from exc


@click.command("demo-data")
@click.option("--rows", type=click.IntRange(min=1), default=demo.DEFAULT_ROWS, show_default=True, help="Findings rows per tenant.")
@click.option("--if-missing", is_flag=True, help="Do nothing when a catalog already exists.")
def demo_data(rows: int, if_missing: bool) -> None:
    """Write demo Parquet for tenants acme, globex, initech and a catalog under $DATAROOM_HOME."""
    settings = Settings()
    if if_missing and settings.catalog_file.exists():
        click.echo(f"demo data already present: {settings.catalog_file}")
        return
    click.echo(f"writing {rows:,} findings per tenant under {settings.home} ...")
    path = demo.generate(settings.home, rows=rows)
    click.echo(f"catalog: {path}")


@click.command()
@click.option("--project", "-p", required=True, help="Show what this project may see.")
def tables(project: str) -> None:
    """List a project's tables with each column's classification and visibility."""
    from dataroom.cli.project import open_registry

    catalog = _catalog()
    proj = open_registry().policy_project(project)
    if proj is None:
        raise click.UsageError(f"project {project!r} does not exist (see `dataroom project list`)")
    for table in catalog.project_tables(proj):
        click.echo(f"{table.name}  (tenant: {table.tenant or 'shared reference'})")
        visible = set(visible_columns(table, proj))
        withheld = {w.column: w.reason for w in withheld_columns(table, proj)}
        for column, cls in table.columns.items():
            mark = "visible" if column in visible else f"withheld: {withheld[column]}"
            click.echo(f"    {column:<20} {cls.value:<17} {mark}")

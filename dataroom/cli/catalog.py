"""``dataroom demo-data`` and ``dataroom tables``: the catalog side (projects: ``dataroom project``)."""

from __future__ import annotations

import click

DEMO_ROWS = 2_000  # dataroom.demo_data.DEFAULT_ROWS, not imported here: `dataroom --help` stays fast (tested)


@click.command("demo-data")
@click.option("--rows", type=click.IntRange(min=1), default=DEMO_ROWS, show_default=True, help="Findings rows per tenant.")
@click.option("--if-missing", is_flag=True, help="Do nothing when a catalog already exists.")
def demo_data(rows: int, if_missing: bool) -> None:
    """Write demo Parquet for tenants acme, globex, initech and a catalog under $DATAROOM_HOME,
    and register the demo model remediation-days-linear (its hypothesis in phase 5A)."""
    from dataroom import demo_data as demo
    from dataroom.settings import Settings

    settings = Settings()
    if if_missing and settings.catalog_file.exists():
        click.echo(f"demo data already present: {settings.catalog_file}")
        return
    click.echo(f"writing {rows:,} findings per tenant under {settings.home} ...")
    path = demo.generate(settings.home, rows=rows)
    click.echo(f"catalog: {path}")
    from dataroom.monitoring.demo import register_demo_model

    model = register_demo_model(settings)
    click.echo(f"model: {model.name} v{model.version} ({model.hypothesis}, phase 5A) monitored per tenant: `dataroom monitor run`")


@click.command()
@click.option("--project", "-p", required=True, help="Show what this project may see.")
def tables(project: str) -> None:
    """List a project's tables with each column's classification and visibility."""
    described = _read_only_description(project)
    if described is None:  # not in the registry yet (a fresh home): the query service seeds it, audited
        from dataroom.cli.common import service

        svc = service()
        try:
            described = svc.project_tables(project)
        finally:
            svc.close()
    if described is None:
        raise click.UsageError(f"project {project!r} does not exist (see `dataroom project list`)")
    for table in described["tables"]:
        click.echo(f"{table['table']}  (tenant: {table['tenant'] or 'shared reference'})")
        for column in table["columns"]:
            mark = "visible" if column["visible"] else f"withheld: {column['reason']}"
            click.echo(f"    {column['name']:<20} {column['classification']:<17} {mark}")


def _read_only_description(project_id: str) -> dict | None:
    """The project's tables from the catalog and one registry read, without the query pipeline
    (no engine, no policy compilation, no audit log: nothing is written). On a SQLite registry at the
    current schema the read needs neither SQLAlchemy nor Alembic (:mod:`dataroom.registry.policy_row`)."""
    from dataroom.catalog import CatalogError, load_catalog
    from dataroom.project_view import describe_tables
    from dataroom.redaction import inspect_text
    from dataroom.registry.policy_row import policy_project
    from dataroom.settings import Settings

    if inspect_text(project_id, max_chars=64, what="the project id").problem is not None:
        return None
    settings = Settings()
    try:
        catalog = load_catalog(settings.catalog_file)
    except CatalogError as exc:
        raise click.UsageError(str(exc)) from exc
    found = policy_project(settings.registry_database_url, catalog, project_id)
    return None if found is None else describe_tables(catalog, found)

"""The CLI imports a command's modules only when that command runs (issue 17 item 7).

No timing here (benchmarks/bench_cli_start.py prints the figures): these tests pin what makes
start-up fast — which modules `dataroom --help` loads — and that the lazy listing says what the
commands themselves say.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from dataroom.cli import COMMANDS, main

HEAVY = ("polars", "pyarrow", "duckdb", "sqlalchemy", "alembic", "regopy", "pydantic", "dataroom.registry", "dataroom.pipeline", "dataroom.engines", "dataroom.hypotheses", "dataroom.settings")


def loaded_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(sorted(m for m in sys.modules if m.startswith({HEAVY!r})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return eval(out.strip().splitlines()[-1])  # noqa: S307 - our own probe's printed list


def test_import_and_help_load_no_command_module() -> None:
    assert loaded_after("import dataroom.cli") == []
    code = "from dataroom.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    assert loaded_after(code) == []


def test_a_command_loads_only_its_own_modules() -> None:
    code = "from dataroom.cli import main\ntry:\n    main(['tables', '--help'])\nexcept SystemExit:\n    pass"
    loaded = loaded_after(code)
    assert not [m for m in loaded if m.startswith(("dataroom.pipeline", "dataroom.engines", "duckdb", "regopy", "polars"))], loaded


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_lazy_listing_says_what_each_command_says(name: str) -> None:
    ctx = click.Context(main)
    command = main.get_command(ctx, name)
    assert command is not None and command.name == name
    listed = click.Command(name, help=COMMANDS[name][1]).get_short_help_str(200)
    assert listed == command.get_short_help_str(200), f"update COMMANDS[{name!r}] in dataroom/cli/__init__.py"


def test_every_command_runs_its_help() -> None:
    for name in COMMANDS:
        result = subprocess.run([sys.executable, "-m", "dataroom.cli", name, "--help"], capture_output=True, text=True)
        assert result.returncode == 0 and "Usage: " in result.stdout, (name, result.stderr)
    listing = subprocess.run([sys.executable, "-m", "dataroom.cli", "--help"], capture_output=True, text=True, check=True).stdout
    assert all(f"  {name} " in listing for name in COMMANDS)


# What `dataroom tables -p P` must not import (it read the catalog and one registry row): each of these
# alone costs more than the 0.25 s start the command keeps (benchmarks/bench_cli_start.py has the figures).
NOT_FOR_TABLES = ("sqlalchemy", "alembic", "polars", "pyarrow", "duckdb", "regopy", "psycopg", "rich", "mako",
                  "dataroom.registry.service", "dataroom.registry.models", "dataroom.registry.schema",
                  "dataroom.pipeline", "dataroom.engines", "dataroom.audit", "dataroom.policy")


def run_tables(project: str) -> tuple[str, list[str]]:
    """``dataroom tables -p project`` in a fresh interpreter (the environment's DATAROOM_HOME): its output and
    which of NOT_FOR_TABLES it imported."""
    probe = (
        "import sys\nfrom dataroom.cli import main\ntry:\n    main(['tables', '-p', %r])\nexcept SystemExit as exc:\n"
        "    assert not exc.code, exc.code\nprint(sorted(m for m in sys.modules if m.startswith(%r)))" % (project, NOT_FOR_TABLES)
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    *listing, loaded = out.stdout.strip().splitlines()
    return "\n".join(listing), eval(loaded)  # noqa: S307 - our own probe's printed list


def test_tables_of_a_project_imports_neither_sqlalchemy_nor_the_pipeline(service, dataroom_home: Path) -> None:
    """The room has run (the service seeded the registry): the listing comes from the catalog and one
    SQLite read, whatever the project's state (dataroom/registry/policy_row.py)."""
    service.registry.revoke("sam", "remediation-benchmark", reason="the light read answers for a revoked project too")
    for project in ("remediation-acme", "remediation-benchmark"):
        listing, loaded = run_tables(project)
        assert loaded == [], loaded
        described = service.project_tables(project)
        assert listing.splitlines()[0] == f"{described['tables'][0]['table']}  (tenant: {described['tables'][0]['tenant']})"
        assert len(listing.splitlines()) == sum(1 + len(t["columns"]) for t in described["tables"])


def test_tables_in_a_fresh_home_seeds_the_registry_as_before(dataroom_home: Path) -> None:
    """No registry yet: the Registry creates it and the query service seeds it (heavy, once); then light."""
    assert not (dataroom_home / "registry.sqlite").exists()
    first, loaded = run_tables("remediation-acme")
    assert first.startswith("acme.findings  (tenant: acme)") and "sqlalchemy" in loaded
    again, loaded = run_tables("remediation-acme")
    assert again == first and loaded == []


def test_demo_rows_default_is_the_demo_datas() -> None:
    from dataroom import demo_data
    from dataroom.cli.catalog import DEMO_ROWS

    assert DEMO_ROWS == demo_data.DEFAULT_ROWS


def test_tables_without_the_pipeline_lists_what_the_pipeline_would(service, dataroom_home: Path) -> None:
    from click.testing import CliRunner

    from dataroom.cli.catalog import tables

    for project in ("remediation-acme", "remediation-benchmark"):
        out = CliRunner().invoke(tables, ["-p", project])
        assert out.exit_code == 0, out.output
        expected = service.project_tables(project)
        lines = out.output.splitlines()
        for table in expected["tables"]:
            assert f"{table['table']}  (tenant: {table['tenant'] or 'shared reference'})" in lines
            for column in table["columns"]:
                mark = "visible" if column["visible"] else f"withheld: {column['reason']}"
                assert f"    {column['name']:<20} {column['classification']:<17} {mark}" in lines
    assert CliRunner().invoke(tables, ["-p", "no-such-project"]).exit_code == 2

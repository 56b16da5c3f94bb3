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

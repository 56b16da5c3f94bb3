"""A process whose registry is already at head starts without importing Alembic (issue 17 item 7).

``schema.prepare`` first reads the version table against ``migrations.HEAD_REVISION``; only a
database that is new, behind or ahead loads Alembic, and those answers are unchanged (the
migration tests). Here: the fast path is taken at head, and not taken anywhere else, on SQLite and
a real PostgreSQL server.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import text

from dataroom.registry.migrations import HEAD_REVISION
from dataroom.registry.schema import head_revision, prepare
from dataroom.registry.service import create_registry_engine, dispose_engines


def _prepare_in_a_fresh_process(url: str) -> tuple[int, str, bool]:
    """Exit code, stderr and whether Alembic was imported, of ``prepare`` run in a new interpreter."""
    code = (
        "import sys\nfrom dataroom.registry.schema import prepare\nfrom dataroom.registry.service import create_registry_engine\n"
        f"engine = create_registry_engine({url!r})\ntry:\n    prepare(engine)\nfinally:\n    engine.dispose()\n"
        "    print('alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return out.returncode, out.stderr, out.stdout.strip().endswith("True")


def test_at_head_prepare_skips_alembic_and_elsewhere_it_does_not(empty_db_url: str) -> None:
    try:
        code, err, alembic = _prepare_in_a_fresh_process(empty_db_url)  # new database: built and stamped by Alembic
        assert code == 0 and alembic, err
        code, err, alembic = _prepare_in_a_fresh_process(empty_db_url)  # at head: one read, no Alembic
        assert code == 0 and not alembic, err
        engine = create_registry_engine(empty_db_url)
        with engine.begin() as conn:
            assert list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars()) == [head_revision()]
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        code, err, alembic = _prepare_in_a_fresh_process(empty_db_url)  # ahead: refused, as before
        assert code != 0 and "9999" in err and "SchemaError" in err and alembic
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": HEAD_REVISION})
            conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0003')"))  # two rows: not "at head"
        with pytest.raises(Exception, match="more than one head"):  # Alembic's answer, as before: not taken as at head
            prepare(engine)
        engine.dispose()
    finally:
        dispose_engines()

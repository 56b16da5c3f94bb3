"""Projects name the engine their queries run on (duckdb | spark), approved with the scope.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 07:00:00

Existing rows keep NULL, which means the deployment's default engine (DATAROOM_DEFAULT_ENGINE,
duckdb unless set): dataroom/engines/base.py, engine_of.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("engine", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("engine")

"""Projects carry their output policy (aggregation constraint), approved with the scope.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 06:40:00

Existing rows keep NULL, which means the default: on (10 rows, 2 tenants) for multi-tenant
projects, off otherwise (dataroom/outputs/aggregation.py, OutputPolicy.for_project).
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("output_policy", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("output_policy")

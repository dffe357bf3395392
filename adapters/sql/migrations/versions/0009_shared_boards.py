"""Boards computed once per deployment: `shared_boards` holds what the board's lease holder
computed last, for every other process to read (domain/shared_boards.py).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written by hand; kept equal to adapters/sql/tables.py by tests/integration/test_sql_database.py.


def upgrade() -> None:
    op.create_table(
        "shared_boards",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_shared_boards"),
    )


def downgrade() -> None:
    op.drop_table("shared_boards")
